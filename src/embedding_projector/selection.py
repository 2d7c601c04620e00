"""Which rows of a vocabulary to show — shared by the exporter and the gensim callback.

The projector loads only the first 100,000 rows, so a selection is *ordered*: the rows the
user asked for by name come first, then neighbourhoods, then the most frequent, then a random
sample. The same selection applied at every epoch keeps each point the same word at every step.

Example:
    >>> keys = ["the", "of", "king", "queen", "man"]
    >>> sel = select_keys(keys, limit=2, words=["queen", "prince"])
    >>> sel.keys, sel.missing
    (['queen', 'the', 'of'], ['prince'])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Selection", "nearest_neighbors", "read_word_list", "select_keys"]

#: Rows of the matrix compared per block when searching neighbours (bounds memory).
NEIGHBOR_BLOCK_ROWS = 65_536


@dataclass
class Selection:
    """An ordered choice of rows.

    Attributes:
        indices: row indices into the source, in display order.
        keys: the words/keys of those rows.
        reasons: why each row is there (``"word"``, ``"near:<query>"``, ``"top"``, ``"sample"``).
        missing: requested words that are not in the vocabulary, in request order.
    """

    indices: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.indices)

    def add(self, index: int, key: str, reason: str, seen: set[int]) -> None:
        if index not in seen:
            seen.add(index)
            self.indices.append(index)
            self.keys.append(key)
            self.reasons.append(reason)


def read_word_list(words: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    """A list of words, or a UTF-8 file with one word per line (blank lines ignored)."""
    if isinstance(words, (str, os.PathLike)):
        path = Path(words)
        if path.is_file():
            text = path.read_text(encoding="utf-8-sig")
            return [line.strip("\r\n") for line in text.split("\n") if line.strip()]
        if isinstance(words, str):
            return [words]
        raise FileNotFoundError(f"word list file not found: {path}")
    return [str(word) for word in words]


def select_keys(
    keys: Sequence[str],
    *,
    limit: int | None = None,
    words: str | os.PathLike[str] | Iterable[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
    key_to_index: Mapping[str, int] | None = None,
) -> Selection:
    """Select rows by name, by rank and by random sample, in that order, without duplicates.

    Args:
        keys: the vocabulary in source order (most frequent first in word2vec files).
        limit: the first ``limit`` keys.
        words: keys to show first (a list or a file, one per line); unknown ones are reported
            in ``missing``.
        sample: this many more keys drawn at random (seeded) from the rest.
        seed: the sample's random seed.
        key_to_index: an existing key -> index map (saves building one).

    With none of ``limit``, ``words`` or ``sample`` given, every key is selected.
    """
    for name, value in (("limit", limit), ("sample", sample)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")
    selection = Selection()
    seen: set[int] = set()
    if words is not None:
        lookup = key_to_index if key_to_index is not None else {k: i for i, k in enumerate(keys)}
        for word in read_word_list(words):
            index = lookup.get(word)
            if index is None:
                if word not in selection.missing:
                    selection.missing.append(word)
            else:
                selection.add(index, keys[index], "word", seen)
    if limit is not None:
        for index in range(min(limit, len(keys))):
            selection.add(index, keys[index], "top", seen)
    if sample is not None and sample > 0:
        rest = np.setdiff1d(
            np.arange(len(keys)), np.fromiter(seen, dtype=np.int64, count=len(seen))
        )
        rng = np.random.default_rng(seed)
        chosen = rng.choice(rest, size=min(sample, rest.size), replace=False)
        for index in np.sort(chosen).tolist():
            selection.add(index, keys[index], "sample", seen)
    if words is None and limit is None and sample is None:
        for index, key in enumerate(keys):
            selection.add(index, key, "top", seen)
    return selection


def nearest_neighbors(
    vectors: npt.NDArray[Any],
    queries: npt.NDArray[Any],
    k: int,
    *,
    block_rows: int = NEIGHBOR_BLOCK_ROWS,
    exclude_self: Sequence[int] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The ``k`` nearest rows of ``vectors`` to each query by cosine similarity.

    Works in blocks of ``block_rows`` rows so memory stays bounded for large vocabularies.
    ``exclude_self[i]`` (a row index) is never returned for query ``i``.

    Returns:
        (indices, similarities), each of shape (len(queries), k), best first.
    """
    queries = np.asarray(queries, dtype=np.float32)
    query_norms = np.linalg.norm(queries, axis=1, keepdims=True)
    queries = queries / np.where(query_norms == 0, 1, query_norms)
    count = len(queries)
    k = min(k, len(vectors) - (1 if exclude_self is not None else 0))
    best_index = np.full((count, 0), -1, dtype=np.int64)
    best_score = np.full((count, 0), -np.inf, dtype=np.float32)
    for start in range(0, len(vectors), block_rows):
        block = np.asarray(vectors[start : start + block_rows], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1)
        scores = (queries @ block.T) / np.where(norms == 0, 1, norms)
        if exclude_self is not None:
            for row, self_index in enumerate(exclude_self):
                if start <= self_index < start + len(block):
                    scores[row, self_index - start] = -np.inf
        merged_score = np.concatenate([best_score, scores.astype(np.float32)], axis=1)
        merged_index = np.concatenate(
            [best_index, np.broadcast_to(np.arange(start, start + len(block)), scores.shape)],
            axis=1,
        )
        top = np.argsort(-merged_score, axis=1, kind="stable")[:, :k]
        best_score = np.take_along_axis(merged_score, top, axis=1)
        best_index = np.take_along_axis(merged_index, top, axis=1)
    return best_index, best_score
