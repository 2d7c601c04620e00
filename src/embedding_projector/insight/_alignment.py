"""Cosine frames and orthogonal Procrustes: the alignment maths behind :mod:`.insight`.

Private: import these names from :mod:`embedding_projector.insight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

_FloatArray = npt.NDArray[np.floating[Any]]
_Rows = TypeVar("_Rows", bound=npt.NDArray[np.floating[Any]])


def _matrix(value: Any, name: str) -> _FloatArray:
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (rows x dimensions); got {array.shape}.")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def unit_rows(matrix: _Rows) -> _Rows:
    """Each row scaled to unit length (zero rows stay zero), in the matrix's own dtype."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return cast(_Rows, matrix / np.where(norms == 0, 1, norms))


def centered_unit_rows(matrix: Any) -> _FloatArray:
    """The cosine frame every measure here uses: rows scaled to unit length, then mean-centred.

    Cosine similarity between these rows (after scaling them to unit length again) compares
    directions *relative to the embedding's mean direction*. Word2Vec-style vectors often all
    point one way (mean pairwise cosine > 0.99 on small corpora), where raw cosines are all
    ~1.00 and hide how rows differ; centring removes that shared component. A rotation or a
    uniform scaling of the input rotates the result the same way (no change in any measure).
    Zero rows stay zero before centring.

    Args:
        matrix: (N, D) rows.

    Returns:
        (N, D) array, same floating dtype (float64 for integer input).

    Example:
        >>> import numpy as np
        >>> centered_unit_rows(np.array([[2.0, 0.0], [0.0, 3.0]]))
        array([[ 0.5, -0.5],
               [-0.5,  0.5]])
    """
    unit = unit_rows(_matrix(matrix, "matrix"))
    if len(unit) == 0:
        return unit
    return np.asarray(unit - unit.mean(axis=0, dtype=np.float64).astype(unit.dtype), unit.dtype)


def orthogonal_procrustes(source: Any, target: Any) -> npt.NDArray[np.float64]:
    """The orthogonal matrix ``R`` minimising ``||source @ R - target||_F``.

    The classic solution (Schönemann 1966): with ``U S Vt = svd(source.T @ target)``,
    ``R = U @ Vt``. Same convention as ``scipy.linalg.orthogonal_procrustes``.

    Args:
        source: (N, D) matrix to be rotated.
        target: (N, D) matrix it should match, row for row.

    Returns:
        (D, D) orthogonal matrix (float64).

    Raises:
        ValueError: the shapes differ or are not 2-D.

    Example:
        >>> import numpy as np
        >>> a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> rotate90 = np.array([[0.0, 1.0], [-1.0, 0.0]])
        >>> np.allclose(orthogonal_procrustes(a, a @ rotate90), rotate90)
        True
    """
    src, tgt = _matrix(source, "source"), _matrix(target, "target")
    if src.shape != tgt.shape:
        raise ValueError(
            f"source and target must have the same shape; got {src.shape} and {tgt.shape}."
        )
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise ValueError("source and target must be finite (no NaN or Inf).")
    cross = src.astype(np.float64, copy=False).T @ tgt.astype(np.float64, copy=False)
    return nearest_orthogonal(cross)


