"""The projector page's saved states ("bookmarks"): the JSON file ``bookmarks_path`` points at.

Writer-layer format knowledge, imported only by the writer. The page (TensorBoard 2.21's
``projector_binary.js``) lists the array under BOOKMARKS; clicking a state's radio icon calls
``loadState``, which copies ``projections[i]`` (``{"pca-0": x, "pca-1": y}`` or
``{"umap-0": ...}``) onto point ``i`` and shows ``selectedProjection`` without recomputing it.
``loadState`` and the panels' ``restoreUIFromBookmark`` read every field of the page's ``State``
class (``tSNEPerplexity.toString()``, ``pcaComponentDimensions[0]``, ``selectedPoints`` ...), so a
state missing one is listed but does not load: every state here carries all of them.

Field notes that shape the values below:

* ``isSelected`` must be ``false``: clicking an already selected state deselects it.
* ``filteredPoints`` and ``shuffledDataIndices`` are ``null`` unless given: ``null`` means no
  filter and "keep the page's own sample order" (an empty list would replace the order).
* ``cameraDef`` is ``null``: the page makes its default camera; it fits the points' range itself.
* ``tSNELearningRate`` is the slider's value, the log10 of the rate (the page's default 10 → 1).
* A ``"tsne"`` state would restart t-SNE on load, so only ``"pca"`` and ``"umap"`` are written.
* ``loadState`` filters first, then copies ``projections[i]`` onto point ``i`` of the *filtered*
  set: a state with ``filteredPoints`` holds one projection per filtered row, in the filter's
  order (a longer array makes the page fail on the missing points).
* ``selectedColorOptionName`` is a metadata column's name (the page's "Color by" entry).

A state may carry two optional attributes beside those of :class:`StateLike` (read with
``getattr``, so a plain ``ProjectorLayout`` has neither): ``filtered_points`` (the rows it
shows; its coordinates still place every row) and ``color_by`` (a metadata column).

For 100,000 rows the file is several MB. The ``projections`` array, almost all of it, is built
as one byte buffer with numpy (fixed-width number columns, padding dropped at the end), never
as a Python object per row. Numbers are the shortest decimals that read back as the same
float32, written as an integer mantissa and a power of ten (``12573022e-8``): valid JSON, and
formatted for all rows at once (:func:`float32_text`).

Example:
    >>> import json
    >>> import numpy as np
    >>> text = saved_states_json(
    ...     [SavedState("pca", np.array([[0.5, -1.0], [1.5, 2.0]], np.float32), "step 1")],
    ...     dimensions=(2, 8),
    ... )
    >>> json.loads(text)[0]["projections"]
    [{'pca-0': 0.5, 'pca-1': -1.0}, {'pca-0': 1.5, 'pca-1': 2.0}]
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from . import MAX_PROJECTOR_ROWS

if TYPE_CHECKING:
    from ..insight.layouts import LayoutSpec

__all__ = [
    "NO_COLOR_MAP",
    "STATE_KINDS",
    "SavedState",
    "StateLike",
    "bookmarks_file",
    "float32_text",
    "label_column",
    "projections_json",
    "saved_states_json",
    "state_fields",
]

#: The page's first entry of "Color by": no colouring.
NO_COLOR_MAP = "No color map"
#: Projections whose coordinates the page shows as written (``"tsne"`` restarts t-SNE).
STATE_KINDS = ("pca", "umap")

#: Significant digits that always read back as the same float32.
_FLOAT32_DIGITS = 9
#: Powers of ten a float32 written with at most 9 digits can need (1e-45 is 14012985e-52).
_POWERS = range(-60, 50)
#: Each power's JSON exponent suffix (``e-8``), NUL padded: looked up, not formatted, per number.
_EXPONENT_TEXT = np.array([f"e{power}".encode("ascii") for power in _POWERS], dtype="S4")
_TEN_OFFSET = 60
#: 10**0 ... 10**9 as integers (how many digits a mantissa has).
_TEN_TO = np.power(10, np.arange(10, dtype=np.int64))
_POWERS_OF_TEN = np.power(10.0, np.arange(-_TEN_OFFSET, _TEN_OFFSET + 1))
_SEPARATOR = b","


class StateLike(Protocol):
    """What a saved state is made from (``layouts.ProjectorLayout`` is one)."""

    @property
    def kind(self) -> str: ...

    @property
    def coordinates(self) -> npt.NDArray[np.float32]: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class SavedState:
    """A plain :class:`StateLike`: projection kind, (rows, 2 | 3) coordinates, label.

    ``filtered_points``: show only these rows (default all); ``color_by``: colour by this
    metadata column (default: what :func:`saved_states_json` is given).
    """

    kind: str
    coordinates: npt.NDArray[np.float32]
    label: str
    filtered_points: Sequence[int] | None = None
    color_by: str | None = None


def state_fields(
    state: StateLike,
    *,
    dimensions: tuple[int, int],
    color_by: str | None = None,
    label_by: str | None = None,
    filtered_points: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Every field of the page's ``State`` except ``projections``, in the page's order.

    Args:
        state: the layout (its ``kind``, ``label`` and the coordinates' column count are used).
        dimensions: ``(rows, dims)`` of the tensor (the page's ``dataSetDimensions``).
        color_by: metadata column to colour by (default: no colour map).
        label_by: metadata column the page labels points with (``"label"`` for single-column
            metadata, the page's own name for it).
        filtered_points: show only these rows (default: all).

    Returns:
        A JSON-ready dict; :func:`saved_states_json` inserts ``projections``.
    """
    if state.kind not in STATE_KINDS:
        raise ValueError(f"state kind must be one of {STATE_KINDS}; got {state.kind!r}.")
    columns = int(state.coordinates.shape[1])
    rows = int(dimensions[0])
    return {
        "label": str(state.label),
        "isSelected": False,
        "selectedProjection": state.kind,
        "dataSetDimensions": [rows, int(dimensions[1])],
        "tSNEIteration": 0,
        # The page's own defaults: perplexity slider max(5, ceil(sqrt(rows) / 4)), log10 rate 1.
        "tSNEPerplexity": max(5, math.ceil(math.sqrt(rows) / 4)),
        "tSNELearningRate": 1,
        "tSNEis3d": True,
        "umapIs3d": state.kind == "umap" and columns == 3,
        "umapNeighbors": 15,
        "umapMinDist": 0.1,
        "pcaComponentDimensions": list(range(columns)) if state.kind == "pca" else [0, 1],
        "customSelectedSearchByMetadataOption": label_by,
        "customXLeftText": "",
        "customXLeftRegex": False,
        "customXRightText": "",
        "customXRightRegex": False,
        "customYUpText": "",
        "customYUpRegex": False,
        "customYDownText": "",
        "customYDownRegex": False,
        "projections": None,  # placeholder: replaced by the formatted coordinates
        "filteredPoints": None if filtered_points is None else [int(i) for i in filtered_points],
        "selectedPoints": [],
        "shuffledDataIndices": None,
        "cameraDef": None,
        "selectedColorOptionName": NO_COLOR_MAP if color_by is None else color_by,
        "forceCategoricalColoring": False,
        "selectedLabelOption": label_by,
    }


