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
    >>> callback = Any2VecProjector(logdir, limit=10, probe_words=["computer"])
    >>> model = Word2Vec(common_texts, vector_size=8, min_count=1, epochs=3, workers=1,
    ...                  compute_loss=True, callbacks=[callback])
    >>> callback.steps_written()
    [0, 1, 2, 3]

Then ``tensorboard --logdir <logdir>``.

gensim quirks this callback deals with (each one has a test):

* **The loss is cumulative, per ``train()`` call, float32, and racy.**
  ``get_latest_training_loss()`` is the sum since the start of the current ``train()`` call
  (it restarts at 0 on the next call). The callback logs the per-epoch difference. The sum is
  a float32: past 2**22 the differences lose precision and at 2**24 it stops growing (a
  warning is given and the loss is no longer logged for that call; train in several shorter
  ``train()`` calls to reset it). With ``workers > 1`` gensim's threads overwrite each other's
  running loss and the value is too low (warned; compare epochs, not absolute values). Only
  Word2Vec reports a loss: FastText and Doc2Vec always report 0.0, so for them no loss is
  logged and the log says so. Word2Vec needs ``compute_loss=True``.
* **Stale norms.** gensim caches unit-normalised vectors and refreshes them only after the last
  epoch, so ``most_similar`` inside a callback returns wrong neighbours. This callback
  normalises its own copy, and refreshes gensim's cache when it exists.
* **FastText's word vectors are frozen during training** (gensim rebuilds them from the
  subword vectors after the last epoch). The callback composes the snapshotted rows itself,
  exactly as ``wv.adjust_vectors()`` does (see :func:`fasttext_word_vectors`), without
  touching the model.
* **Doc2Vec** has document vectors (``model.dv``, tag ``"docs"``) and word vectors (``"words"``);
  with ``dm=0`` and ``dbow_words=0`` the word vectors are never trained, so they are shown only
  when asked for (with a warning). Plain int tags leave ``dv.key_to_index`` empty; rows are
  taken from ``dv.index_to_key``. Document vectors have no counts.
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
  so the writer the callback owns is closed at the end of each ``train()`` call (the next call
  starts a new event file). A ``SummaryWriter`` you pass in is only flushed; close it yourself.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

try:
    import gensim  # the real gensim package (absolute import), not this module
    from gensim.models.callbacks import CallbackAny2Vec
except ImportError as _error:  # pragma: no cover - exercised only without gensim
    raise ImportError(
        "embedding_projector.gensim needs gensim; install it with "
        "pip install 'embedding-projector[gensim]'."
    ) from _error

from . import insight as _insight
from .background import BackgroundWriter, single_threaded_blas
from .maps import EvolutionMap
from .sink import log_map
from .selection import select_keys
from .writer import PreparedMetadata, ProjectorWriter, prepare_metadata, resolve_logdir

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_PROBE_COUNT",
    "Any2VecProjector",
    "default_probe_words",
    "fasttext_word_vectors",
]

logger = logging.getLogger(__name__)

#: Most frequent words shown when neither ``limit`` nor ``words`` is given.
DEFAULT_LIMIT = 1000
#: How many probe words are picked when none are given.
DEFAULT_PROBE_COUNT = 5
#: gensim's running loss is a float32: beyond this, per-epoch differences lose precision ...
FLOAT32_PRECISE_LOSS = float(2**22)
#: ... and at this value adding a per-word loss no longer changes it.
FLOAT32_STUCK_LOSS = float(2**24)

_ModelKind = Literal["word2vec", "fasttext", "doc2vec"]
_SOURCE_NAMES = {"wv": "word vectors", "dv": "document vectors"}


def _model_kind(model: Any) -> _ModelKind:
    from gensim.models.doc2vec import Doc2Vec
    from gensim.models.fasttext import FastText

    if isinstance(model, Doc2Vec):
        return "doc2vec"
    if isinstance(model, FastText):
        return "fasttext"
    return "word2vec"


