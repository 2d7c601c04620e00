"""What changed between two snapshots of an embedding: alignment, drift, neighbourhoods.

Pure numpy, generic over ``(matrix, labels)`` so that every callback (gensim, Lightning) and the
aligned maps share one implementation. Row ``i`` of two snapshots must be the same item (the
callbacks keep their row selection fixed); :func:`match_rows` pairs rows by label otherwise.

* **Alignment.** Embeddings trained from random initialisations, or just trained further, are
  free to rotate: a rotation changes no cosine similarity. :func:`orthogonal_procrustes` finds
  the rotation (or reflection) ``R`` that best maps one snapshot onto the previous one on their
  shared rows; :func:`align` applies it.
* **Cosine frame.** Drift, neighbours and similarities are measured on *mean-centred* unit
  rows (:func:`centered_unit_rows`): each row scaled to length 1, then the mean of those rows
  removed. Word vectors often share one dominant direction (on gensim's lee corpus the mean
  pairwise cosine exceeds 0.99), so plain cosines all read ~1.00 and a still-moving embedding
  looks frozen; centring removes the shared direction and keeps what tells rows apart.
* **Drift.** :func:`drift` is the mean cosine distance (centred) of each row to its previous
  vector after alignment: large while the embedding is still moving, near zero once training
  has converged. :func:`row_drift` gives the per-row distances.
* **Neighbour overlap.** :func:`neighbor_overlap` is the mean fraction of each row's ``k``
  nearest neighbours (centred cosine) that were also its neighbours before: 1.0 means every
  neighbourhood is stable. It needs no alignment at all.
* **Neighbour tables.** :func:`neighbor_table` lists the nearest neighbours of a few probe rows;
  :func:`format_neighbor_table` renders them as a Markdown table for TensorBoard's TEXT tab.

Cost is bounded: every function works on at most ``max_rows`` rows (the first ones; callers
order rows most important first), so an epoch hook stays cheap for large vocabularies.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> before = rng.normal(size=(50, 8))
    >>> rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    >>> after = before @ rotation                # same embedding, rotated
    >>> round(drift(before, after), 6)
    0.0
    >>> neighbor_overlap(before, after, k=5)
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._alignment import (  # re-exported: insight is their public home
    Alignment,
    _matrix,
    centered_unit_rows,
    fit_alignment,
    orthogonal_procrustes,
    unit_rows,
)

__all__ = [
    "DEFAULT_MAX_ROWS",
    "Alignment",
    "Neighbors",
    "align",
    "centered_unit_rows",
    "drift",
    "fit_alignment",
    "format_neighbor_table",
    "match_rows",
    "nearest_neighbor_sets",
    "nearest_neighbors",
    "neighbor_overlap",
    "neighbor_table",
    "orthogonal_procrustes",
    "overlap_of_neighbor_sets",
    "row_drift",
]

#: Rows used by :func:`drift` and :func:`neighbor_overlap` unless told otherwise. The k-NN
#: search is quadratic in this (1,000 rows: a 1,000 x 1,000 similarity matrix, ~10-30 ms).
DEFAULT_MAX_ROWS = 1000

_FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Neighbors:
    """The nearest neighbours of one probe row.

    Attributes:
        query: the probe's label.
        labels: neighbour labels, nearest first.
        similarities: their cosine similarities to the probe, on mean-centred unit rows
            (see :func:`centered_unit_rows`).
    """

    query: str
    labels: list[str]
    similarities: list[float]


def _pair(previous: Any, current: Any) -> tuple[_FloatArray, _FloatArray]:
    prev, cur = _matrix(previous, "previous"), _matrix(current, "current")
    if prev.shape != cur.shape:
        raise ValueError(
            f"previous and current must have the same shape (row i is the same item in both); "
            f"got {prev.shape} and {cur.shape}. Use match_rows() to pair rows by label first."
        )
    return prev, cur


def _check_max_rows(max_rows: int | None) -> None:
    if max_rows is not None and (isinstance(max_rows, bool) or max_rows < 2):
        raise ValueError(f"max_rows must be None or an integer >= 2; got {max_rows!r}.")


def _head(matrix: _FloatArray, max_rows: int | None) -> _FloatArray:
    return matrix if max_rows is None else matrix[:max_rows]


def match_rows(
    previous_labels: Sequence[str], current_labels: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pair the rows of two snapshots that carry the same label.

    Args:
        previous_labels: labels of the previous snapshot's rows.
        current_labels: labels of the current snapshot's rows.

    Returns:
        ``(previous_index, current_index)``: row indices of the shared labels, in the current
        snapshot's order (the first occurrence of a repeated label wins).

    Example:
        >>> match_rows(["a", "b", "c"], ["c", "x", "a"])
        (array([2, 0]), array([0, 2]))
    """
    if list(previous_labels) == list(current_labels) and len(set(current_labels)) == len(
        current_labels
    ):  # the usual case, the same rows at every step: C-level comparisons only
        same = np.arange(len(current_labels), dtype=np.int64)
        return same, same.copy()
    lookup: dict[str, int] = {}
    for index, label in enumerate(previous_labels):
        lookup.setdefault(label, index)
    prev_index, cur_index = [], []
    seen: set[str] = set()
    for index, label in enumerate(current_labels):
        if label in lookup and label not in seen:
            seen.add(label)
            prev_index.append(lookup[label])
            cur_index.append(index)
    return np.asarray(prev_index, dtype=np.int64), np.asarray(cur_index, dtype=np.int64)


