"""What the dashboard serves, read through the writer's read-back (never a second parser).

A run is a directory under the log dir holding a ``projector_config.pbtxt``; its name is the
path relative to the log dir (``"."`` for the root), as TensorBoard names runs. Requests name
runs, tags and steps; each is looked up among what was found, so a request never becomes a
path, and every file an entry points at must resolve inside the log dir.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import insight
from .._format import CONFIG_FILENAME, REFRESH_DIRNAME
from .._format.config import read_config
from .._format.readback import (
    entry_files,
    find_entry,
    read_entry,
    read_metadata,
    read_saved_states,
    stored_steps,
    stored_tags,
)
from ..errors import ConfigError, SnapshotNotFoundError
from ..insight.layouts import AlignedLayout

__all__ = ["BadRequest", "EvolutionData"]

logger = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]
#: Neighbours a click asks for at most.
MAX_NEIGHBORS = 100


class BadRequest(ValueError):
    """A request names no run, tag, step or row that exists; the message says what does."""


@dataclass
class _OnDemandFrame:
    """Aligned PCA of a tag written without saved layouts: computed once per step, in order."""

    layout: AlignedLayout = field(default_factory=AlignedLayout)
    coordinates: dict[int, _F32] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class EvolutionData:
    """The log dir as the dashboard sees it: runs, tags, steps, layouts, labels, neighbours.

    Args:
        logdir: TensorBoard's ``--logdir`` (a local directory).

    Example:
        >>> import numpy as np, tempfile
        >>> from embedding_projector import ProjectorWriter
        >>> root = tempfile.mkdtemp()
        >>> _ = ProjectorWriter(f"{root}/run").add_embedding(np.eye(3), global_step=1)
        >>> EvolutionData(root).runs()["run"]["default"]["steps"]
        [1]
    """

    def __init__(self, logdir: str | os.PathLike[str]) -> None:
        self.logdir = Path(os.path.realpath(logdir))
        self._frames: dict[tuple[str, str], _OnDemandFrame] = {}
        self._frames_lock = threading.Lock()

    # -- discovery -------------------------------------------------------------------------

    def run_dirs(self) -> dict[str, Path]:
        """Run name -> directory, for every directory with a projector config."""
        found: dict[str, Path] = {}
        if not self.logdir.is_dir():
            return found
        for directory, subdirs, files in os.walk(self.logdir):
            subdirs[:] = sorted(d for d in subdirs if d != REFRESH_DIRNAME)
            if CONFIG_FILENAME in files:
                relative = Path(directory).relative_to(self.logdir).as_posix()
                found[relative or "."] = Path(directory)
        return found

    def runs(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{run: {tag: {"steps": [...], "rows": N, "columns": [...]}}}`` (the ``runs`` route).

        ``rows`` and ``columns`` are those of the latest step; a run whose config does not
        parse is left out (and logged), as it cannot be shown.
        """
        listing: dict[str, dict[str, dict[str, Any]]] = {}
        for run, directory in self.run_dirs().items():
            try:
                config = read_config(directory / CONFIG_FILENAME)
                tags: dict[str, dict[str, Any]] = {}
                for tag in stored_tags(config):
                    steps = stored_steps(config, tag)
                    if not steps:
                        continue
                    entry = find_entry(config, tag, steps[-1])
                    self._check_inside(directory, entry)
                    columns, header = read_metadata(directory, entry)
                    names = header if header is not None else (["label"] if columns else [])
                    rows = int(entry.tensor_shape[0]) if entry.tensor_shape else None
                    if rows is None:
                        rows = (
                            len(columns[0])
                            if columns
                            else self._matrix(run, tag, steps[-1]).shape[0]
                        )
                    tags[tag] = {"steps": steps, "rows": rows, "columns": names}
            except (ConfigError, SnapshotNotFoundError, BadRequest) as error:
                logger.warning("embedding_evolution: skipping run %r: %s", run, error)
                continue
            if tags:
                listing[run] = tags
        return listing

    # -- one step ----------------------------------------------------------------------------

    def layout(self, run: str, tag: str, step: int) -> _F32:
        """(rows, 2) float32: the step's 2-D saved state, else an aligned PCA made on demand."""
        directory, entry = self._entry(run, tag, step)
        for state in read_saved_states(directory, entry):
            if state.coordinates.shape[1] == 2 and state.filtered_points is None:
                coordinates = state.coordinates
                rows = int(entry.tensor_shape[0]) if entry.tensor_shape else len(coordinates)
                if len(coordinates) == rows:
                    return np.ascontiguousarray(coordinates, dtype=np.float32)
        return self._on_demand(run, tag, step)

    def metadata(self, run: str, tag: str, step: int) -> dict[str, Any]:
        """``{"header": [...], "columns": [[...], ...]}``: the step's labels, column-major."""
        directory, entry = self._entry(run, tag, step)
        columns, header = read_metadata(directory, entry)
        names = header if header is not None else (["label"] if columns else [])
        return {"header": names, "columns": columns}

    def neighbors(self, run: str, tag: str, step: int, row: int, k: int = 10) -> dict[str, Any]:
        """A row's nearest rows at ``step`` (full dimension, centred cosine) and at the step
        before, with who joined and who left."""
        matrix = self._matrix(run, tag, step)
        if not 0 <= row < matrix.shape[0]:
            raise BadRequest(f"row must be in [0, {matrix.shape[0]}); got {row}.")
        if not 1 <= k <= MAX_NEIGHBORS:
            raise BadRequest(f"k must be in [1, {MAX_NEIGHBORS}]; got {k}.")
        labels = self._labels(run, tag, step, matrix.shape[0])
        (now,) = insight.neighbor_table(matrix, labels, [row], k=k)
        result: dict[str, Any] = {
            "row": row,
            "label": labels[row],
            "step": step,
            "neighbors": _rows_of(now, labels),
            "previous": None,
        }
        steps = self._steps(run, tag)
        earlier = [s for s in steps if s < step]
        if earlier:
            before_step = earlier[-1]
            before_matrix = self._matrix(run, tag, before_step)
            before_labels = self._labels(run, tag, before_step, before_matrix.shape[0])
            found = insight.first_index(before_labels, labels[row])
            if found is not None:
                (before,) = insight.neighbor_table(before_matrix, before_labels, [found], k=k)
                now_set, before_set = set(now.labels), set(before.labels)
                result["previous"] = {
                    "step": before_step,
                    "neighbors": _rows_of(before, labels),
                    "joined": [label for label in now.labels if label not in before_set],
                    "left": [label for label in before.labels if label not in now_set],
                }
        return result

    # -- helpers -------------------------------------------------------------------------------

    def _directory(self, run: str) -> Path:
        runs = self.run_dirs()
        if run not in runs:
            raise BadRequest(f"no run {run!r} in the log dir; runs: {sorted(runs)}.")
        return runs[run]

    def _steps(self, run: str, tag: str) -> list[int]:
        config = read_config(self._directory(run) / CONFIG_FILENAME)
        if tag not in stored_tags(config):
            raise BadRequest(f"run {run!r} has no tag {tag!r}; tags: {stored_tags(config)}.")
        return stored_steps(config, tag)

    def _entry(self, run: str, tag: str, step: int) -> tuple[Path, Any]:
        directory = self._directory(run)
        config = read_config(directory / CONFIG_FILENAME)
        tags = stored_tags(config)
        if tag not in tags:
            raise BadRequest(f"run {run!r} has no tag {tag!r}; tags: {tags}.")
        steps = stored_steps(config, tag)
        if step not in steps:
            raise BadRequest(f"tag {tag!r} of run {run!r} has no step {step}; steps: {steps}.")
        entry = find_entry(config, tag, step)
        self._check_inside(directory, entry)
        return directory, entry

    def _check_inside(self, directory: Path, entry: Any) -> None:
        for path in entry_files(directory, entry):
            resolved = Path(os.path.realpath(path))
            if not resolved.is_relative_to(self.logdir):
                raise BadRequest(
                    f"snapshot {entry.tensor_name!r} points outside the log dir ({path}); refused."
                )

    def _matrix(self, run: str, tag: str, step: int) -> _F32:
        directory, entry = self._entry(run, tag, step)
        return read_entry(directory, entry).matrix

    def _labels(self, run: str, tag: str, step: int, rows: int) -> list[str]:
        columns = self.metadata(run, tag, step)["columns"]
        if columns and len(columns[0]) == rows:
            return list(columns[0])
        return [str(i) for i in range(rows)]

    def _on_demand(self, run: str, tag: str, step: int) -> _F32:
        with self._frames_lock:
            frame = self._frames.setdefault((run, tag), _OnDemandFrame())
        with frame.lock:
            if step in frame.coordinates:
                return frame.coordinates[step]
            steps = self._steps(run, tag)
            done = max(frame.coordinates, default=None)
            if done is not None and step < done:
                # a step written after later ones were placed: start the frame again
                frame.layout.reset()
                frame.coordinates.clear()
                done = None
            for each in steps:
                if (done is not None and each <= done) or each > step:
                    continue
                matrix = self._matrix(run, tag, each)
                labels = self._labels(run, tag, each, matrix.shape[0])
                flat = frame.layout.update(labels, matrix, each)[0]
                frame.coordinates[each] = np.ascontiguousarray(flat.coordinates, np.float32)
            return frame.coordinates[step]


def _rows_of(found: insight.Neighbors, labels: list[str]) -> list[dict[str, Any]]:
    return [
        {"label": label, "row": insight.first_index(labels, label), "similarity": similarity}
        for label, similarity in zip(found.labels, found.similarities, strict=True)
    ]
