"""One font face and what it covers: its character map, bitmap sizes and Pillow font.

Coverage is decided by the face's character map (read with fontTools), never by looking at
what gets drawn. Which installed fonts exist is :mod:`.glyphs._font_discovery`'s business; which of
them draws which label is :mod:`embedding_projector.glyphs.fonts`', where every public name here is
importable from.
"""

from __future__ import annotations

import functools
import importlib
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import InvalidEmbeddingError

if TYPE_CHECKING:
    from PIL import ImageFont

__all__ = [
    "INSTALL_HINT",
    "FontFace",
    "FontLike",
    "MissingGlyphWarning",
    "drawable_characters",
    "load_font",
    "needs_shaping",
]

#: How to get fonts that cover CJK text (used in warnings and errors).
INSTALL_HINT = (
    "install a font that has it, e.g. `apt-get install fonts-noto-cjk` (Chinese, Japanese, "
    "Korean), `apt-get install fonts-noto-color-emoji` (emoji), or "
    "`pip install matplotlib-fontja` (Japanese, IPAex Gothic), or pass font='/path/to/font.ttf'"
)

# Characters that need no glyph of their own: controls, format characters (ZWJ, bidi marks),
# variation selectors, whitespace.
_NO_GLYPH_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
#: The ASCII characters in those categories (controls, space), for ``str.translate``.
_ASCII_NO_GLYPH = dict.fromkeys([*range(0x21), 0x7F])


class MissingGlyphWarning(UserWarning):
    """No available font has a glyph for some character; it is drawn as a placeholder."""


@dataclass(frozen=True)
class FontFace:
    """One face of a font file (``index`` selects a face in a ``.ttc``/``.otc`` collection).

    Attributes:
        path: the font file.
        index: the face number inside a collection (0 for plain ``.ttf``/``.otf``).
        family: the family name, for messages only.
    """

    path: str
    index: int = 0
    family: str = ""

    def __str__(self) -> str:
        face = f" #{self.index}" if self.index else ""
        name = f"{self.family} " if self.family else ""
        return f"{name}({self.path}{face})"

    @property
    def codepoints(self) -> frozenset[int]:
        """The code points the face's character map covers."""
        return _cmap(self.path, self.index)

    @property
    def bitmap_sizes(self) -> tuple[int, ...]:
        """Pixel sizes of a bitmap-only font (colour emoji); empty for an outline font.

        A bitmap-only font can be loaded only at these sizes; draw at one and scale the image.
        """
        return _bitmap_sizes(self.path, self.index)

    def covers(self, text: str) -> bool:
        """True when every drawable character of ``text`` is in the face's character map."""
        cmap = self.codepoints
        return all(ord(char) in cmap for char in drawable_characters(text))

    def missing(self, text: str) -> list[str]:
        """The drawable characters of ``text`` that the face has no glyph for (in order)."""
        cmap = self.codepoints
        return [char for char in drawable_characters(text) if ord(char) not in cmap]

    def pil_font(self, size: int, *, shaping: bool = True) -> ImageFont.FreeTypeFont:
        """This face as a Pillow font of ``size`` pixels (cached).

        Args:
            size: pixels per em.
            shaping: use Pillow's complex text layout (Raqm, when installed) for scripts that
                need shaping; ``False`` uses the basic layout, about twice as fast and exact
                for Latin, CJK, kana and precomposed hangul (see :func:`needs_shaping`).
        """
        return _pil_font(self.path, self.index, int(size), bool(shaping))


#: A font file path, or one face of a font file.
FontLike: TypeAlias = "str | os.PathLike[str] | FontFace"


# --------------------------------------------------------------------------- characters


def drawable_characters(text: str) -> Iterator[str]:
    """The characters of ``text`` that need a glyph (no whitespace, controls, ZWJ, selectors).

    Example:
        >>> list(drawable_characters("a b\\u200d"))
        ['a', 'b']
    """
    if text.isascii():  # most labels: drop controls and spaces in C, no per-character lookup
        yield from text.translate(_ASCII_NO_GLYPH)
        return
    for char in text:
        code = ord(char)
        if unicodedata.category(char) in _NO_GLYPH_CATEGORIES:
            continue
        if any(code in selectors for selectors in _VARIATION_SELECTORS):
            continue
        yield char


# --------------------------------------------------------------------------- loading