def nearest_orthogonal(cross: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The Procrustes rotation from the cross-product matrix ``source.T @ target``."""
    u, _, vt = np.linalg.svd(cross)
    return np.asarray(u @ vt, dtype=np.float64)


#: Rows per block when a fit or a transform walks a large matrix (bounds temporary memory:
#: a fit holds about ten block-sized copies, 2 MiB each at 2,048 x 256 float32).
_BLOCK_ROWS = 2048


@dataclass(frozen=True)
class Alignment:
    """A rotation from one snapshot's cosine frame onto another's (see :func:`fit_alignment`).

    Attributes:
        rotation: (D, D) orthogonal matrix (float64).
        source_mean: mean of the source's unit rows over the fitted rows.
        target_mean: mean of the target's unit rows over the fitted rows.
        fitted: boolean mask of the rows the final fit used.
    """

    rotation: npt.NDArray[np.float64]
    source_mean: npt.NDArray[np.float64]
    target_mean: npt.NDArray[np.float64]
    fitted: npt.NDArray[np.bool_]

    def source_frame(self, matrix: Any) -> _FloatArray:
        """Source rows in the target's cosine frame: unit, centred, rotated."""
        unit = unit_rows(_matrix(matrix, "matrix"))
        mean = self.source_mean.astype(unit.dtype)
        return np.asarray((unit - mean) @ self.rotation.astype(unit.dtype), dtype=unit.dtype)

    def target_frame(self, matrix: Any) -> _FloatArray:
        """Target rows in their cosine frame: unit, centred."""
        unit = unit_rows(_matrix(matrix, "matrix"))
        return np.asarray(unit - self.target_mean.astype(unit.dtype), dtype=unit.dtype)

    def distances(self, source: Any, target: Any) -> npt.NDArray[np.float64]:
        """Cosine distance of each aligned source row to its target row, in [0, 2]."""
        out = np.empty(len(source), dtype=np.float64)
        for start in range(0, len(source), _BLOCK_ROWS):
            block = slice(start, start + _BLOCK_ROWS)
            moved = unit_rows(self.source_frame(source[block]))
            fixed = unit_rows(self.target_frame(target[block]))
            out[block] = 1.0 - np.clip(np.einsum("ij,ij->i", moved, fixed), -1.0, 1.0)
        return out


def _frame_fit(
    source: _FloatArray, target: _FloatArray, keep: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(rotation, source mean, target mean) of the cosine frames, fitted on the kept rows."""
    rows = np.flatnonzero(keep)
    dims = source.shape[1]
    source_sum, target_sum = np.zeros(dims), np.zeros(dims)
    for start in range(0, len(rows), _BLOCK_ROWS):
        part = rows[start : start + _BLOCK_ROWS]
        source_sum += unit_rows(source[part]).sum(axis=0, dtype=np.float64)
        target_sum += unit_rows(target[part]).sum(axis=0, dtype=np.float64)
    source_mean, target_mean = source_sum / len(rows), target_sum / len(rows)
    cross = np.zeros((dims, dims))
    for start in range(0, len(rows), _BLOCK_ROWS):
        part = rows[start : start + _BLOCK_ROWS]
        moving = unit_rows(unit_rows(source[part]) - source_mean.astype(source.dtype))
        fixed = unit_rows(unit_rows(target[part]) - target_mean.astype(target.dtype))
        cross += moving.T.astype(np.float64) @ fixed.astype(np.float64)
    # The cross product is accumulated block by block (bounded memory), so the solution is
    # taken from it directly: the same one orthogonal_procrustes() gives.
    return nearest_orthogonal(cross), source_mean, target_mean


def fit_alignment(source: Any, target: Any, *, trim: float = 0.0) -> Alignment:
    """Rotate ``source``'s cosine frame onto ``target``'s: orthogonal Procrustes, centred.

    Each snapshot's rows are scaled to unit length and centred on their mean (the frame of
    :func:`centered_unit_rows`); the rotation is the orthogonal Procrustes solution between
    those rows, each scaled to unit length again so every row counts the same. With ``trim``,
    the fit is repeated once without the ``trim`` fraction of rows that moved the most, so a
    few words that really changed do not tilt the rotation of all the others.

    Args:
        source: (N, D) rows to rotate.
        target: (N, D) rows to rotate onto; row ``i`` is the same item in both.
        trim: fraction in [0, 0.5) of the worst-fitting rows left out of the second fit.

    Returns:
        An :class:`Alignment`.

    Raises:
        ValueError: shapes differ, fewer than 2 rows, NaN/Inf values, or a bad ``trim``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(100, 4)) + 5.0
        >>> q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
        >>> fit = fit_alignment(a @ q, a)
        >>> bool(fit.distances(a @ q, a).max() < 1e-9)
        True
    """
    src, tgt = _matrix(source, "source"), _matrix(target, "target")
    if src.shape != tgt.shape:
        raise ValueError(
            f"source and target must have the same shape; got {src.shape} and {tgt.shape}."
        )
    if len(src) < 2:
        raise ValueError(f"an alignment needs at least 2 rows; got {len(src)}.")
    if not (np.isfinite(src).all() and np.isfinite(tgt).all()):
        raise ValueError("source and target must be finite (no NaN or Inf).")
    if isinstance(trim, bool) or not 0.0 <= float(trim) < 0.5:
        raise ValueError(f"trim must be a fraction in [0, 0.5); got {trim!r}.")
    keep = np.ones(len(src), dtype=bool)
    rotation, source_mean, target_mean = _frame_fit(src, tgt, keep)
    fit = Alignment(rotation, source_mean, target_mean, keep)
    dropped = int(len(src) * float(trim))
    if dropped and len(src) - dropped >= 2:
        worst = np.argpartition(-fit.distances(src, tgt), dropped - 1)[:dropped]
        keep = keep.copy()
        keep[worst] = False
        rotation, source_mean, target_mean = _frame_fit(src, tgt, keep)
        fit = Alignment(rotation, source_mean, target_mean, keep)
    return fit
