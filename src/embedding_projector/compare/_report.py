"""What :mod:`embedding_projector.compare` writes and prints: tensor, change table, summary."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._format.files import write_event_file
from ..insight import _markdown_cell
from ..insight._alignment import unit_rows as _unit_rows
from ..insight._layout_core import fit_sample, top_directions
from ..insight.layouts import ProjectorLayout, umap_layout
from ..writer import ProjectorWriter, Snapshot, escape_label

__all__ = [
    "CHANGES_FILENAME",
    "ChangedWord",
    "changes_table",
    "changes_tsv",
    "compare_states",
    "describe_summary",
    "write_outputs",
]

#: The file of most-changed words, in the run directory.
CHANGES_FILENAME = "compare_changes.tsv"

#: Most-changed rows shown in the TEXT table (the TSV file holds ``top`` of them).
TEXT_TABLE_ROWS = 50
#: Rows per block when the combined tensor is walked (bounds the temporary copies: a few
#: block-sized ones, float64 for the PCA scatter, 1.6 MiB each at 100 dimensions).
_BLOCK = 2048


@dataclass(frozen=True)
class ChangedWord:
    """One word whose neighbourhood changed between the two sources.

    Attributes:
        rank: 1 for the most changed word.
        label: the word.
        overlap: fraction of its ``k`` neighbours in A that are also its neighbours in B.
        displacement: cosine distance (centred) between its two vectors after alignment.
        neighbors_a: its nearest neighbours in A, nearest first.
        neighbors_b: its nearest neighbours in B, nearest first.
    """

    rank: int
    label: str
    overlap: float
    displacement: float
    neighbors_a: list[str]
    neighbors_b: list[str]


def compare_states(
    combined: npt.NDArray[np.float32],
    names: tuple[str, str],
    kind: Literal["pca", "umap"] = "pca",
) -> list[ProjectorLayout]:
    """The saved states of a comparison: both sets in one frame, then each source alone.

    ``combined`` holds A's rows, then B's aligned onto A (same label order). Its PCA (one basis
    for both halves) puts a word's two points together where it did not move. States: both
    sets (2-D, 3-D), then each source alone (2-D), all coloured by the ``source`` column; with
    ``kind="umap"`` also a UMAP of all rows and its per-source states.
    """
    half = len(combined) // 2
    halves = (range(0, half), range(half, 2 * half))
    both = f"{names[0]} and {names[1]} aligned"
    found: list[ProjectorLayout] = []
    coords = _aligned_pca(combined)
    flat = ProjectorLayout("pca", coords[:, :2], f"{both} (PCA) · 2-D")
    solid = ProjectorLayout("pca", coords, f"{both} (PCA) · 3-D")
    pictures: list[tuple[ProjectorLayout, str, tuple[ProjectorLayout, ...]]] = [
        (flat, "aligned PCA · 2-D", (flat, solid))
    ]
    if kind == "umap":
        mapped = umap_layout(combined, label=f"{both} (UMAP of all {len(combined)} points)")
        pictures.append((mapped, "aligned UMAP", (mapped,)))
    for picture, suffix, whole in pictures:
        found.extend(
            ProjectorLayout(item.kind, item.coordinates, item.label, color_by="source")
            for item in whole
        )
        found.extend(
            ProjectorLayout(
                picture.kind,
                picture.coordinates,
                f"{name} only · {suffix}",
                filtered_points=tuple(rows),
                color_by="source",
            )
            for name, rows in zip(names, halves, strict=True)
        )
    return found


def _aligned_pca(combined: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``layouts.pca_layouts``' 3-D coordinates of ``combined``, computed block by block.

    One basis for every row (unit rows, centred, top 3 components of an evenly spread
    sample), signs fixed and scaled to unit RMS radius in 2-D, as there; without its two
    full-size temporary copies of the tensor.
    """
    rows = len(combined)
    mean = np.zeros(combined.shape[1])
    for start in range(0, rows, _BLOCK):
        mean += _unit_rows(combined[start : start + _BLOCK]).sum(axis=0, dtype=np.float64)
    centre = (mean / rows).astype(np.float32)
    axes = _top_axes(combined[fit_sample(rows)], centre)
    coords = np.empty((rows, 3), dtype=np.float32)
    for start in range(0, rows, _BLOCK):
        coords[start : start + _BLOCK] = (
            _unit_rows(combined[start : start + _BLOCK]) - centre
        ) @ axes
    extreme = coords[np.argmax(np.abs(coords), axis=0), np.arange(3)]
    coords *= np.where(extreme < 0, -1.0, 1.0).astype(np.float32)
    radius = float(np.sqrt(np.mean(np.sum(coords[:, :2].astype(np.float64) ** 2, axis=1))))
    coords /= radius if radius > 0 else 1.0
    return coords