def default_probe_words(keys: Sequence[str], count: int = DEFAULT_PROBE_COUNT) -> list[str]:
    """A handful of frequent, content-bearing words: the first ``count`` of ``keys`` that are
    alphabetic, at least 3 letters long and not English stop words (gensim's list).

    Example:
        >>> default_probe_words(["the", "of", ",", "king", "a", "queen", "x"], 2)
        ['king', 'queen']
    """
    from gensim.parsing.preprocessing import STOPWORDS

    chosen: list[str] = []
    for key in keys:
        if len(chosen) >= count:
            break
        if (
            isinstance(key, str)
            and key.isalpha()
            and len(key) >= 3
            and key.lower() not in STOPWORDS
        ):
            chosen.append(key)
    return chosen


@dataclass
class _Target:
    """One embedding that is snapshotted: which rows, their labels, which rows are probes."""

    tag: str
    source: Literal["wv", "dv"]
    indices: npt.NDArray[np.int64]
    labels: list[str]
    metadata: list[list[str]]
    header: list[str]
    probes: list[int] = field(default_factory=list)
    #: ``metadata`` escaped and encoded by the writer thread's first snapshot, then reused
    #: (the rows and their words and counts do not change while the target lives).
    prepared: PreparedMetadata | None = None


class Any2VecProjector(CallbackAny2Vec):  # type: ignore[misc]
    """A gensim callback that snapshots embeddings into TensorBoard's projector each epoch.

    Args:
        logdir_or_writer: a log directory, or a tensorboardX / ``torch.utils.tensorboard``
            ``SummaryWriter`` (scalars and text go to it; snapshots to its log directory). With
            a path, the callback owns a tensorboardX ``SummaryWriter`` there.
        every_n_epochs: snapshot every n-th epoch (step divisible by n), and always the last
            epoch of each ``train()`` call. Scalars are logged every epoch.
        limit: how many of the most frequent words to show. Default: 1000 without ``words``,
            none extra with ``words``.
        words: words to show (a list, or a file with one word per line), first in the table.
        tag: projector tag of the word vectors (default ``"words"``).
        doc_tag: Doc2Vec only: tag of the document vectors (default ``"docs"``).
        doc_limit: Doc2Vec only: how many document vectors to show (the first ones).
        show_words: Doc2Vec only: show word vectors too. Default: unless ``dm=0`` without
            ``dbow_words`` (then they are never trained).
        log_loss: log ``train/loss`` (Word2Vec with ``compute_loss=True`` only).
        probe_words: words whose nearest neighbours are tabulated at each snapshot (TEXT tab).
            Default: a handful of frequent non-stop words; ``[]`` for none.
        neighbors_k: neighbours per probe word, and the k of ``neighbor_overlap_at_<k>``
            (tensorboardX does not allow ``@`` in tags).
        snapshot_at_start: write step 0 (the random initialisation) at the start of training.
        background: write on a background thread (the hook only copies the selected rows).
        insight: log drift, neighbour overlap and neighbour tables.
        insight_max_rows: drift and overlap use at most this many (most frequent) rows.
        maps: log an aligned 2-D map per snapshot (IMAGES tab ``<tag>/map``; each snapshot
            rotated onto the previous one, one fixed basis, identical axes).
        map_rows: words drawn on the map (probe words always).
        map_size: (width, height) of the map images in pixels.
        max_pending: snapshots that may wait for the background writer before training waits.
        sprites: ``"glyphs"`` draws each word as its point's image in the projector (for
            character, kana, kanji or emoji embeddings); drawn once, reused at every step.

    Raises:
        ValueError: an argument is out of range (the message says which).

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
        doc_tag: str | None = None,
        doc_limit: int = DEFAULT_LIMIT,
        show_words: bool | None = None,
        log_loss: bool = True,
        probe_words: Iterable[str] | None = None,
        neighbors_k: int = 10,
        snapshot_at_start: bool = True,
        background: bool = True,
        insight: bool = True,
        insight_max_rows: int = _insight.DEFAULT_MAX_ROWS,
        maps: bool = True,
        map_rows: int = 300,
        map_size: tuple[int, int] = (640, 640),
        max_pending: int = 2,
        sprites: Literal["glyphs"] | None = None,
    ) -> None:
        _check_int("every_n_epochs", every_n_epochs, minimum=1)
        _check_int("neighbors_k", neighbors_k, minimum=1)
        _check_int("doc_limit", doc_limit, minimum=0)
        _check_int("insight_max_rows", insight_max_rows, minimum=2)
        _check_int("max_pending", max_pending, minimum=1)
        _check_int("map_rows", map_rows, minimum=2)
        if sprites not in (None, "glyphs"):
            raise ValueError(f'sprites must be None or "glyphs"; got {sprites!r}.')
        if limit is not None:
            _check_int("limit", limit, minimum=0)
        for name, value in (("tag", tag), ("doc_tag", doc_tag)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string; got {value!r}.")
        if isinstance(probe_words, str):
            raise ValueError(
                f"probe_words must be a list of words, not one string; got {probe_words!r} "
                f"(did you mean [{probe_words!r}]?)."
            )
        if isinstance(logdir_or_writer, (str, os.PathLike)):
            self._summary: Any = None
            self._owns_summary = True
        elif callable(getattr(logdir_or_writer, "add_scalar", None)):
            self._summary = logdir_or_writer
            self._owns_summary = False
        else:
            raise TypeError(
                "logdir_or_writer must be a log directory or a SummaryWriter (tensorboardX or "
                f"torch.utils.tensorboard); got {type(logdir_or_writer).__name__}."
            )
        self.logdir: Path = resolve_logdir(logdir_or_writer)
        self.every_n_epochs = every_n_epochs
        self.limit = limit
        self.words = None if words is None else _read_words(words)
        self.tag = tag or "words"
        self.doc_tag = doc_tag or "docs"
        if self.tag == self.doc_tag:
            raise ValueError(f"tag and doc_tag must differ; both are {self.tag!r}.")
        self.doc_limit = doc_limit
        self.show_words = show_words
        self.log_loss = log_loss
        self.probe_words = None if probe_words is None else [str(w) for w in probe_words]
        self.neighbors_k = neighbors_k
        self.snapshot_at_start = snapshot_at_start
        self.background = background
        self.insight = insight
        self.insight_max_rows = insight_max_rows
        self.maps = maps
        self.map_rows = map_rows
        self.map_size = (int(map_size[0]), int(map_size[1]))
        self.max_pending = max_pending
        self.sprites = sprites

        self._projector = ProjectorWriter(self.logdir, direct_io=True)  # spares training CPU
        self._targets: list[_Target] | None = None
        self._kind: _ModelKind | None = None
        #: The last step counted (an epoch end, or 0 for the initial snapshot).
        self._step: int | None = None
        self._written: list[int] = []
        self._epoch_in_train = 0
        self._epochs_this_train = 0
        self._loss_seen = 0.0
        self._loss_stuck = False
        self._epoch_started: float | None = None
        self._warned: set[str] = set()
        #: Seconds the training thread spent in this callback's hooks (wall clock).
        self.hook_seconds = 0.0
        #: CPU seconds the background writer spent on snapshots, scalars and insight.
        self.write_cpu_seconds = 0.0
        self._init_runtime()

    # -- runtime state (not pickled) -------------------------------------------------------

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._writer: BackgroundWriter | None = None
        #: Aligned maps and stability scalars per tag (only the writer thread touches them).
        self._maps: dict[str, EvolutionMap] = {}
        #: Glyph sprites per tag: the rows never change, so they are drawn once.
        self._sprites: dict[str, npt.NDArray[np.uint8]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without writers, threads and locks (so ``FastText.save()`` works)."""
        state = self.__dict__.copy()
        for name in ("_lock", "_writer", "_maps", "_sprites", "_summary"):
            state.pop(name, None)
        state["_owns_summary"] = True  # a user's SummaryWriter does not travel; ours is re-made
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._summary = None
        self._init_runtime()

    def __repr__(self) -> str:
        return f"Any2VecProjector({str(self.logdir)!r}, tag={self.tag!r})"

    # -- public helpers --------------------------------------------------------------------

    def steps_written(self) -> list[int]:
        """Projector steps of this run: those found in the log dir at the start, then each
        snapshot submitted since (on disk once :meth:`flush` returns)."""
        return list(self._written)

    def flush(self) -> None:
        """Wait for pending snapshots, then flush the event file.

        tensorboardX's ``SummaryWriter.flush()`` does not wait for events still queued for its
        logger thread; the writer this callback owns is therefore closed at the end of each
        ``train()`` call (a new event file is started by the next one). A writer you passed in
        is only flushed: close it yourself before reading its events.
        """
        with self._lock:
            if self._writer is not None:
                self._writer.flush()
            if self._summary is not None:
                if self._owns_summary:
                    self._summary.close()
                    self._summary = None
                else:
                    self._summary.flush()

    def close(self) -> None:
        """Flush and stop the background thread; close the ``SummaryWriter`` if it is ours."""
        with self._lock:
            self.flush()
            if self._writer is not None:
                self._writer.close()

    # -- gensim hooks ----------------------------------------------------------------------

    def on_train_begin(self, model: Any) -> None:
        started = time.perf_counter()
        with self._lock:
            self._setup(model)
            self._epoch_in_train = 0
            self._epochs_this_train = int(getattr(model, "epochs", 0) or 0)
            self._loss_seen = 0.0
            self._loss_stuck = False
            self._check_loss_settings(model)
            if self.snapshot_at_start and self._step == 0 and not self._written:
                snapshots = self._capture(model, 0)
                if snapshots:
                    self._written.append(0)
                self._submit(0, {}, snapshots)
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
            snapshots: list[tuple[_Target, npt.NDArray[np.float32]]] = []
            last_epoch = self._epoch_in_train >= self._epochs_this_train > 0
            if step % self.every_n_epochs == 0 or last_epoch:
                snapshots = self._capture(model, step)
                if snapshots:
                    self._written.append(step)
            self._submit(step, scalars, snapshots)
            self.hook_seconds += time.perf_counter() - started

    def on_train_end(self, model: Any) -> None:
        self.flush()

    # -- setup -----------------------------------------------------------------------------

    def _setup(self, model: Any) -> None:
        """First hook: writers, row selection, and where the step count continues from."""
        if self._writer is None:
            self._writer = BackgroundWriter(
                self.max_pending,
                name="embedding-projector-gensim",
                synchronous=not self.background,
            )
        if self._summary is None:
            from tensorboardX import SummaryWriter

            # tensorboardX names event files by second and host: a unique, chronologically
            # sorted suffix keeps two writers started in the same second from overwriting each
            # other's file, and event readers read the files in the order they were written.
            self._summary = SummaryWriter(
                str(self.logdir), filename_suffix=f".{time.time_ns()}.{os.getpid()}"
            )
            self._owns_summary = True
        if self._targets is not None:
            return
        self._kind = _model_kind(model)
        self._targets = []
        for target in self._select_targets(model):
            if len(target.indices) < 2:
                self._warn_once(
                    f"too-few-{target.tag}",
                    f"Only {len(target.indices)} row(s) selected for {target.tag!r}; the "
                    "projector needs at least 2, so this embedding is not snapshotted. Pass a "
                    "larger limit or more words.",
                    UserWarning,
                )
            else:
                self._targets.append(target)
        if self._step is None:
            done = [step for t in self._targets for step in self._projector.steps(t.tag)]
            self._step = max(done, default=0)
            if done:
                logger.info("%s already holds steps up to %d; continuing", self.logdir, self._step)
                self._written = sorted(set(done))

    def _select_targets(self, model: Any) -> list[_Target]:
        targets: list[_Target] = []
        kind = self._kind
        if kind == "doc2vec":
            targets.append(self._doc_target(model))
            pure_dbow = bool(getattr(model, "dbow", False)) and not getattr(model, "dbow_words", 0)
            wanted = self.show_words if self.show_words is not None else not pure_dbow
            if self.show_words is None and self.words is not None:
                wanted = True
            if wanted and pure_dbow:
                self._warn_once(
                    "dbow",
                    "This Doc2Vec model has dm=0 and dbow_words=0: its word vectors are never "
                    f"trained, so the {self.tag!r} snapshots will not change. Pass "
                    "dbow_words=1 to Doc2Vec to train them, or show_words=False.",
                    UserWarning,
                )
            elif not wanted and pure_dbow:
                logger.info("Doc2Vec with dm=0, dbow_words=0: word vectors not shown")
            if not wanted:
                return targets
        targets.insert(0, self._word_target(model))
        return targets

    def _word_target(self, model: Any) -> _Target:
        wv = model.wv
        keys = [str(key) for key in wv.index_to_key]
        limit = self.limit if self.limit is not None else (0 if self.words else DEFAULT_LIMIT)
        lookup = _str_lookup(wv.index_to_key)
        selection = select_keys(keys, limit=limit, words=self.words, key_to_index=lookup)
        if selection.missing:
            self._warn_once(
                "missing-words",
                f"{len(selection.missing)} of the requested words are not in the model's "
                f"vocabulary and are not shown: {_preview(selection.missing)}.",
                UserWarning,
            )
        probes = (
            self.probe_words
            if self.probe_words is not None
            else default_probe_words(selection.keys or keys)
        )
        probe_rows: list[int] = []
        seen = set(selection.indices)
        position = {index: row for row, index in enumerate(selection.indices)}
        unknown = []
        for word in probes:
            index = lookup.get(word)
            if index is None:
                unknown.append(word)
                continue
            selection.add(index, keys[index], "probe", seen)
            position.setdefault(index, len(selection.indices) - 1)
            probe_rows.append(position[index])
        if unknown and self.probe_words is not None:
            self._warn_once(
                "missing-probes",
                f"probe words not in the vocabulary: {_preview(unknown)}; they get no "
                "neighbour table.",
                UserWarning,
            )
        indices = np.asarray(selection.indices, dtype=np.int64)
        counts = _counts(wv, selection.keys, selection.indices, len(keys))
        header = ["word", "rank"] + (["count"] if counts is not None else [])
        metadata = [
            [key, str(index + 1)] + ([str(counts[row])] if counts is not None else [])
            for row, (key, index) in enumerate(zip(selection.keys, selection.indices, strict=True))
        ]
        return _Target(self.tag, "wv", indices, list(selection.keys), metadata, header, probe_rows)

    def _doc_target(self, model: Any) -> _Target:
        dv = model.dv
        # Plain int tags leave dv.key_to_index empty: index_to_key is the only reliable map.
        keys = [str(key) for key in dv.index_to_key]
        selection = select_keys(keys, limit=self.doc_limit, key_to_index=_str_lookup(keys))
        indices = np.asarray(selection.indices, dtype=np.int64)
        metadata = [
            [key, str(index)] for key, index in zip(selection.keys, selection.indices, strict=True)
        ]
        return _Target(
            self.doc_tag, "dv", indices, list(selection.keys), metadata, ["tag", "index"]
        )

    # -- per-epoch work (training thread) --------------------------------------------------

    def _check_loss_settings(self, model: Any) -> None:
        if not self.log_loss:
            return
        if self._kind in ("fasttext", "doc2vec"):
            name = "FastText" if self._kind == "fasttext" else "Doc2Vec"
            if "no-loss" not in self._warned:
                self._warned.add("no-loss")
                logger.warning(
                    "%s does not report a training loss in gensim %s (it is always 0.0), so no "
                    "train/loss is logged; watch drift and neighbor_overlap instead.",
                    name,
                    getattr(gensim, "__version__", "4"),
                )
            return
        if not getattr(model, "compute_loss", False):
            self._warn_once(
                "compute-loss",
                "Word2Vec is training without compute_loss=True, so no train/loss is logged. "
                "Pass compute_loss=True to Word2Vec(...) or to train(...), or log_loss=False "
                "to the callback.",
                UserWarning,
            )
            return
        workers = int(getattr(model, "workers", 1) or 1)
        if workers > 1:
            self._warn_once(
                "workers",
                f"With workers={workers}, gensim's threads overwrite each other's running loss, "
                "so train/loss is too low; compare epochs with each other, or train with "
                "workers=1 for true values.",
                UserWarning,
            )

    def _training_scalars(self, model: Any) -> dict[str, float]:
        scalars: dict[str, float] = {}
        if (
            self.log_loss
            and self._kind == "word2vec"
            and getattr(model, "compute_loss", False)
            and not self._loss_stuck
        ):
            cumulative = float(model.get_latest_training_loss())
            if cumulative >= FLOAT32_STUCK_LOSS:
                self._loss_stuck = True
                self._warn_once(
                    "loss-stuck",
                    "gensim's running loss (a float32 summed over one train() call) reached "
                    "2**24 = 16,777,216 and stopped growing, so train/loss is no longer logged "
                    "for this train() call. Train in shorter train() calls (each one restarts "
                    "the sum) to keep a loss curve.",
                    RuntimeWarning,
                )
            else:
                if cumulative > FLOAT32_PRECISE_LOSS:
                    self._warn_once(
                        "loss-imprecise",
                        "gensim's running loss (a float32) passed 2**22 = 4,194,304: per-epoch "
                        "losses are imprecise from here and stop at 2**24. Train in shorter "
                        "train() calls to keep them exact.",
                        RuntimeWarning,
                    )
                if math.isfinite(cumulative):
                    scalars["train/loss"] = cumulative - self._loss_seen
                self._loss_seen = cumulative
        alpha: Any = getattr(model, "min_alpha_yet_reached", None)
        epochs = int(getattr(model, "epochs", 0) or 0)
        if alpha is None and epochs:
            progress = self._epoch_in_train / epochs
            alpha = model.alpha - (model.alpha - model.min_alpha) * progress
        if alpha is not None:
            scalars["train/learning_rate"] = float(alpha)
        words = getattr(model, "corpus_total_words", None)
        if self._epoch_started is not None and words:
            elapsed = time.perf_counter() - self._epoch_started
            if elapsed > 0:
                scalars["train/words_per_sec"] = float(words) / elapsed
        self._epoch_started = None
        return scalars

    def _capture(self, model: Any, step: int) -> list[tuple[_Target, npt.NDArray[np.float32]]]:
        """Copy the selected rows of each target (the only per-snapshot work in the hook)."""
        captured = []
        for target in self._targets or []:
            vectors = model.wv if target.source == "wv" else model.dv
            if getattr(vectors, "norms", None) is not None:
                # Keep gensim's cached norms in step for other callbacks' most_similar().
                vectors.fill_norms(force=True)
            if self._kind == "fasttext" and target.source == "wv":
                # FastText's wv.vectors stay frozen until the last epoch; compose the selected
                # rows from the word and subword vectors as wv.adjust_vectors() would.
                rows = fasttext_word_vectors(vectors, target.indices)
            else:
                rows = np.asarray(vectors.vectors[target.indices], dtype=np.float32)
            finite = np.isfinite(rows).all(axis=1)
            if not finite.all():
                message = (
                    f"{int((~finite).sum())} of {len(rows)} {_SOURCE_NAMES[target.source]} "
                    f"in {target.tag!r} are NaN or infinite at step {step} (training diverged?); "
                    "snapshot skipped. Try a smaller alpha."
                )
                if not self._warn_once(f"nonfinite-{target.tag}", message, RuntimeWarning):
                    logger.warning(message)
                continue
            captured.append((target, rows))
        return captured

    def _submit(
        self,
        step: int,
        scalars: dict[str, float],
        snapshots: list[tuple[_Target, npt.NDArray[np.float32]]],
    ) -> None:
        if not scalars and not snapshots:
            return
        if self._writer is None:  # pragma: no cover - _setup always runs first
            raise RuntimeError("Any2VecProjector hook ran before setup")
        self._writer.submit(self._write, step, scalars, snapshots, self._summary)

    # -- background work -------------------------------------------------------------------

    def _write(
        self,
        step: int,
        scalars: dict[str, float],
        snapshots: list[tuple[_Target, npt.NDArray[np.float32]]],
        summary: Any,
    ) -> None:
        started = time.thread_time()
        try:
            with single_threaded_blas():
                self._write_now(step, scalars, snapshots, summary)
        finally:
            self.write_cpu_seconds += time.thread_time() - started

    def _write_now(
        self,
        step: int,
        scalars: dict[str, float],
        snapshots: list[tuple[_Target, npt.NDArray[np.float32]]],
        summary: Any,
    ) -> None:
        scalars = dict(scalars)
        texts: dict[str, str] = {}
        for target, rows in snapshots:
            images = None
            if self.sprites == "glyphs":
                images = self._sprites.get(target.tag)
                if images is None:
                    from .glyphs import glyph_images

                    images = self._sprites[target.tag] = glyph_images(target.labels)
            if target.prepared is None:
                target.prepared = prepare_metadata(target.metadata, target.header)
            self._projector.add_embedding(
                rows,
                metadata=target.prepared,
                label_img=images,
                global_step=step,
                tag=target.tag,
            )
            if self.insight or self.maps:
                evolution = self._maps.get(target.tag)
                if evolution is None:
                    evolution = self._maps[target.tag] = EvolutionMap(
                        max_rows=self.insight_max_rows,  # rows for drift and overlap
                        draw_rows=self.map_rows,  # rows drawn (probe words always)
                        neighbors_k=self.neighbors_k,
                        render=self.maps,
                        scalars=self.insight,
                        title=target.tag,
                        size=self.map_size,
                    )
                frame = evolution.update(rows, target.labels, step=step, highlight=target.probes)
                log_map(summary, frame, target.tag, image=self.maps, scalars=self.insight)
            if not self.insight:
                continue
            if target.probes:
                table = _insight.neighbor_table(
                    rows, target.labels, target.probes, self.neighbors_k
                )
                texts[f"{target.tag}/neighbors"] = (
                    f"Nearest neighbours (cosine) at step {step}, among the "
                    f"{len(rows)} words in the projector:\n\n"
                    + _insight.format_neighbor_table(table)
                )
        for name, value in scalars.items():
            summary.add_scalar(name, value, step)
        for name, text in texts.items():
            summary.add_text(name, text, step)

    # -- small helpers ---------------------------------------------------------------------

    def _warn_once(self, key: str, message: str, category: type[Warning]) -> bool:
        """Warn the first time ``key`` comes up; True if a warning was given."""
        if key in self._warned:
            return False
        self._warned.add(key)
        warnings.warn(message, category, stacklevel=4)
        return True


