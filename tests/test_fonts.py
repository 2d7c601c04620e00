"""Font resolution: the right font for each label, decided by the font's character map."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from embedding_projector.errors import InvalidEmbeddingError
from embedding_projector.glyphs import _font_discovery, fonts
from embedding_projector.glyphs.fonts import (
    FontFace,
    MissingGlyphWarning,
    drawable_characters,
    font_for_text,
    font_path,
    fonts_for_labels,
    load_font,
    needs_shaping,
)
from fontcheck import CJK_SAMPLE

pytestmark = pytest.mark.usefixtures("fresh_warnings")

TTLib = pytest.importorskip("fontTools.ttLib")
# A code point of Supplementary Private Use Area-B: no font we know maps it.
UNCOVERED = "\U0010fffd"


def independent_cmap(face: FontFace) -> set[int]:
    """The face's character map read here with fontTools, not through the module under test."""
    with TTLib.TTFont(face.path, fontNumber=face.index) as font:
        return set(font.getBestCmap())


@pytest.fixture
def latin_only_font() -> Path:
    """matplotlib's own DejaVu Sans: Latin, Greek, Cyrillic, no CJK."""
    matplotlib = pytest.importorskip("matplotlib")
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    assert path.is_file()
    return path


# --------------------------------------------------------------------------- characters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b", ["a", "b"]),
        ("東京\n", ["東", "京"]),
        ("👍\ufe0f", ["👍"]),  # variation selector needs no glyph
        ("a\u200db", ["a", "b"]),  # zero-width joiner neither
        ("\t\u3000", []),  # ideographic space
    ],
)
def test_drawable_characters_skip_what_needs_no_glyph(text: str, expected: list[str]) -> None:
    assert list(drawable_characters(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("東京タワー abc 123", False),
        ("서울", False),  # precomposed hangul syllables
        ("\u1100\u1161", True),  # conjoining jamo
        ("e\u0301", True),  # combining accent
        ("سلام", True),
        ("नमस्ते", True),
    ],
)
def test_needs_shaping(text: str, expected: bool) -> None:
    assert needs_shaping(text) is expected


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("label", ["漢字", "ひらがな", "カタカナ", "한국어", "Latin", "0123"])
def test_each_label_gets_a_font_whose_cmap_covers_it(cjk_font: FontFace, label: str) -> None:
    (face,) = fonts_for_labels([label])
    assert {ord(char) for char in label} <= independent_cmap(face)


def test_mixed_labels_may_use_different_fonts_each_covering_its_label(cjk_font: FontFace) -> None:
    labels = ["cat", "猫", "고양이", "ねこ", "42", "東京Tower"]
    faces = fonts_for_labels(labels)
    for face, label in zip(faces, labels, strict=True):
        assert {ord(c) for c in drawable_characters(label)} <= independent_cmap(face), label


def test_font_for_text_prefers_one_font_covering_everything(cjk_font: FontFace) -> None:
    text = "cat 猫 고양이 ねこ"
    face = font_for_text(text)
    assert {ord(c) for c in drawable_characters(text)} <= independent_cmap(face)


def test_explicit_font_wins_even_where_another_font_would_cover_more(
    cjk_font: FontFace, latin_only_font: Path
) -> None:
    with pytest.warns(MissingGlyphWarning, match=r"DejaVu.*U\+6771.*fonts-noto-cjk"):
        faces = fonts_for_labels(["東京", "abc"], font=latin_only_font)
    assert {Path(face.path) for face in faces} == {latin_only_font}


def test_explicit_font_as_str_path_or_face(latin_only_font: Path) -> None:
    for given in (str(latin_only_font), latin_only_font, FontFace(str(latin_only_font))):
        assert Path(font_for_text("abc", font=given).path) == latin_only_font


def test_environment_variable_names_the_default_font(
    latin_only_font: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fonts.FONT_ENV_VAR, str(latin_only_font))
    assert Path(fonts_for_labels(["abc"])[0].path) == latin_only_font


def test_missing_font_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="font file not found"):
        fonts_for_labels(["a"], font=tmp_path / "nope.ttf")


