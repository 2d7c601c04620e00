"""Array helpers of :mod:`embedding_projector.maps`: validation, unit rows, class names.

Example:
    >>> unit_rows(np.array([[3.0, 4.0]]))
    array([[0.6, 0.8]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InvalidEmbeddingError

_FloatArray = npt.NDArray[np.float64]


def as_matrix(matrix: Any, *, convert: bool = True) -> Any:
    """``matrix`` as a validated 2-D real array: float64 and finite, or unconverted."""
    array = np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidEmbeddingError(
            f"expected a 2-D matrix (rows x dimensions) with at least one row; got shape "
            f"{array.shape}."
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidEmbeddingError(f"expected a real-valued matrix; got dtype {array.dtype}.")
    if not convert:
        return array
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InvalidEmbeddingError("the matrix holds NaN or infinite values.")
    return array


def finite_rows(array: Any, index: npt.NDArray[np.int64]) -> _FloatArray:
    """A float64 copy of ``array[index]``; never a view of the caller's (reused) buffer."""
    rows: _FloatArray = np.array(array[index], dtype=np.float64)
    if not np.isfinite(rows).all():
        raise InvalidEmbeddingError("the matrix holds NaN or infinite values in the mapped rows.")
    return rows


def unit_rows(matrix: _FloatArray) -> _FloatArray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def category(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_int(name: str, value: Any, *, minimum: int, hint: str = "") -> None:
    """Refuse anything but an integer (numpy's included, ``bool`` not) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{hint}; got {value!r}.")


def top_two_directions(matrix: _FloatArray) -> tuple[_FloatArray, float]:
    """The top-2 right singular vectors of ``matrix`` (dims x 2) and their variance sum.

    From the eigendecomposition of the smaller Gram matrix rather than a full SVD: a third
    of the cost for the map's 500 x 256 samples, and this runs every epoch beside training.
    """
    rows, dim = matrix.shape
    basis = np.zeros((dim, 2))
    if rows >= dim:
        values, vectors = np.linalg.eigh(matrix.T @ matrix)
        order = np.argsort(values)[::-1][:2]
        basis[:, : len(order)] = vectors[:, order]
    else:
        values, vectors = np.linalg.eigh(matrix @ matrix.T)
        order = np.argsort(values)[::-1][:2]
        directions = matrix.T @ vectors[:, order]
        lengths = np.linalg.norm(directions, axis=0)
        basis[:, : len(order)] = directions / np.where(lengths > 0, lengths, 1.0)
    return basis, float(np.sum(np.clip(values[order], 0.0, None)))
