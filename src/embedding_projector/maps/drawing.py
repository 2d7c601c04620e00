"""Drawing of :class:`~embedding_projector.maps.MapFrame` images with Pillow.

:func:`render_map` turns one aligned frame into an RGB image: points (coloured by class when the
frame has categories, highlighted rows in red with their trails), a fixed grid and axes, a
legend, and as many non-overlapping labels as fit. The alignment, the coordinate frame and the
scalars live in :mod:`embedding_projector.maps`; logging to TensorBoard in
:mod:`embedding_projector.sink`. Text: :mod:`embedding_projector.maps.text` (CJK included).

Example:
    >>> import numpy as np
    >>> from embedding_projector.maps import EvolutionMap
    >>> frame = EvolutionMap(max_rows=20, render=False).update(np.random.rand(20, 4), step=0)
    >>> render_map(frame, size=(200, 160)).shape
    (160, 200, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..glyphs.fonts import FontFace
from .frame import MapFrame
from .text import MARGIN as _MARGIN
from .text import TEXT_PX as _TEXT_PX
from .text import Box as _Box
from .text import draw_header as _draw_header
from .text import draw_text as _draw_text
from .text import drawable as _drawable
from .text import font as _font
from .text import ink_box as _ink_box
from .text import label_ink as _label_ink
from .text import label_rows as _label_rows
from .text import map_face as _map_face
from .text import natural as _natural
from .text import short as _short

if TYPE_CHECKING:
    from PIL import ImageDraw


__all__ = ["render_map"]

_FloatArray = npt.NDArray[np.float64]
_OTHER = "other"

# Colours: matplotlib's "tab10" and "tab20" palettes (the look users know from plots), points
# without classes in one blue, classes beyond the legend in grey.
_TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_TAB20 = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)  # fmt: skip
_POINT_RGB = (64, 115, 191)
_OTHER_RGB = (153, 153, 153)
_RED = (214, 39, 40)
_GRID_RGB = (235, 235, 235)
_FRAME_RGB = (110, 110, 110)
_LABEL_RGB = (51, 51, 51)
#: Point opacity: dense clusters stay readable as clusters.
_POINT_ALPHA = 0.7
#: Font sizes in pixels: title, facts/legend/labels, highlighted labels.
_MARK_PX = 14
#: Radii in pixels of a point, a highlighted point (fill) and its red ring's width.
_POINT_RADIUS = 2.4
_MARK_RADIUS = 4.4
_MARK_EDGE = 2.0
#: Layout in pixels: outer margin, and the band above the plot (title, then the facts line).
_HEADER = 46
#: Geometry is drawn at this multiple of the final size and box-filtered down: anti-aliasing.
_SUPERSAMPLE = 2
#: Label offsets from their point (x right, y up), in pixels; the text's baseline starts (or,
#: to the left, ends) there. The first four are tried for ordinary labels, all for highlights.
_OFFSETS = (
    (6, 4),
    (6, -17),
    (-8, 6),
    (-8, -18),
    (14, 22),
    (14, -36),
    (-17, 25),
    (-17, -39),
    (31, 42),
    (31, -56),
    (-33, 44),
    (-33, -58),
)
#: Labels this far from their point (either way, pixels) get a leader line.
_LEADER_FROM = 19
#: Padding of a highlighted label's box, pixels.
_BOX_PAD = 3
#: Rows measured and tested together when placing ordinary labels.
_LABEL_BATCH = 64


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _plot_area(size: tuple[int, int]) -> tuple[int, int, int]:
    """``(left, top, side)`` in pixels of the square plot area of a ``size`` image.

    Depends on the size only, so one :class:`EvolutionMap` maps the same coordinates to the
    same pixels at every step, whatever the title, labels, legend or font.
    """
    width, height = size
    side = max(16, min(width - 2 * _MARGIN, height - _HEADER - _MARGIN))
    return (width - side) // 2, _HEADER, side


def _scaled(box: _Box, scale: int) -> _Box:
    """A box of whole pixels (ends inclusive) on the supersampled canvas, covering exactly
    those pixels once scaled down."""
    x0, y0, x1, y1 = (round(v) for v in box)
    return x0 * scale, y0 * scale, (x1 + 1) * scale - 1, (y1 + 1) * scale - 1


def _to_pixels(
    coords: _FloatArray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    area: tuple[int, int, int],
) -> _FloatArray:
    """Data coordinates to continuous pixel positions (y down) in the plot area."""
    left, top, side = area
    width, height = (xlim[1] - xlim[0]) or 1.0, (ylim[1] - ylim[0]) or 1.0  # empty limits
    x = left + (coords[:, 0] - xlim[0]) / width * side
    y = top + (ylim[1] - coords[:, 1]) / height * side
    return np.stack([x, y], axis=1)


def _grid_values(low: float, high: float, target: int = 6) -> list[float]:
    """About ``target`` round values (steps of 1, 2 or 5 times a power of ten) in [low, high]."""
    raw = (high - low) / target
    if not raw > 0:
        return []
    magnitude = 10.0 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw * 0.999)
    first = np.ceil(low / step - 1e-9) * step
    return [float(v) for v in np.arange(first, high + step * 1e-6, step)]


@dataclass(frozen=True)
class _Label:
    row: int
    text: str
    #: where the text's baseline starts (pixels).
    origin: tuple[float, float]
    #: the ink box, padded for highlighted labels (pixels).
    box: _Box
    highlighted: bool
    leader: bool


def render_map(
    frame: MapFrame,
    *,
    size: tuple[int, int] = (640, 640),
    title: str | None = None,
    font: str | None = None,
    label_count: int = 25,
    max_legend: int = 10,
    draw_labels: bool = True,
    max_points: int | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw a frame as an RGB image (Pillow; about 10 ms for 500 points at 640x640).

    The plot is a square with the frame's ``xlim``/``ylim``, at the same pixels for every
    frame of one size. Points are coloured by ``frame.categories`` (with a legend),
    highlighted rows are larger, always labelled and joined to their previous position; up to
    ``label_count`` other rows are labelled, in row order, skipping ones that would overlap.
    Drift, neighbour overlap and separation are printed above the plot.

    Args:
        frame: from :meth:`EvolutionMap.update`.
        size: (width, height) in pixels.
        title: drawn above the map as ``"<title> - step <n>"``.
        font: font file for all text (default: one covering every label, CJK included).
        label_count: labels besides the highlighted rows.
        max_legend: classes with their own colour; the rest are grey ("other").
        draw_labels: draw row labels at all.
        max_points: draw only the frame's first this many rows (and every highlighted row).

    Returns:
        (height, width, 3) ``uint8`` array.

    Example:
        >>> import numpy as np
        >>> from embedding_projector.maps import EvolutionMap
        >>> frame = EvolutionMap(render=False).update(np.eye(5), list("abcde"), step=0)
        >>> render_map(frame, size=(200, 160)).shape
        (160, 200, 3)
    """
    # Over 80 lines by its docstring: face, labels and legend box are chosen together.
    from PIL import Image, ImageDraw

    if max_points is not None and max_points < len(frame.coords):
        frame = _first_points(frame, max_points)
    width, height = int(size[0]), int(size[1])
    area = _plot_area((width, height))
    count = len(frame.coords)
    coords = np.clip(frame.coords, frame.xlim[0] * 0.98, frame.xlim[1] * 0.98)
    points = _to_pixels(coords, frame.xlim, frame.ylim, area)
    marked = frame.highlight if len(frame.highlight) == count else np.zeros(count, dtype=bool)
    heading = " ".join((f"{title} - step {frame.step}" if title else f"step {frame.step}").split())
    facts = _facts(frame, count)
    legend = _legend(frame.categories, max_legend)
    legend_names = [_short(name) for name in legend]
    candidates = _label_rows(frame.labels, marked, label_count) if draw_labels else []
    face = _map_face([heading, facts, *legend_names, *(t for _, t in candidates)], font)

    def clean(text: str) -> str:
        return _drawable(text, face.codepoints)

    legend_box = _legend_box(face, [clean(n) for n in legend_names], area)
    placed: list[_Label] = []
    if draw_labels:
        placed = _place_labels(
            frame, points, marked, label_count, face, area, legend_box, (width, height)
        )
        chosen_for = {row for row, _ in candidates}
        later = [_short(frame.labels[p.row]) for p in placed if p.row not in chosen_for]
        if font is None and not all(face.covers(text) for text in later):
            # A label beyond the first candidates needs another font: choose again, with it.
            texts = [_short(frame.labels[label.row]) for label in placed]
            face = _map_face([heading, facts, *legend_names, *texts], None)
            legend_box = _legend_box(face, [clean(n) for n in legend_names], area)
            placed = _place_labels(
                frame, points, marked, label_count, face, area, legend_box, (width, height)
            )

    # Geometry at _SUPERSAMPLE times the size, then box-filtered down: anti-aliased dots and
    # lines at a fraction of the cost of drawing each one anti-aliased.
    scale = _SUPERSAMPLE
    canvas = Image.new("RGB", (width * scale, height * scale), (255, 255, 255))
    draw = ImageDraw.Draw(canvas, "RGBA")  # "RGBA": fills with alpha blend into the picture
    _draw_axes(draw, frame, area, scale)
    _draw_points(draw, frame, points, marked, area, (legend, max_legend), scale)
    _draw_label_boxes(draw, placed, points, scale)
    if legend_box is not None:
        _draw_legend_marks(draw, legend_box, legend, max_legend, scale)

    image = canvas.reduce(scale)
    # Text last, at the final size: FreeType anti-aliases and hints it better than a
    # downscaled picture of bigger text would look.
    _draw_header(image, face, (clean(heading), clean(facts)), area)
    for label in placed:
        size_px = _MARK_PX if label.highlighted else _TEXT_PX
        colour = (0, 0, 0) if label.highlighted else _LABEL_RGB
        _draw_text(image, label.origin, label.text, _font(face, size_px, label.text), colour)
    if legend_box is not None:
        for name, origin in zip(legend_box.names, legend_box.text_origins, strict=True):
            _draw_text(image, origin, name, _font(face, _TEXT_PX, name), (0, 0, 0))
    return np.array(image, dtype=np.uint8)