def _top_axes(
    sample: npt.NDArray[np.float32], centre: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``top_directions(unit rows - centre, 3)``, the scatter matrix summed over small blocks.

    With at least as many rows as dimensions that function takes the top eigenvectors of the
    rows' scatter matrix; summing it block by block gives the same basis without a float64
    copy of the whole sample (at small sizes the largest allocation of a compare). Fewer rows
    than dimensions: the sample is small, and goes to ``top_directions`` as it is.
    """
    rows, dims = sample.shape
    if rows < dims:
        basis, _ = top_directions(_unit_rows(sample) - centre, 3)
        return basis.astype(np.float32)
    scatter = np.zeros((dims, dims))
    for start in range(0, rows, _BLOCK):
        block = (_unit_rows(sample[start : start + _BLOCK]) - centre).astype(np.float64)
        scatter += block.T @ block
    values, vectors = np.linalg.eigh(scatter)
    return np.asarray(vectors[:, np.argsort(values)[::-1][:3]], dtype=np.float32)


def changes_tsv(changed: Sequence[ChangedWord], names: tuple[str, str], k: int) -> str:
    """``compare_changes.tsv``: one line per word, most changed first, with a header."""
    header = [
        "rank",
        "label",
        f"overlap@{k}",
        "displacement",
        f"neighbours in {escape_label(names[0])}",
        f"neighbours in {escape_label(names[1])}",
    ]
    lines = ["\t".join(header)]
    for word in changed:
        cells = [
            str(word.rank),
            escape_label(word.label),
            f"{word.overlap:.4f}",
            f"{word.displacement:.6f}",
            ", ".join(escape_label(label) for label in word.neighbors_a),
            ", ".join(escape_label(label) for label in word.neighbors_b),
        ]
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def changes_table(
    changed: Sequence[ChangedWord], names: tuple[str, str], k: int, shared: int
) -> str:
    """The Markdown table for TensorBoard's TEXT tab (the first 50 most changed words)."""
    a, b = (_markdown_cell(name) for name in names)
    lines = [
        f"Words whose {k} nearest neighbours changed most between **{a}** and **{b}** "
        f"(among {shared:,} shared words; neighbours by centred cosine):",
        "",
        f"| rank | word | overlap@{k} | displacement | neighbours in {a} | neighbours in {b} |",
        "|---|---|---|---|---|---|",
    ]
    for word in changed[:TEXT_TABLE_ROWS]:
        lines.append(
            f"| {word.rank} | **{_markdown_cell(word.label)}** | {word.overlap:.2f} | "
            f"{word.displacement:.3f} | "
            + ", ".join(_markdown_cell(label) for label in word.neighbors_a)
            + " | "
            + ", ".join(_markdown_cell(label) for label in word.neighbors_b)
            + " |"
        )
    return "\n".join(lines)


def _listing(words: Sequence[str], max_words: int) -> str:
    shown = ", ".join(words[:max_words])
    more = len(words) - max_words
    return shown + (f", ... ({more:,} more)" if more > 0 else "")


def _times(value: float, chance: float) -> str:
    return f"{value / chance:,.1f}x chance" if chance > 0 else "no chance level"


def describe_summary(summary: Any, max_words: int = 20) -> str:
    """What the CLI prints for a :class:`~embedding_projector.compare.CompareSummary`."""
    a, b = summary.names
    lines = [
        f"Compared {a!r} ({summary.sources[0]}, {summary.dims[0]} dims) with {b!r} "
        f"({summary.sources[1]}, {summary.dims[1]} dims)",
        f"  shared labels: {summary.shared:,} (written: {summary.written:,} of each, "
        f"{2 * summary.written:,} points)",
        f"  only in {a!r}: {len(summary.only_in_a):,}"
        + (f" ({_listing(summary.only_in_a, max_words)})" if summary.only_in_a else ""),
        f"  only in {b!r}: {len(summary.only_in_b):,}"
        + (f" ({_listing(summary.only_in_b, max_words)})" if summary.only_in_b else ""),
    ]
    for name, repeated in zip(summary.names, summary.duplicates, strict=True):
        if repeated:
            lines.append(
                f"  duplicated labels in {name!r}, first kept ({len(repeated):,}): "
                f"{_listing(repeated, max_words)}"
            )
    lines += [
        f"  alignment: {summary.alignment}",
        f"  mean overlap@{summary.k}: {summary.mean_overlap:.3f} (1: every neighbourhood kept; "
        f"chance {summary.chance_overlap:.3f}, the overlap of unrelated neighbour lists: "
        f"{_times(summary.mean_overlap, summary.chance_overlap)}); {summary.zero_overlap:,} "
        f"word(s) kept none of their {summary.k} neighbours",
        f"  median aligned displacement (cosine distance in A's centred cosine frame): "
        f"{summary.median_displacement:.4f}",
    ]
    lines.extend(f"  note: {note}" for note in summary.notes)
    if summary.most_changed:
        lines.append(
            f"Most changed (lowest overlap@{summary.k} first; equal overlaps: largest aligned "
            "displacement first):"
        )
        width = max(len(word.label) for word in summary.most_changed[:max_words])
        for word in summary.most_changed[:max_words]:
            lines.append(
                f"  {word.rank:>3}. {word.label:<{width}}  overlap {word.overlap:.2f}  "
                f"moved {word.displacement:.3f}  {a}: {', '.join(word.neighbors_a[:5])}  "
                f"{b}: {', '.join(word.neighbors_b[:5])}"
            )
    lines.append(f"  tensor:   {summary.tensor_path} ({summary.tensor_name!r})")
    if summary.metadata_path is not None:
        lines.append(f"  metadata: {summary.metadata_path}")
    lines.append(f"  changes:  {summary.changes_path}")
    lines.append("View it with:")
    lines.append(f"  {summary.tensorboard_command}")
    return "\n".join(lines)


def write_outputs(
    logdir: str | os.PathLike[str],
    combined: npt.NDArray[np.float32],
    labels: list[str],
    overlap: npt.NDArray[np.float64],
    rank: npt.NDArray[np.int64],
    fields: dict[str, Any],
    *,
    tag: str,
    step: int,
    layout: Literal["pca", "umap"] | None = "pca",
    guard: tuple[str | None, bool] = (None, True),
) -> tuple[Snapshot, Path, Path]:
    """The tensor and its metadata (with :func:`compare_states` unless ``layout`` is None),
    the TSV, the TEXT table and the scalars.

    ``guard`` is ``(source, overwrite)`` for :meth:`ProjectorWriter.add_embedding`.

    Returns:
        (the snapshot, the run directory, the TSV's path).
    """
    names: tuple[str, str] = fields["names"]
    k: int = fields["k"]
    overlap_text = [f"{value:.2f}" for value in overlap.tolist()]
    rank_text = [str(value) for value in rank.tolist()]
    metadata = [
        [label, name, value, position]
        for name in names
        for label, value, position in zip(labels, overlap_text, rank_text, strict=True)
    ]
    states = None if layout is None else compare_states(combined, names, layout)
    with ProjectorWriter(logdir) as writer, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Writing \d+ rows for tag", category=UserWarning)
        snapshot = writer.add_embedding(
            combined,
            metadata=metadata,
            global_step=step,
            tag=tag,
            metadata_header=["label", "source", f"overlap@{k}", "change rank"],
            name_suffix=f"{names[0]} vs {names[1]}",
            layout=states,
            source=guard[0],
            overwrite=guard[1],
        )
    changed: list[ChangedWord] = fields["most_changed"]
    changes_path = writer.logdir / CHANGES_FILENAME
    _atomic_text(changes_path, changes_tsv(changed, names, k))
    table = changes_table(changed, names, k, len(labels))
    _log_events(writer.logdir, tag, step, table, fields)
    return snapshot, writer.logdir, changes_path


def _atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it (umask respected)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _log_events(
    logdir: Path, tag: str, step: int, table: str, summary_fields: dict[str, Any]
) -> None:
    """The TEXT table and the scalars, in an event file of the run.

    Written with TensorBoard's protos and the writer layer's event-file framing: tensorboardX's
    ``SummaryWriter`` would import torch (seconds) when it is installed, and TensorBoard's own
    writer its TensorFlow stub (fsspec, asyncio: a tenth of a second and several MiB).
    """
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.compat.proto.types_pb2 import DT_STRING
    from tensorboard.plugins.text import metadata as text_metadata

    text = TensorProto(
        dtype=DT_STRING,
        string_val=[table.encode("utf-8")],
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
    )
    values = [
        Summary.Value(
            tag=f"{tag}/most_changed",
            tensor=text,
            metadata=text_metadata.create_summary_metadata(display_name="", description=""),
        ),
        Summary.Value(tag=f"{tag}/mean_overlap_at_k", simple_value=summary_fields["mean_overlap"]),
        Summary.Value(
            tag=f"{tag}/median_aligned_displacement",
            simple_value=summary_fields["median_displacement"],
        ),
    ]
    event = Event(wall_time=time.time(), step=step, summary=Summary(value=values))
    write_event_file(logdir, ".compare", [event.SerializeToString()])
