"""Disk use of :class:`~embedding_projector.sink.SnapshotSink`: retention, the reserve
warning and the forecast (import the public names from :mod:`embedding_projector.sink`).
"Budget" in this package is the maps' share of time (``InsightOptions.map_budget``); this
module is about space.

Three knobs of :class:`~embedding_projector.sink.SinkOptions` bound what a long run leaves on
disk, the same way for every training adapter:

* ``keep=N``: after each snapshot the sink keeps the random start (step 0), the ``N`` most
  recent steps (the final one among them) and removes the rest of the tag
  (:meth:`~embedding_projector.ProjectorWriter.retain`: config first, files after). A resumed
  run applies the same policy to the steps it finds before its first write.
* ``disk_reserve``: bytes that must stay free after each snapshot (the writer's check); a
  snapshot that would eat into them is skipped with one warning, and later ones are tried again.
* The forecast: given the tables' shapes and the snapshots still to come (the adapter knows
  ``max_epochs``), the projected total is logged, and a warning is given once when it will not
  fit in the free space above the reserve.

Example:
    >>> import tempfile
    >>> from embedding_projector.sink import SinkOptions
    >>> plan = forecast(tempfile.mkdtemp(), {"words": (50_000, 256)}, 100, SinkOptions())
    >>> plan.snapshot_bytes, plan.total_bytes
    (51200000, 5120000000)
    >>> forecast(tempfile.mkdtemp(), {"words": (50_000, 256)}, 100,
    ...          SinkOptions(keep=3)).peak_bytes  # step 0, 3 recent and the next one
    256000000
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._format.logdir import disk_usage, human_size, reserve_for

if TYPE_CHECKING:
    from ..errors import DiskReserveError
    from ..writer import ProjectorWriter
    from ._options import SinkOptions

__all__ = ["Forecast", "Retention", "forecast", "pruned_on_arrival", "reserve_warning"]

logger = logging.getLogger(__name__)

#: Bytes per value of a snapshot's tensor (float32).
_VALUE_BYTES = 4


@dataclass(frozen=True)
class Forecast:
    """What the rest of a run is expected to write into its log dir.

    Attributes:
        snapshot_bytes: one snapshot of every tag (tensors; labels add a few bytes a row).
        snapshots: snapshots still to come.
        total_bytes: written over those snapshots: ``snapshot_bytes * snapshots``.
        peak_bytes: on disk at once: all of it, or with ``keep=N`` step 0, the ``N`` recent
            ones and the next one, written before the oldest is pruned.
        free: bytes free on the log dir's file system now.
        reserve: bytes that must stay free (``disk_reserve``, or the default rule).
    """

    snapshot_bytes: int
    snapshots: int
    total_bytes: int
    peak_bytes: int
    free: int
    reserve: int

    @property
    def fits(self) -> bool:
        """Whether the peak fits in the free space above the reserve."""
        return self.peak_bytes <= self.free - self.reserve

    def describe(self) -> str:
        """One sentence with the figures."""
        text = (
            f"{self.snapshots} snapshots of {human_size(self.snapshot_bytes)} each: "
            f"{human_size(self.total_bytes)} in all"
        )
        if self.peak_bytes < self.total_bytes:
            text += f", at most {human_size(self.peak_bytes)} on disk at once"
        return (
            f"{text}; {human_size(self.free)} is free, of which {human_size(self.reserve)} "
            "stays free (disk_reserve)"
        )

    def warning(self, name: str, logdir: Path) -> str:
        """The warning given when the forecast does not fit."""
        return (
            f"{name}: the snapshots of this run will not fit in {logdir}: {self.describe()}. "
            "Snapshots that would eat into the reserve are skipped (training goes on). Write "
            "less: SinkOptions(keep=N) keeps step 0 and the N most recent snapshots, "
            "every_n_epochs= and max_rows= write fewer; or free some space."
        )


def forecast(
    logdir: str | os.PathLike[str],
    shapes: Mapping[str, tuple[int, int]],
    snapshots: int,
    options: SinkOptions,
) -> Forecast:
    """The projected disk use of ``snapshots`` more snapshots of tables of ``shapes``.

    Args:
        logdir: the run directory (its file system's free space is read now).
        shapes: tag -> (rows, columns) written per snapshot.
        snapshots: snapshots still to come (every tag at each).
        options: ``keep`` and ``disk_reserve``.
    """
    snapshot = sum(int(rows) * int(columns) * _VALUE_BYTES for rows, columns in shapes.values())
    snapshots = max(int(snapshots), 0)
    keep = options.keep
    on_disk = snapshots if keep is None else min(snapshots, keep + 2)
    total, free = disk_usage(Path(os.fspath(logdir)))
    return Forecast(
        snapshot_bytes=snapshot,
        snapshots=snapshots,
        total_bytes=snapshot * snapshots,
        peak_bytes=snapshot * on_disk,
        free=free,
        reserve=reserve_for(options.disk_reserve, total, snapshot),
    )


def reserve_warning(name: str, tag: str, step: int, error: DiskReserveError) -> str:
    """The one warning of a snapshot skipped for the reserve, with the figures."""
    return (
        f"{name} skipped {tag!r} at step {step}: DiskReserveError: {human_size(error.free)} "
        f"free, the snapshot needs {human_size(error.needed)} and {human_size(error.reserve)} "
        "must stay free for the run's checkpoints (No space left on device within the "
        "reserve). Later snapshots are tried again as space is freed. Write less with "
        "SinkOptions(keep=N) (step 0 and the N most recent), every_n_epochs= or max_rows=; "
        "SinkOptions(disk_reserve=bytes) sets the reserve (0 disables it)."
    )


class Retention:
    """``keep=N`` for one sink: step 0 and the ``N`` most recent steps of each tag stay.

    Args:
        keep: steps kept besides step 0; ``None`` keeps everything.
        name: who reports problems (starts each message).
        report: ``report(tag, problem, message)``: the sink's once-per-problem warning queue.
    """

    def __init__(
        self, keep: int | None, name: str, report: Callable[[str, str, str], None]
    ) -> None:
        self.keep = keep
        self.name = name
        self._report = report
        #: Tags whose steps found on disk were pruned (once, before their first write).
        self._seen: set[str] = set()

    def skip(self, writer: ProjectorWriter, tag: str, step: int, steps: list[int]) -> bool:
        """Before writing ``step`` of ``tag`` (``steps`` are on disk): prune what a resumed
        run finds (first time per tag); True if ``step`` would be removed as soon as written."""
        if self.keep is None:
            return False
        if tag not in self._seen:
            self.prune(writer, tag, step)
        if pruned_on_arrival(steps, step, self.keep):
            logger.info("%r step %d not written: older than the %d kept", tag, step, self.keep)
            return True
        return False

    def prune(self, writer: ProjectorWriter, tag: str, step: int) -> None:
        """Remove the steps of ``tag`` that ``keep`` lets go (after writing ``step``)."""
        if self.keep is None:
            return
        self._seen.add(tag)
        try:
            removed = writer.retain(tag, self.keep, always_keep=(0,))
        except OSError as error:  # the snapshot stands; old ones go at the next try
            logger.debug("pruning %r failed", tag, exc_info=True)
            self._report(
                tag,
                f"keep-{type(error).__name__}",
                f"{self.name} could not remove old snapshots of {tag!r} (keep={self.keep}) "
                f"at step {step}: {type(error).__name__}: {error}",
            )
            return
        if removed:
            logger.info("removed steps %s of %r (keep=%d)", removed, tag, self.keep)


def pruned_on_arrival(steps: list[int], step: int, keep: int | None) -> bool:
    """Whether ``step`` would be removed as soon as written (older than the ``keep`` kept
    steps, e.g. an epoch re-run after resuming from an early checkpoint)."""
    if keep is None or step == 0:
        return False
    newer = [existing for existing in steps if existing > step]
    return len(newer) >= keep