def _draw_points(
    draw: ImageDraw.ImageDraw,
    frame: MapFrame,
    points: _FloatArray,
    marked: npt.NDArray[np.bool_],
    area: tuple[int, int, int],
    legend: tuple[list[str], int],
    scale: int,
) -> None:
    """Points, highlighted points with their red ring, and trails to where they were."""
    names, max_legend = legend
    count = len(frame.coords)
    rgb = _point_colours(frame.categories, names, max_legend, count)
    alpha = round(255 * _POINT_ALPHA)
    radius = _POINT_RADIUS * scale
    for (x, y), colour in zip(
        (points[~marked] * scale).tolist(), rgb[~marked].tolist(), strict=True
    ):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*colour, alpha))
    if frame.previous_coords is not None and marked.any():
        before = np.clip(frame.previous_coords, frame.xlim[0] * 0.98, frame.xlim[1] * 0.98)
        start = _to_pixels(before, frame.xlim, frame.ylim, area) * scale
        for row in np.flatnonzero(marked & np.isfinite(before).all(axis=1)):
            draw.line(
                (*start[row], *(points[row] * scale)), fill=(*_RED, 128), width=round(1.4 * scale)
            )
    outer = (_MARK_RADIUS + _MARK_EDGE / 2) * scale
    for (x, y), colour in zip((points[marked] * scale).tolist(), rgb[marked].tolist(), strict=True):
        draw.ellipse(
            (x - outer, y - outer, x + outer, y + outer),
            fill=tuple(colour),
            outline=_RED,
            width=round(_MARK_EDGE * scale),
        )


