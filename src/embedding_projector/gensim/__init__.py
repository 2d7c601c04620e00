"""Watch Word2Vec, FastText and Doc2Vec embeddings evolve in TensorBoard, epoch by epoch.

:class:`Any2VecProjector` is a gensim training callback. At the end of each chosen epoch it
writes a snapshot of the vectors into TensorBoard's Embedding Projector (step = epoch number,
the same words in the same rows at every step) and logs what tells you whether training works:

* **SCALARS** ``train/loss`` (per-epoch, see below), ``train/learning_rate``,
  ``train/words_per_sec``, ``<tag>/drift`` (mean cosine distance of each word to itself one
  snapshot earlier, after rotating the snapshots onto each other) and
  ``<tag>/neighbor_overlap_at_<k>`` (how many of each word's k nearest neighbours stayed the same).
  Drift near 0 and overlap near 1: the embedding has stopped moving.
* **TEXT** ``<tag>/neighbors``: a table of the nearest neighbours (among the snapshotted words)
  of a few probe words at each snapshot — watch "king"'s neighbours become sensible.
* **PROJECTOR** one tensor per snapshot, ``words:000000003`` is epoch 3; step 0 is the random
  initialisation.

Example:
    >>> from gensim.models import Word2Vec
    >>> from gensim.test.utils import common_texts
    >>> from embedding_projector.gensim import Any2VecProjector
    >>> import tempfile
    >>> logdir = tempfile.mkdtemp()
    >>> callback = Any2VecProjector(logdir, limit=10, probe_rows=["computer"])
    >>> model = Word2Vec(common_texts, vector_size=8, min_count=1, epochs=3, workers=1,
    ...                  compute_loss=True, callbacks=[callback])
    >>> callback.steps_written()
    [0, 1, 2, 3]

Then ``tensorboard --logdir <logdir>``.

gensim quirks this callback deals with (each one has a test):

* **The loss is cumulative, per ``train()`` call, float32, and racy**: the per-epoch
  difference is logged, with warnings where it stops being exact (see :class:`LossTracker`).
* **Stale norms.** gensim caches unit-normalised vectors and refreshes them only after the last
  epoch, so ``most_similar`` inside a callback returns wrong neighbours. This callback
  normalises its own copy, and refreshes gensim's cache when it exists.
* **FastText's word vectors are frozen during training**: the rows are composed as
  ``wv.adjust_vectors()`` would (:func:`fasttext_word_vectors`). **Doc2Vec**: document
  vectors (tag ``"docs"``) and word vectors, shown unless never trained (``dm=0`` without
  ``dbow_words``).
* **Saving.** ``FastText.save()`` pickles the callbacks it was constructed with. This callback
  pickles without its writers and threads (they are re-created on the next epoch), so saving
  works with it attached; alternatively pass it to ``train(callbacks=...)`` only, or save with
  ``model.save(path, ignore=["callbacks"])``.
* **Threads.** Hooks run on the thread that called ``train()``; nothing here assumes the main
  thread. Snapshots are written by a background thread (the hook only copies the selected
  rows) and flushed at the end of ``train()`` and at interpreter exit.
* **Continuing.** Steps keep increasing over several ``train()`` calls, and a new callback
  pointed at a log dir that already holds snapshots continues after the last step there.
* **Event files.** tensorboardX's ``SummaryWriter.flush()`` does not wait for queued events,
  so the callback's own scalars, text and maps go through TensorBoard's ``EventFileWriter``,
  whose flush waits: one event file for the callback's lifetime (every ``train()`` call), on
  disk whenever ``train()`` returns. A ``SummaryWriter`` you pass in is only flushed (a
  tensorboardX one may still hold queued events then): close it yourself.

The writing itself (background thread, label and sprite caches, maps, insight scalars,
warnings) is the shared :class:`~embedding_projector.sink.SnapshotSink`; this module decides
which rows and when.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

try:
    from gensim.models.callbacks import CallbackAny2Vec
except ImportError as _error:  # pragma: no cover - exercised only without gensim
    raise ImportError(
        "embedding_projector.gensim needs gensim; install it with "
        "pip install 'embedding-projector[gensim]'."
    ) from _error

from .. import insight as _insight
from .._format.logdir import resolve_logdir
from .._keywords import suggest_keywords
from ..maps._arrays import check_int
from ..sink import (
    OPTION_FIELDS,
    InsightOptions,
    SinkOptions,
    SinkStats,
    SnapshotRequest,
    SnapshotSink,
    resolve_options,
    warm_up_imports,
)
from ..sink._followed_rows import ProbeRow
from ._model import (
    DEFAULT_LIMIT,
    DEFAULT_PROBE_COUNT,
    Doc2VecOptions,
    LossTracker,
    ModelKind,
    Target,
    WordChoice,
    capture,
    default_probe_words,
    fasttext_word_vectors,
    model_kind,
    select_targets,
    train_snapshot_count,
    training_scalars,
)

__all__ = [
    "DEFAULT_INSIGHT",
    "DEFAULT_LIMIT",
    "DEFAULT_PROBE_COUNT",
    "Any2VecProjector",
    "Doc2VecOptions",
    "default_probe_words",
    "fasttext_word_vectors",
]

logger = logging.getLogger(__name__)

#: Insight defaults of this callback: 300 words drawn, drift and overlap on the 1,000 most
#: frequent, a map at every snapshot (gensim epochs are seconds to hours, maps milliseconds).
DEFAULT_INSIGHT = InsightOptions(map_rows=300, max_rows=_insight.DEFAULT_MAX_ROWS, map_budget=None)


@suggest_keywords(moved=OPTION_FIELDS)
class Any2VecProjector(CallbackAny2Vec):  # type: ignore[misc]
    """A gensim callback that snapshots embeddings into TensorBoard's projector each epoch.

    Args:
        logdir_or_writer: a log directory, or a tensorboardX / ``torch.utils.tensorboard``
            ``SummaryWriter`` (scalars and text go to it; snapshots to its log directory). With
            a path, the callback owns a tensorboardX ``SummaryWriter`` there.
        every_n_epochs: snapshot every n-th epoch (step divisible by n), and always the last
            epoch of each ``train()`` call (at ``on_train_end`` if not written yet). Scalars
            are logged every epoch.
        limit: how many of the most frequent words to show. Default: 1000 without ``words``,
            none extra with ``words``.
        words: words to show (a list, or a file with one word per line), first in the table.
        tag: projector tag of the word vectors (default ``"words"``).
        probe_rows: rows to follow: words (or vocabulary indices), highlighted on the maps,
            with their nearest neighbours tabulated at each snapshot (TEXT tab) and, with
            ``InsightOptions(trajectory=True)``, their path across steps. Default: a handful
            of frequent non-stop words; ``[]`` for none.
        sprites: ``"glyphs"`` draws each word as its point's image in the projector (for
            character, kana, kanji or emoji embeddings); drawn once, reused at every step.
        log_loss: log ``train/loss`` (Word2Vec with ``compute_loss=True`` only).
        snapshot_at_start: write step 0 (the random initialisation) at the start of training.
        docs: Doc2Vec only: the document vectors' tag and count, and whether word vectors
            are shown (:class:`Doc2VecOptions`).
        insight: maps, drift / neighbour-overlap scalars and neighbour tables
            (:class:`~embedding_projector.sink.InsightOptions`; default
            :data:`DEFAULT_INSIGHT`). ``neighbors_k`` is also the neighbours per probe word.
        sink: background writing, queue length, retention (``keep=N``: step 0 and the N most
            recent snapshots stay) and the free space kept for the run (``disk_reserve``)
            (:class:`~embedding_projector.sink.SinkOptions`). At the start of each
            ``train()`` the projected disk use is logged, with a warning if it will not fit.

    Raises:
        ValueError: an argument is out of range (the message says which).
        LogDirError: the log dir is a URL (``s3://``, ...): at construction; an existing
            file, or not writable: at ``on_train_begin``, before training starts.

    Example:
        >>> import tempfile
        >>> from gensim.models import FastText
        >>> from gensim.test.utils import common_texts
        >>> callback = Any2VecProjector(tempfile.mkdtemp(), every_n_epochs=2)
        >>> model = FastText(vector_size=8, min_count=1, workers=1)
        >>> model.build_vocab(common_texts)
        >>> _ = model.train(common_texts, total_examples=len(common_texts), epochs=4,
        ...                 callbacks=[callback])
        >>> callback.steps_written()
        [0, 2, 4]
    """

    def __init__(
        self,
        logdir_or_writer: str | os.PathLike[str] | Any,
        *,
        every_n_epochs: int = 1,
        limit: int | None = None,
        words: str | os.PathLike[str] | Iterable[str] | None = None,
        tag: str | None = None,
        probe_rows: Sequence[ProbeRow] | None = None,
        sprites: Literal["glyphs"] | None = None,
        log_loss: bool = True,
        snapshot_at_start: bool = True,
        docs: Doc2VecOptions | None = None,
        insight: InsightOptions | None = None,
        sink: SinkOptions | None = None,
    ) -> None:
        docs = docs if docs is not None else Doc2VecOptions()
        self.insight, self.sink = resolve_options(
            "Any2VecProjector", insight, sink, default_insight=DEFAULT_INSIGHT
        )
        check_int("every_n_epochs", every_n_epochs, minimum=1)
        if sprites not in (None, "glyphs"):
            raise ValueError(f'sprites must be None or "glyphs"; got {sprites!r}.')
        self.choice = WordChoice.make(tag, limit, words, probe_rows)
        if isinstance(logdir_or_writer, (str, os.PathLike)):
            self._summary: Any = None
        elif callable(getattr(logdir_or_writer, "add_scalar", None)):
            self._summary = logdir_or_writer
        else:
            raise TypeError(
                "logdir_or_writer must be a log directory or a SummaryWriter (tensorboardX or "
                f"torch.utils.tensorboard); got {type(logdir_or_writer).__name__}."
            )
        self.logdir: Path = resolve_logdir(logdir_or_writer)
        self.every_n_epochs = every_n_epochs
        self.tag = self.choice.tag
        if self.tag == docs.tag:
            raise ValueError(f"tag and doc_tag must differ; both are {self.tag!r}.")
        self.docs = docs
        self.log_loss = log_loss
        self.snapshot_at_start = snapshot_at_start
        self.sprites = sprites
        self._targets: list[Target] | None = None
        self._kind: ModelKind | None = None
        #: The last step counted (an epoch end, or 0 for the initial snapshot).
        self._step: int | None = None
        self._written: list[int] = []
        self._epoch_in_train = 0
        self._epochs_this_train = 0
        self._loss = LossTracker(log_loss)
        self._epoch_started: float | None = None
        self._stats = SinkStats()
        #: Seconds the training thread spent in this callback's hooks (wall clock).
        self.hook_seconds = 0.0
        self._init_runtime()

    # -- runtime state (not pickled) -------------------------------------------------------

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._sink = SnapshotSink(
            self.logdir,
            summary=self._summary,
            options=self.sink,
            insight=self.insight,
            name="Any2VecProjector",
            stats=self._stats,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without writers, threads and locks (so ``FastText.save()`` works)."""
        state = self.__dict__.copy()
        for name in ("_lock", "_sink", "_summary"):
            state.pop(name, None)
        return state  # a user's SummaryWriter does not travel; the sink makes its own

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._summary = None
        self._init_runtime()

    def __repr__(self) -> str:
        return f"Any2VecProjector({str(self.logdir)!r}, tag={self.tag!r})"

    @property
    def write_cpu_seconds(self) -> float:
        """CPU seconds the background writer spent on snapshots, scalars and insight."""
        return self._stats.write_cpu_seconds

    # -- public helpers --------------------------------------------------------------------

    def steps_written(self) -> list[int]:
        """Projector steps of this run: those found in the log dir at the start, then each
        snapshot submitted since (on disk once :meth:`flush` returns)."""
        return list(self._written)

    def flush(self) -> None:
        """Wait for pending snapshots and for the callback's own event file to be on disk
        (it stays open for the next ``train()`` call: one event file per callback).

        A tensorboardX writer you passed in is only flushed, and its ``flush()`` does not wait
        for events still queued for its logger thread: close it yourself before reading them.
        """
        with self._lock:
            self._sink.flush()

    def close(self) -> None:
        """Flush and stop the background thread; close the ``SummaryWriter`` if it is ours."""
        with self._lock:
            self._sink.close()

    # -- gensim hooks ----------------------------------------------------------------------

    def on_train_begin(self, model: Any) -> None:
        started = time.perf_counter()
        with self._lock:
            self._sink.check_logdir()  # a file, not writable: fail before training, not after
            self._setup(model)
            self._epoch_in_train = 0
            self._epochs_this_train = int(getattr(model, "epochs", 0) or 0)
            self._loss.start(model, self._kind, self._warn_once)
            self._forecast(model)
            if self.snapshot_at_start and self._step == 0 and not self._written:
                snapshots = self._capture(model, 0)
                if snapshots:
                    self._written.append(0)
                self._sink.submit(0, snapshots)
            self.hook_seconds += time.perf_counter() - started

    def on_epoch_begin(self, model: Any) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, model: Any) -> None:
        started = time.perf_counter()
        with self._lock:
            self._setup(model)
            step = self._step = (self._step or 0) + 1
            self._epoch_in_train += 1
            scalars = self._training_scalars(model)
            snapshots: list[SnapshotRequest] = []
            last_epoch = self._epoch_in_train >= self._epochs_this_train > 0
            if step % self.every_n_epochs == 0 or last_epoch:
                snapshots = self._capture(model, step)
                if snapshots:
                    self._written.append(step)
            self._sink.submit(step, snapshots, scalars=scalars, final=last_epoch)
            self.hook_seconds += time.perf_counter() - started

    def on_train_end(self, model: Any) -> None:
        with self._lock:
            step = self._step
            if self._targets is not None and step is not None and step not in self._written:
                # The trained vectors, whatever every_n_epochs skipped (once per step).
                snapshots = self._capture(model, step)
                if snapshots:
                    self._written.append(step)
                self._sink.submit(step, snapshots, final=True)
        self.flush()

    # -- setup -----------------------------------------------------------------------------

    def _setup(self, model: Any) -> None:
        """First hook: row selection, and where the step count continues from."""
        if self._targets is not None:
            return
        warm_up_imports(maps=self.insight.maps)  # not on the writing thread, beside training
        self._kind = model_kind(model)
        self._targets = select_targets(model, self._kind, self.choice, self.docs, self._warn_once)
        if self._step is None:
            done = [step for t in self._targets for step in self._sink.steps(t.tag)]
            self._step = max(done, default=0)
            if done:
                logger.info("%s already holds steps up to %d; continuing", self.logdir, self._step)
                self._written = sorted(set(done))

    def _forecast(self, model: Any) -> None:
        """Tell the sink what this ``train()`` call will write (it logs and warns)."""
        epochs, start = self._epochs_this_train, self._step or 0
        if epochs <= 0 or not self._targets:
            return
        at_start = self.snapshot_at_start and start == 0 and not self._written
        size = int(getattr(model, "vector_size", 0) or 0)
        shapes = {target.tag: (len(target.indices), size) for target in self._targets}
        self._sink.forecast(
            shapes, train_snapshot_count(start, epochs, self.every_n_epochs, at_start)
        )

    # -- per-epoch work (training thread) --------------------------------------------------

    def _training_scalars(self, model: Any) -> dict[str, float]:
        loss = self._loss.epoch_loss(model, self._warn_once)
        started, self._epoch_started = self._epoch_started, None
        return training_scalars(model, loss, self._epoch_in_train, started)

    def _capture(self, model: Any, step: int) -> list[SnapshotRequest]:
        """Copy the selected rows of each target (the only per-snapshot work in the hook)."""
        return capture(model, self._kind, self._targets or [], step, self.sprites, self._warn_once)

    def _warn_once(self, key: str, message: str, category: type[Warning]) -> bool:
        """Warn the first time ``key`` comes up (the sink's one channel); True if warned."""
        return self._sink.warn("", key, message, category)
