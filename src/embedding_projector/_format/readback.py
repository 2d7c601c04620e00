"""Reading a snapshot back through its config entry: ours (binary or TSV) and tensorboardX's."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError, SnapshotNotFoundError
from . import TENSOR_BINARY_SUFFIX, snapshot_at, step_dirname, tag_dirname
from .config import all_steps

if TYPE_CHECKING:
    from tensorboard.plugins.projector.projector_config_pb2 import (
        EmbeddingInfo,
        ProjectorConfig,
    )

__all__ = [
    "Snapshot",
    "StoredSnapshot",
    "StoredState",
    "entry_files",
    "find_entry",
    "read_entry",
    "read_metadata",
    "read_saved_states",
    "stored_steps",
    "stored_tags",
]

#: ``<tag>:<step>`` with an optional `` <suffix>`` / `` (rewrite N)`` (ours) or bare (tensorboardX).
_TAGGED_NAME = re.compile(r"^(?P<tag>.*):(?P<step>\d+)(?: .*)?$", re.DOTALL)


@dataclass(frozen=True)
class Snapshot:
    """What one write produced.

    Attributes:
        tag: the tag as given.
        step: the step number.
        tensor_name: the name the projector's dropdown shows.
        shape: (rows, columns).
        directory: the snapshot's directory.
        tensor_path: the tensor file.
        metadata_path: the metadata file, if labels were given.
        sprite_path: the sprite sheet, if images were given.
        config_path: the run's ``projector_config.pbtxt``.
        bookmarks_path: the saved states (``layout=``), if any.
    """

    tag: str
    step: int
    tensor_name: str
    shape: tuple[int, int]
    directory: Path
    tensor_path: Path
    metadata_path: Path | None
    sprite_path: Path | None
    config_path: Path
    bookmarks_path: Path | None = None


class StoredSnapshot(NamedTuple):
    """A snapshot as stored: what :meth:`ProjectorWriter.read` returns (a 3-tuple).

    Attributes:
        matrix: (rows, columns) float32.
        columns: the metadata, column-major (one list of cells per column), as TensorBoard
            serves it (tabs and newlines in labels appear escaped, blank labels as
            ``(empty)``); empty when the snapshot has no labels.
        header: the column names when there are several columns, else ``None``.
    """

    matrix: npt.NDArray[np.float32]
    columns: list[list[str]]
    header: list[str] | None


class StoredState(NamedTuple):
    """One saved state (bookmark) of a snapshot, as the projector page would load it.

    Attributes:
        label: the state's label (``"step 3 · aligned PCA"``).
        kind: ``"pca"`` or ``"umap"`` (the page's ``selectedProjection``).
        coordinates: (points, 2 | 3) float32, one row per projected point.
        filtered_points: the rows the points are (``None``: rows 0, 1, ... in order).
    """

    label: str
    kind: str
    coordinates: npt.NDArray[np.float32]
    filtered_points: list[int] | None


def stored_tags(config: ProjectorConfig) -> list[str]:
    """Tags with at least one snapshot in the config, ours and tensorboardX's (sorted)."""
    tags = set()
    for entry in config.embeddings:
        match = _TAGGED_NAME.match(entry.tensor_name)
        if not match:
            continue
        ours = snapshot_at(entry.tensor_path) is not None
        if ours or entry.tensor_name == f"{match['tag']}:{match['step']}":  # tensorboardX's
            tags.add(match["tag"])
    return sorted(tags)


def stored_steps(config: ProjectorConfig, tag: str) -> list[int]:
    """Steps of ``tag`` in the config, written by this package or by tensorboardX (sorted)."""
    found = set(all_steps(config, tag))
    prefix = f"{tag}:"
    for entry in config.embeddings:  # tensorboardX entries of another layout: by their name
        rest = entry.tensor_name[len(prefix) :] if entry.tensor_name.startswith(prefix) else ""
        if not snapshot_at(entry.tensor_path) and rest.isdigit():
            found.add(int(rest))
    return sorted(found)


def find_entry(config: ProjectorConfig, tag: str, step: int | None) -> EmbeddingInfo:
    """The config entry of ``tag`` at ``step`` (None: the latest): ours first, else tensorboardX's.

    Raises:
        SnapshotNotFoundError: neither wrote one; the message lists the steps there are.
    """
    if step is None:
        steps = stored_steps(config, tag)
        if not steps:
            raise SnapshotNotFoundError(
                f"no snapshot of tag {tag!r}. (Tags there: "
                f"{sorted({e.tensor_name.split(':')[0] for e in config.embeddings})}.)"
            )
        step = steps[-1]
    tag_dir = tag_dirname(tag)
    tensorboardx_name = f"{tag}:{step_dirname(step)}"  # tensorboardX names its entries so
    fallback = None
    for entry in config.embeddings:
        where = snapshot_at(entry.tensor_path)
        if where == (step, tag_dir):
            return entry
        if not where and entry.tensor_name == tensorboardx_name:
            fallback = entry
    if fallback is not None:
        return fallback
    raise SnapshotNotFoundError(
        f"no snapshot of tag {tag!r} at step {step}; the run holds steps "
        f"{stored_steps(config, tag)} of it. (Other tags: "
        f"{sorted({e.tensor_name.split(':')[0] for e in config.embeddings})}.)"
    )


def read_entry(logdir: Path, entry: EmbeddingInfo) -> StoredSnapshot:
    """Read an entry's tensor and metadata as TensorBoard's projector would serve them.

    Raises:
        ConfigError: the files do not match the entry (shape, missing file).
    """
    tensor_path = _asset(logdir, entry.tensor_path)
    try:
        if tensor_path.suffix == TENSOR_BINARY_SUFFIX:
            matrix = _binary(tensor_path, tuple(entry.tensor_shape))
        else:
            matrix = _tsv_matrix(tensor_path, tuple(entry.tensor_shape))
        columns: list[list[str]] = []
        header = None
        if entry.metadata_path:
            text = _asset(logdir, entry.metadata_path).read_text(encoding="utf-8")
            columns, header = _metadata(text)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"snapshot {entry.tensor_name!r} in {logdir} cannot be read back: {error}",
            str(logdir),
        ) from error
    return StoredSnapshot(matrix, columns, header)


