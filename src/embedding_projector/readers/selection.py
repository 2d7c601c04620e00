"""Which rows of a vocabulary to show — shared by the exporter and the gensim callback.

The projector loads only the first 100,000 rows, so a selection is *ordered*: the rows the
user asked for by name come first, then neighbourhoods, then the most frequent, then a random
sample. The same selection applied at every epoch keeps each point the same word at every step.

The pieces also work incrementally (:class:`NeighborSearch`, :class:`SampleReservoir`), so a
reader can select from a file that it streams once instead of loading it; with the same
arguments both ways give the same rows.

Example:
    >>> keys = ["the", "of", "king", "queen", "man"]
    >>> sel = select_keys(keys, limit=2, words=["queen", "prince"])
    >>> sel.keys, sel.missing
    (['queen', 'the', 'of'], ['prince'])
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "NeighborSearch",
    "RowBlocks",
    "RowSelection",
    "SampleReservoir",
    "Selection",
    "nearest_neighbors",
    "read_word_list",
    "select_keys",
]

#: Rows of the matrix compared per block when searching neighbours (bounds memory).
NEIGHBOR_BLOCK_ROWS = 65_536

REASON_WORD = "word"
REASON_TOP = "top"
REASON_SAMPLE = "sample"
REASON_NEAR_PREFIX = "near:"


@dataclass
class Selection:
    """An ordered choice of rows.

    Attributes:
        indices: row indices into the source, in display order.
        keys: the words/keys of those rows.
        reasons: why each row is there (``"word"``, ``"near:<query>"``, ``"top"``, ``"sample"``).
        missing: requested words that are not in the vocabulary, in request order.
        missing_near: ``near`` query words that are not in the vocabulary, in request order.
    """

    indices: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    missing_near: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.indices)

    def add(self, index: int, key: str, reason: str, seen: set[int]) -> None:
        if index not in seen:
            seen.add(index)
            self.indices.append(index)
            self.keys.append(key)
            self.reasons.append(reason)


@dataclass(frozen=True)
class RowSelection:
    """Which rows to show: ``words``, then ``near``, then ``limit``, then ``sample``.

    One object for the selection options that the exporter, :func:`~embedding_projector.
    readers.load_rows` and the compare feature share. With nothing set, every row is selected.

    Attributes:
        limit: the first ``limit`` rows (frequency order in word2vec files).
        words: rows to show first, by label: a list, or a UTF-8 file with one per line.
        near: query labels; each one and its ``near_k`` nearest rows by cosine similarity.
        near_k: neighbours per query.
        sample: this many seeded random rows of the rest.
        seed: the sample's seed.

    Raises:
        ValueError: a negative or non-integer count, or a seed that is not an integer.

    Example:
        >>> RowSelection(limit=1000, near=["king"], near_k=20).kinds()
        ['near', 'limit']
        >>> RowSelection().everything
        True
    """

    limit: int | None = None
    words: str | os.PathLike[str] | Sequence[str] | None = None
    near: str | Sequence[str] | None = None
    near_k: int = 10
    sample: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("limit", "sample", "near_k"):
            check_count(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer; got {self.seed!r}.")
        if self.words is not None and not isinstance(self.words, (str, os.PathLike)):
            object.__setattr__(self, "words", tuple(str(word) for word in self.words))
        if self.near is not None:
            object.__setattr__(self, "near", tuple(unique_in_order(as_word_list(self.near))))

    @property
    def everything(self) -> bool:
        """True when nothing narrows the selection (every row is selected)."""
        return self.kinds() == []

    def kinds(self) -> list[str]:
        """The kinds of selection in use, in display order (``words``, ``near``, ...)."""
        return [
            name for name in ("words", "near", "limit", "sample") if getattr(self, name) is not None
        ]

    def word_list(self) -> list[str] | None:
        """``words`` as a list (read from the file when it names one), or None."""
        return read_word_list(self.words) if self.words is not None else None

    def near_list(self) -> list[str] | None:
        """``near`` as a list of distinct queries, or None."""
        return list(self.near) if self.near is not None else None


def read_word_list(words: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    """A list of words, or a UTF-8 file with one word per line (blank lines ignored)."""
    if isinstance(words, (str, os.PathLike)) and Path(words).is_file():
        text = Path(words).read_text(encoding="utf-8-sig")
        return [line.strip("\r\n") for line in text.split("\n") if line.strip()]
    if isinstance(words, str):
        return [words]
    if isinstance(words, os.PathLike):
        raise FileNotFoundError(f"word list {os.fspath(words)!r} is not a file")
    return [str(word) for word in words]


def as_word_list(words: str | Iterable[str]) -> list[str]:
    """One word (a string) or several (any iterable), as a list; never read from a file."""
    return [words] if isinstance(words, str) else [str(word) for word in words]


def unique_in_order(words: Iterable[str]) -> list[str]:
    """The words without repeats, first occurrence kept."""
    return list(dict.fromkeys(words))


def check_count(name: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is None or a non-negative int."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0
    ):
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")


class SampleReservoir:
    """A seeded uniform sample without replacement, drawn in one pass over a stream.

    Every row (in source order) gets a uniform random priority from ``numpy``'s generator
    seeded with ``seed``; the sample is the ``size`` eligible rows with the smallest
    priorities. That is the same rule :func:`select_keys` applies to a whole vocabulary at
    once, so a streamed file and the loaded vectors give the same sample. ``slack`` extra rows
    are kept for rows that a later step may disqualify (neighbours found only at the end).

    Example:
        >>> reservoir = SampleReservoir(2, seed=0)
        >>> for start in (0, 3):
        ...     priorities = reservoir.priorities(3)
        ...     for offset in range(3):
        ...         reservoir.offer(float(priorities[offset]), start + offset, None)
        >>> [index for index, _ in reservoir.chosen()]
        [2, 3]
        >>> sample_indices(6, 2, seed=0)  # the same rule, all at once
        [2, 3]
    """

    def __init__(self, size: int, *, seed: int = 0, slack: int = 0) -> None:
        self.size = size
        self.capacity = size + slack
        self._rng = np.random.default_rng(seed)
        # max-heap on priority via negation; ties broken by larger index first out.
        self._heap: list[tuple[float, int, Any]] = []

    def priorities(self, count: int) -> npt.NDArray[np.float64]:
        """The priorities of the next ``count`` rows of the stream (call once per row, in order)."""
        return self._rng.random(count)

    @property
    def threshold(self) -> float:
        """Rows with a priority at or above this cannot enter the sample any more."""
        if len(self._heap) < self.capacity:
            return float("inf")
        return -self._heap[0][0]

    def offer(self, priority: float, index: int, payload: Any) -> None:
        """Consider one eligible row."""
        if self.capacity <= 0:
            return
        item = (-priority, -index, payload)
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def chosen(
        self, size: int | None = None, exclude: set[int] | None = None
    ) -> list[tuple[int, Any]]:
        """``(index, payload)`` of the sample (``size`` smallest priorities), in index order."""
        size = self.size if size is None else size
        ranked = sorted((-neg_p, -neg_i, payload) for neg_p, neg_i, payload in self._heap)
        picked = [
            (index, payload)
            for _, index, payload in ranked
            if exclude is None or index not in exclude
        ][:size]
        return sorted(picked, key=lambda pair: pair[0])


def sample_indices(
    count: int, size: int, *, seed: int = 0, exclude: set[int] | None = None
) -> list[int]:
    """``size`` indices out of ``range(count)`` minus ``exclude``, uniformly, in index order.

    Same rule as :class:`SampleReservoir`: the eligible rows with the smallest seeded priorities.
    """
    priorities = np.random.default_rng(seed).random(count)
    eligible = np.ones(count, dtype=bool)
    if exclude:
        eligible[np.fromiter(exclude, dtype=np.int64, count=len(exclude))] = False
    candidates = np.flatnonzero(eligible)
    size = min(size, candidates.size)
    if size == 0:
        return []
    order = np.lexsort((candidates, priorities[candidates]))[:size]
    return sorted(candidates[order].tolist())


class NeighborSearch:
    """The ``k`` nearest rows by cosine similarity to each query, fed block by block.

    Memory is bounded by one block plus ``k`` rows per query, so a vocabulary can be searched
    while it is being read from a file.

    Args:
        queries: (Q, D) query vectors.
        k: neighbours per query.
        exclude_self: for each query, a row index never returned for it (its own row), or None.
        keep_vectors: also keep the vectors of the current best rows (for streamed sources).

    Example:
        >>> vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> search = NeighborSearch(vectors[:1], 1, exclude_self=[0])
        >>> search.update(0, vectors)
        >>> search.indices.tolist()
        [[1]]
    """

    def __init__(
        self,
        queries: npt.ArrayLike,
        k: int,
        *,
        exclude_self: Sequence[int | None] | None = None,
        keep_vectors: bool = False,
    ) -> None:
        query_array = np.asarray(queries, dtype=np.float32)
        norms = np.linalg.norm(query_array, axis=1, keepdims=True)
        self._queries = query_array / np.where(norms == 0, 1, norms)
        self.k = max(int(k), 0)
        self._exclude = list(exclude_self) if exclude_self is not None else None
        self._keep_vectors = keep_vectors
        count = len(query_array)
        self.indices: npt.NDArray[np.int64] = np.full((count, 0), -1, dtype=np.int64)
        self.scores: npt.NDArray[np.float32] = np.full((count, 0), -np.inf, dtype=np.float32)
        self.vectors: npt.NDArray[np.float32] | None = (
            np.zeros((count, 0, query_array.shape[1]), dtype=np.float32) if keep_vectors else None
        )

    def update(
        self,
        start: int,
        block: npt.ArrayLike,
        row_indices: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Feed rows ``start, start + 1, ...`` (or the explicit ``row_indices``) of the source."""
        block_array = np.asarray(block, dtype=np.float32)
        if self.k == 0 or len(block_array) == 0 or len(self._queries) == 0:
            return
        if row_indices is None:
            row_indices = np.arange(start, start + len(block_array), dtype=np.int64)
        norms = np.sqrt(np.einsum("ij,ij->i", block_array, block_array))
        scores = (block_array @ self._queries.T).T / np.where(norms == 0, 1, norms)
        scores = np.ascontiguousarray(scores, dtype=np.float32)
        if self._exclude is not None:
            low, high = int(row_indices.min()), int(row_indices.max())
            for row, self_index in enumerate(self._exclude):
                if self_index is not None and low <= self_index <= high:
                    hits = np.flatnonzero(row_indices == self_index)
                    scores[row, hits] = -np.inf
        scores[np.isnan(scores)] = -np.inf
        if scores.shape[1] > self.k:
            # Only columns among some query's k best in this block can enter any top k.
            kth = np.partition(scores, scores.shape[1] - self.k, axis=1)[:, -self.k]
            candidates = np.flatnonzero((scores >= kth[:, None]).any(axis=0))
            scores = scores[:, candidates]
            row_indices = row_indices[candidates]
            block_array = block_array[candidates]
        merged_score = np.concatenate([self.scores, scores], axis=1)
        merged_index = np.concatenate(
            [self.indices, np.broadcast_to(row_indices, scores.shape)], axis=1
        )
        # Best first; equal scores keep the lower row index first (stable on the merged order).
        top = np.argsort(-merged_score, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(merged_score, top, axis=1)
        self.indices = np.take_along_axis(merged_index, top, axis=1)
        if self.vectors is not None:
            width = self.vectors.shape[1]
            new_rows = block_array[np.clip(top - width, 0, len(block_array) - 1)]
            if width:
                kept = self.vectors[np.arange(len(top))[:, None], np.minimum(top, width - 1)]
                new_rows = np.where((top < width)[..., None], kept, new_rows)
            self.vectors = np.ascontiguousarray(new_rows, dtype=np.float32)

    def neighbors(self, query: int) -> list[tuple[int, float]]:
        """``(row index, cosine similarity)`` of one query's neighbours so far, best first."""
        return [
            (int(index), float(score))
            for index, score in zip(self.indices[query], self.scores[query], strict=True)
            if np.isfinite(score)
        ]


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
    k = min(k, len(vectors) - (1 if exclude_self is not None else 0))
    search = NeighborSearch(queries, k, exclude_self=exclude_self)
    for start in range(0, len(vectors), block_rows):
        search.update(start, vectors[start : start + block_rows])
    return search.indices, search.scores


@runtime_checkable
class RowBlocks(Protocol):
    """A matrix read on demand: the rows asked for, or every row a block at a time.

    What :func:`select_keys` needs to search ``near`` without holding the matrix in memory.
    """

    def __len__(self) -> int: ...

    def take(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The rows ``indices`` (in that order), float32."""
        ...

    def blocks(self) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        """``(first row, rows)`` for consecutive blocks covering every row once."""
        ...


def _neighbours_of(
    vectors: npt.NDArray[Any] | RowBlocks, rows: list[int], k: int
) -> list[list[int]]:
    """The ``k`` nearest rows to each of ``rows`` (excluding itself), best first."""
    if isinstance(vectors, RowBlocks) and not isinstance(vectors, np.ndarray):
        search = NeighborSearch(
            vectors.take(np.asarray(rows, dtype=np.int64)), k, exclude_self=list(rows)
        )
        for start, block in vectors.blocks():
            search.update(start, block)
        return [[index for index, _ in search.neighbors(q)] for q in range(len(rows))]
    matrix = np.asarray(vectors)
    neighbours, _ = nearest_neighbors(matrix, matrix[rows], k, exclude_self=rows)
    return [list(row) for row in neighbours.tolist()]


def _add_near(
    selection: Selection,
    seen: set[int],
    keys: Sequence[str],
    index_of: Callable[[str], int | None],
    queries: list[str],
    near_k: int,
    vectors: npt.NDArray[Any] | RowBlocks | None,
) -> None:
    """Add each query and its ``near_k`` nearest rows (unknown queries go to missing_near)."""
    if queries and vectors is None:
        raise ValueError("near needs the vectors to search: pass vectors=.")
    found: list[tuple[str, int]] = []
    for query in queries:
        index = index_of(query)
        if index is None:
            selection.missing_near.append(query)
        else:
            found.append((query, index))
    if found and vectors is not None:
        neighbours = _neighbours_of(vectors, [i for _, i in found], near_k)
        for (query, index), row in zip(found, neighbours, strict=True):
            reason = REASON_NEAR_PREFIX + query
            selection.add(index, keys[index], reason, seen)
            for neighbour in row:
                selection.add(neighbour, keys[neighbour], reason, seen)


def select_keys(
    keys: Sequence[str],
    *,
    limit: int | None = None,
    words: str | os.PathLike[str] | Iterable[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
    key_to_index: Mapping[str, int] | None = None,
    near: str | Iterable[str] | None = None,
    near_k: int = 10,
    vectors: npt.NDArray[Any] | RowBlocks | None = None,
) -> Selection:
    """Select rows by name, neighbourhood, rank and random sample, in that order, no duplicates.

    Args:
        keys: the vocabulary in source order (most frequent first in word2vec files).
        limit: the first ``limit`` keys.
        words: keys to show first (a list or a file, one per line); unknown ones are reported
            in ``missing``.
        sample: this many more keys drawn at random (seeded) from the rest.
        seed: the sample's random seed.
        key_to_index: an existing key -> index map (saves building one).
        near: query keys; each one and its ``near_k`` nearest rows by cosine similarity come
            after ``words`` (unknown queries are reported in ``missing_near``).
        near_k: neighbours per query.
        vectors: the (N, D) matrix (or a :class:`RowBlocks` that reads it block by block, such
            as a memory-mapped or streamed file), needed only for ``near``.

    With none of ``limit``, ``words``, ``near`` or ``sample`` given, every key is selected.

    Raises:
        ValueError: a count is negative or not an integer, or ``near`` without ``vectors``.
    """
    check_count("limit", limit)
    check_count("sample", sample)
    check_count("near_k", near_k)
    selection = Selection()
    seen: set[int] = set()
    lookup: Mapping[str, int] | None = key_to_index

    def index_of(word: str) -> int | None:
        nonlocal lookup
        if lookup is None:
            built: dict[str, int] = {}
            for i, k in enumerate(keys):
                built.setdefault(k, i)
            lookup = built
        return lookup.get(word)

    if words is not None:
        for word in read_word_list(words):
            index = index_of(word)
            if index is None:
                if word not in selection.missing:
                    selection.missing.append(word)
            else:
                selection.add(index, keys[index], REASON_WORD, seen)
    if near is not None:
        _add_near(
            selection, seen, keys, index_of, unique_in_order(as_word_list(near)), near_k, vectors
        )
    if limit is not None:
        for index in range(min(limit, len(keys))):
            selection.add(index, keys[index], REASON_TOP, seen)
    if sample is not None and sample > 0:
        for index in sample_indices(len(keys), sample, seed=seed, exclude=seen):
            selection.add(index, keys[index], REASON_SAMPLE, seen)
    if words is None and limit is None and sample is None and near is None:
        for index, key in enumerate(keys):
            selection.add(index, key, REASON_TOP, seen)
    return selection
