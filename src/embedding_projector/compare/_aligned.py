"""The numeric steps of a comparison: matched rows, a shared dimension, neighbour overlaps and
the combined tensor in A's cosine frame (:func:`_stack_aligned`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .. import insight

if TYPE_CHECKING:
    from . import CompareProgress

#: Rows per block of the blocked passes (bounded temporary memory).
_SEARCH_BLOCK = 65_536


def _take(matrix: npt.NDArray[np.float32], index: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """``matrix[index]``, without a copy when ``index`` is every row in order."""
    if len(index) == len(matrix) and np.array_equal(index, np.arange(len(matrix))):
        return matrix
    return matrix[index]


# --------------------------------------------------------------------------- the maths


def _principal_projection(matrix: npt.NDArray[np.float32], dims: int) -> npt.NDArray[np.float32]:
    """``matrix`` projected onto its top ``dims`` principal axes (the mean's part kept)."""
    mean = matrix.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((matrix.shape[1], matrix.shape[1]))
    for start in range(0, len(matrix), _SEARCH_BLOCK):
        block = matrix[start : start + _SEARCH_BLOCK].astype(np.float64) - mean
        scatter += block.T @ block
    _, vectors = np.linalg.eigh(scatter)  # ascending eigenvalues
    axes = vectors[:, ::-1][:, :dims].astype(np.float32)
    return np.asarray(matrix @ axes, dtype=np.float32)


def _common_dimension(
    rows_a: npt.NDArray[np.float32], rows_b: npt.NDArray[np.float32], names: tuple[str, str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], str]:
    dims_a, dims_b = rows_a.shape[1], rows_b.shape[1]
    method = "orthogonal Procrustes of B onto A on centred unit rows"
    if dims_a == dims_b:
        return rows_a, rows_b, f"{method} ({dims_a} dims)"
    dims = min(dims_a, dims_b)
    larger = names[0] if dims_a > dims else names[1]
    text = (
        f"{larger!r} ({max(dims_a, dims_b)} dims) projected onto its top {dims} principal "
        f"components to match the other's {dims} dims, then {method}"
    )
    if dims_a > dims:
        return _principal_projection(rows_a, dims), rows_b, text
    return rows_a, _principal_projection(rows_b, dims), text


def _neighbour_sets(
    rows: npt.NDArray[np.float32], k: int, stage: str, progress: CompareProgress | None
) -> npt.NDArray[np.int64]:
    """Each row's ``k`` nearest other rows by centred cosine, searched in bounded batches."""
    report = None if progress is None else lambda done, total: progress(stage, done, total)
    return insight.nearest_neighbor_sets(rows, k, max_rows=None, progress=report)


def _row_overlap(
    sets_a: npt.NDArray[np.int64], sets_b: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Per row, the fraction of its neighbours in A that are also its neighbours in B."""
    out = np.empty(len(sets_a), dtype=np.float64)
    for start in range(0, len(sets_a), _SEARCH_BLOCK):
        part_a, part_b = (
            sets_a[start : start + _SEARCH_BLOCK],
            sets_b[start : start + _SEARCH_BLOCK],
        )
        hits = (part_a[:, :, None] == part_b[:, None, :]).any(axis=2).sum(axis=1)
        out[start : start + _SEARCH_BLOCK] = hits / sets_a.shape[1]
    return out


def _stack_aligned(
    rows_a: npt.NDArray[np.float32], rows_b: npt.NDArray[np.float32], fit: insight.Alignment
) -> npt.NDArray[np.float32]:
    """A as it is, then B put into A's cosine frame: one (2N, D) matrix.

    The rotation was fitted between the two cosine frames (each source's unit rows centred on
    that source's mean, then scaled to unit length), and the displacements are measured there,
    so B is written into that space, not rotated as raw vectors: row ``i`` of B goes to the
    point of A's space whose cosine-frame image is B's frame row rotated onto A, ``t``. Its
    unit row is ``mean_a + s * t`` with ``s > 0`` chosen so that it has length 1 (``mean_a``,
    the mean of A's unit rows, is shorter than 1), and its length is B's own length times the
    ratio of the two sources' mean lengths. So the saved states (a PCA of the centred unit
    rows) and a word's displacement describe the same two points; and where B is A rotated,
    B's rows land exactly on A's.
    """
    count = len(rows_a)
    kept = np.flatnonzero(fit.fitted)
    length_a = np.linalg.norm(rows_a[kept].astype(np.float64), axis=1).sum()
    length_b = np.linalg.norm(rows_b[kept].astype(np.float64), axis=1).sum()
    scale = length_a / length_b if length_b > 0 else 1.0
    mean_a = fit.target_mean
    # |mean_a + s t| = 1 for unit t: s = -(mean_a . t) + sqrt((mean_a . t)^2 + 1 - |mean_a|^2)
    room = max(0.0, 1.0 - float(mean_a @ mean_a))
    combined = np.empty((2 * count, rows_a.shape[1]), dtype=np.float32)
    combined[:count] = rows_a
    for start in range(0, count, _SEARCH_BLOCK):
        block = rows_b[start : start + _SEARCH_BLOCK].astype(np.float64)
        turned = fit.source_frame(block)
        norms = np.linalg.norm(turned, axis=1, keepdims=True)
        direction = turned / np.where(norms > 0, norms, 1.0)
        along = direction @ mean_a
        reach = -along + np.sqrt(along * along + room)
        unit = mean_a + reach[:, None] * direction
        lengths = np.linalg.norm(block, axis=1, keepdims=True) * scale
        combined[count + start : count + start + len(block)] = unit * lengths
    return combined