def _draw_label_boxes(
    draw: ImageDraw.ImageDraw, placed: list[_Label], points: _FloatArray, scale: int
) -> None:
    """Leader lines and the boxes behind highlighted labels."""
    for label in placed:
        if label.leader:
            x0, y0, x1, y1 = label.box
            px, py = points[label.row]
            end = (min(max(px, x0), x1), min(max(py, y0), y1))
            draw.line((px * scale, py * scale, end[0] * scale, end[1] * scale), fill=_RED, width=2)
        if label.highlighted:
            draw.rounded_rectangle(
                _scaled(label.box, scale),
                radius=3 * scale,
                fill=(255, 255, 255, 217),
                outline=_RED,
                width=scale,
            )


def _facts(frame: MapFrame, count: int) -> str:
    facts = []
    if frame.drift is not None:
        facts.append(f"drift {frame.drift:.3g}")
    if frame.neighbor_overlap is not None:
        facts.append(f"overlap@{frame.neighbors_k} {frame.neighbor_overlap:.2f}")
    if frame.separation is not None:
        facts.append(f"separation {frame.separation:.2f}")
    facts.append(f"{count} points, PCA {100 * frame.explained_variance:.0f}%")
    if frame.basis_refit:
        facts.append("new basis")
    return "   ".join(facts)


