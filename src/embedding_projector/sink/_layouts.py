"""Saved layouts (bookmarks) and trajectories for :class:`~embedding_projector.sink.SnapshotSink`.

Per tag, on the sink's writing thread: an
:class:`~embedding_projector.insight.layouts.AlignedLayout` places every snapshot in one frame for
the run (``InsightOptions.layout``), under a time budget
of its own (``map_budget``, the same share as a map's, but of the layout's own measured cost:
a cheap layout is never skipped because a map is dear): a step over budget gets the last
computed positions in one 2-D state, labelled ``skipped (time budget)``, and the log says so
at WARNING once per tag and run (INFO after that). A layout that took under
:data:`ALWAYS_DUE_SECONDS`, and the final step of a run (``final=True`` of
:meth:`~embedding_projector.sink.SnapshotSink.submit`), are never skipped.

With ``InsightOptions.trajectory`` the probe rows of every step computed so far go to one more
tensor, ``<tag> · trajectory`` (labels ``label`` and ``step``), written at each computed step
(only the newest one is kept: it holds all earlier steps).

Example:
    >>> import numpy as np
    >>> from embedding_projector.sink import InsightOptions, SnapshotRequest
    >>> layouts = SinkLayouts(InsightOptions(), report=lambda *args: None, name="demo")
    >>> request = SnapshotRequest("t", np.random.rand(6, 4))
    >>> [state.label for state in layouts.states(request, None, np.random.rand(6, 4), 3, 0.0)]
    ['step 3 · aligned PCA', 'step 3 · aligned PCA 3-D']
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._format import MAX_PROJECTOR_ROWS
from ..errors import InvalidEmbeddingError
from ..insight._layout_core import ProjectorLayout, as_layout_matrix, cosine_geometry
from ..insight.layouts import AlignedLayout
from ._options import InsightOptions, SnapshotRequest

if TYPE_CHECKING:
    from ..writer import ProjectorWriter

__all__ = ["ALWAYS_DUE_SECONDS", "TRAJECTORY_STEP_STATES", "SinkLayouts", "trajectory_tag"]

logger = logging.getLogger(__name__)

#: Per-step saved states in a trajectory's bookmarks (the newest steps; the all-steps states
#: always cover every row): each state repeats every row's coordinates.
TRAJECTORY_STEP_STATES = 50

#: A layout that took less than this is computed at every step, whatever the budget.
ALWAYS_DUE_SECONDS = 0.01

_SKIPPED = "skipped (time budget)"


def trajectory_tag(tag: str) -> str:
    """The tag of ``tag``'s trajectory tensor.

    Example:
        >>> trajectory_tag("words")
        'words · trajectory'
    """
    return f"{tag} · trajectory"


@dataclass
class _Trajectory:
    """The probe rows of one tag, one block per computed step (oldest first)."""

    steps: list[int] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)
    vectors: list[npt.NDArray[np.float32]] = field(default_factory=list)
    coords: list[list[npt.NDArray[np.float32]]] = field(default_factory=list)
    dropped: bool = False

    def rows(self) -> int:
        return sum(len(block) for block in self.labels)


class SinkLayouts:
    """The sink's per-tag layout frames, budget timing and trajectories (writing thread only).

    Args:
        options: ``layout``, ``trajectory`` and ``map_budget`` are read.
        report: ``report(tag, problem, message)``: the sink's once-per-problem warning queue.
        name: who reports problems (starts each message).
    """

    def __init__(
        self, options: InsightOptions, report: Callable[[str, str, str], None], name: str
    ) -> None:
        self.options = options
        self.name = name
        self._report = report
        self._frames: dict[str, AlignedLayout] = {}
        #: Per tag: when its last layout started and how long it took.
        self._timing: dict[str, tuple[float, float]] = {}
        #: Per tag: whether its last :meth:`states` call computed a new layout.
        self._computed: dict[str, bool] = {}
        self._trajectories: dict[str, _Trajectory] = {}
        #: Tags whose layout was skipped for the budget (told at WARNING once, then INFO).
        self._rationed: set[str] = set()
        #: Tags seen without probe rows (told only if no tag has any by their second step).
        self._unfollowed: set[str] = set()

    def seconds(self, tag: str) -> float:
        """How long ``tag``'s last computed layout took (0 before the first)."""
        return self._timing.get(tag, (0.0, 0.0))[1]

    def states(
        self,
        request: SnapshotRequest,
        keys: Sequence[str] | None,
        matrix: np.ndarray,
        step: int,
        *,
        final: bool = False,
    ) -> list[ProjectorLayout] | None:
        """The saved states for this snapshot, or ``None`` (no layout, or it failed: warned
        once per tag; the snapshot is written without).

        Args:
            request: the snapshot (its tag).
            keys: one identity per row (the first label column); ``None``: row ``i`` is the
                same item at every step.
            matrix: the snapshot's rows.
            step: its step.
            final: the run's last snapshot: its layout is computed whatever the budget.
        """
        kind, tag = self.options.layout, request.tag
        self._computed[tag] = False
        if kind is None:
            return None
        shown = min(len(matrix), MAX_PROJECTOR_ROWS)  # the page loads the first 100,000
        head = None if keys is None else list(keys[:shown])
        try:
            frame = self._frames.get(tag)
            if frame is None:
                frame = self._frames[tag] = AlignedLayout(kind)
            if not (final or self._due(tag, step)):
                # The 2-D state only: its JSON is what a skipped step still costs.
                return frame.carry_over(head, shown, step, _SKIPPED)[:1] or None
            started = time.perf_counter()
            states = frame.update(head, matrix[:shown], step)
            self._timing[tag] = (started, time.perf_counter() - started)
        except InvalidEmbeddingError as error:  # NaN/Inf rows: the writer refuses and reports
            logger.info("no layout for %r at step %d: %s", tag, step, error)
            return None
        except Exception as error:  # a layout problem never costs the snapshot
            logger.debug("layout of %r at step %d failed", tag, step, exc_info=True)
            self._report(
                tag,
                f"layout-{type(error).__name__}",
                f"{self.name} wrote {tag!r} at step {step} without its {kind} layout "
                f"(bookmarks): {type(error).__name__}: {error}",
            )
            return None
        self._computed[tag] = True
        return states

    def _due(self, tag: str, step: int) -> bool:
        """Whether ``tag``'s layout fits its own share of the time since the last one."""
        budget, last = self.options.map_budget, self._timing.get(tag)
        if budget is None or last is None:
            return True
        started, took = last
        if took < ALWAYS_DUE_SECONDS or took <= budget * (time.perf_counter() - started):
            return True
        log = logger.warning if tag not in self._rationed else logger.info
        self._rationed.add(tag)
        log(
            f"{self.name}: the {self.options.layout} layout of {tag!r} was skipped at step "
            f"{step} (it took {took * 1000:.0f} ms, more than map_budget={budget:.0%} of the "
            "time since the last one); skipped steps show the last computed positions, "
            "labelled 'skipped (time budget)', and the final step always gets its own. Raise "
            "map_budget, or pass map_budget=None to lay out every snapshot."
        )
        return False

    # -- trajectories ---------------------------------------------------------------------------

    def write_trajectory(
        self,
        writer: ProjectorWriter,
        request: SnapshotRequest,
        keys: Sequence[str] | None,
        states: Sequence[ProjectorLayout] | None,
        step: int,
    ) -> None:
        """Add this step's probe rows to ``<tag> · trajectory`` and write it (trajectory on,
        layout computed at this step). Failures are reported once per tag."""
        tag = request.tag
        if not (self.options.trajectory and states and self._computed.get(tag)):
            return
        if not request.probes:
            # An adapter may follow rows of some tables only: silent while any tag has some.
            if tag in self._unfollowed and not self._trajectories:
                self._report(
                    tag,
                    "trajectory-no-probes",
                    f"{self.name}: trajectory=True but {tag!r} has no probe rows, so it has no "
                    "trajectory; name the rows to follow (gensim's probe_words, probe_rows= "
                    "of the Lightning and Hugging Face callbacks).",
                )
            self._unfollowed.add(tag)
            return
        try:
            self._write_trajectory(writer, request, keys, states, step)
        except Exception as error:  # the snapshot itself is written
            logger.debug("trajectory of %r at step %d failed", tag, step, exc_info=True)
            self._report(
                tag,
                f"trajectory-{type(error).__name__}",
                f"{self.name} skipped the trajectory of {tag!r} at step {step}: "
                f"{type(error).__name__}: {error}",
            )

    def _write_trajectory(
        self,
        writer: ProjectorWriter,
        request: SnapshotRequest,
        keys: Sequence[str] | None,
        states: Sequence[ProjectorLayout],
        step: int,
    ) -> None:
        tag, frame = request.tag, self._frames[request.tag]
        rows = states[0].rows
        probes = np.array([i for i in request.probes if 0 <= i < rows], dtype=np.int64)
        if not len(probes):
            return
        aligned = frame.aligned_matrix  # PCA: the run's frame; UMAP: unit rows, unrotated
        if aligned is None:
            aligned = cosine_geometry(as_layout_matrix(request.matrix)[:rows])
        source = aligned
        vectors = np.asarray(source[probes], dtype=np.float32)
        trajectory = self._trajectories.setdefault(tag, _Trajectory())
        if trajectory.vectors and trajectory.vectors[-1].shape[1] != vectors.shape[1]:
            trajectory = self._trajectories[tag] = _Trajectory()  # dimensions changed
        trajectory.steps.append(int(step))
        trajectory.labels.append([str(keys[i]) if keys else str(i) for i in probes])
        trajectory.vectors.append(vectors)
        trajectory.coords.append([state.coordinates[probes] for state in states])
        self._cap(trajectory, tag)
        where = trajectory_tag(tag)
        table = [
            [label, str(when)]
            for when, block in zip(trajectory.steps, trajectory.labels, strict=True)
            for label in block
        ]
        writer.add_embedding(
            np.vstack(trajectory.vectors),
            metadata=table,
            metadata_header=["label", "step"],
            global_step=step,
            tag=where,
            layout=_trajectory_states(trajectory, states),
        )
        writer.retain(where, 1, always_keep=())  # the newest holds every earlier step

    def _cap(self, trajectory: _Trajectory, tag: str) -> None:
        while trajectory.rows() > MAX_PROJECTOR_ROWS and len(trajectory.steps) > 1:
            for part in (trajectory.steps, trajectory.labels, trajectory.vectors):
                del part[0]
            del trajectory.coords[0]
            if not trajectory.dropped:
                trajectory.dropped = True
                self._report(
                    tag,
                    "trajectory-cap",
                    f"{self.name}: the trajectory of {tag!r} reached the projector's "
                    f"{MAX_PROJECTOR_ROWS} rows; its oldest steps are dropped from now on.",
                )