def align(
    current: Any,
    previous: Any,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    normalize: bool = True,
) -> _FloatArray:
    """Rotate ``current`` onto ``previous`` (orthogonal Procrustes on their shared rows).

    Args:
        current: (N, D) snapshot to rotate.
        previous: (N, D) snapshot to rotate onto; row ``i`` is the same item in both.
        max_rows: fit the rotation on at most this many (leading) rows; all rows are rotated.
        normalize: fit on unit-length rows, so that cosine geometry (not vector length)
            decides the rotation.

    Returns:
        ``current @ R`` in ``current``'s dtype. Cosine similarities within it are unchanged.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> prev = rng.normal(size=(20, 3))
        >>> q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        >>> np.allclose(align(prev @ q, prev), prev)
        True
    """
    _check_max_rows(max_rows)
    prev, cur = _pair(previous, current)
    fit_cur, fit_prev = _head(cur, max_rows), _head(prev, max_rows)
    if normalize:
        fit_cur, fit_prev = unit_rows(fit_cur), unit_rows(fit_prev)
    rotation = orthogonal_procrustes(fit_cur, fit_prev)
    return np.asarray(cur @ rotation.astype(cur.dtype, copy=False), dtype=cur.dtype)


#: Similarity scores held at once by :func:`nearest_neighbors` (16 MiB of float32): large
#: enough for BLAS to run near its peak on the batch's matrix product.
SCORE_BLOCK_VALUES = 1 << 22
#: ... and at most this many query rows per batch.
SCORE_BATCH_ROWS = 1024
#: Columns per chunk in the top-k pass: the ``k`` chunks with the highest maxima hold a
#: row's ``k`` best scores, so only those are partitioned (a max over every score is ~5x
#: cheaper than ``argpartition`` over every score).
_TOP_K_CHUNK = 64


