"""Which font draws which text: the one place that chooses fonts for every image we render.

Glyph sprites, labels on aligned maps, anything this package draws with text goes through
here, so Japanese, Chinese and Korean labels come out as text and never as empty boxes.

Resolution order:

1. an explicit ``font=`` (a path, or a :class:`FontFace` for a face of a ``.ttc`` collection)
   always wins, for every label;
2. else the ``EMBEDDING_PROJECTOR_FONT`` environment variable, if it names a font file;
3. else installed fonts, in this order: fontconfig's preference for ``sans-serif``, the rest
   of fontconfig's fonts, matplotlib's font manager, well-known paths of Noto CJK, Source
   Han, IPAex, Hiragino, Yu Gothic, Malgun Gothic (and the IPAex font of the optional
   ``matplotlib-fontja`` package). Among those, fonts are taken in order as long as each one
   covers characters the earlier ones do not, so Latin labels may get DejaVu Sans and
   kanji labels Noto Sans CJK.

Coverage is decided by each font's character map (read with fontTools), never by looking at
what gets drawn. A character that no available font covers triggers one
:class:`MissingGlyphWarning` per character and process, naming the character and how to
install a font that has it.

Where fonts are found is in :mod:`.glyphs._font_discovery`; what one face covers in
:mod:`.glyphs._font_face`. Every public name of both is importable from here.

Example:
    >>> from embedding_projector.glyphs.fonts import font_for_text, font_path
    >>> face = font_for_text("東京")
    >>> face.covers("東京")  # doctest: +SKIP
    True
    >>> from PIL import ImageFont
    >>> pil_font = ImageFont.truetype(font_path("東京"), 12)  # or matplotlib's FontProperties
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from ..errors import InvalidEmbeddingError
from ._font_discovery import _Resolver
from ._font_face import INSTALL_HINT as INSTALL_HINT
from ._font_face import FontFace as FontFace
from ._font_face import FontLike as FontLike
from ._font_face import MissingGlyphWarning as MissingGlyphWarning
from ._font_face import drawable_characters as drawable_characters
from ._font_face import load_font as load_font
from ._font_face import needs_shaping as needs_shaping

__all__ = [
    "FONT_ENV_VAR",
    "FontFace",
    "FontLike",
    "MissingGlyphWarning",
    "drawable_characters",
    "font_for_text",
    "font_path",
    "fonts_for_labels",
    "load_font",
    "needs_shaping",
]

#: Environment variable naming a font file to use when no ``font=`` is given.
FONT_ENV_VAR = "EMBEDDING_PROJECTOR_FONT"

_RESOLVER = _Resolver()


def _explicit_face(font: FontLike | None) -> FontFace | None:
    if font is not None:
        return load_font(font)
    from_env = os.environ.get(FONT_ENV_VAR)
    if from_env:
        return load_font(from_env)
    return None


# --------------------------------------------------------------------------- public API


def fonts_for_labels(
    labels: Sequence[str],
    font: FontLike | None = None,
    *,
    warn: bool = True,
    stacklevel: int = 2,
) -> list[FontFace]:
    """The font face to draw each label with.

    Each label gets the first chosen font that covers all of its characters; if none does,
    the one that covers the most. Characters no available font covers are reported once per
    character and process with a :class:`MissingGlyphWarning`.

    Args:
        labels: the texts.
        font: an explicit font file (or :class:`FontFace`) used for every label.
        warn: warn about characters no font covers.
        stacklevel: passed to :func:`warnings.warn` (2 = the caller of this function).

    Returns:
        One :class:`FontFace` per label.

    Raises:
        FileNotFoundError: ``font`` does not exist, or no font is installed at all.

    Example:
        >>> faces = fonts_for_labels(["cat", "猫"])
        >>> [face.covers(label) for face, label in zip(faces, ["cat", "猫"])]  # doctest: +SKIP
        [True, True]
    """
    explicit = _explicit_face(font)
    texts = [str(label) for label in labels]
    if explicit is not None:
        chosen = [explicit]
    else:
        codes = {ord(char) for text in set(texts) for char in drawable_characters(text)}
        chosen = _RESOLVER.chosen_for(codes | {ord("A")})
        if not chosen:
            raise FileNotFoundError(
                "No TrueType/OpenType font found (fontconfig, matplotlib and the usual font "
                f"folders were searched); {INSTALL_HINT}."
            )
    faces: list[FontFace] = []
    missing: dict[str, str] = {}
    by_text: dict[str, FontFace] = {}
    for text in texts:
        face = by_text.get(text)
        if face is None:
            face = _best_face(text, chosen, missing)
            by_text[text] = face
        faces.append(face)
    if warn and missing:
        _RESOLVER.warn_missing(missing, explicit, stacklevel)
    return faces


def _best_face(text: str, chosen: list[FontFace], missing: dict[str, str]) -> FontFace:
    chars = list(drawable_characters(text))
    best, best_missing = chosen[0], None
    for face in chosen:
        cmap = face.codepoints
        lacking = [char for char in chars if ord(char) not in cmap]
        if not lacking:
            return face
        if best_missing is None or len(lacking) < len(best_missing):
            best, best_missing = face, lacking
    for char in best_missing or ():
        missing.setdefault(char, text)
    return best


def font_for_text(text: str = "", font: FontLike | None = None, *, warn: bool = True) -> FontFace:
    """The one font face that best draws all of ``text`` (e.g. a plot's whole label set).

    Args:
        text: all the text to draw with one font.
        font: an explicit font file (or :class:`FontFace`); always wins.
        warn: warn about characters no font covers.

    Raises:
        FileNotFoundError: ``font`` does not exist, or no font is installed at all.

    Example:
        >>> font_for_text("abc").covers("abc")
        True
    """
    explicit = _explicit_face(font)
    if explicit is not None:
        faces = [explicit]
    else:
        codes = {ord(char) for char in drawable_characters(text)} | {ord("A")}
        faces = _RESOLVER.chosen_for(codes)
        if not faces:
            raise FileNotFoundError(f"No TrueType/OpenType font found; {INSTALL_HINT}.")
    missing: dict[str, str] = {}
    face = _best_face(text, faces, missing)
    if not missing or explicit is not None:
        if warn and missing:
            _RESOLVER.warn_missing(missing, explicit, 2)
        return face
    # No chosen face covers all of it: prefer one candidate that does, over the best partial.
    codes = {ord(char) for char in drawable_characters(text)}
    for candidate in _RESOLVER.candidates():
        if all(candidate.may_cover(code) for code in codes):
            try:
                if codes <= candidate.face.codepoints:
                    return candidate.face
            except InvalidEmbeddingError:
                continue
    if warn:
        _RESOLVER.warn_missing(missing, None, 2)
    return face


def font_path(text: Iterable[str] | str = "", font: FontLike | None = None) -> str:
    """A font file for Pillow (and matplotlib's ``FontProperties(fname=...)``).

    Both load face 0 of a collection, so the font returned here is one whose first face
    draws ``text`` (all labels of a plot, say) best.

    Args:
        text: the text to be drawn (a string or several strings).
        font: an explicit font file; always wins.

    Raises:
        FileNotFoundError: ``font`` does not exist, or no font is installed at all.

    Example:
        >>> from PIL import ImageFont
        >>> ImageFont.truetype(font_path(["東京", "서울"]), 12).getbbox("東京")[2] > 0
        True
    """
    joined = text if isinstance(text, str) else "".join(text)
    if font is not None and not isinstance(font, FontFace):
        return load_font(font).path
    face = font_for_text(joined, font)
    if face.index == 0:
        return face.path
    first = FontFace(face.path, 0, face.family)
    if first.covers(joined):
        return first.path
    codes = {ord(char) for char in drawable_characters(joined)}
    for candidate in _RESOLVER.candidates():
        if candidate.face.index == 0 and all(candidate.may_cover(c) for c in codes):
            try:
                if codes <= candidate.face.codepoints:
                    return candidate.face.path
            except InvalidEmbeddingError:
                continue
    return first.path
