"""Sprite images drawn from labels: every point in the projector shown as its own text.

For character, kanji, kana, hangul or emoji embeddings (or short subword tokens), the label
*is* the picture. :func:`glyph_images` draws each label centred in a square cell, as large as
fits: one character fills the cell, a short word is shrunk to fit, an over-long label is cut
with an ellipsis. The result is ready for ``add_embedding(label_img=...)``.

Fonts come from :mod:`embedding_projector.glyphs.fonts`: the labels' characters are checked against
each font's character map, so a character that no installed font has is drawn as a visible
placeholder (``U+XXXX``, or ``�`` inside a word) with one warning, never as an empty box
that looks like a glyph.

Example:
    >>> import numpy as np, tempfile
    >>> from embedding_projector import ProjectorWriter
    >>> from embedding_projector.glyphs import glyph_images
    >>> labels = ["猫", "犬", "cat", "dog"]
    >>> images = glyph_images(labels)
    >>> images.shape, images.dtype
    ((4, 1, 64, 64), dtype('uint8'))
    >>> snap = ProjectorWriter(tempfile.mkdtemp()).add_embedding(
    ...     np.random.rand(4, 8), metadata=labels, label_img=images)
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

from .._format import sprite_cell_size
from ..errors import InvalidEmbeddingError
from .fonts import (
    FontFace,
    FontLike,
    drawable_characters,
    font_for_text,
    fonts_for_labels,
    needs_shaping,
)

if TYPE_CHECKING:
    from PIL import ImageFont

__all__ = ["DEFAULT_GLYPH_SIZE", "Color", "default_glyph_size", "glyph_images"]

#: Side of a glyph cell in pixels when the sprite limit allows it.
DEFAULT_GLYPH_SIZE = 64
#: Smallest cell drawn (below this nothing is readable).
MIN_GLYPH_SIZE = 8
#: Font size of a single character, as a fraction of the cell.
_CHAR_FILL = 0.86
#: Largest share of the cell a word's ink may take, either way.
_WORD_FILL = 0.92
#: Words are not shrunk below this fraction of the single-character size: they are cut instead.
_MIN_WORD_SCALE = 0.3
#: ... and never below this many pixels (smaller text cannot be read in small cells).
_MIN_WORD_PX = 7
_ELLIPSIS = "…"
_REPLACEMENT = "\ufffd"
_PLACEHOLDER_CHARS = "U+0123456789ABCDEF…"
#: Rendered cells kept between calls (keyed by label, size, font and colours).
_CACHE_BYTES = 64 * 1024 * 1024

Color: TypeAlias = "int | tuple[int, int, int]"


def default_glyph_size(count: int) -> int:
    """The cell side for ``count`` labels: 64 px, less when 8192 px sprites need it.

    Uses the writer's own rule (:func:`embedding_projector._format.sprite_cell_size`), so the
    writer never has to downscale what was drawn here.

    Example:
        >>> default_glyph_size(100), default_glyph_size(10_000), default_glyph_size(100_000)
        (64, 64, 25)
    """
    if count <= 0:
        return DEFAULT_GLYPH_SIZE
    return max(1, sprite_cell_size(count, DEFAULT_GLYPH_SIZE, DEFAULT_GLYPH_SIZE))


class _GlyphCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], npt.NDArray[np.uint8]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> npt.NDArray[np.uint8] | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: npt.NDArray[np.uint8]) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


_CACHE = _GlyphCache(_CACHE_BYTES)


def _check_color(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values: tuple[Any, ...] = (int(value),)
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        values = tuple(value)
    else:
        raise InvalidEmbeddingError(
            f"{name} must be a grey level 0-255 or an (r, g, b) tuple; got {value!r}."
        )
    for part in values:
        if (
            isinstance(part, bool)
            or not isinstance(part, (int, np.integer))
            or not (0 <= part <= 255)
        ):
            raise InvalidEmbeddingError(f"{name} values must be integers 0-255; got {value!r}.")
    return tuple(int(part) for part in values)


def _cell_size(size: Any, count: int) -> int:
    """``size`` checked, or the default cell side for ``count`` labels."""
    if size is None:
        size = default_glyph_size(count)
        if size < MIN_GLYPH_SIZE:
            raise InvalidEmbeddingError(
                f"{count} glyphs fit TensorBoard's 8192 px sprite only at {size} px each, too "
                f"small to read (minimum {MIN_GLYPH_SIZE}); pass fewer labels (the projector "
                "shows at most 100,000 points anyway)."
            )
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_GLYPH_SIZE:
        raise InvalidEmbeddingError(
            f"size must be an integer >= {MIN_GLYPH_SIZE} pixels; got {size!r}."
        )
    return int(size)


def _colors(foreground: Any, background: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Both colours checked, as grey levels, or both as (r, g, b) if either is a tuple."""
    fg = _check_color(foreground, "foreground")
    bg = _check_color(background, "background")
    if len(fg) == 3 or len(bg) == 3:
        fg, bg = (fg * 3)[:3], (bg * 3)[:3]
    return fg, bg