@functools.lru_cache(maxsize=256)
def _cmap(path: str, index: int) -> frozenset[int]:
    try:
        tt_lib: Any = importlib.import_module("fontTools.ttLib")
    except ImportError as error:  # pragma: no cover - fontTools is a dependency
        raise ImportError(
            "Checking which characters a font covers needs fontTools: `pip install fonttools`."
        ) from error
    try:
        with open(path, "rb") as handle:  # ours, so it is closed even if parsing fails
            font = tt_lib.TTFont(handle, fontNumber=index, lazy=True)
            cmap = font.getBestCmap() or {}
            return frozenset(cmap)
    except Exception as error:  # fontTools raises many types for broken files
        raise InvalidEmbeddingError(
            f"{path} (face {index}) is not a readable TrueType/OpenType font: {error}"
        ) from error


@functools.lru_cache(maxsize=256)
def _bitmap_sizes(path: str, index: int) -> tuple[int, ...]:
    tt_lib: Any = importlib.import_module("fontTools.ttLib")
    with open(path, "rb") as handle:
        font = tt_lib.TTFont(handle, fontNumber=index, lazy=True)
        if any(tag in font for tag in ("glyf", "CFF ", "CFF2")):
            return ()
        sizes: set[int] = set()
        for tag in ("CBLC", "EBLC"):
            if tag in font:
                sizes.update(int(s.bitmapSizeTable.ppemY) for s in font[tag].strikes)
        if "sbix" in font:
            sizes.update(int(ppem) for ppem in font["sbix"].strikes)
        return tuple(sorted(sizes))


@functools.lru_cache(maxsize=512)
def _pil_font(path: str, index: int, size: int, shaping: bool) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    layout = None if shaping else ImageFont.Layout.BASIC
    return ImageFont.truetype(path, size=size, index=index, layout_engine=layout)


# Blocks whose text needs a shaping engine (joining, reordering, conjoining jamo, emoji
# sequences); everything else is drawn exactly by Pillow's basic layout.
_SHAPING_RANGES = (
    (0x0590, 0x08FF),  # Hebrew, Arabic, Syriac, Thaana, NKo, ...
    (0x0900, 0x0DFF),  # Indic scripts
    (0x0E00, 0x0FFF),  # Thai, Lao, Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # conjoining Hangul jamo
    (0x1780, 0x17FF),  # Khmer
    (0x200C, 0x200F),  # ZWNJ, ZWJ, bidi marks
    (0xA960, 0xA97F),  # Hangul jamo extended-A
    (0xD7B0, 0xD7FF),  # Hangul jamo extended-B
    (0xFB1D, 0xFDFF),  # Hebrew/Arabic presentation forms
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFE70, 0xFEFF),  # Arabic presentation forms-B
    (0x1F1E6, 0x1F1FF),  # regional indicators (flags)
    (0x1F3FB, 0x1F3FF),  # emoji skin tones
    (0xE0000, 0xE01EF),  # tags, variation selectors supplement
)


def needs_shaping(text: str) -> bool:
    """True when ``text`` has characters that only a shaping engine draws correctly.

    Example:
        >>> needs_shaping("東京 abc"), needs_shaping("e\u0301"), needs_shaping("سلام")
        (False, True, True)
    """
    for char in text:
        code = ord(char)
        if code < 0x0300:
            continue
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Mc", "Me"):
            return True
        if any(low <= code <= high for low, high in _SHAPING_RANGES):
            return True
    return False


def load_font(font: FontLike, index: int = 0) -> FontFace:
    """A :class:`FontFace` for a font file (or the face itself), checked to be readable.

    Args:
        font: a ``.ttf``/``.otf``/``.ttc``/``.otc`` path, or a :class:`FontFace`.
        index: face number in a collection (ignored for a :class:`FontFace`).

    Raises:
        FileNotFoundError: the file does not exist.
        InvalidEmbeddingError: the file is not a font fontTools can read.

    Example:
        >>> from embedding_projector.glyphs.fonts import font_for_text
        >>> face = load_font(font_for_text("A").path)
        >>> face.covers("A")
        True
    """
    if isinstance(font, FontFace):
        face = font
    else:
        path = Path(os.fspath(font)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"font file not found: {str(path)!r}")
        face = FontFace(str(path), int(index))
    _cmap(face.path, face.index)
    return face