def _top_k_columns(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """The columns of each row's ``k`` highest scores (unordered; ties broken arbitrarily).

    Exact: the ``k`` chunks whose maxima are highest hold ``k`` scores at least as high as
    any score outside them, so a row's top ``k`` can be taken among those chunks alone.
    """
    rows, columns = scores.shape
    chunks = columns // _TOP_K_CHUNK
    if chunks < 4 * k:
        return np.argpartition(scores, columns - k, axis=1)[:, columns - k :].astype(np.int64)
    body_width = chunks * _TOP_K_CHUNK
    # Chunk c holds columns c, c + chunks, c + 2 chunks, ...: its maxima are then an
    # elementwise maximum of contiguous runs (SIMD), ~2.5x faster than a max per short run.
    body = scores[:, :body_width].reshape(rows, _TOP_K_CHUNK, chunks)
    peaks = body.max(axis=1)
    best = np.argpartition(peaks, chunks - k, axis=1)[:, chunks - k :]
    candidates = body[np.arange(rows)[:, None], :, best].reshape(rows, -1)
    offsets = np.arange(_TOP_K_CHUNK, dtype=np.int64) * chunks
    candidate_columns = (best[:, :, None].astype(np.int64) + offsets).reshape(rows, -1)
    if body_width < columns:  # the last, partial chunk always stays a candidate
        candidates = np.hstack([candidates, scores[:, body_width:]])
        tail = np.arange(body_width, columns, dtype=np.int64)
        candidate_columns = np.hstack([candidate_columns, np.broadcast_to(tail, (rows, len(tail)))])
    width = candidates.shape[1]
    pick = np.argpartition(candidates, width - k, axis=1)[:, width - k :]
    return np.take_along_axis(candidate_columns, pick, axis=1)


def nearest_neighbors(
    matrix: Any,
    queries: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
    k: int = 10,
    *,
    centered: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Exact ``k`` nearest rows of ``matrix`` to some of its rows (or all), by cosine.

    The one neighbour search of the package: compare's overlaps, the callbacks' neighbour
    tables and overlap scalars all go through it. Scores come from float32 matrix products
    over batches of queries (about ``SCORE_BLOCK_VALUES`` scores each); each batch's top
    ``k`` is found in one pass (:func:`_top_k_columns`), then sorted.

    Args:
        matrix: (N, D) rows.
        queries: row indices to search for (default: every row); a query is never its own
            neighbour.
        k: neighbours per query (capped at N - 1).
        centered: cosine on mean-centred unit rows (:func:`centered_unit_rows`, the frame of
            every measure here); ``False``: plain cosine.
        progress: called as ``progress(queries_done, queries)`` after each batch.

    Returns:
        ``(indices, similarities)``, each (queries, k), nearest first.

    Raises:
        ValueError: fewer than 2 rows, or ``k < 1``.

    Example:
        >>> import numpy as np
        >>> m = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, -0.5]])
        >>> nearest_neighbors(m, [0], k=2, centered=False)[0].tolist()
        [[1, 2]]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    array = _matrix(matrix, "matrix").astype(np.float32, copy=False)
    rows = array.shape[0]
    if rows < 2:
        raise ValueError(f"finding neighbours needs at least 2 rows; got {rows}.")
    k = min(int(k), rows - 1)
    unit = unit_rows(centered_unit_rows(array)) if centered else unit_rows(array)
    unit = np.ascontiguousarray(unit, dtype=np.float32)
    wanted = np.arange(rows) if queries is None else np.asarray(queries, dtype=np.int64)
    count = len(wanted)
    indices = np.empty((count, k), dtype=np.int64)
    similarities = np.empty((count, k), dtype=np.float32)
    batch = max(1, min(count, SCORE_BATCH_ROWS, SCORE_BLOCK_VALUES // rows))
    for start in range(0, count, batch):
        part = wanted[start : start + batch]
        scores = unit[part] @ unit.T
        scores[np.arange(len(part)), part] = -np.inf
        top = _top_k_columns(scores, k)
        values = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        indices[start : start + len(part)] = np.take_along_axis(top, order, axis=1)
        similarities[start : start + len(part)] = np.take_along_axis(values, order, axis=1)
        if progress is not None:
            progress(start + len(part), count)
    return indices, similarities


def row_drift(
    previous: Any,
    current: Any,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    aligned: bool = True,
) -> npt.NDArray[np.float64]:
    """Each row's cosine distance to its previous vector, on mean-centred unit rows.

    Both snapshots go to their own cosine frame first (:func:`centered_unit_rows`, centred on
    the rows used); with ``aligned``, the current frame is then rotated onto the previous one
    (:func:`fit_alignment` on those rows).

    Args:
        previous: (N, D) earlier snapshot.
        current: (N, D) later snapshot, row ``i`` the same item as in ``previous``.
        max_rows: use at most this many (leading) rows.
        aligned: rotate ``current`` onto ``previous`` first (a pure rotation is no drift).

    Returns:
        (min(N, max_rows),) float64 distances in [0, 2].

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        >>> row_drift(x, -x, aligned=False).tolist()
        [2.0, 2.0, 2.0, 2.0]
    """
    _check_max_rows(max_rows)
    prev, cur = _pair(previous, current)
    prev, cur = _head(prev, max_rows), _head(cur, max_rows)
    if len(prev) == 0:
        return np.zeros(0)
    if aligned and len(prev) >= 2:
        return fit_alignment(cur, prev).distances(cur, prev)
    frames = centered_unit_rows(prev.astype(np.float64)), centered_unit_rows(cur.astype(np.float64))
    cosine = np.einsum("ij,ij->i", unit_rows(frames[0]), unit_rows(frames[1]))
    return np.asarray(1.0 - np.clip(cosine, -1.0, 1.0), dtype=np.float64)


def drift(
    previous: Any,
    current: Any,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    aligned: bool = True,
) -> float:
    """Mean cosine distance of each row to its previous vector, after alignment.

    Measured on mean-centred unit rows (see :func:`centered_unit_rows` and :func:`row_drift`):
    with raw cosines, vectors that share one dominant direction read as frozen (drift ~1e-6)
    while their neighbourhoods still change.

    Args:
        previous: (N, D) earlier snapshot.
        current: (N, D) later snapshot, row ``i`` the same item as in ``previous``.
        max_rows: use at most this many (leading) rows.
        aligned: rotate ``current`` onto ``previous`` first (a pure rotation is no drift).

    Returns:
        A number in [0, 2]: 0 when nothing moved (up to rotation and scale).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        >>> drift(x, -x, aligned=False)
        2.0
    """
    distances = row_drift(previous, current, max_rows=max_rows, aligned=aligned)
    return float(np.mean(distances)) if len(distances) else 0.0


def nearest_neighbor_sets(
    matrix: Any,
    k: int = 10,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> npt.NDArray[np.int64]:
    """Each row's ``k`` nearest other rows by centred cosine similarity (self excluded, unordered).

    Similarity is the cosine between mean-centred unit rows (:func:`centered_unit_rows`,
    centred on the rows used).

    The building block of :func:`neighbor_overlap`; callers comparing a sequence of snapshots
    keep the previous result instead of recomputing it (the search is quadratic in rows).

    Args:
        matrix: (N, D) snapshot.
        k: neighbours per row (capped at N - 1, N counted after ``max_rows``).
        max_rows: use at most this many (leading) rows.
        progress: called as ``progress(rows_done, rows)`` after each batch of query rows
            (the search runs in batches whose scores hold about 2 million numbers).

    Returns:
        (min(N, max_rows), k) row indices.

    Raises:
        ValueError: fewer than 2 rows, or ``k < 1``.

    Example:
        >>> import numpy as np
        >>> nearest_neighbor_sets(np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]), k=1).ravel()
        array([1, 0, 1])
    """
    _check_max_rows(max_rows)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    head = _head(_matrix(matrix, "matrix"), max_rows)
    sets, _ = nearest_neighbors(head, None, k, progress=progress)
    return sets


#: Above this many pairwise comparisons (rows x k x k), overlaps are counted with a sort.
_BROADCAST_CELLS = 4_000_000


def overlap_of_neighbor_sets(before: Any, after: Any) -> float:
    """Mean fraction of shared members between row-wise neighbour sets of equal shape.

    Example:
        >>> import numpy as np
        >>> overlap_of_neighbor_sets(np.array([[1, 2], [0, 2]]), np.array([[2, 1], [0, 3]]))
        0.75
    """
    first, second = np.asarray(before, dtype=np.int64), np.asarray(after, dtype=np.int64)
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(
            f"neighbour sets must be 2-D and of the same shape; got {first.shape} and "
            f"{second.shape}."
        )
    rows, k = first.shape
    if rows == 0 or k == 0:
        raise ValueError("neighbour sets are empty.")
    if rows * k * k <= _BROADCAST_CELLS:
        # k is small (10): comparing every pair in a row is ~30x faster than a sort-based isin.
        hits = (second[:, :, None] == first[:, None, :]).any(axis=2).sum(axis=1)
        return float(hits.mean() / k)
    # Offset each row's neighbour ids by row * (largest id + 1) so one isin() compares sets
    # row by row.
    width = int(max(first.max(), second.max())) + 1
    offset = (np.arange(rows, dtype=np.int64) * width)[:, None]
    hits = np.isin(second + offset, first + offset).sum(axis=1)
    return float(hits.mean() / k)


def neighbor_overlap(
    previous: Any,
    current: Any,
    k: int = 10,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> float:
    """Mean overlap of each row's ``k`` nearest neighbours between two snapshots.

    Neighbours by cosine on mean-centred unit rows (:func:`nearest_neighbor_sets`).

    Neighbours are searched among the same (at most ``max_rows`` leading) rows in both
    snapshots; ties at the k-th place are broken arbitrarily.

    Args:
        previous: (N, D) earlier snapshot.
        current: (N, D) later snapshot, row ``i`` the same item as in ``previous``.
        k: neighbourhood size (capped at N - 1).
        max_rows: use at most this many (leading) rows; cost grows with its square.

    Returns:
        A number in [0, 1]: 1 when every neighbourhood is unchanged.

    Raises:
        ValueError: fewer than 2 rows, or ``k < 1``.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(30, 4))
        >>> neighbor_overlap(x, 2 * x, k=3)
        1.0
    """
    prev, cur = _pair(previous, current)
    return overlap_of_neighbor_sets(
        nearest_neighbor_sets(prev, k, max_rows=max_rows),
        nearest_neighbor_sets(cur, k, max_rows=max_rows),
    )


def first_index(labels: Sequence[str], label: str) -> int | None:
    """The first row labelled ``label`` (``None``: none). A C-level scan per query: callers
    look up a handful of probe labels among thousands of rows at every snapshot, where
    building a label -> row dict each time cost more than the neighbour search itself.

    Example:
        >>> first_index(["a", "b", "a"], "a"), first_index(["a"], "z")
        (0, None)
    """
    try:
        return labels.index(label)
    except ValueError:
        return None


def neighbor_table(
    matrix: Any,
    labels: Sequence[str],
    queries: Sequence[int | str],
    k: int = 10,
) -> list[Neighbors]:
    """The ``k`` nearest rows of a few probe rows, by centred cosine similarity.

    Similarities are cosines between mean-centred unit rows (:func:`centered_unit_rows`,
    centred on all of ``matrix``), so they spread over [-1, 1] even when every raw cosine is
    ~1.00.

    Args:
        matrix: (N, D) snapshot.
        labels: N row labels.
        queries: probe rows, by index or by label (unknown labels are skipped).
        k: neighbours per probe (the probe itself is excluded).

    Returns:
        One :class:`Neighbors` per known probe, in ``queries`` order.

    Raises:
        ValueError: ``labels`` does not have one entry per row, or ``k < 1``.

    Example:
        >>> import numpy as np
        >>> m = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, -0.5]])
        >>> neighbor_table(m, ["a", "b", "c", "d"], ["a"], k=1)[0].labels
        ['b']
    """
    array = _matrix(matrix, "matrix")
    if len(labels) != array.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries for {array.shape[0]} rows.")
    if isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    rows: list[int] = []
    for query in queries:
        if isinstance(query, str):
            found = first_index(labels, query)
            if found is not None:
                rows.append(found)
        elif 0 <= int(query) < array.shape[0]:
            rows.append(int(query))
    if not rows:
        return []
    top, similarities = nearest_neighbors(array, rows, k)
    return [
        Neighbors(
            query=labels[row],
            labels=[labels[i] for i in top[line]],
            similarities=[float(value) for value in similarities[line]],
        )
        for line, row in enumerate(rows)
    ]


def _markdown_cell(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\n", " ")
        .replace("*", "\\*")
        .replace("_", "\\_")
    )


def format_neighbor_table(table: Sequence[Neighbors], *, digits: int = 2) -> str:
    """Render neighbour lists as a Markdown table (TensorBoard's TEXT tab renders it).

    Example:
        >>> print(format_neighbor_table([Neighbors("king", ["queen"], [0.81])]))
        | word | 1 |
        |---|---|
        | **king** | queen 0.81 |
    """
    if not table:
        return "(no probe words found)"
    width = max(len(entry.labels) for entry in table)
    lines = [
        "| word | " + " | ".join(str(i + 1) for i in range(width)) + " |",
        "|---|" + "---|" * width,
    ]
    for entry in table:
        cells = [
            f"{_markdown_cell(label)} {similarity:.{digits}f}"
            for label, similarity in zip(entry.labels, entry.similarities, strict=True)
        ]
        cells += [""] * (width - len(cells))
        lines.append(f"| **{_markdown_cell(entry.query)}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)
