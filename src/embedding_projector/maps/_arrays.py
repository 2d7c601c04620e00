"""Array helpers of :mod:`embedding_projector.maps`: validation, class names, integer checks.

Example:
    >>> category(3.0)
    '3'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidEmbeddingError

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