def read_metadata(logdir: Path, entry: EmbeddingInfo) -> tuple[list[list[str]], list[str] | None]:
    """An entry's metadata alone (columns, header), as :func:`read_entry` gives it.

    Raises:
        ConfigError: the metadata file cannot be read.
    """
    if not entry.metadata_path:
        return [], None
    try:
        return _metadata(_asset(logdir, entry.metadata_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"metadata of {entry.tensor_name!r} in {logdir} cannot be read back: {error}",
            str(logdir),
        ) from error


def read_saved_states(logdir: Path, entry: EmbeddingInfo) -> list[StoredState]:
    """An entry's saved states (its ``bookmarks_path`` file), in the file's order.

    States the page would not show as written (``"tsne"``, no projections) are skipped.

    Raises:
        ConfigError: the file cannot be read or is not an array of states.
    """
    if not entry.bookmarks_path:
        return []
    try:
        states = json.loads(_asset(logdir, entry.bookmarks_path).read_bytes())
        found = []
        for state in states:
            kind = state.get("selectedProjection")
            points = state.get("projections") or []
            if kind not in ("pca", "umap") or not points:
                continue
            width = sum(1 for key in points[0] if key.startswith(f"{kind}-"))
            keys = [f"{kind}-{j}" for j in range(width)]
            coordinates = np.array(
                [[point[key] for key in keys] for point in points], dtype=np.float32
            ).reshape(len(points), width)
            filtered = state.get("filteredPoints")
            found.append(
                StoredState(
                    str(state.get("label", "")),
                    kind,
                    coordinates,
                    None if filtered is None else [int(i) for i in filtered],
                )
            )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ConfigError(
            f"saved states of {entry.tensor_name!r} in {logdir} cannot be read back: {error}",
            str(logdir),
        ) from error
    return found


def entry_files(logdir: Path, entry: EmbeddingInfo) -> list[Path]:
    """The files an entry points at (tensor, metadata, sprite, saved states), as read."""
    relative = [
        entry.tensor_path,
        entry.metadata_path,
        entry.sprite.image_path,
        entry.bookmarks_path,
    ]
    return [_asset(logdir, path) for path in relative if path]


def _asset(logdir: Path, relative: str) -> Path:
    return Path(relative) if os.path.isabs(relative) else logdir / relative


def _binary(path: Path, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    if len(shape) != 2:
        raise ValueError(f"{path.name} is binary but the config gives no 2-D tensor_shape")
    matrix = np.fromfile(path, dtype="<f4")
    if matrix.size != shape[0] * shape[1]:
        raise ValueError(f"{path.name} holds {matrix.size} floats, not {shape[0]} x {shape[1]}")
    return matrix.reshape(shape).astype(np.float32, copy=False)


def _tsv_matrix(path: Path, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    values = np.array(" ".join(lines).split(), dtype=np.float32)
    rows = len(lines)
    if rows == 0 or values.size % rows:
        raise ValueError(f"{path.name} is not a rectangular table of numbers")
    matrix = values.reshape(rows, values.size // rows)
    if len(shape) == 2 and tuple(matrix.shape) != shape:
        raise ValueError(f"{path.name} has shape {matrix.shape}, the config says {shape}")
    return matrix


def _metadata(text: str) -> tuple[list[list[str]], list[str] | None]:
    """Split as the projector frontend does: a first line with a tab is the header."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = None
    if lines and "\t" in lines[0]:
        header = lines.pop(0).split("\t")
    rows = [line.split("\t") for line in lines]
    width = len(header) if header is not None else 1
    return [[row[i] if i < len(row) else "" for row in rows] for i in range(width)], header
