"""Which fonts the glyph tests can count on.

Tests that need a CJK font skip where none is installed, with the reason and the fix, but
never in CI (``CI`` set): CI installs ``fonts-noto-cjk``, so a missing font there is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from embedding_projector.glyphs import fonts
from embedding_projector.glyphs.fonts import FontFace, fonts_for_labels

#: Kanji, hiragana, katakana and hangul: what "a CJK font" has to cover here.
CJK_SAMPLE = "漢字かなカナ한글"


def require_cjk_font() -> FontFace:
    """The installed font that covers :data:`CJK_SAMPLE`, or skip (fail in CI)."""
    face = fonts_for_labels([CJK_SAMPLE], warn=False)[0]
    if face.covers(CJK_SAMPLE):
        return face
    reason = (
        f"no installed font covers {CJK_SAMPLE!r} (best: {face}); "
        "install one with `apt-get install fonts-noto-cjk`"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install fonts-noto-cjk before the tests")
    pytest.skip(reason)


def forget_missing_glyph_warnings() -> None:
    """Forget which characters were warned about (each is warned about once per process)."""
    resolver = fonts._RESOLVER
    with resolver._lock:
        resolver._warned.clear()


@pytest.fixture
def fresh_warnings() -> Iterator[None]:
    """Each test sees the one-time warnings afresh (``pytestmark = usefixtures(...)``)."""
    forget_missing_glyph_warnings()
    yield
    forget_missing_glyph_warnings()


@pytest.fixture
def cjk_font() -> FontFace:
    return require_cjk_font()