def _draw_axes(
    draw: ImageDraw.ImageDraw, frame: MapFrame, area: tuple[int, int, int], scale: int
) -> None:
    """Light grid lines at round values and a thin frame (no tick labels: PCA units mean
    nothing to the reader, only the shape does)."""
    left, top, side = area
    for value in _grid_values(*frame.xlim):
        x = round(left + (value - frame.xlim[0]) / (frame.xlim[1] - frame.xlim[0]) * side)
        draw.rectangle(
            (x * scale, top * scale, (x + 1) * scale - 1, (top + side) * scale), _GRID_RGB
        )
    for value in _grid_values(*frame.ylim):
        y = round(top + (frame.ylim[1] - value) / (frame.ylim[1] - frame.ylim[0]) * side)
        draw.rectangle(
            (left * scale, y * scale, (left + side) * scale, (y + 1) * scale - 1), _GRID_RGB
        )
    draw.rectangle(
        (left * scale, top * scale, (left + side + 1) * scale - 1, (top + side + 1) * scale - 1),
        outline=_FRAME_RGB,
        width=scale,
    )


def _point_colours(
    categories: list[str] | None, legend: list[str], max_legend: int, count: int
) -> npt.NDArray[np.int64]:
    """(N, 3) RGB of each point: its class's palette colour, grey for "other"."""
    if categories is None:
        return np.tile(np.asarray([_POINT_RGB]), (count, 1))
    palette = _TAB10 if max_legend <= 10 else _TAB20
    table = [_hex_rgb(palette[i % len(palette)]) for i in range(len(legend))]
    index = {name: i for i, name in enumerate(legend) if name != _OTHER}
    colours = np.asarray([*table, _OTHER_RGB], dtype=np.int64)
    return colours[[index.get(name, len(table)) for name in categories]]


@dataclass(frozen=True)
class _LegendBox:
    box: _Box
    names: list[str]
    #: dot centres and where the names' baselines start, pixels.
    dots: list[tuple[float, float]]
    text_origins: list[tuple[float, float]]


#: Legend layout, pixels: row height, inner padding, dot radius, gap between dot and name.
_LEGEND_ROW = 17
_LEGEND_PAD = 6
_LEGEND_DOT = 4.0
_LEGEND_GAP = 6


def _legend_box(face: FontFace, names: list[str], area: tuple[int, int, int]) -> _LegendBox | None:
    """Where the legend goes: the plot's upper right corner, sized to its names."""
    if not names:
        return None
    left, top, side = area
    text_width = max(_ink_box(_font(face, _TEXT_PX, name), name)[2] for name in names)
    box_width = 2 * _LEGEND_PAD + 2 * _LEGEND_DOT + _LEGEND_GAP + text_width
    box_height = 2 * _LEGEND_PAD + _LEGEND_ROW * len(names) - 4
    x1 = left + side - 6
    x0 = x1 - box_width
    y0 = top + 6
    rows = [y0 + _LEGEND_PAD + _LEGEND_ROW * (i + 0.5) - 2 for i in range(len(names))]
    dot_x = x0 + _LEGEND_PAD + _LEGEND_DOT
    text_x = dot_x + _LEGEND_DOT + _LEGEND_GAP
    # Names centred on their dots: the baseline sits half the line's extent below the middle.
    ascent, descent = _font(face, _TEXT_PX, "").getmetrics()
    below = (ascent - descent) / 2
    return _LegendBox(
        box=(x0, y0, x1, y0 + box_height),
        names=names,
        dots=[(dot_x, y) for y in rows],
        text_origins=[(text_x, y + below) for y in rows],
    )


