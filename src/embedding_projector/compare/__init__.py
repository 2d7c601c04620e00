"""Compare two embeddings in one aligned projector view: what changed, and where.

:func:`compare_embeddings` reads two sources (anything the exporter reads, or a snapshot of a
projector run written as ``"runs/exp1::words@3"``: log dir, tag, step), matches their rows by
label, rotates B onto A on the shared rows and writes one projector tensor holding both sets:
A as it is and B aligned onto A, so each word's two points sit near each other unless its
place really changed, and saved states (BOOKMARKS) of its aligned PCA: both sets in one
frame, and each source alone. Beside it: a TEXT table and ``compare_changes.tsv`` of the
words whose neighbourhoods changed most, and two scalars.

What is measured (the cosine frame of :mod:`embedding_projector.insight`: rows scaled to unit
length, then mean-centred, so that vectors sharing one dominant direction are still told
apart):

* **overlap@k** of a word: the fraction of its ``k`` nearest neighbours in A that are also
  among its ``k`` nearest in B (neighbours among the shared rows). 1.0: unchanged.
* **aligned displacement**: the cosine distance between the word in A and in B after B is
  rotated onto A (orthogonal Procrustes, :func:`~embedding_projector.insight.fit_alignment`,
  fitted again without the 10 % of rows that moved most so a few real changes do not tilt
  the rotation of all the others). 0: the same place.
* **change rank**: 1 for the lowest overlap (ties: the larger displacement first).

When the dimensions differ, the source with more dimensions is projected onto its top
principal components first (as many as the other one has); the summary says which.

Example:
    >>> import numpy as np, tempfile
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 8))
    >>> q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    >>> labels = [f"w{i}" for i in range(200)]
    >>> summary = compare_embeddings((a, labels), (a @ q, labels), tempfile.mkdtemp(), k=5)
    >>> summary.shared, round(summary.mean_overlap, 3), summary.median_displacement < 1e-6
    (200, 1.0, True)
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .. import insight
from ..errors import InvalidEmbeddingError
from ..export import data_identity, default_tag, file_identity
from ..insight import layouts
from ..readers.selection import RowSelection, check_count
from ..writer import MAX_PROJECTOR_ROWS, ProjectorWriter
from ._aligned import (
    _common_dimension,
    _neighbour_sets,
    _row_overlap,
    _stack_aligned,
    _take,
)
from ._report import CHANGES_FILENAME, ChangedWord, describe_summary, write_outputs

__all__ = ["CHANGES_FILENAME", "ChangedWord", "CompareSummary", "compare_embeddings"]

logger = logging.getLogger(__name__)

#: Shared rows written at most: both sets together fill the projector's 100,000 rows.
MAX_SHARED_ROWS = MAX_PROJECTOR_ROWS // 2
#: Fraction of the worst-fitting rows left out of the second alignment fit.
ALIGNMENT_TRIM = 0.1
_RUN_SOURCE = re.compile(r"^(?P<logdir>.+)::(?P<tag>.+?)(?:@(?P<step>\d+))?$")

#: ``progress(stage, done, total)``: stage is ``"reading <name>"`` (bytes) or
#: ``"neighbours <name>"`` (rows).
CompareProgress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class CompareSummary:
    """What :func:`compare_embeddings` found and wrote.

    Attributes:
        names: the two sources' names (the ``source`` metadata column).
        sources: descriptions of the two sources.
        shared: labels found in both selections.
        written: shared labels written (at most 50,000; the tensor holds twice as many rows).
        only_in_a: labels selected in A but not found in B, in A's order.
        only_in_b: labels selected in B but not found in A, in B's order.
        dims: the two sources' dimensions.
        alignment: how B was put onto A, in words.
        k: neighbourhood size of ``overlap@k``.
        mean_overlap: mean overlap@k over the written rows.
        median_displacement: median aligned displacement (centred cosine distance).
        most_changed: the most changed words, most changed first.
        tag: the tag written.
        step: the step written.
        tensor_name: the name the projector's dropdown shows.
        logdir: the run directory.
        tensor_path: the tensor file.
        metadata_path: the metadata file.
        changes_path: ``compare_changes.tsv``.
        notes: things worth knowing (rows capped, missing words, ...).
        tensorboard_command: the command that shows the comparison.
        duplicates: per source, the labels that occur more than once in it (first
            occurrence kept, as ``export`` does), in source order.
        chance_overlap: the mean overlap@k of unrelated neighbour lists, ``k / (written - 1)``
            (what ``mean_overlap`` reads against: two runs of one recipe on a small corpus
            sit a few tens of times above it, a model and itself at 1.0).
        zero_overlap: written rows whose ``k`` neighbours all changed (ordered among
            themselves by their aligned displacement).
    """

    names: tuple[str, str]
    sources: tuple[str, str]
    shared: int
    written: int
    only_in_a: list[str]
    only_in_b: list[str]
    dims: tuple[int, int]
    alignment: str
    k: int
    mean_overlap: float
    median_displacement: float
    most_changed: list[ChangedWord]
    tag: str
    step: int
    tensor_name: str
    logdir: Path
    tensor_path: Path
    metadata_path: Path | None
    changes_path: Path
    notes: list[str] = field(default_factory=list)
    tensorboard_command: str = ""
    duplicates: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))
    chance_overlap: float = 0.0
    zero_overlap: int = 0

    def describe(self, max_words: int = 20) -> str:
        """A human-readable report (what the CLI prints): counts, most changed, the command."""
        return describe_summary(self, max_words)


def compare_embeddings(
    a: Any,
    b: Any,
    logdir: str | os.PathLike[str],
    *,
    names: tuple[str, str] = ("a", "b"),
    selection: RowSelection | None = None,
    k: int = 10,
    top: int = 100,
    tag: str | None = None,
    step: int | None = None,
    progress: CompareProgress | None = None,
    layout: Literal["pca", "umap"] | None = "pca",
    overwrite: bool = False,
) -> CompareSummary:
    """Write two embeddings as one aligned projector tensor and report what changed.

    Args:
        a: the reference source: a vector file path, a gensim ``KeyedVectors`` or model, a
            ``(matrix, labels)`` pair, or ``"LOGDIR::TAG@STEP"`` (a snapshot of a projector
            run; ``@STEP`` omitted: its latest step).
        b: the source compared with ``a``; aligned onto it.
        logdir: the run directory to write into (created if missing).
        names: the two sources' names in the ``source`` metadata column and the report.
        selection: the rows to compare (a
            :class:`~embedding_projector.readers.selection.RowSelection`, as for
            :func:`~embedding_projector.export.export_embeddings`; default: all rows), applied to
            each source on its own (``sample`` therefore draws different words from each; prefer
            ``limit``, ``words`` and ``near`` to compare the same words).
        k: neighbourhood size for overlap@k (among the shared rows).
        top: most-changed words in the TEXT table and ``compare_changes.tsv``.
        tag: the tensor's tag (also the scalars' and text's prefix); default: both sources'
            file or run names (``seed1_vs_seed2`` for ``seed1.txt`` and ``seed2.txt``), so
            comparisons of other pairs in one log dir sit side by side; ``compare`` for
            in-memory sources.
        step: the step number (default 0).
        progress: called as ``progress(stage, done, total)`` while reading and searching.
        layout: saved states (BOOKMARKS) of the combined tensor: ``"pca"`` (default), one
            PCA basis for both sets so a word's two points sit together unless it moved, with
            all points and one state per source; ``"umap"``: also a UMAP of all points
            (umap-learn, the ``layouts`` extra); ``None``: no states.
        overwrite: replace a comparison of other sources (or another writer's snapshot) at
            the same tag and step; without it that is an error and nothing is written.

    Returns:
        A :class:`CompareSummary`.

    Raises:
        InvalidEmbeddingError: a source is empty or has NaN/Inf rows, or the two share fewer
            than 2 labels; the message names the source. Nothing written. (A label repeated
            in a source is matched by its first occurrence and reported in ``duplicates``.)
        SnapshotExistsError: a comparison of other sources holds the tag and step and
            ``overwrite`` is False (checked before a source is read); nothing written.
        VectorFileError: a file cannot be read. ValueError: a bad option.

    Example:
        >>> compare_embeddings("epoch1.bin", "epoch50.bin", "runs/cmp",
        ...                    names=("epoch 1", "epoch 50"),
        ...                    selection=RowSelection(limit=20000))  # doctest: +SKIP
    """
    if tag is None:
        from_files = all(isinstance(source, (str, os.PathLike)) for source in (a, b))
        tag = (
            f"{default_tag(a, names[0])}_vs_{default_tag(b, names[1])}" if from_files else "compare"
        )
    _check_options(names, k, top, tag, step, layout)
    identity = _pair_identity(a, b)
    if identity is not None and not overwrite:
        ProjectorWriter(logdir).check_overwrite(tag, step, identity)
    if selection is None:
        selection = RowSelection()
    elif not isinstance(selection, RowSelection):
        raise TypeError(
            f"selection must be a RowSelection; got {type(selection).__name__} "
            "(e.g. selection=RowSelection(limit=20000))."
        )
    matched = _shared_rows(a, b, selection, names, progress)
    combined, overlap, rank, fields = _measure(matched, names, k, top, progress)
    step = 0 if step is None else int(step)
    if identity is None:
        identity = f"compare of {data_identity(combined, chr(0).join(matched.labels).encode())}"
    snapshot, run_dir, changes_path = write_outputs(
        logdir,
        combined,
        matched.labels,
        overlap,
        rank,
        fields,
        tag=tag,
        step=step,
        layout=layout,
        guard=(identity, overwrite),
    )
    logger.info("compared %d shared rows into %s", len(matched.labels), run_dir)
    return CompareSummary(
        **fields,
        tag=tag,
        step=snapshot.step,
        tensor_name=snapshot.tensor_name,
        logdir=run_dir,
        tensor_path=snapshot.tensor_path,
        metadata_path=snapshot.metadata_path,
        changes_path=changes_path,
        tensorboard_command=f"tensorboard --logdir {shlex.quote(str(run_dir))}",
    )


def _pair_identity(a: Any, b: Any) -> str | None:
    """What a comparison is recorded as: both sources' files or runs; None if in memory."""
    sides = []
    for source in (a, b):
        run = _parse_run_source(source)
        if run is not None:
            logdir, tag, step = run
            at = "latest" if step is None else step
            sides.append(f"run {os.path.realpath(logdir)}::{tag}@{at}")
        else:
            identity = file_identity(source)
            if identity is None:
                return None
            sides.append(identity)
    return f"compare of {sides[0]} with {sides[1]}"


@dataclass
class _Matched:
    """The shared rows of both sources (A's order), and what only one side has."""

    labels: list[str]
    rows_a: npt.NDArray[np.float32]
    rows_b: npt.NDArray[np.float32]
    sources: tuple[str, str]
    only_a: list[str]
    only_b: list[str]
    shared: int
    notes: list[str]
    duplicates: tuple[list[str], list[str]] = ([], [])


def _shared_rows(
    a: Any,
    b: Any,
    selection: RowSelection,
    names: tuple[str, str],
    progress: CompareProgress | None,
) -> _Matched:
    labels_a, matrix_a, source_a, repeated_a = _read_checked(a, selection, names[0], progress)
    labels_b, matrix_b, source_b, repeated_b = _read_checked(b, selection, names[1], progress)
    index_a, index_b, only_a, only_b = _match(labels_a, labels_b)
    if len(index_a) < 2:
        raise InvalidEmbeddingError(
            f"{names[0]!r} ({source_a}) and {names[1]!r} ({source_b}) share "
            f"{len(index_a)} label(s) among the selected rows ({len(labels_a):,} and "
            f"{len(labels_b):,}); comparing needs at least 2. Check that both use the same "
            "kind of labels, or select rows both have (words=, limit=). Nothing was written."
        )
    notes: list[str] = []
    shared = len(index_a)
    if shared > MAX_SHARED_ROWS:
        notes.append(
            f"{shared:,} shared labels: kept the first {MAX_SHARED_ROWS:,} (A's order), as "
            f"the projector shows at most {MAX_PROJECTOR_ROWS:,} rows (both sets together)"
        )
        index_a, index_b = index_a[:MAX_SHARED_ROWS], index_b[:MAX_SHARED_ROWS]
    labels = [labels_a[i] for i in index_a]
    rows_a = _take(matrix_a, index_a)
    del matrix_a  # keep at most one full selection besides the shared rows
    rows_b = _take(matrix_b, index_b)
    return _Matched(
        labels,
        rows_a,
        rows_b,
        (source_a, source_b),
        only_a,
        only_b,
        shared,
        notes,
        (repeated_a, repeated_b),
    )


def _measure(
    matched: _Matched,
    names: tuple[str, str],
    k: int,
    top: int,
    progress: CompareProgress | None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.int64], dict[str, Any]]:
    """Align, search neighbours, rank the changes: (combined tensor, overlap, rank, fields)."""
    labels = matched.labels
    dims = (int(matched.rows_a.shape[1]), int(matched.rows_b.shape[1]))
    rows_a, rows_b, alignment = _common_dimension(matched.rows_a, matched.rows_b, names)
    matched.rows_a = matched.rows_b = np.empty((0, 0), dtype=np.float32)  # drop references
    fit = insight.fit_alignment(rows_b, rows_a, trim=ALIGNMENT_TRIM)
    displacement = fit.distances(rows_b, rows_a)
    k = min(k, len(labels) - 1)
    sets_a = _neighbour_sets(rows_a, k, f"neighbours {names[0]}", progress)
    sets_b = _neighbour_sets(rows_b, k, f"neighbours {names[1]}", progress)
    overlap = _row_overlap(sets_a, sets_b)
    order = np.lexsort((-displacement, overlap))  # lowest overlap first, then most moved
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    changed = [
        ChangedWord(
            rank=position + 1,
            label=labels[row],
            overlap=float(overlap[row]),
            displacement=float(displacement[row]),
            neighbors_a=[labels[i] for i in sets_a[row]],
            neighbors_b=[labels[i] for i in sets_b[row]],
        )
        for position, row in enumerate(order[:top].tolist())
    ]
    combined = _stack_aligned(rows_a, rows_b, fit)
    fields = {
        "names": names,
        "sources": matched.sources,
        "shared": matched.shared,
        "written": len(labels),
        "only_in_a": matched.only_a,
        "only_in_b": matched.only_b,
        "dims": dims,
        "alignment": f"{alignment}; fitted on {int(fit.fitted.sum()):,} of "
        f"{len(labels):,} shared rows",
        "k": k,
        "mean_overlap": float(overlap.mean()),
        "chance_overlap": k / (len(labels) - 1),
        "zero_overlap": int(np.count_nonzero(overlap == 0)),
        "median_displacement": float(np.median(displacement)),
        "most_changed": changed,
        "notes": matched.notes,
        "duplicates": matched.duplicates,
    }
    return combined, overlap, rank, fields


