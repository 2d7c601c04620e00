"""How the gensim adapter reads a model: which rows it snapshots, and its training loss.

The row selection (most frequent words, a word list, probe words, Doc2Vec document vectors)
is made once per callback and kept, so every step shows the same words in the same rows.
Reading the rows mid-training needs care for FastText (:func:`fasttext_word_vectors`).

* **The loss is cumulative, per ``train()`` call, float32, and racy.**
  ``get_latest_training_loss()`` is the sum since the start of the current ``train()`` call
  (it restarts at 0 on the next call). The gensim callback logs the per-epoch difference. The sum is
  a float32: past 2**22 the differences lose precision and at 2**24 it stops growing (a
  warning is given and the loss is no longer logged for that call; train in several shorter
  ``train()`` calls to reset it). With ``workers > 1`` gensim's threads overwrite each other's
  running loss and the value is too low (warned; compare epochs, not absolute values). Only
  Word2Vec reports a loss: FastText and Doc2Vec always report 0.0, so for them no loss is
  logged and the log says so. Word2Vec needs ``compute_loss=True``.
* **FastText's word vectors are frozen during training** (gensim rebuilds them from the
  subword vectors after the last epoch). The callback composes the snapshotted rows itself,
  exactly as ``wv.adjust_vectors()`` does (see :func:`fasttext_word_vectors`), without
  touching the model.
* **Doc2Vec** has document vectors (``model.dv``, tag ``"docs"``) and word vectors (``"words"``);
  with ``dm=0`` and ``dbow_words=0`` the word vectors are never trained, so they are shown only
  when asked for (with a warning). Plain int tags leave ``dv.key_to_index`` empty; rows are
  taken from ``dv.index_to_key``. Document vectors have no counts.

Example:
    >>> default_probe_words(["the", "of", ",", "king", "a", "queen", "x"], 2)
    ['king', 'queen']
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..maps._arrays import check_int
from ..readers.selection import select_keys
from ..sink import SnapshotRequest
from ..sink._followed_rows import check_probe_rows

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_PROBE_COUNT",
    "FLOAT32_PRECISE_LOSS",
    "FLOAT32_STUCK_LOSS",
    "Doc2VecOptions",
    "LossTracker",
    "Target",
    "default_probe_words",
    "fasttext_word_vectors",
    "model_kind",
    "select_targets",
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

ModelKind = Literal["word2vec", "fasttext", "doc2vec"]
#: ``warn(key, message, category)``: warns once per key.
Warn = Callable[[str, str, type[Warning]], Any]


@dataclass(frozen=True)
class Doc2VecOptions:
    """What a Doc2Vec model shows besides its word vectors.

    Args:
        tag: projector tag of the document vectors.
        limit: how many document vectors to show (the first ones).
        show_words: show word vectors too. Default: unless ``dm=0`` without ``dbow_words``
            (then they are never trained).

    Example:
        >>> Doc2VecOptions(limit=50).tag
        'docs'
    """

    tag: str = "docs"
    limit: int = DEFAULT_LIMIT
    show_words: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tag, str) or not self.tag:
            raise ValueError(f"doc tag must be a non-empty string; got {self.tag!r}.")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0:
            raise ValueError(f"doc_limit must be an integer >= 0; got {self.limit!r}.")


@dataclass
class Target:
    """One embedding that is snapshotted: which rows, their labels, which rows are probes."""

    tag: str
    source: Literal["wv", "dv"]
    indices: npt.NDArray[np.int64]
    labels: list[str]
    metadata: list[list[str]]
    header: list[str]
    probes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class WordChoice:
    """The callback's word selection: ``limit`` most frequent, ``words``, probe rows."""

    tag: str
    limit: int | None
    words: list[str] | None
    probe_rows: list[str | int] | None

    @classmethod
    def make(
        cls,
        tag: str | None,
        limit: int | None,
        words: str | os.PathLike[str] | Iterable[str] | None,
        probe_rows: Iterable[str | int] | None,
    ) -> WordChoice:
        """Validate the callback's arguments (``ValueError`` naming the bad one)."""
        if limit is not None:
            check_int("limit", limit, minimum=0)
        if tag is not None and (not isinstance(tag, str) or not tag):
            raise ValueError(f"tag must be a non-empty string; got {tag!r}.")
        return cls(
            tag or "words",
            limit,
            None if words is None else read_words(words),
            None if probe_rows is None else list(check_probe_rows(probe_rows) or ()),
        )


def model_kind(model: Any) -> ModelKind:
    """``"doc2vec"``, ``"fasttext"`` or ``"word2vec"``."""
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


