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

Example:
    >>> from embedding_projector.fonts import font_for_text, font_path
    >>> face = font_for_text("東京")
    >>> face.covers("東京")  # doctest: +SKIP
    True
    >>> from PIL import ImageFont
    >>> pil_font = ImageFont.truetype(font_path("東京"), 12)  # or matplotlib's FontProperties
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import logging
import os
import shutil
import subprocess
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import InvalidEmbeddingError

if TYPE_CHECKING:
    from PIL import ImageFont

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

logger = logging.getLogger(__name__)

#: Environment variable naming a font file to use when no ``font=`` is given.
FONT_ENV_VAR = "EMBEDDING_PROJECTOR_FONT"
#: How to get fonts that cover CJK text (used in warnings and errors).
INSTALL_HINT = (
    "install a font that has it, e.g. `apt-get install fonts-noto-cjk` (Chinese, Japanese, "
    "Korean), `apt-get install fonts-noto-color-emoji` (emoji), or "
    "`pip install matplotlib-fontja` (Japanese, IPAex Gothic), or pass font='/path/to/font.ttf'"
)
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
_FC_TIMEOUT_S = 20.0
_EXTRA_FONT_PATHS = (
    # Debian / Ubuntu
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSans-Regular.ttc",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    # Fedora / Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/adobe-source-han-sans/SourceHanSans-Regular.ttc",
    # macOS
    "/System/Library/Fonts/ヒラギノ角ゴシック W3.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    # Windows
    "C:/Windows/Fonts/YuGothR.ttc",
    "C:/Windows/Fonts/meiryo.ttc",
    "C:/Windows/Fonts/msgothic.ttc",
    "C:/Windows/Fonts/malgun.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/seguiemj.ttf",
)

# Characters that need no glyph of their own: controls, format characters (ZWJ, bidi marks),
# variation selectors, whitespace.
# Fonts whose glyphs are placeholders (a box with the Unicode block's name), not characters.
_PLACEHOLDER_FONT_WORDS = ("lastresort", "last resort", "notdef")
_NO_GLYPH_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))


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


# --------------------------------------------------------------------------- discovery


def _parse_fc_charset(text: str) -> list[tuple[int, int]]:
    ranges = []
    for part in text.split():
        low, _, high = part.partition("-")
        try:
            ranges.append((int(low, 16), int(high or low, 16)))
        except ValueError:
            continue
    return sorted(ranges)


@dataclass(frozen=True)
class _Candidate:
    face: FontFace
    # fontconfig's coverage (lows, highs) as a quick pre-filter; None = unknown, ask fontTools.
    ranges: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def may_cover(self, code: int) -> bool:
        if self.ranges is None:
            return True
        lows, highs = self.ranges
        position = bisect.bisect_right(lows, code) - 1
        return position >= 0 and code <= highs[position]


def _run_fc(args: Sequence[str]) -> str:
    executable = shutil.which(args[0])
    if executable is None:
        return ""
    try:
        result = subprocess.run(
            [executable, *args[1:]],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=_FC_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        logger.debug("%s failed: %s", args[0], error)
        return ""
    return result.stdout if result.returncode == 0 else ""


def _fontconfig_candidates() -> list[_Candidate]:
    listing = _run_fc(
        ["fc-list", "--format", "%{file}\t%{index}\t%{family[0]}\t%{charset}\n", ":outline=true"]
    )
    found: dict[tuple[str, int], _Candidate] = {}
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0].lower().endswith(_FONT_SUFFIXES):
            continue
        try:
            index = int(parts[1] or 0)
        except ValueError:
            continue
        ranges = _parse_fc_charset(parts[3])
        key = (parts[0], index)
        found[key] = _Candidate(
            FontFace(parts[0], index, parts[2]),
            (tuple(low for low, _ in ranges), tuple(high for _, high in ranges)),
        )
    order = _run_fc(["fc-match", "--sort", "--format", "%{file}\t%{index}\n", "sans-serif"])
    ranked: list[_Candidate] = []
    for line in order.splitlines():
        file_name, _, index_text = line.partition("\t")
        key = (file_name, int(index_text or 0) if index_text.isdigit() else 0)
        if key in found:
            ranked.append(found.pop(key))
    # Regular faces of the rest before bold/italic, otherwise in fontconfig's listing order.
    rest = sorted(found.values(), key=lambda c: _style_rank(c.face.path))
    return ranked + rest


def _style_rank(path: str) -> int:
    name = Path(path).stem.lower()
    return int(any(word in name for word in ("bold", "italic", "oblique", "light", "black")))