# --------------------------------------------------------------------------- options


def _check_options(
    names: object,
    k: object,
    top: object,
    tag: object,
    step: object,
    layout: object,
) -> None:
    if (
        not isinstance(names, (tuple, list))
        or len(names) != 2
        or not all(isinstance(name, str) and name.strip() for name in names)
        or names[0] == names[1]
    ):
        raise ValueError(f"names must be two different non-empty strings; got {names!r}.")
    for name, value in (("k", k), ("top", top)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError(f"tag must be a non-empty string; got {tag!r}.")
    check_count("step", step)
    if layout is not None:
        layouts.check_layout_kind(layout)
        if layout == "umap":
            layouts.require_umap()


# --------------------------------------------------------------------------- reading


def _read_source(
    source: Any,
    selection: RowSelection,
    progress: Callable[[int, int | None], None] | None = None,
) -> tuple[list[str], npt.NDArray[np.float32], list[str]]:
    """The selected rows of one source: (labels, float32 matrix, repeated labels).

    Files and in-memory sources go through the exporter's reader (:func:`~embedding_projector.
    readers.load_rows`); a ``LOGDIR::TAG@STEP`` snapshot through the writer's read-back. Rows
    are matched by label, so a label that occurs again keeps its first row, as ``export``
    does (labels compared exactly: equal strings, nothing less).
    """
    from ..readers import load_rows

    run = _parse_run_source(source)
    if run is not None:
        picked = load_rows(_read_run(*run), selection)
    else:
        picked = load_rows(source, selection, progress=progress)
    keys = list(picked.keys)
    matrix = np.asarray(picked.matrix, dtype=np.float32)
    repeated = list(dict.fromkeys([*picked.duplicates, *_repeated(keys)]))
    first_rows: dict[str, int] = {}
    for row, key in enumerate(keys):
        first_rows.setdefault(key, row)
    if len(first_rows) < len(keys):
        matrix = matrix[np.fromiter(first_rows.values(), dtype=np.int64, count=len(first_rows))]
        keys = list(first_rows)
    return keys, matrix, repeated


def _read_run(
    logdir: Path, tag: str, step: int | None
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """One snapshot of a projector run as a ``(matrix, labels)`` pair (labels: first column)."""
    from ..errors import SnapshotNotFoundError
    from ..writer import ProjectorWriter

    if not (logdir / "projector_config.pbtxt").is_file():
        raise FileNotFoundError(f"{logdir}: no projector config in that run")
    try:
        stored = ProjectorWriter(logdir, live_refresh=False).read(tag, step)
    except SnapshotNotFoundError as error:
        raise InvalidEmbeddingError(f"{logdir}: {error}") from error
    if not stored.columns:
        raise InvalidEmbeddingError(
            f"the snapshot of tag {tag!r} in {logdir} has no labels (metadata); rows are "
            "matched by label"
        )
    return stored.matrix, list(stored.columns[0])


def _parse_run_source(source: Any) -> tuple[Path, str, int | None] | None:
    if not isinstance(source, (str, os.PathLike)):
        return None
    match = _RUN_SOURCE.match(os.fspath(source))
    if match is None or Path(os.fspath(source)).exists():
        return None
    step = match.group("step")
    return (
        Path(match.group("logdir")).expanduser(),
        match.group("tag"),
        (int(step) if step is not None else None),
    )


def _read_checked(
    source: Any, selection: RowSelection, name: str, progress: CompareProgress | None
) -> tuple[list[str], npt.NDArray[np.float32], str, list[str]]:
    """Read one source (labels, matrix, description, repeated labels); empty and NaN are
    errors naming it."""
    description = _describe(source)
    stage = f"reading {name}"
    on_bytes = None if progress is None else lambda done, total: progress(stage, done, total)
    try:
        labels, matrix, repeated = _read_source(source, selection, on_bytes)
    except InvalidEmbeddingError as error:
        raise InvalidEmbeddingError(
            f"source {name!r} ({description}): {error}. Nothing was written."
        ) from error
    if len(labels) == 0 or matrix.ndim != 2 or matrix.shape[1] == 0:
        raise InvalidEmbeddingError(
            f"source {name!r} ({description}) is empty: no rows selected (shape "
            f"{matrix.shape}). Check the file or the selection. Nothing was written."
        )
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        shown = ", ".join(repr(labels[i]) for i in bad[:5])
        raise InvalidEmbeddingError(
            f"source {name!r} ({description}) has {len(bad)} row(s) with NaN or Inf values "
            f"({shown}{', ...' if len(bad) > 5 else ''}); fix or leave out those rows. "
            "Nothing was written."
        )
    if repeated:
        logger.info("%s: %d repeated label(s), first occurrence kept", name, len(repeated))
    return labels, matrix, description, repeated


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, tuple):
        return "(matrix, labels)"
    return type(source).__name__


def _repeated(keys: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for key in keys:
        if key in seen:
            repeated[key] = None
        seen.add(key)
    return list(repeated)


def _match(
    labels_a: Sequence[str], labels_b: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[str], list[str]]:
    """Rows of the shared labels (A's order) and the labels only one side has."""
    lookup_b = {label: index for index, label in enumerate(labels_b)}
    index_a = [i for i, label in enumerate(labels_a) if label in lookup_b]
    index_b = [lookup_b[labels_a[i]] for i in index_a]
    in_a = set(labels_a)
    only_a = [label for label in labels_a if label not in lookup_b]
    only_b = [label for label in labels_b if label not in in_a]
    return (
        np.asarray(index_a, dtype=np.int64),
        np.asarray(index_b, dtype=np.int64),
        only_a,
        only_b,
    )
