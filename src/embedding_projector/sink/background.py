"""A small background writer shared by the training callbacks.

The training thread only copies arrays and hands a job to :class:`BackgroundWriter`; a daemon
thread runs the jobs in order. The queue is bounded, so a slow disk makes training wait instead
of filling memory; errors never propagate into training — they are turned into warnings at the
next submit or flush. Pending jobs are flushed at interpreter exit.

Example:
    >>> results = []
    >>> with BackgroundWriter(max_pending=2) as background:
    ...     background.submit(results.append, 1)
    ...     background.submit(results.append, 2)
    >>> results
    [1, 2]
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["BackgroundWriter", "single_threaded_blas"]

logger = logging.getLogger(__name__)

_Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
_STOP = object()
_live_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _flush_all_at_exit() -> None:
    for writer in list(_live_writers):
        writer.close()


atexit.register(_flush_all_at_exit)


class BackgroundWriter:
    """Runs write jobs on one daemon thread, in submission order.

    Args:
        max_pending: jobs that may wait before :meth:`submit` blocks.
        name: thread name (shows up in stack dumps).
        synchronous: run jobs in the caller's thread instead (for debugging and tests).
        on_error: called with ``"<ExceptionType>: <message>"`` for each failed job instead of
            warning at the next submit or flush (the snapshot sink reports through its own
            channel).
    """

    def __init__(
        self,
        max_pending: int = 2,
        *,
        name: str = "embedding-projector-writer",
        synchronous: bool = False,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1; got {max_pending}.")
        self.max_pending = max_pending
        self.name = name
        self.synchronous = synchronous
        self.on_error = on_error
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._errors: list[str] = []
        self._lock = threading.Lock()
        _live_writers.add(self)

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # Threads, queues and locks cannot be pickled; a copy starts fresh.
        return {"max_pending": self.max_pending, "name": self.name, "synchronous": self.synchronous}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_pending"], name=state["name"], synchronous=state["synchronous"])  # type: ignore[misc]

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Queue ``function(*args, **kwargs)``; blocks only while ``max_pending`` jobs wait."""
        self._report_errors()
        if self.synchronous:
            self._run((function, args, kwargs))
            self._report_errors()
            return
        self._ensure_thread()
        self._queue.put((function, args, kwargs))

    def flush(self) -> None:
        """Wait until every submitted job has run; report failures as warnings."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()
        self._report_errors()

    def close(self) -> None:
        """Flush and stop the thread (a later :meth:`submit` starts a new one)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.join()
            self._queue.put(_STOP)
            thread.join()
        self._thread = None
        self._report_errors()

    @property
    def pending(self) -> int:
        """Jobs submitted but not finished."""
        return self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is _STOP:
                    return
                self._run(job)
            finally:
                self._queue.task_done()

    def _run(self, job: _Job) -> None:
        function, args, kwargs = job
        try:
            function(*args, **kwargs)
        except Exception as error:  # a visualization problem must never kill training
            logger.debug("background job %r failed", function, exc_info=True)
            message = f"{type(error).__name__}: {error}"
            if self.on_error is not None:
                self.on_error(message)
                return
            with self._lock:
                self._errors.append(message)

    def _report_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        for message in errors:
            warnings.warn(
                f"embedding-projector skipped a snapshot: {message}", RuntimeWarning, stacklevel=3
            )


_BLAS_LOCK = threading.Lock()
_BLAS_CONTROLLER: Any = None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run numpy's BLAS/LAPACK on one thread inside the block.

    For the maps and stability scalars computed beside training. With one core already busy
    training, OpenBLAS's second thread spin-waits against it: a small SVD then takes many times
    longer, and takes that time from the training thread (``benchmarks/RESULTS.md``).
    threadpoolctl's limit is process-wide and restores what it saw on entry, so concurrent
    blocks (two callbacks in one process) are serialised here to restore the right count.

    Example:
        >>> import numpy as np
        >>> with single_threaded_blas():
        ...     _ = np.linalg.svd(np.eye(3))
    """
    global _BLAS_CONTROLLER
    with _BLAS_LOCK:
        if _BLAS_CONTROLLER is None:
            # Finding the loaded BLAS libraries walks the loaded shared objects: once per process.
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
            yield