def fasttext_word_vectors(wv: Any, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """The current FastText vectors of vocabulary rows ``indices``, mid-training.

    gensim rebuilds ``wv.vectors`` from ``vectors_vocab`` and ``vectors_ngrams`` only after the
    last epoch (``FastTextKeyedVectors.adjust_vectors``), so inside a callback they still hold
    the previous state. This computes the same composition (the word's vector plus its
    subword-bucket vectors, averaged) for the selected rows only: its cost grows with the
    rows shown, not with the vocabulary (``adjust_vectors()`` loops over every word in Python,
    ~1 s per 100,000 words), and the model is not modified.

    Example:
        >>> from gensim.models import FastText
        >>> from gensim.test.utils import common_texts
        >>> model = FastText(common_texts, vector_size=4, min_count=1, epochs=1, workers=1)
        >>> rows = fasttext_word_vectors(model.wv, np.arange(3))
        >>> bool(np.allclose(rows, model.wv.vectors[:3], atol=1e-7))
        True
    """
    rows = np.array(wv.vectors_vocab[indices], dtype=np.float32)
    if not getattr(wv, "bucket", 0):
        return rows
    buckets_word = wv.buckets_word
    ngrams = wv.vectors_ngrams
    for row, index in enumerate(indices.tolist()):
        buckets = buckets_word[index]
        if len(buckets):
            rows[row] += ngrams[buckets].sum(axis=0)
        rows[row] /= len(buckets) + 1
    return rows


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def _read_words(words: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    from .selection import read_word_list

    return read_word_list(words)


def _str_lookup(index_to_key: Sequence[Any]) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for index, key in enumerate(index_to_key):
        lookup.setdefault(str(key), index)
    return lookup


def _counts(
    wv: Any, keys: Sequence[str], indices: Sequence[int], vocab_size: int
) -> list[int] | None:
    """Word counts, or None when the model has none or only fake ones."""
    try:
        counts = [int(wv.get_vecattr(index, "count")) for index in indices]
    except (KeyError, AttributeError, IndexError, ValueError):
        return None
    # Vectors loaded without a vocabulary file get count = vocab_size - index: not frequencies.
    if counts and all(c == vocab_size - i for c, i in zip(counts, indices, strict=True)):
        return None
    return counts


def _preview(items: Sequence[str], count: int = 5) -> str:
    shown = ", ".join(repr(item) for item in items[:count])
    return shown + (f" and {len(items) - count} more" if len(items) > count else "")