def select_targets(
    model: Any, kind: ModelKind, choice: WordChoice, docs: Doc2VecOptions, warn: Warn
) -> list[Target]:
    """The embeddings of ``model`` to snapshot (word vectors first, then document vectors)."""
    targets: list[Target] = []
    if kind == "doc2vec":
        targets.append(_doc_target(model, docs))
        pure_dbow = bool(getattr(model, "dbow", False)) and not getattr(model, "dbow_words", 0)
        wanted = docs.show_words if docs.show_words is not None else not pure_dbow
        if docs.show_words is None and choice.words is not None:
            wanted = True
        if wanted and pure_dbow:
            warn(
                "dbow",
                "This Doc2Vec model has dm=0 and dbow_words=0: its word vectors are never "
                f"trained, so the {choice.tag!r} snapshots will not change. Pass "
                "dbow_words=1 to Doc2Vec to train them, or show_words=False.",
                UserWarning,
            )
        elif not wanted and pure_dbow:
            logger.info("Doc2Vec with dm=0, dbow_words=0: word vectors not shown")
        if not wanted:
            return _enough_rows(targets, warn)
    targets.insert(0, _word_target(model, choice, warn))
    return _enough_rows(targets, warn)


def _enough_rows(targets: list[Target], warn: Warn) -> list[Target]:
    kept = []
    for target in targets:
        if len(target.indices) < 2:
            warn(
                f"too-few-{target.tag}",
                f"Only {len(target.indices)} row(s) selected for {target.tag!r}; the "
                "projector needs at least 2, so this embedding is not snapshotted. Pass a "
                "larger limit or more words.",
                UserWarning,
            )
        else:
            kept.append(target)
    return kept


def read_rows(model: Any, kind: ModelKind | None, target: Target) -> npt.NDArray[np.float32]:
    """The current vectors of ``target``'s rows (a copy), mid-training."""
    vectors = model.wv if target.source == "wv" else model.dv
    if getattr(vectors, "norms", None) is not None:
        # Keep gensim's cached norms in step for other callbacks' most_similar().
        vectors.fill_norms(force=True)
    if kind == "fasttext" and target.source == "wv":
        # FastText's wv.vectors stay frozen until the last epoch; compose the selected
        # rows from the word and subword vectors as wv.adjust_vectors() would.
        rows = fasttext_word_vectors(vectors, target.indices)
    else:
        rows = np.asarray(vectors.vectors[target.indices], dtype=np.float32)
    return rows


def _word_target(model: Any, choice: WordChoice, warn: Warn) -> Target:
    wv = model.wv
    keys = [str(key) for key in wv.index_to_key]
    limit = choice.limit if choice.limit is not None else (0 if choice.words else DEFAULT_LIMIT)
    lookup = _str_lookup(wv.index_to_key)
    selection = select_keys(keys, limit=limit, words=choice.words, key_to_index=lookup)
    if selection.missing:
        warn(
            "missing-words",
            f"{len(selection.missing)} of the requested words are not in the model's "
            f"vocabulary and are not shown: {preview(selection.missing)}.",
            UserWarning,
        )
    probes: list[str | int] = (
        choice.probe_rows
        if choice.probe_rows is not None
        else list(default_probe_words(selection.keys or keys))
    )
    probe_rows: list[int] = []
    seen = set(selection.indices)
    position = {index: row for row, index in enumerate(selection.indices)}
    unknown: list[str | int] = []
    for word in probes:
        index = lookup.get(word) if isinstance(word, str) else word
        if index is None or not 0 <= index < len(keys):
            unknown.append(word)
            continue
        selection.add(index, keys[index], "probe", seen)
        position.setdefault(index, len(selection.indices) - 1)
        probe_rows.append(position[index])
    if unknown and choice.probe_rows is not None:
        warn(
            "missing-probes",
            f"probe rows not in the vocabulary: {preview([str(row) for row in unknown])}; "
            "they get no neighbour table.",
            UserWarning,
        )
    indices = np.asarray(selection.indices, dtype=np.int64)
    counts = _counts(wv, selection.keys, selection.indices, len(keys))
    header = ["word", "rank"] + (["count"] if counts is not None else [])
    metadata = [
        [key, str(index + 1)] + ([str(counts[row])] if counts is not None else [])
        for row, (key, index) in enumerate(zip(selection.keys, selection.indices, strict=True))
    ]
    return Target(choice.tag, "wv", indices, list(selection.keys), metadata, header, probe_rows)


def _doc_target(model: Any, docs: Doc2VecOptions) -> Target:
    dv = model.dv
    # Plain int tags leave dv.key_to_index empty: index_to_key is the only reliable map.
    keys = [str(key) for key in dv.index_to_key]
    selection = select_keys(keys, limit=docs.limit, key_to_index=_str_lookup(keys))
    indices = np.asarray(selection.indices, dtype=np.int64)
    metadata = [
        [key, str(index)] for key, index in zip(selection.keys, selection.indices, strict=True)
    ]
    return Target(docs.tag, "dv", indices, list(selection.keys), metadata, ["tag", "index"])


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


def preview(items: Sequence[str], count: int = 5) -> str:
    """The first ``count`` items, quoted, and how many more."""
    shown = ", ".join(repr(item) for item in items[:count])
    return shown + (f" and {len(items) - count} more" if len(items) > count else "")


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