def _trajectory_states(
    trajectory: _Trajectory, states: Sequence[ProjectorLayout]
) -> list[ProjectorLayout]:
    """All steps coloured by step (each of this step's state shapes), then one 2-D (or UMAP)
    state per step showing only that step's rows (the newest :data:`TRAJECTORY_STEP_STATES`)."""
    found: list[ProjectorLayout] = []
    stacked = [
        np.vstack([coords[index] for coords in trajectory.coords]) for index in range(len(states))
    ]
    first, last = trajectory.steps[0], trajectory.steps[-1]
    for index, state in enumerate(states):
        name = _method(state.label)
        found.append(
            ProjectorLayout(
                state.kind, stacked[index], f"steps {first}–{last} · {name}", color_by="step"
            )
        )
    name = _method(states[0].label)
    offsets = np.cumsum([0] + [len(block) for block in trajectory.labels])
    count = len(trajectory.steps)
    for index in range(max(0, count - TRAJECTORY_STEP_STATES), count):
        found.append(
            ProjectorLayout(
                states[0].kind,
                stacked[0],
                f"step {trajectory.steps[index]} · {name}",
                filtered_points=tuple(range(int(offsets[index]), int(offsets[index + 1]))),
            )
        )
    return found


def _method(label: str) -> str:
    """``"aligned PCA 3-D"`` from ``"step 12 · aligned PCA 3-D"`` (UMAP's row count dropped:
    it counted the snapshot's rows, not the trajectory's)."""
    return re.sub(r" of all \d+ rows$", "", label.split(" · ", 1)[-1])


def layout_keys(request: SnapshotRequest, column: Sequence[Any] | None) -> list[str] | None:
    """The rows' identities for alignment: the first label column, or ``None`` (rows match
    by index: fixed feature inputs, or unlabelled rows)."""
    if request.classes or request.labels is None or column is None:
        return None
    return list(map(str, column))  # C loop
