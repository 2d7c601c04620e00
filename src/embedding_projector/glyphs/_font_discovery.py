"""Installed fonts: where they are found, in which order, and which of them labels need.

Sources, asked in this order and only as far as needed: fontconfig (its preference for
``sans-serif``, then the rest of its fonts), well-known paths of CJK and emoji fonts (and the
IPAex font of the optional ``matplotlib-fontja`` package), matplotlib's font manager.
:class:`_Resolver` takes fonts in that order as long as each covers characters the earlier
ones do not. The public entry points are in :mod:`embedding_projector.glyphs.fonts`.
"""

from __future__ import annotations

import bisect
import importlib.util
import logging
import os
import shutil
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidEmbeddingError
from ._font_face import INSTALL_HINT, FontFace, MissingGlyphWarning

logger = logging.getLogger(__name__)

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

# Fonts whose glyphs are placeholders (a box with the Unicode block's name), not characters.
_PLACEHOLDER_FONT_WORDS = ("lastresort", "last resort", "notdef")


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