class LossTracker:
    """Per-epoch losses from gensim's cumulative, per-``train()``-call, float32 loss.

    Args:
        enabled: log a loss at all (``log_loss``).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._active = False
        self._seen = 0.0
        self._stuck = False
        self._said_no_loss = False

    def start(self, model: Any, kind: ModelKind | None, warn: Warn) -> None:
        """A ``train()`` call begins: the sum restarts; say what will not be logged and why."""
        self._seen, self._stuck, self._active = 0.0, False, False
        if not self.enabled:
            return
        if kind in ("fasttext", "doc2vec"):
            if not self._said_no_loss:
                self._said_no_loss = True
                import gensim

                logger.warning(
                    "%s does not report a training loss in gensim %s (it is always 0.0), so no "
                    "train/loss is logged; watch drift and neighbor_overlap instead.",
                    "FastText" if kind == "fasttext" else "Doc2Vec",
                    getattr(gensim, "__version__", "4"),
                )
            return
        if not getattr(model, "compute_loss", False):
            warn(
                "compute-loss",
                "Word2Vec is training without compute_loss=True, so no train/loss is logged. "
                "Pass compute_loss=True to Word2Vec(...) or to train(...), or log_loss=False "
                "to the callback.",
                UserWarning,
            )
            return
        self._active = True
        workers = int(getattr(model, "workers", 1) or 1)
        if workers > 1:
            warn(
                "workers",
                f"With workers={workers}, gensim's threads overwrite each other's running loss, "
                "so train/loss is too low; compare epochs with each other, or train with "
                "workers=1 for true values.",
                UserWarning,
            )

    def epoch_loss(self, model: Any, warn: Warn) -> float | None:
        """This epoch's share of the cumulative loss (None: not logged)."""
        if not self._active or self._stuck:
            return None
        cumulative = float(model.get_latest_training_loss())
        if cumulative >= FLOAT32_STUCK_LOSS:
            self._stuck = True
            warn(
                "loss-stuck",
                "gensim's running loss (a float32 summed over one train() call) reached "
                "2**24 = 16,777,216 and stopped growing, so train/loss is no longer logged "
                "for this train() call. Train in shorter train() calls (each one restarts "
                "the sum) to keep a loss curve.",
                RuntimeWarning,
            )
            return None
        if cumulative > FLOAT32_PRECISE_LOSS:
            warn(
                "loss-imprecise",
                "gensim's running loss (a float32) passed 2**22 = 4,194,304: per-epoch "
                "losses are imprecise from here and stop at 2**24. Train in shorter "
                "train() calls to keep them exact.",
                RuntimeWarning,
            )
        loss = cumulative - self._seen if math.isfinite(cumulative) else None
        self._seen = cumulative
        return loss


def read_words(words: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    from ..readers.selection import read_word_list

    return read_word_list(words)


def training_scalars(
    model: Any, loss: float | None, epoch_in_train: int, epoch_started: float | None
) -> dict[str, float]:
    """``train/loss`` (the epoch's, when known), ``train/learning_rate`` and
    ``train/words_per_sec`` (from the epoch's start, by the wall clock) after an epoch."""
    scalars: dict[str, float] = {}
    if loss is not None:
        scalars["train/loss"] = loss
    alpha: Any = getattr(model, "min_alpha_yet_reached", None)
    epochs = int(getattr(model, "epochs", 0) or 0)
    if alpha is None and epochs:
        progress = epoch_in_train / epochs
        alpha = model.alpha - (model.alpha - model.min_alpha) * progress
    if alpha is not None:
        scalars["train/learning_rate"] = float(alpha)
    words = getattr(model, "corpus_total_words", None)
    if epoch_started is not None and words:
        elapsed = time.perf_counter() - epoch_started
        if elapsed > 0:
            scalars["train/words_per_sec"] = float(words) / elapsed
    return scalars


def train_snapshot_count(start: int, epochs: int, every_n_epochs: int, at_start: bool) -> int:
    """Snapshots one ``train()`` call of ``epochs`` epochs from step ``start`` writes: the due
    epochs, its last epoch (always) and the random start when asked."""
    last = start + epochs
    due = [s for s in range(start + 1, last + 1) if s % every_n_epochs == 0 or s == last]
    return len(due) + int(at_start)


_SOURCE_NAMES = {"wv": "word vectors", "dv": "document vectors"}


def capture(
    model: Any,
    kind: ModelKind | None,
    targets: Sequence[Target],
    step: int,
    sprites: Any,
    warn: Callable[[str, str, type[Warning]], bool],
) -> list[SnapshotRequest]:
    """A copy of each target's selected rows, as requests for the sink; a target with NaN or
    infinite rows is skipped with one warning (training diverged)."""
    captured = []
    for target in targets:
        rows = read_rows(model, kind, target)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            warn(
                f"nonfinite-{target.tag}",
                f"{int((~finite).sum())} of {len(rows)} {_SOURCE_NAMES[target.source]} "
                f"in {target.tag!r} are NaN or infinite at step {step} (training diverged?); "
                "snapshot skipped. Try a smaller alpha.",
                RuntimeWarning,
            )
            continue
        captured.append(
            SnapshotRequest(
                target.tag,
                rows,
                labels=target.metadata,
                header=target.header,
                sprites=sprites,
                probes=target.probes,
                row_noun="words",
            )
        )
    return captured