def label_column(metadata_text: bytes | None) -> str | None:
    """The name the page gives the first metadata column (what it labels points with).

    One column has no header and the page calls it ``"label"``; several have a header line
    (the first line holds a tab), whose first name is the first column's.

    Example:
        >>> label_column(b"word\\tcount\\ncat\\t3\\n"), label_column(b"cat\\n"), label_column(None)
        ('word', 'label', None)
    """
    if metadata_text is None:
        return None
    first = metadata_text.split(b"\n", 1)[0]
    if b"\t" not in first:
        return "label"
    return first.split(b"\t", 1)[0].decode("utf-8")


def _check_coordinates(state: StateLike, rows: int) -> npt.NDArray[np.float32]:
    coords = np.asarray(state.coordinates)
    if coords.ndim != 2 or coords.shape[0] != rows or coords.shape[1] not in (2, 3):
        raise ValueError(
            f"state {state.label!r}: coordinates must be ({rows}, 2) or ({rows}, 3); "
            f"got {coords.shape}."
        )
    coords = coords.astype(np.float32, copy=False)
    if not np.isfinite(coords).all():
        raise ValueError(f"state {state.label!r}: coordinates must be finite (no NaN or Inf).")
    return coords


def projections_json(kind: str, coordinates: npt.NDArray[np.float32]) -> bytes:
    """The ``projections`` array: ``[{"<kind>-0":x,"<kind>-1":y},...]`` in row order.

    Each column is formatted into fixed-width bytes (:func:`float32_text`), the columns and
    the constant text between them are laid side by side in one (rows, width) byte matrix,
    and the NUL padding is dropped in one pass: no Python object per row.
    """
    rows, columns = coordinates.shape
    if rows == 0:
        return b"[]"
    pieces: list[npt.NDArray[np.uint8]] = []

    def constant(text: str) -> None:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        pieces.append(np.broadcast_to(raw, (rows, raw.size)))

    for column in range(columns):
        constant(("{" if column == 0 else ",") + f'"{kind}-{column}":')
        pieces.append(float32_text(coordinates[:, column]))
    constant("},")
    flat = np.concatenate(pieces, axis=1).ravel()
    body = bytes(flat[flat != 0].tobytes())
    return b"[" + body[:-1] + b"]"  # drop the last row's trailing comma


