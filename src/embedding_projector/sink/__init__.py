"""The one snapshot pipeline every training adapter feeds.

A training adapter (the gensim, Lightning and Hugging Face callbacks) decides *what* to
snapshot and *when*; :class:`SnapshotSink` does the rest, the same way for all of them:

1. The training thread copies the rows it wants into a :class:`SnapshotRequest` and calls
   :meth:`SnapshotSink.submit`. That is all the training thread pays for.
2. A background thread (:class:`~embedding_projector.sink.background.BackgroundWriter`: bounded
   queue, so a slow disk makes training wait instead of filling memory) writes each request
   with one :class:`~embedding_projector.ProjectorWriter` (``direct_io=True``), reusing the
   encoded labels (:class:`~embedding_projector.writer.PreparedMetadata`) and glyph sprites of
   the tag while its labels stay the same, and skipping steps already on disk (resume).
3. Insight, under a time budget (:class:`InsightOptions`): an aligned 2-D map per tag
   (:class:`~embedding_projector.maps.EvolutionMap`, IMAGES ``<tag>/map``), the drift and
   neighbour-overlap scalars, and a nearest-neighbour table of the request's probe rows (TEXT
   ``<tag>/neighbors``). Extra scalars from the adapter (loss, learning rate) are logged at
   the same step, to the caller's ``SummaryWriter`` or to an event file of the sink's own.
4. One warning channel: each distinct problem (tag and kind) is reported once, with its step,
   through the adapter's own warning function (``warnings.warn``, Lightning's
   ``rank_zero_warn``); repeats go to the log. A visualization problem never reaches training.
5. Disk use (``keep`` and ``disk_reserve`` of :class:`SinkOptions`, and
   :meth:`SnapshotSink.forecast`; see :mod:`embedding_projector.sink._disk_budget`).

6. An aligned projector layout (saved states, BOOKMARKS) beside each snapshot, and optionally
   the probe rows' trajectory (``layout`` and ``trajectory`` of :class:`InsightOptions`; see
   :mod:`embedding_projector.sink._layouts`).

Example:
    >>> import tempfile, numpy as np
    >>> sink = SnapshotSink(tempfile.mkdtemp(), insight=InsightOptions(maps=False))
    >>> for step in range(3):
    ...     request = SnapshotRequest("words", np.random.rand(5, 4), labels=list("abcde"))
    ...     sink.submit(step, [request])
    >>> sink.close()
    >>> sink.steps("words")
    [0, 1, 2]
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import insight as _insight
from .._format.logdir import check_writable, validate_disk_reserve
from ..errors import DiskReserveError
from ..maps import EvolutionMap, MapStyle
from ..writer import PreparedMetadata, ProjectorWriter, prepare_metadata
from . import _disk_budget as _disk
from ._disk_budget import Forecast
from ._event_log import EventLog
from ._labels import LabelColumns, check_labels, label_rows, row_numbers
from ._layouts import SinkLayouts, layout_keys
from ._options import (
    OPTION_FIELDS,
    InsightOptions,
    SinkOptions,
    SinkStats,
    SnapshotRequest,
    resolve_options,
)
from ._summary_image import log_map
from .background import BackgroundWriter, single_threaded_blas

__all__ = [
    "OPTION_FIELDS",
    "Forecast",
    "InsightOptions",
    "SinkOptions",
    "SinkStats",
    "SnapshotRequest",
    "SnapshotSink",
    "check_labels",
    "log_map",
    "resolve_options",
    "warm_up_imports",
]

logger = logging.getLogger(__name__)

#: How an adapter reports a warning: ``warn(message, category)``.
WarnFunction = Callable[[str, type[Warning]], None]

#: Modules the writer imports on first use (see :func:`warm_up_imports`).
_WRITER_LAZY_IMPORTS = (
    "filelock",
    "google.protobuf.text_format",
    "tensorboard.plugins.projector.projector_config_pb2",
    "tensorboard.summary.writer.event_file_writer",  # the sink's own EventLog
    "tensorboard.plugins.text.metadata",
    "PIL.Image",
)


class SnapshotSink:
    """Writes snapshots, maps and scalars for a training adapter (see the module docstring).

    Args:
        logdir: the run directory the projector files go to.
        summary: a ``SummaryWriter`` (tensorboardX or ``torch.utils.tensorboard``) for maps,
            scalars and text; ``None``: an event file of the sink's own in ``logdir``
            (:class:`~.sink._event_log.EventLog`), opened when first needed, written to disk by
            :meth:`flush` and closed by :meth:`close`.
        options: threading, queue, retention and disk reserve (:class:`SinkOptions`).
        insight: maps, scalars and their time budget (:class:`InsightOptions`).
        warn: how the adapter's framework reports warnings: ``warn(message, category)``.
            Default: ``warnings.warn``.
        name: who reports problems (``"EmbeddingProjector"``): starts each message.
        stats: where the background time is added up (default: a new :class:`SinkStats`).

    Raises:
        ValueError: ``options.disk_reserve`` is not smaller than the log dir's file system.

    Example:
        >>> import tempfile, numpy as np
        >>> with SnapshotSink(tempfile.mkdtemp(), options=SinkOptions(background=False)) as sink:
        ...     sink.submit(1, [SnapshotRequest("t", np.eye(3))], scalars={"train/loss": 0.5})
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        summary: Any = None,
        options: SinkOptions | None = None,
        insight: InsightOptions | None = None,
        warn: WarnFunction | None = None,
        name: str = "embedding-projector",
        stats: SinkStats | None = None,
    ) -> None:
        self.logdir = Path(os.fspath(logdir)).expanduser()
        self.options = options if options is not None else SinkOptions()
        validate_disk_reserve(self.logdir, self.options.disk_reserve)
        self.insight = insight if insight is not None else InsightOptions()
        self.name = name
        self.stats = stats if stats is not None else SinkStats()
        self._summary = summary
        self._own_summary: Any = None
        #: The writer the current job logged to (writing thread).
        self._logged_to: Any = None
        self._warn_function: WarnFunction = warn if warn is not None else _python_warn
        self._lock = threading.Lock()
        self._projector: ProjectorWriter | None = None
        self._background = BackgroundWriter(
            self.options.max_pending,
            name=f"{name}-writer",
            synchronous=not self.options.background,
            on_error=self._job_failed,
        )
        self._messages: list[str] = []
        self._reported: set[tuple[str, str]] = set()
        #: Per tag, writer thread only: (labels, header, encoded labels) of the last snapshot.
        self._prepared: dict[str, tuple[Any, Any, PreparedMetadata]] = {}
        #: Per tag, writer thread only: (first label column, glyph sprites).
        self._glyphs: dict[str, tuple[list[str], Any]] = {}
        self._columns = LabelColumns()  # per tag, writer thread only: the last label columns
        #: Per tag, writer thread only: the aligned map state.
        self._maps: dict[str, EvolutionMap] = {}
        #: Per tag, writer thread only: when its last map started and how long it took.
        self._map_timing: dict[str, tuple[float, float]] = {}
        #: Tags whose map image was skipped for the budget (told at WARNING once, then INFO).
        self._maps_rationed: set[str] = set()
        self._retention = _disk.Retention(self.options.keep, self.name, self._queue)
        #: Per tag, writer thread only: the aligned layout frame and trajectory.
        self._layouts = SinkLayouts(self.insight, self._queue, self.name)

    def __enter__(self) -> SnapshotSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SnapshotSink({str(self.logdir)!r})"

    # -- training thread -------------------------------------------------------------------

    def submit(
        self,
        step: int,
        requests: Iterable[SnapshotRequest] = (),
        *,
        scalars: Mapping[str, float] | None = None,
        summary: Any = None,
        final: bool = False,
    ) -> None:
        """Queue snapshots and scalars of ``step``; blocks only while the queue is full.

        Args:
            step: the step of everything submitted.
            requests: the snapshots (each one's arrays are the caller's copies).
            scalars: extra scalars (``{"train/loss": 0.3}``), logged at ``step``.
            summary: a ``SummaryWriter`` for this step's maps and scalars (e.g. the
                framework logger's), instead of the sink's.
            final: the run's last snapshot (the trained weights): its layout and map are
                computed whatever the time budget.
        """
        self.report()
        requests = list(requests)
        scalars = dict(scalars or {})
        if not requests and not scalars:
            return
        self._background.submit(self._job, step, requests, scalars, summary, final)
        if not self.options.background:
            self.report()

    def warn(self, tag: str, problem: str, message: str, category: type[Warning]) -> bool:
        """Report ``message`` unless ``problem`` was already reported for ``tag``.

        Returns:
            True if the warning was given (a repeat only goes to the log).
        """
        with self._lock:
            repeat = (tag, problem) in self._reported
            self._reported.add((tag, problem))
        if repeat:
            logger.info("%s", message)
            return False
        self._warn_function(message, category)
        return True

    def report(self) -> None:
        """Give the warnings the writing thread queued (call on the training thread)."""
        with self._lock:
            messages, self._messages = self._messages, []
        for message in messages:
            self._warn_function(message, RuntimeWarning)

    def forecast(self, shapes: Mapping[str, tuple[int, int]], snapshots: int) -> Forecast | None:
        """Log the disk use projected for the rest of the run; warn once if it will not fit.

        Adapters call it when training starts and its length is known (``max_epochs``,
        gensim's ``epochs``), counting ``every_n_epochs``; the sink adds ``keep``.

        Args:
            shapes: tag -> (rows, columns) written at each snapshot.
            snapshots: snapshots still to come.

        Returns:
            The :class:`Forecast`, with the figures; ``None`` if the free space could not be
            read (logged: a forecast never stops training).
        """
        try:
            plan = _disk.forecast(self.logdir, shapes, snapshots, self.options)
        except OSError as error:
            logger.info("%s: no disk forecast for %s: %s", self.name, self.logdir, error)
            return None
        logger.info("%s: projected disk use in %s: %s", self.name, self.logdir, plan.describe())
        if not plan.fits:
            self.warn("", "forecast", plan.warning(self.name, self.logdir), UserWarning)
        return plan

    def check_logdir(self) -> None:
        """Fail early, before training, when the log dir cannot take snapshots (a URL, a file,
        not writable); creates nothing. Adapters call it in their setup hook.

        Raises:
            LogDirError: the message says what is wrong and what to pass instead.
        """
        check_writable(self.logdir)

    def steps(self, tag: str) -> list[int]:
        """Steps of ``tag`` already in the log dir."""
        return self._writer().steps(tag)

    def flush(self) -> None:
        """Wait for every submitted job and for the sink's own event file to be on disk (it
        stays open: one file per sink, :class:`~.sink._event_log.EventLog`), flush a caller's
        writer; then report what went wrong."""
        self._background.flush()
        if self._own_summary is not None:
            self._own_summary.flush()
        elif self._summary is not None:
            self._summary.flush()
        self.report()

    def close(self) -> None:
        """Flush and stop the thread, and close the projector writer (a later
        :meth:`submit` starts again)."""
        self.flush()
        self._background.close()
        with self._lock:
            projector, self._projector = self._projector, None
            own, self._own_summary = self._own_summary, None
        if own is not None:
            own.close()
        close = getattr(projector, "close", None)
        if callable(close):  # ProjectorWriter.close() removes its refresh run
            close()
        self.report()

    # -- writing thread --------------------------------------------------------------------

    def _writer(self) -> ProjectorWriter:
        with self._lock:
            if self._projector is None:
                # O_DIRECT writes spare the page-cache copy: CPU that training would miss.
                self._projector = ProjectorWriter(
                    self.logdir, direct_io=True, disk_reserve=self.options.disk_reserve
                )
            return self._projector

    def _job(
        self,
        step: int,
        requests: list[SnapshotRequest],
        scalars: dict[str, float],
        summary: Any,
        final: bool = False,
    ) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        texts: dict[str, str] = {}
        self._logged_to = None
        try:
            with single_threaded_blas():
                for request in requests:
                    self._write_guarded(request, step, summary, texts, final)
            if scalars or texts:
                target = self._summary_for(summary)
                for name, value in scalars.items():
                    target.add_scalar(name, value, step)
                for name, text in texts.items():
                    target.add_text(name, text, step)
            if self._logged_to is not None:
                self._logged_to.flush()  # readers see this step's maps and scalars soon
        finally:
            self.stats.write_seconds.append(time.perf_counter() - started)
            self.stats.write_cpu_seconds += time.thread_time() - cpu_started

    def _write_guarded(
        self,
        request: SnapshotRequest,
        step: int,
        summary: Any,
        texts: dict[str, str],
        final: bool = False,
    ) -> None:
        try:
            self._write_one(request, step, summary, texts, final)
        except DiskReserveError as error:  # one warning for all tags; later steps try again
            logger.debug("snapshot %r at step %d skipped: %s", request.tag, step, error)
            message = _disk.reserve_warning(self.name, request.tag, step, error)
            self._queue("", "disk-reserve", message)
        except Exception as error:  # a visualization problem must never kill training
            logger.debug("snapshot %r at step %d failed", request.tag, step, exc_info=True)
            hint = " Training may have diverged." if "NaN or Inf" in str(error) else ""
            self._queue(
                request.tag,
                type(error).__name__,
                f"{self.name} skipped {request.tag!r} at step {step}: "
                f"{type(error).__name__}: {error}{hint}",
            )
        finally:
            if request.on_written is not None:
                request.on_written()

    def _write_one(
        self,
        request: SnapshotRequest,
        step: int,
        summary: Any,
        texts: dict[str, str],
        final: bool = False,
    ) -> None:
        """Write one snapshot with its saved layout (:class:`SinkLayouts`), prune old steps
        (``keep``), write the trajectory, then the insight."""
        matrix = _as_array(request.matrix)  # NaN/Inf rows: the writer refuses, nothing written
        writer = self._writer()
        steps = writer.steps(request.tag)
        if step in steps:
            logger.info(
                "%r step %d is already in %s; not rewritten", request.tag, step, self.logdir
            )
            return
        if self._retention.skip(writer, request.tag, step, steps):
            return  # older than the kept steps (a resumed run): it would go at once
        rows = matrix.shape[0]
        labels, header = label_rows(request.labels, rows, request.header)
        if labels is None:
            labels, header = row_numbers(rows), None
        try:
            prepared = self._prepared_labels(request.tag, labels, header)
        except ValueError as error:  # the writer's words are add_embedding's; ours: labels
            raise ValueError(f"labels: {error}") from error
        sprites = self._sprites(request, labels, header)
        if sprites is not None and len(sprites) != rows:
            raise ValueError(f"{len(sprites)} sprite images for {rows} rows; give one per row.")
        keys = None
        if self.insight.layout is not None:
            keys = layout_keys(request, self._columns.get(request.tag, labels, header, 0))
        states = self._layouts.states(request, keys, matrix, step, final=final)
        writer.add_embedding(
            matrix,
            metadata=prepared,
            label_img=sprites,
            global_step=step,
            tag=request.tag,
            name_suffix=request.name_suffix,
            layout=states,
        )
        self._retention.prune(writer, request.tag, step)
        self._layouts.write_trajectory(writer, request, keys, states, step)
        if self.insight.enabled:
            # Scalars at every snapshot (cheap); the budget rations only the drawing.
            draw = self.insight.maps and (final or self._map_due(request.tag, step))
            started = time.perf_counter()
            try:
                column = self._columns.get(request.tag, labels, header, self.insight.color_column)
                self._log_insight(request, matrix, column, step, summary, texts, draw=draw)
            except Exception as error:  # the snapshot is written; only its map is lost
                logger.debug("map of %r at step %d failed", request.tag, step, exc_info=True)
                self._queue(
                    request.tag,
                    f"map-{type(error).__name__}",
                    f"{self.name} wrote {request.tag!r} at step {step} but skipped its map "
                    f"and insight scalars: {type(error).__name__}: {error}",
                )
            if draw:
                self._map_timing[request.tag] = (started, time.perf_counter() - started)

    def _log_insight(
        self,
        request: SnapshotRequest,
        matrix: np.ndarray,
        column: list[str] | None,
        step: int,
        summary: Any,
        texts: dict[str, str],
        *,
        draw: bool,
    ) -> None:
        options, tag = self.insight, request.tag
        evolution = self._maps.get(tag)
        if evolution is None:
            evolution = self._maps[tag] = EvolutionMap(
                max_rows=options.max_rows or options.map_rows,
                sample="random" if request.classes else "first",
                neighbors_k=options.neighbors_k,
                render=options.maps,
                scalars=options.scalars,
                style=MapStyle(
                    title=tag,
                    size=options.map_size,
                    label_count=0 if request.classes else 25,
                    draw_rows=options.map_rows if options.max_rows else None,
                ),
            )
        evolution.render = draw  # the map's state (alignment, basis) advances either way
        if request.classes:
            # The same inputs in the same order at every step: match by index, colour by class.
            frame = evolution.update(matrix, None, step=step, colors=column)
        else:
            highlight = list(request.probes) or None
            frame = evolution.update(matrix, column, step=step, highlight=highlight)
        target = self._summary_for(summary)
        log_map(target, frame, tag, image=draw, scalars=options.scalars)
        if options.scalars and request.probes and column is not None:
            table = _insight.neighbor_table(
                matrix, column, list(request.probes), options.neighbors_k
            )
            texts[f"{tag}/neighbors"] = (
                f"Nearest neighbours (cosine) at step {step}, among the {len(matrix)} "
                f"{request.row_noun} in the projector:\n\n" + _insight.format_neighbor_table(table)
            )

    def _map_due(self, tag: str, step: int) -> bool:
        """Whether drawing ``tag``'s map fits in ``map_budget`` now (its scalars are logged
        either way)."""
        last = self._map_timing.get(tag)
        budget = self.insight.map_budget
        if budget is None or last is None:
            return True
        started, took = last
        if took <= budget * (time.perf_counter() - started):
            return True
        log = logger.warning if tag not in self._maps_rationed else logger.info
        self._maps_rationed.add(tag)
        log(
            f"{self.name}: the map image of {tag!r} was skipped at step {step} (its scalars are "
            f"logged): the last one took {took * 1000:.0f} ms, more than "
            f"map_budget={budget:.0%} of the time since; the final step always gets its map. "
            "Raise map_budget, or pass map_budget=None to draw every snapshot."
        )
        return False

    def _prepared_labels(
        self, tag: str, labels: Sequence[Any], header: Sequence[str] | None
    ) -> PreparedMetadata:
        """The encoded labels of ``tag``, reused while the labels stay equal (comparing is a
        C loop; escaping and encoding is Python per row, on a thread sharing the GIL)."""
        cached = self._prepared.get(tag)
        if cached is not None and cached[0] == labels and cached[1] == header:
            return cached[2]
        prepared = prepare_metadata(labels, header)
        self._prepared[tag] = (labels, header, prepared)
        return prepared

    def _sprites(self, request: SnapshotRequest, labels: Any, header: Any) -> Any:
        """The request's sprite images; ``"glyphs"`` drawn once per tag and label column."""
        if not (isinstance(request.sprites, str) and request.sprites == "glyphs"):
            return request.sprites
        column = self._columns.get(request.tag, labels, header, 0) or []
        cached = self._glyphs.get(request.tag)
        if cached is not None and cached[0] == column:
            return cached[1]
        from ..glyphs import glyph_images

        images = glyph_images(column)
        self._glyphs[request.tag] = (column, images)
        return images

    def _summary_for(self, summary: Any) -> Any:
        self._logged_to = self._summary_writer(summary)
        return self._logged_to

    def _summary_writer(self, summary: Any) -> Any:
        if summary is not None:
            return summary
        if self._summary is not None:
            return self._summary
        if self._own_summary is None:
            self._own_summary = EventLog(self.logdir)  # one event file; its flush() waits
        return self._own_summary

    def _queue(self, tag: str, problem: str, message: str) -> None:
        with self._lock:
            if (tag, problem) in self._reported:
                logger.info("%s", message)
                return
            self._reported.add((tag, problem))
            self._messages.append(message)

    def _job_failed(self, message: str) -> None:
        self._queue("", message, f"{self.name} skipped a snapshot: {message}")


def warm_up_imports(*, maps: bool) -> None:
    """Import what the writer imports lazily, now rather than on the writing thread.

    A first import on the background thread holds the GIL (TensorBoard's event writer is the
    largest) and stalls the epoch after the first snapshot. With ``maps``, the installed fonts
    are looked up now too.

    Example:
        >>> warm_up_imports(maps=False)
    """
    for name in _WRITER_LAZY_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:  # the writer reports what is missing when it needs it
            logger.debug("could not pre-import %s", name)
    if maps:
        from ..glyphs.fonts import font_path

        try:
            font_path("step 0123456789")
        except OSError:  # no font at all: the map reports it when it draws
            logger.debug("no font found while warming up", exc_info=True)


def _python_warn(message: str, category: type[Warning]) -> None:
    warnings.warn(message, category, stacklevel=4)


def _as_array(matrix: Any) -> np.ndarray:
    numpy = getattr(matrix, "numpy", None)  # a CPU torch tensor: no copy
    return numpy() if callable(numpy) else np.asarray(matrix)