def _draw_legend_marks(
    draw: ImageDraw.ImageDraw, legend: _LegendBox, names: list[str], max_legend: int, scale: int
) -> None:
    draw.rounded_rectangle(
        _scaled(legend.box, scale),
        radius=3 * scale,
        fill=(255, 255, 255, 217),
        outline=(204, 204, 204),
        width=scale,
    )
    colours = _point_colours(names, names, max_legend, len(names))
    r = _LEGEND_DOT * scale
    for (x, y), colour in zip(legend.dots, colours.tolist(), strict=True):
        draw.ellipse(
            (x * scale - r, y * scale - r, x * scale + r, y * scale + r), fill=tuple(colour)
        )


def _marker_box(point: _FloatArray) -> _Box:
    """The pixels a highlighted point's marker covers (with a little room)."""
    reach = _MARK_RADIUS + _MARK_EDGE
    x, y = float(point[0]), float(point[1])
    return x - reach, y - reach, x + reach, y + reach


def _overlap(a: _Box, b: _Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _shift_into(low: float, high: float, minimum: float, maximum: float) -> int:
    """Whole pixels to move [low, high] by to lie within [minimum, maximum] (or start there)."""
    if low < minimum or high - low > maximum - minimum:
        return math.ceil(minimum - low)
    if high > maximum:
        return math.floor(maximum - high)
    return 0


def _place_labels(
    frame: MapFrame,
    points: _FloatArray,
    marked: npt.NDArray[np.bool_],
    label_count: int,
    face: FontFace,
    area: tuple[int, int, int],
    legend: _LegendBox | None,
    image_size: tuple[int, int],
) -> list[_Label]:
    """Which rows get a label, and where (pixels, measured with the font they are drawn in).

    Highlighted rows first (always labelled, at the least crowded of a few offsets, slid into
    the picture if need be), then up to ``label_count`` others in row order, each at the first
    of four offsets where its text box overlaps no label placed before, no highlighted point
    and not the legend, and stays inside the plot; rows with no free offset get none.
    """
    # Over 80 lines: both passes share one growing array of taken boxes (vectorised tests).
    left, top, side = area
    image_width, image_height = image_size
    taken: list[_Box] = [] if legend is None else [legend.box]
    placed: list[_Label] = []

    for row in np.flatnonzero(marked).tolist():
        text, (ink_left, ink_top, ink_right, ink_bottom) = _label_ink(
            face, _MARK_PX, frame.labels[row]
        )
        if not text.strip():
            continue
        own = _marker_box(points[row])
        options = []
        for order, offset in enumerate(_OFFSETS):
            # Whole pixels: the box's edges then fall on pixel edges and stay sharp.
            x = round(points[row, 0] + offset[0])
            y = round(points[row, 1] - offset[1])
            if offset[0] < 0:  # to the left of the point: the text ends there
                x -= round(ink_right)
            # Always drawn: slide it into the picture if it sticks out (a long label near an
            # edge); it gets a leader line then.
            pad = _BOX_PAD
            shift_x = _shift_into(x + ink_left - pad, x + ink_right + pad, 1, image_width - 1)
            shift_y = _shift_into(y + ink_top - pad, y + ink_bottom + pad, top, image_height - 1)
            x, y = x + shift_x, y + shift_y
            box = (x + ink_left - pad, y + ink_top - pad, x + ink_right + pad, y + ink_bottom + pad)
            slid = bool(shift_x or shift_y)
            # Fewest clashes (a slid label must not hide its own point either; the offsets
            # keep the others clear of it); of those, one that needed no sliding, the nearest.
            clashes = sum(_overlap(box, other) for other in taken) + (slid and _overlap(box, own))
            leader = slid or max(abs(offset[0]), abs(offset[1])) >= _LEADER_FROM
            label = _Label(row, text, (x, y), box, highlighted=True, leader=leader)
            options.append((clashes, slid, order, label))
        best = min(options, key=lambda option: option[:3])[3]
        taken.append(best.box)
        placed.append(best)
    # Ordinary labels also keep off the highlighted points themselves.
    taken.extend(_marker_box(point) for point in points[marked])

    # Ordinary labels: greedy in row order, but vectorised: the four candidate boxes of a
    # batch of rows are tested against everything placed at once, and after each placement
    # only against the new box. A crowded map (every row tried) stays a few milliseconds.
    rows = np.flatnonzero(~marked)
    offsets = np.asarray(_OFFSETS[:4], dtype=np.float64)
    others = 0
    for start in range(0, len(rows), _LABEL_BATCH):
        if others >= label_count:
            break
        batch = rows[start : start + _LABEL_BATCH]
        measured = [_label_ink(face, _TEXT_PX, frame.labels[row]) for row in batch.tolist()]
        ink = np.asarray([box for _, box in measured], dtype=np.float64).reshape(-1, 4)
        x = np.rint(points[batch, :1] + offsets[:, 0])  # (rows, offsets)
        y = np.rint(points[batch, 1:] - offsets[:, 1])
        x = x - np.where(offsets[:, 0] < 0, np.rint(ink[:, 2:3]), 0.0)
        boxes = np.stack(
            [x + ink[:, :1], y + ink[:, 1:2], x + ink[:, 2:3], y + ink[:, 3:]], axis=-1
        )  # (rows, offsets, 4)
        free = (
            (boxes[..., 0] >= left)
            & (boxes[..., 2] <= left + side)
            & (boxes[..., 1] >= top)
            & (boxes[..., 3] <= top + side)
        )
        free &= np.asarray([bool(text.strip()) for text, _ in measured])[:, None]
        for other in taken:
            free &= ~_overlaps(boxes, other)
        position = 0
        while others < label_count:
            open_rows = np.flatnonzero(free[position:].any(axis=1))
            if not len(open_rows):
                break
            index = position + int(open_rows[0])
            choice = int(np.argmax(free[index]))
            x0, y0, x1, y1 = (float(v) for v in boxes[index, choice])
            box = (x0, y0, x1, y1)
            placed.append(
                _Label(
                    row=int(batch[index]),
                    text=measured[index][0],
                    origin=(float(x[index, choice]), float(y[index, choice])),
                    box=box,
                    highlighted=False,
                    leader=False,
                )
            )
            taken.append(box)
            others += 1
            position = index + 1
            free[position:] &= ~_overlaps(boxes[position:], box)
    return placed


def _overlaps(boxes: _FloatArray, box: _Box) -> npt.NDArray[np.bool_]:
    """Which of ``boxes`` (..., 4) overlap ``box``."""
    return (
        (boxes[..., 0] < box[2])
        & (box[0] < boxes[..., 2])
        & (boxes[..., 1] < box[3])
        & (box[1] < boxes[..., 3])
    )


def _legend(categories: list[str] | None, max_legend: int) -> list[str]:
    if categories is None:
        return []
    names, counts = np.unique(np.asarray(categories), return_counts=True)
    if len(names) <= max_legend:
        kept = list(names)
    else:
        top = np.argsort(-counts, kind="stable")[: max_legend - 1]
        kept = [names[i] for i in sorted(top)] + [_OTHER]
    return sorted((str(n) for n in kept if n != _OTHER), key=_natural) + (
        [_OTHER] if _OTHER in kept else []
    )


def _first_points(frame: MapFrame, count: int) -> MapFrame:
    """The frame restricted to its first ``count`` rows plus its highlighted rows."""
    from dataclasses import replace

    keep = np.zeros(len(frame.coords), dtype=bool)
    keep[:count] = True
    if len(frame.highlight) == len(keep):
        keep |= frame.highlight
    rows = np.flatnonzero(keep)
    return replace(
        frame,
        coords=frame.coords[rows],
        labels=[frame.labels[i] for i in rows],
        categories=None if frame.categories is None else [frame.categories[i] for i in rows],
        highlight=frame.highlight[rows] if len(frame.highlight) == len(keep) else frame.highlight,
        previous_coords=None if frame.previous_coords is None else frame.previous_coords[rows],
    )