def float32_text(values: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Each float32 as a JSON number, one per row of a NUL-padded (n, 15) byte matrix.

    The number is an integer mantissa and a power of ten (float32 ``-0.5356694`` is
    ``-5356694e-7``): the fewest significant digits, at most 9, that read back as the same
    float32, found for all values at once (round the 9-digit mantissa to fewer digits while
    the float32 read back is unchanged). Zeros are ``0.0``/``-0.0``. numpy's own
    ``astype("S16")`` gives the same values but formats each number alone, 2-3x slower.

    Example:
        >>> rows = float32_text(np.array([0.5, -1.0, 0.0, 1e-30, 0.12573022], np.float32))
        >>> [bytes(row[row != 0]).decode() for row in rows]
        ['5e-1', '-1e0', '0.0', '1e-30', '12573022e-8']
    """
    x = np.asarray(values, dtype=np.float32).reshape(-1)
    target = np.abs(x)
    magnitude = target.astype(np.float64)
    nonzero = magnitude > 0
    exponent = np.zeros(x.size, dtype=np.int64)
    exponent[nonzero] = np.floor(np.log10(magnitude[nonzero]))
    base = exponent - (_FLOAT32_DIGITS - 1)
    # 10**p looked up, not computed per number (p from -60 to 60: the same values).
    scaled = magnitude * _POWERS_OF_TEN[_TEN_OFFSET - base]  # ~1e8 to 1e9: 9-digit mantissa
    mantissa, power = np.rint(scaled), base.copy()
    shorter_ok = np.flatnonzero(nonzero)
    for drop in range(1, _FLOAT32_DIGITS):  # the rows that read back right with fewer digits
        shorter = np.rint(scaled[shorter_ok] / 10.0**drop)
        with np.errstate(over="ignore"):  # a mantissa too large reads back as inf: not equal
            back = shorter * _POWERS_OF_TEN[_TEN_OFFSET + base[shorter_ok] + drop]
            back = back.astype(np.float32)
        same = back == target[shorter_ok]
        shorter_ok = shorter_ok[same]
        if shorter_ok.size == 0:
            break
        mantissa[shorter_ok], power[shorter_ok] = shorter[same], base[shorter_ok] + drop
    body = _decimal_digits(mantissa.astype(np.int64))
    suffix = _EXPONENT_TEXT[np.where(nonzero, power - _POWERS.start, 0)]
    suffix[~nonzero] = b".0"
    sign = np.where(np.signbit(x), ord("-"), 0).astype(np.uint8)[:, None]
    return np.concatenate([sign, body, suffix.view(np.uint8).reshape(x.size, 4)], axis=1)


@functools.cache
def _five_digit_table() -> npt.NDArray[np.uint8]:
    """Row ``i``: the five ASCII digits of ``i`` (zero padded), for 0 <= i < 100,000."""
    numbers = np.arange(100_000, dtype=np.int64)[:, None]
    return ((numbers // _TEN_TO[4::-1][None, :5]) % 10 + ord("0")).astype(np.uint8)


def _decimal_digits(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """(n, 10) ASCII digits of integers in [0, 10**10), right-aligned, NUL padded on the left:
    two lookups of five digits each (numpy's own int -> bytes formats each number alone)."""
    table = _five_digit_table()
    digits = np.concatenate([table[numbers // 100_000], table[numbers % 100_000]], axis=1)
    count = np.maximum(np.searchsorted(_TEN_TO, numbers, side="right"), 1)
    digits[np.arange(10)[None, :] < (10 - count)[:, None]] = 0
    return digits


def _check_filter(state: StateLike, rows: int) -> npt.NDArray[np.int64] | None:
    """The state's ``filtered_points`` as row indices, or ``None`` (no filter)."""
    wanted = getattr(state, "filtered_points", None)
    if wanted is None:
        return None
    index = np.asarray(wanted, dtype=np.int64).reshape(-1)
    if index.size == 0 or index.min() < 0 or index.max() >= rows:
        raise ValueError(
            f"state {state.label!r}: filtered_points must be non-empty row indices in "
            f"[0, {rows}); got {index.size} of them"
            + (f" from {index.min()} to {index.max()}." if index.size else ".")
        )
    return index


def saved_states_json(
    states: Sequence[StateLike],
    *,
    dimensions: tuple[int, int],
    color_by: str | None = None,
    label_by: str | None = None,
) -> bytes:
    """The bookmarks file: a JSON array of complete page ``State`` objects, UTF-8.

    Args:
        states: one entry per saved state, each with one coordinate row per tensor row; a
            state's own ``filtered_points`` and ``color_by`` attributes, if set, are used.
        dimensions: ``(rows, dims)`` of the tensor.
        color_by: metadata column every state colours by (default none; a state's own
            ``color_by`` wins).
        label_by: metadata column the page labels points with.

    Returns:
        The file's bytes.

    Raises:
        ValueError: a state's kind is not ``"pca"``/``"umap"``, its coordinates are not
            finite ``(rows, 2 | 3)``, or its ``filtered_points`` are not rows.
    """
    rows = int(dimensions[0])
    parts: list[bytes] = []
    for state in states:
        coords = _check_coordinates(state, rows)
        index = _check_filter(state, rows)
        if index is not None:
            coords = coords[index]  # the page copies projections onto the filtered points
        fields = state_fields(
            state,
            dimensions=dimensions,
            color_by=getattr(state, "color_by", None) or color_by,
            label_by=label_by,
            filtered_points=None if index is None else index.tolist(),
        )
        head, tail = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).split(
            '"projections":null', 1
        )
        parts.append(
            head.encode("utf-8")
            + b'"projections":'
            + projections_json(state.kind, coords)
            + tail.encode("utf-8")
        )
    return b"[" + _SEPARATOR.join(parts) + b"]"


def bookmarks_file(
    layout: LayoutSpec,
    matrix: npt.NDArray[np.float32],
    metadata_text: bytes | None,
    max_rows: int = MAX_PROJECTOR_ROWS,
) -> bytes:
    """The saved-states file for the writer's ``layout=`` argument, checked before writing.

    Names (``"pca"``, ``"umap"``) are computed by :mod:`embedding_projector.insight.layouts`. The
    page loads at most ``max_rows`` rows and a state needs exactly one entry per loaded row (more
    would make ``loadState`` fail): layouts are computed on, and cut to, those rows.
    """
    from ..insight import layouts  # numpy maths; umap-learn only for "umap"

    shown = min(int(matrix.shape[0]), max_rows)
    found = layouts.layouts_for(layout, matrix, max_rows=shown)
    states = [
        SavedState(
            item.kind,
            item.coordinates[:shown],
            item.label,
            None
            if item.filtered_points is None
            else [i for i in item.filtered_points if i < shown],
            item.color_by,
        )
        for item in found
    ]
    return saved_states_json(
        states, dimensions=(shown, int(matrix.shape[1])), label_by=label_column(metadata_text)
    )