def _clean(label: Any) -> str:
    """One line of text: whitespace runs become one space, control characters go."""
    text = label if isinstance(label, str) else str(label)
    text = "".join(" " if char.isspace() else char for char in text)
    return " ".join("".join(c for c in text if unicodedata.category(c) != "Cc").split())


def glyph_images(
    labels: Sequence[Any],
    size: int | None = None,
    font: FontLike | None = None,
    *,
    foreground: Color = 0,
    background: Color = 255,
    stacklevel: int = 2,
) -> npt.NDArray[np.uint8]:
    """Draw each label as an image for the projector's sprites.

    Args:
        labels: one label per point (non-strings are drawn as ``str(label)``).
        size: cell side in pixels; default 64, smaller when the 8192 px sprite limit needs it
            (see :func:`default_glyph_size`).
        font: a font file (or :class:`~embedding_projector.glyphs.fonts.FontFace`) for every label;
            default: the installed fonts that cover the labels' characters.
        foreground: text colour: a grey level, or an (r, g, b) tuple for colour images.
        background: background colour, same forms as ``foreground``.
        stacklevel: where warnings point, as in :func:`warnings.warn` (2: the caller of this
            function; wrappers add their own frames).

    Returns:
        uint8 array of shape (N, 1, size, size), or (N, 3, size, size) if a colour is a tuple.

    Raises:
        InvalidEmbeddingError: bad size or colours.
        FileNotFoundError: ``font`` does not exist, or no font is installed at all.

    Warns:
        MissingGlyphWarning: once per character that no available font can draw.

    Example:
        >>> glyph_images(["a", "あ", "한"], size=32).shape
        (3, 1, 32, 32)
    """
    if isinstance(labels, (str, bytes)):
        raise InvalidEmbeddingError(
            "labels must be a sequence of labels, not one string; "
            "use list(text) for one image per character."
        )
    count = len(labels)
    size = _cell_size(size, count)
    texts = [_clean(label) for label in labels]
    fg, bg = _colors(foreground, background)
    channels = len(fg)
    out = np.empty((count, channels, size, size), dtype=np.uint8)
    if count == 0:
        return out
    unique = list(dict.fromkeys(texts))
    faces = dict(
        zip(unique, fonts_for_labels(unique, font, stacklevel=stacklevel + 1), strict=True)
    )
    fallback: FontFace | None = None
    rendered: dict[str, npt.NDArray[np.uint8]] = {}
    for text in unique:
        face = faces[text]
        key = (text, size, face, fg, bg)
        cell = _CACHE.get(key)
        if cell is None:
            drawn, placeholder = _drawable_text(text, face)
            draw_face = face
            if placeholder:
                # The code point, in whichever font draws it (the label's own font may be an
                # explicit one without Latin letters); blank if none can.
                if fallback is None:
                    fallback = font_for_text(_PLACEHOLDER_CHARS, warn=False)
                draw_face = fallback
                if not fallback.covers(drawn):
                    drawn = ""
            cell = _render(
                drawn, draw_face, size, fg, bg, min_scale=0.0 if placeholder else _MIN_WORD_SCALE
            )
            _CACHE.put(key, cell)
        rendered[text] = cell
    for row, text in enumerate(texts):
        out[row] = rendered[text]
    return out


def _drawable_text(text: str, face: FontFace) -> tuple[str, bool]:
    """The text to draw with ``face``: no character of it may come out as the .notdef box.

    Characters the face lacks become a visible placeholder (``�``); invisible ones it lacks
    (format characters, selectors) are dropped, spaces it lacks become ASCII spaces.

    Returns (text, placeholder): ``placeholder`` is True when nothing of the label can be
    drawn, and the text is the code point (``U+E000``) to draw in a Latin font instead.
    """
    cmap = face.codepoints
    missing = set(face.missing(text))
    if missing and len(missing) == len(set(drawable_characters(text))):
        first = next(iter(drawable_characters(text)))
        more = _ELLIPSIS if len(text) > 1 else ""
        return f"U+{ord(first):04X}{more}", True
    replacement = _REPLACEMENT if face.covers(_REPLACEMENT) else "?"
    out = []
    for char in text:
        if char in missing:
            out.append(replacement)
        elif ord(char) in cmap:
            out.append(char)
        elif char.isspace():
            out.append(" ")
        # else: an invisible character the font does not have; leave it out
    return "".join(out).strip(), False


Box = tuple[int, int, int, int]


def _ink_box(font: ImageFont.FreeTypeFont, text: str) -> Box:
    left, top, right, bottom = font.getbbox(text)
    return int(left), int(top), int(right), int(bottom)


