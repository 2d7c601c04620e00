"""Text on map images: one font per map, cached text measurement and masks, label cleaning.

Used by :mod:`embedding_projector.maps.drawing`; fonts come from
:func:`embedding_projector.glyphs.fonts.font_path` (CJK included).

Example:
    >>> short("a  very   long label " * 3)[-1]
    '…'
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..glyphs.fonts import FontFace, font_path, load_font, needs_shaping

if TYPE_CHECKING:
    from PIL import Image, ImageFont

__all__ = [
    "Box",
    "draw_text",
    "drawable",
    "font",
    "ink_box",
    "label_ink",
    "label_rows",
    "map_face",
    "natural",
    "short",
]

#: Labels longer than this are cut (with an ellipsis).
MAX_LABEL_CHARS = 24
#: Font sizes in pixels: title, facts/legend/labels.
TITLE_PX = 15
TEXT_PX = 12
#: Outer margin of a map image, pixels.
MARGIN = 8
#: Colour of the facts line (drift, overlap, ...).
FACTS_RGB = (85, 85, 85)
#: (left, top, right, bottom) in pixels.
Box = tuple[float, float, float, float]


def font(face: FontFace, px: int, text: str) -> ImageFont.FreeTypeFont:
    # Basic layout (about twice as fast) unless the text needs shaping; both are cached.
    return face.pil_font(px, shaping=needs_shaping(text))


@functools.lru_cache(maxsize=4096)
def ink_box(font: ImageFont.FreeTypeFont, text: str) -> Box:
    """The text's ink box relative to its left end on the baseline (cached: labels recur)."""
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    return float(left), float(top), float(right), float(bottom)


def map_face(texts: Sequence[str], font: str | None) -> FontFace:
    """One outline font for all of a map's text (CJK included when the labels need it)."""
    face = load_font(font_path(texts, font))
    if face.bitmap_sizes:
        # A colour-emoji font exists at fixed sizes only; use one that draws the plain text
        # (the emoji become "?").
        face = load_font(font_path([t for t in texts if t.isascii()] or ["step"]))
    return face


@functools.lru_cache(maxsize=2048)
def text_mask(font: ImageFont.FreeTypeFont, text: str) -> tuple[Image.Image, int, int] | None:
    """The text's anti-aliased coverage as an "L" image, and where its corner sits relative
    to the baseline start; ``None`` for text without ink. Cached: the same labels are drawn at
    every step, and pasting a stored mask costs a tenth of rasterising the text again."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor="ls"))
    if right <= left or bottom <= top:
        return None
    mask = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor="ls")
    return mask, left, top


def draw_text(
    image: Image.Image,
    origin: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont,
    colour: tuple[int, int, int],
) -> None:
    """``text`` with its baseline starting at ``origin`` (rounded to whole pixels)."""
    drawn = text_mask(font, text)
    if drawn is not None:
        mask, left, top = drawn
        image.paste(colour, (round(origin[0]) + left, round(origin[1]) + top), mask)


def natural(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def drawable(text: str, codepoints: frozenset[int]) -> str:
    """``text`` with characters the font lacks dropped (format) or shown as ``?``.

    The font resolver has already warned about characters no installed font covers; this
    draws a visible ``?`` for them instead of the font's empty .notdef box.
    """
    out = []
    for char in text:
        if ord(char) in codepoints or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Mn", "Me") or "\ufe00" <= char <= "\ufe0f":
            continue
        else:
            out.append("?")
    return "".join(out)


def label_rows(
    labels: list[str], marked: npt.NDArray[np.bool_], label_count: int
) -> list[tuple[int, str]]:
    """Rows that may get a label: the highlighted ones, then the first ``label_count`` others
    (most are placed; the font is chosen for these texts before placing them)."""
    rows = [(int(row), short(labels[row])) for row in np.flatnonzero(marked)]
    others = np.flatnonzero(~marked)[:label_count]
    return rows + [(int(row), short(labels[row])) for row in others]


@functools.lru_cache(maxsize=8192)
def label_ink(face: FontFace, px: int, label: str) -> tuple[str, Box]:
    """A row label as drawn (shortened, characters the font lacks replaced) and its ink box
    relative to its baseline start; cached, since the same labels come back every step."""
    text = drawable(short(label), face.codepoints)
    return text, ink_box(font(face, px, text), text)


def draw_header(
    image: Image.Image, face: FontFace, texts: tuple[str, str], area: tuple[int, int, int]
) -> None:
    """The title (centred when it fits) and the facts line above the plot."""
    heading, facts = texts
    width = image.size[0]
    title_font = font(face, TITLE_PX, heading)
    heading_width = ink_box(title_font, heading)[2]
    ascent = title_font.getmetrics()[0]
    heading_x = (width - heading_width) / 2 if heading_width <= width - 2 * MARGIN else MARGIN
    draw_text(image, (heading_x, 5 + ascent), heading, title_font, (0, 0, 0))
    facts_font = font(face, TEXT_PX, facts)
    facts_width = ink_box(facts_font, facts)[2]
    if facts_width > width - 2 * MARGIN:  # a small picture: tighter, then cut
        facts = facts.replace("   ", "  ")
        if ink_box(facts_font, facts)[2] > width - 2 * MARGIN:
            while len(facts) > 1 and ink_box(facts_font, facts + "…")[2] > width - 2 * MARGIN:
                facts = facts[:-1]
            facts = drawable(facts.rstrip() + "…", face.codepoints)
        facts_width = ink_box(facts_font, facts)[2]
    facts_x = max(MARGIN, min(area[0], width - MARGIN - facts_width))
    draw_text(image, (facts_x, area[1] - 6), facts, facts_font, FACTS_RGB)
