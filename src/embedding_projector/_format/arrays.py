"""Turn what users pass (numpy, torch tensors, nested lists) into validated numpy arrays.

No file format knowledge lives here; torch is never imported (tensors are recognised by duck
typing, so this module works without torch installed).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidEmbeddingError

#: How many offending row indices an error message lists.
_ROWS_IN_MESSAGE = 5


def _is_torch_tensor(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def to_numpy(value: Any, *, name: str) -> np.ndarray[Any, Any]:
    """Convert a numpy array, torch tensor (any device, dtype, ``requires_grad``) or nested list.

    Torch tensors are detached and copied to the CPU once; bfloat16 and float16 become float32
    because numpy cannot hold bfloat16.
    """
    if _is_torch_tensor(value):
        tensor = value.detach()
        if tensor.is_floating_point() and tensor.dtype.itemsize < 4:
            tensor = tensor.float()
        return np.asarray(tensor.cpu().numpy())
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise InvalidEmbeddingError(
            f"{name} could not be read as a rectangular array: {error}. "
            "Every row must have the same number of values."
        ) from error
    if array.dtype == object:
        raise InvalidEmbeddingError(
            f"{name} could not be read as a rectangular numeric array (rows of different "
            "lengths or non-numeric values?)."
        )
    return array


def as_float32_matrix(mat: Any, table: str | None = None) -> npt.NDArray[np.float32]:
    """Validate an embedding matrix and return it as a C-contiguous little-endian float32 array.

    ``table`` (the tag) names the matrix in the NaN/Inf message.

    Raises:
        InvalidEmbeddingError: not 2-D, fewer than 2 rows or columns (the projector page hides
            such tensors), not numeric, or NaN/Inf anywhere (also values that overflow float32).
    """
    array = to_numpy(mat, name="mat")
    if array.ndim != 2:
        raise InvalidEmbeddingError(
            f"mat must be 2-D (rows = points, columns = dimensions); got shape {array.shape}."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidEmbeddingError(f"mat must be numeric; got dtype {array.dtype}.")
    if np.iscomplexobj(array):
        raise InvalidEmbeddingError("mat must be real-valued; got a complex dtype.")
    rows, cols = array.shape
    if rows < 2 or cols < 2:
        raise InvalidEmbeddingError(
            f"mat has shape {array.shape}; TensorBoard's projector page only lists tensors with "
            "at least 2 rows and 2 columns, so this snapshot would be invisible."
        )
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.ascontiguousarray(array, dtype="<f4")
    # NaN and Inf show in the extremes: two reductions, no temporary as big as the matrix;
    # rows are looked at only to name the bad ones.
    if np.isfinite(result.min()) and np.isfinite(result.max()):
        return result
    finite_rows = np.isfinite(result).all(axis=1)
    if not finite_rows.all():
        bad = np.flatnonzero(~finite_rows)
        overflow = (
            bool(np.isfinite(array[bad]).all())
            if np.issubdtype(array.dtype, np.floating)
            else False
        )
        hint = (
            " (they are finite in the input but overflow float32, the projector's format)"
            if overflow
            else ""
        )
        shown = ", ".join(str(i) for i in bad[:_ROWS_IN_MESSAGE])
        more = f" (first {_ROWS_IN_MESSAGE} shown)" if bad.size > _ROWS_IN_MESSAGE else ""
        what = "the matrix" if table is None else f"table {table!r}"
        raise InvalidEmbeddingError(
            f"{what} has {bad.size} row(s) containing NaN or Inf{hint}: rows "
            f"{shown}{more}. Nothing was written; fix or drop those rows."
        )
    return result


def as_uint8_images(label_img: Any, rows: int) -> npt.NDArray[np.uint8]:
    """Validate sprite images and return them as uint8 NHWC with 1, 3 or 4 channels.

    Accepts (N, C, H, W) like tensorboardX (and (N, H, W) for grayscale); floats must lie in
    [0, 1], integers in [0, 255].
    """
    array = to_numpy(label_img, name="label_img")
    if array.ndim == 3:
        array = array[:, None, :, :]
    if array.ndim != 4:
        raise InvalidEmbeddingError(
            f"label_img must have shape (N, C, H, W); got shape {array.shape}."
        )
    count, channels, height, width = array.shape
    if count != rows:
        raise InvalidEmbeddingError(
            f"label_img has {count} images but mat has {rows} rows; they must match one-to-one."
        )
    if channels not in (1, 3, 4):
        raise InvalidEmbeddingError(
            f"label_img must have 1, 3 or 4 channels (axis 1 of N, C, H, W); got {channels}. "
            "Channels-last input? Transpose it with .transpose(0, 3, 1, 2)."
        )
    if height < 1 or width < 1:
        raise InvalidEmbeddingError(f"label_img images are empty: shape {array.shape}.")
    if np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_:
        values = array.astype(np.float32, copy=False)
        if not np.isfinite(values).all():
            raise InvalidEmbeddingError("label_img contains NaN or Inf.")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise InvalidEmbeddingError(
                f"label_img floats must lie in [0, 1]; got values from {low:g} to {high:g}. "
                "Divide 0-255 images by 255, or pass them as uint8."
            )
        converted = np.rint(values * 255.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise InvalidEmbeddingError(
                f"label_img integers must lie in [0, 255]; got values from {low} to {high}."
            )
        converted = array.astype(np.uint8, copy=False)
    else:
        raise InvalidEmbeddingError(f"label_img must be numeric; got dtype {array.dtype}.")
    return np.ascontiguousarray(converted.transpose(0, 2, 3, 1))


def as_label_columns(
    metadata: Sequence[Any] | Any, rows: int, metadata_header: Sequence[Any] | None
) -> tuple[list[list[str]], list[str] | None]:
    """Normalise labels to string columns (column-major) plus a header for several columns.

    A flat list gives one column; a list of sequences gives several columns (tensorboardX's
    ``metadata_header`` names them; without one, columns are named ``column 1``, ...).
    """
    if _is_torch_tensor(metadata) or isinstance(metadata, np.ndarray):
        metadata = to_numpy(metadata, name="metadata").tolist()
    if isinstance(metadata, (str, bytes)):
        raise InvalidEmbeddingError(
            "metadata must be a list of labels (one per row), not a single string."
        )
    try:
        items = list(metadata)
    except TypeError as error:
        raise InvalidEmbeddingError(
            f"metadata must be a list of labels; got {type(metadata).__name__}."
        ) from error
    if len(items) != rows:
        raise InvalidEmbeddingError(
            f"metadata has {len(items)} labels but mat has {rows} rows; they must match one-to-one."
        )
    row_types = set(map(type, items))  # one C-level pass; isinstance only for odd types
    multi = bool(items) and (
        row_types <= {list, tuple}
        or all(isinstance(item, (list, tuple, np.ndarray)) for item in items)
    )
    if not multi:
        if metadata_header is not None and len(metadata_header) != 1:
            raise InvalidEmbeddingError(
                f"metadata_header has {len(metadata_header)} columns but metadata is a flat "
                "list; pass one row (list) per point."
            )
        return [as_text_column(items)], None
    header = (
        [_to_text(cell) for cell in metadata_header]
        if metadata_header is not None
        else [f"column {i + 1}" for i in range(len(items[0]))]
    )
    widths = set(map(len, items))
    for index, item in enumerate(items if widths != {len(header)} else ()):
        if len(item) != len(header):
            raise InvalidEmbeddingError(
                f"metadata row {index} has {len(item)} columns but the header has "
                f"{len(header)}: {list(header)!r}."
            )
    columns = [as_text_column(list(map(itemgetter(k), items))) for k in range(len(header))]
    if len(header) == 1:
        return columns, None
    return columns, header


def as_text_column(values: Sequence[Any]) -> list[str]:
    """One column of labels as text (bytes decoded as UTF-8, numpy scalars unwrapped)."""
    if set(map(type, values)) <= {str}:
        return list(values)
    return [_to_text(value) for value in values]


def _to_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def validate_step(global_step: Any) -> int:
    """A step as an ``int`` >= 0 (``None`` is 0; 0-d tensors and numpy integers accepted)."""
    if global_step is None:
        return 0
    if isinstance(global_step, bool) or not isinstance(global_step, (int, np.integer)):
        if hasattr(global_step, "item") and getattr(global_step, "ndim", 1) == 0:
            global_step = global_step.item()
        if not isinstance(global_step, (int, np.integer)) or isinstance(global_step, bool):
            raise InvalidEmbeddingError(
                f"global_step must be a non-negative integer; got {global_step!r}."
            )
    step = int(global_step)
    if step < 0:
        raise InvalidEmbeddingError(f"global_step must be >= 0; got {step}.")
    return step


def validate_tag(tag: Any) -> None:
    """A tag must be a non-empty string that encodes as UTF-8."""
    if not isinstance(tag, str) or not tag:
        raise InvalidEmbeddingError(f"tag must be a non-empty string; got {tag!r}.")
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidEmbeddingError(f"tag is not valid Unicode text: {error}.") from error