def _smallest_font(size: int, min_scale: float) -> int:
    """The smallest font size a word may shrink to before it is cut instead."""
    full = max(1, round(size * _CHAR_FILL))
    smallest = max(1, round(full * min_scale))
    return max(smallest, min(full, _MIN_WORD_PX)) if min_scale > 0 else smallest


def _fit(
    face: FontFace, text: str, size: int, shaping: bool, min_scale: float
) -> tuple[int, Box] | None:
    """The largest font size (<= the one-character size) at which ``text`` fits the cell.

    Returns (font size, ink box at that size), or None if it would be smaller than
    :func:`_smallest_font`.
    """
    full = max(1, round(size * _CHAR_FILL))
    limit = size * _WORD_FILL
    font_size = full
    for _ in range(8):
        box = _ink_box(face.pil_font(font_size, shaping=shaping), text)
        width, height = box[2] - box[0], box[3] - box[1]
        if width <= limit and height <= limit:
            return font_size, box
        scale = min(limit / max(width, 1), limit / max(height, 1))
        new_size = min(font_size - 1, math.floor(font_size * scale))
        if new_size < _smallest_font(size, min_scale):
            return None
        font_size = new_size
    return font_size, _ink_box(face.pil_font(font_size, shaping=shaping), text)


def _truncate(face: FontFace, text: str, size: int, shaping: bool) -> tuple[str, int, Box]:
    """The longest prefix of ``text`` plus an ellipsis that fits at the smallest word size."""
    ellipsis = _ELLIPSIS if face.covers(_ELLIPSIS) else "..."
    small = _smallest_font(size, _MIN_WORD_SCALE)
    font = face.pil_font(small, shaping=shaping)
    limit = size * _WORD_FILL
    low, high = 0, len(text)
    while low < high:  # binary search on the prefix length
        middle = (low + high + 1) // 2
        left, _, right, _ = _ink_box(font, text[:middle].rstrip() + ellipsis)
        if right - left <= limit:
            low = middle
        else:
            high = middle - 1
    cut = text[:low].rstrip() + ellipsis
    fitted = _fit(face, cut, size, shaping, _MIN_WORD_SCALE)
    if fitted is None:
        return cut, small, _ink_box(font, cut)
    return cut, *fitted


def _render(
    text: str,
    face: FontFace,
    size: int,
    fg: tuple[int, ...],
    bg: tuple[int, ...],
    *,
    min_scale: float = _MIN_WORD_SCALE,
) -> npt.NDArray[np.uint8]:
    """One cell: ``text`` centred by its ink, as large as fits (cut with "…" if too long)."""
    from PIL import Image, ImageDraw

    channels = len(bg)
    if text and face.bitmap_sizes:
        return _render_bitmap_font(text, face, size, fg, bg)
    image = Image.new("L" if channels == 1 else "RGB", (size, size), bg[0] if channels == 1 else bg)
    if text:
        shaping = needs_shaping(text)
        fitted = _fit(face, text, size, shaping, min_scale)
        if fitted is None:
            text, font_size, box = _truncate(face, text, size, shaping)
        else:
            font_size, box = fitted
        left, top, right, bottom = box
        x = (size - (right - left)) / 2 - left
        y = (size - (bottom - top)) / 2 - top
        ImageDraw.Draw(image).text(
            (round(x), round(y)),
            text,
            font=face.pil_font(font_size, shaping=shaping),
            fill=fg[0] if channels == 1 else fg,
        )
    array = np.asarray(image, dtype=np.uint8)
    if channels == 1:
        return array[np.newaxis]
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _render_bitmap_font(
    text: str, face: FontFace, size: int, fg: tuple[int, ...], bg: tuple[int, ...]
) -> npt.NDArray[np.uint8]:
    """Colour emoji fonts exist only at fixed sizes: draw at one, then scale the picture."""
    from PIL import Image, ImageDraw

    strikes = face.bitmap_sizes
    strike = next((s for s in strikes if s >= size), strikes[-1])
    shaping = needs_shaping(text)
    font = face.pil_font(strike, shaping=shaping)
    left, top, right, bottom = _ink_box(font, text)
    width, height = max(1, right - left), max(1, bottom - top)
    ink = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    colour = (*((fg * 3)[:3]), 255)
    ImageDraw.Draw(ink).text((-left, -top), text, font=font, fill=colour, embedded_color=True)
    limit = size * (_CHAR_FILL if len(text) == 1 else _WORD_FILL)
    scale = min(limit / width, limit / height)
    ink = ink.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS
    )
    cell = Image.new("RGBA", (size, size), (*((bg * 3)[:3]), 255))
    cell.alpha_composite(ink, ((size - ink.width) // 2, (size - ink.height) // 2))
    if len(bg) == 1:
        return np.asarray(cell.convert("L"), dtype=np.uint8)[np.newaxis]
    return np.ascontiguousarray(np.asarray(cell.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1))