def _matplotlib_candidates() -> list[_Candidate]:
    if importlib.util.find_spec("matplotlib") is None:
        return []
    try:
        from matplotlib import font_manager
    except Exception as error:  # pragma: no cover - broken matplotlib install
        logger.debug("matplotlib's font manager is unavailable: %s", error)
        return []
    entries = sorted(
        font_manager.fontManager.ttflist,
        key=lambda entry: (entry.style != "normal", entry.weight not in (400, "normal")),
    )
    return [
        _Candidate(FontFace(str(entry.fname), int(getattr(entry, "index", 0) or 0), entry.name))
        for entry in entries
        if str(entry.fname).lower().endswith(_FONT_SUFFIXES)
    ]


def _packaged_font_paths() -> list[str]:
    """Fonts shipped by optional Python packages (found without importing them)."""
    paths = []
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is not None and spec.origin:
        paths.append(str(Path(spec.origin).parent / "fonts" / "ipaexg.ttf"))
    return paths


def _well_known_candidates() -> list[_Candidate]:
    candidates = []
    for path in (*_EXTRA_FONT_PATHS, *_packaged_font_paths()):
        if os.path.isfile(path):
            candidates.append(_Candidate(FontFace(path, 0)))
    return candidates


class _Resolver:
    """Installed fonts in preference order, and which of them the labels have needed so far."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._candidates: list[_Candidate] = []
        self._seen: set[tuple[str, int]] = set()
        # fontconfig knows every installed font; the others matter where it is missing.
        self._sources: list[Callable[[], list[_Candidate]]] = [
            _fontconfig_candidates,
            _well_known_candidates,
            _matplotlib_candidates,
        ]
        self._chosen: list[FontFace] = []  # fonts taken so far, in preference order
        self._uncovered: set[int] = set()  # code points no candidate covers
        self._warned: set[str] = set()

    def candidates(self) -> Iterator[_Candidate]:
        """Installed fonts in preference order; the slower sources are asked only if needed."""
        position = 0
        while True:
            while position < len(self._candidates):
                yield self._candidates[position]
                position += 1
            with self._lock:
                if position < len(self._candidates):
                    continue
                if not self._sources:
                    return
                source = self._sources.pop(0)
                self._add(source())

    def _add(self, found: Iterable[_Candidate]) -> None:
        for candidate in found:
            key = (os.path.realpath(candidate.face.path), candidate.face.index)
            name = f"{candidate.face.family} {Path(candidate.face.path).name}".lower()
            if key in self._seen or any(word in name for word in _PLACEHOLDER_FONT_WORDS):
                continue
            self._seen.add(key)
            self._candidates.append(candidate)
        logger.debug("%d candidate fonts", len(self._candidates))

    def chosen_for(self, codes: set[int]) -> list[FontFace]:
        """Make sure each code point is covered by a chosen font if any candidate covers it."""
        with self._lock:
            todo = {c for c in codes if c not in self._uncovered}
            for face in self._chosen:
                todo -= face.codepoints
            if todo:
                for candidate in self.candidates():
                    if candidate.face in self._chosen:
                        continue
                    if not any(candidate.may_cover(code) for code in todo):
                        continue
                    try:
                        covered = todo & candidate.face.codepoints
                    except InvalidEmbeddingError as error:
                        logger.debug("skipping unreadable font: %s", error)
                        continue
                    if covered:
                        self._chosen.append(candidate.face)
                        logger.info("using font %s for %d characters", candidate.face, len(covered))
                        todo -= covered
                        if not todo:
                            break
                self._uncovered |= todo
            return list(self._chosen)

    def warn_missing(self, missing: dict[str, str], face: FontFace | None, stacklevel: int) -> None:
        """One warning per call for characters not warned about before."""
        with self._lock:
            new = [char for char in missing if char not in self._warned]
            self._warned.update(new)
        if not new:
            return
        char = new[0]
        label = missing[char]
        more = f" (and {len(new) - 1} more characters)" if len(new) > 1 else ""
        where = f"the font {face} has no" if face is not None else "no installed font has a"
        warnings.warn(
            f"{where} glyph for {char!r} (U+{ord(char):04X}) in label {label!r}{more}; "
            f"it is drawn as a placeholder. To show it, {INSTALL_HINT}.",
            MissingGlyphWarning,
            stacklevel=stacklevel + 1,
        )

    def reset(self) -> None:
        with self._lock:
            fresh = _Resolver()
            self._candidates, self._seen, self._sources = [], set(), fresh._sources
            self._chosen = []
            self._uncovered = set()
            self._warned = set()


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


def _reset_for_tests(*, warnings_only: bool = False) -> None:
    """Forget warnings given and (unless ``warnings_only``) fonts found (tests only)."""
    if warnings_only:
        with _RESOLVER._lock:
            _RESOLVER._warned.clear()
        return
    _RESOLVER.reset()
    _cmap.cache_clear()
    _pil_font.cache_clear()