def test_a_file_that_is_not_a_font_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"this is not a font" * 10)
    with pytest.raises(InvalidEmbeddingError, match="not a readable TrueType/OpenType font"):
        load_font(bogus)


# --------------------------------------------------------------------------- missing glyphs


def test_uncovered_character_warns_once_naming_it_and_the_fix() -> None:
    with pytest.warns(MissingGlyphWarning) as record:
        fonts_for_labels([f"x{UNCOVERED}", "y"])
    assert len(record) == 1
    message = str(record[0].message)
    assert "U+10FFFD" in message
    assert "apt-get install fonts-noto-cjk" in message
    assert "matplotlib-fontja" in message
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingGlyphWarning)
        fonts_for_labels([UNCOVERED])  # already reported: silent now


def test_placeholder_fonts_are_never_chosen() -> None:
    """matplotlib ships "Last Resort", which maps every code point to a box: never use it."""
    with pytest.warns(MissingGlyphWarning, match="U\\+10FFFD"):
        face = font_for_text(UNCOVERED)
    assert "last" not in face.path.lower()
    assert ord(UNCOVERED) not in independent_cmap(face)


def test_resolution_works_without_fontconfig(
    cjk_font: FontFace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fc-list (macOS, Windows, slim containers): matplotlib and well-known paths still work."""
    monkeypatch.setattr(_font_discovery.shutil, "which", lambda name: None)
    monkeypatch.setattr(fonts, "_RESOLVER", _font_discovery._Resolver())
    assert _font_discovery._fontconfig_candidates() == []
    (face,) = fonts_for_labels([CJK_SAMPLE])
    assert {ord(c) for c in CJK_SAMPLE} <= independent_cmap(face)


# --------------------------------------------------------------------------- matplotlib


def test_font_path_works_in_matplotlib_without_missing_glyph_warnings(
    cjk_font: FontFace,
) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties

    labels = ["東京", "서울", "ひらがな", "abc"]
    path = font_path(labels)
    props = FontProperties(fname=path)
    figure, axes = plt.subplots(figsize=(2, 2))
    try:
        for i, label in enumerate(labels):
            axes.text(0.1, 0.2 * i, label, fontproperties=props)
        # matplotlib warns "Glyph ... missing from font(s)" (an error here) if it draws boxes.
        figure.canvas.draw()
    finally:
        plt.close(figure)
    assert set(map(ord, "".join(labels))) <= independent_cmap(FontFace(path, 0))


def test_font_path_works_in_pillow(cjk_font: FontFace) -> None:
    from PIL import ImageFont

    font = ImageFont.truetype(font_path("東京"), 20)
    assert font.getbbox("東京")[2] > 20


def test_missing_cjk_font_skips_locally_but_fails_in_ci(
    latin_only_font: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fontcheck

    monkeypatch.setattr(
        fontcheck, "fonts_for_labels", lambda labels, warn: [FontFace(str(latin_only_font))]
    )
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install fonts-noto-cjk"):
        fontcheck.require_cjk_font()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install fonts-noto-cjk"):
        fontcheck.require_cjk_font()


def test_font_of_the_optional_matplotlib_fontja_package_is_found_without_importing_it(
    tmp_path: Path, latin_only_font: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "matplotlib_fontja"
    (package / "fonts").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (package / "fonts" / "ipaexg.ttf").write_bytes(latin_only_font.read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _font_discovery._packaged_font_paths() == [str(package / "fonts" / "ipaexg.ttf")]
    assert str(package / "fonts" / "ipaexg.ttf") in {
        c.face.path for c in _font_discovery._well_known_candidates()
    }


def test_drawable_characters_of_ascii_text_follow_the_unicode_categories() -> None:
    import unicodedata

    from embedding_projector.glyphs._font_face import _NO_GLYPH_CATEGORIES, drawable_characters

    text = "".join(map(chr, range(128)))
    expected = [c for c in text if unicodedata.category(c) not in _NO_GLYPH_CATEGORIES]
    assert list(drawable_characters(text)) == expected
    assert list(drawable_characters("a\u200db c")) == ["a", "b", "c"]  # not ASCII: the long way
