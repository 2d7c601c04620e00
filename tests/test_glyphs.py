"""Glyph sprites: every label drawn as itself, and served by TensorBoard as drawn."""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from embedding_projector import ProjectorWriter
from embedding_projector._format import sprite_cell_size
from embedding_projector.errors import InvalidEmbeddingError
from embedding_projector.glyphs import (
    DEFAULT_GLYPH_SIZE,
    _render,
    default_glyph_size,
    fonts,
    glyph_images,
)
from embedding_projector.glyphs.fonts import FontFace, MissingGlyphWarning, fonts_for_labels
from tb_server import TensorBoard

pytestmark = pytest.mark.usefixtures("fresh_warnings")

#: Kanji, hiragana, katakana, hangul, Latin, digits.
SCRIPTS = ["漢", "字", "あ", "の", "カ", "ン", "한", "글", "A", "g", "0", "7"]
UNCOVERED = "\U0010fffd"


def notdef_box(face: FontFace, size: int) -> np.ndarray:
    """What a naive renderer would draw for a character the font lacks: its .notdef glyph."""
    assert ord(UNCOVERED) not in face.codepoints
    return _render(UNCOVERED, face, size, (0,), (255,))


def ink_box(cell: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the dark pixels of a (1, H, W) cell."""
    rows, cols = np.nonzero(cell[0] < 128)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


# --------------------------------------------------------------------------- drawing


def test_kanji_kana_hangul_latin_digits_are_distinct_real_glyphs(cjk_font: FontFace) -> None:
    images = glyph_images(SCRIPTS)
    assert images.shape == (len(SCRIPTS), 1, DEFAULT_GLYPH_SIZE, DEFAULT_GLYPH_SIZE)
    assert images.dtype == np.uint8
    flat = images.reshape(len(SCRIPTS), -1)
    for i in range(len(SCRIPTS)):
        assert (flat[i] < 128).sum() > 20, f"{SCRIPTS[i]!r} has no ink"
        for j in range(i):
            assert not np.array_equal(flat[i], flat[j]), (SCRIPTS[i], SCRIPTS[j])
    faces = fonts_for_labels(SCRIPTS)
    for label, image, face in zip(SCRIPTS, images, faces, strict=True):
        assert face.covers(label)
        assert not np.array_equal(image, notdef_box(face, DEFAULT_GLYPH_SIZE)), label


def test_one_character_fills_its_cell_centred(cjk_font: FontFace) -> None:
    (cell,) = glyph_images(["猫"])
    top, left, bottom, right = ink_box(cell)
    assert bottom - top >= 0.7 * DEFAULT_GLYPH_SIZE
    assert abs((top + bottom) / 2 - DEFAULT_GLYPH_SIZE / 2) <= 2
    assert abs((left + right) / 2 - DEFAULT_GLYPH_SIZE / 2) <= 2


def test_a_word_is_shrunk_to_fit_inside_the_cell(cjk_font: FontFace) -> None:
    char, word = glyph_images(["東", "東京都庁"])
    top, left, bottom, right = ink_box(word)
    assert left >= 1 and top >= 1
    assert right <= DEFAULT_GLYPH_SIZE - 1 and bottom <= DEFAULT_GLYPH_SIZE - 1
    assert right - left >= 0.8 * DEFAULT_GLYPH_SIZE  # as wide as fits
    assert bottom - top < 0.5 * (ink_box(char)[2] - ink_box(char)[0])


def test_an_over_long_label_is_cut_with_an_ellipsis() -> None:
    label = "supercalifragilisticexpialidocious"
    (cell,) = glyph_images([label])
    (face,) = fonts_for_labels([label])
    matches = [
        k
        for k in range(1, len(label))
        if np.array_equal(cell, _render(label[:k] + "…", face, DEFAULT_GLYPH_SIZE, (0,), (255,)))
    ]
    assert matches, "the image is no prefix of the label followed by an ellipsis"
    assert 3 <= matches[0] < len(label) - 10


def test_whitespace_is_normalised_and_empty_labels_are_blank() -> None:
    a, b, blank = glyph_images(["a b", " a\tb\n", ""])
    assert np.array_equal(a, b)
    assert (blank == 255).all()


def test_invisible_and_control_characters_never_draw_boxes() -> None:
    blank, plain, *same = glyph_images(["\x00\x7f\u200d\ufeff", "ab", "a\x00b", "a\u2060b"])
    assert (blank == 255).all()
    for image in same:
        assert np.array_equal(image, plain)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6))
def test_any_labels_give_one_image_each(labels: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingGlyphWarning)
        images = glyph_images(labels, size=16)
        again = glyph_images(labels, size=16)
    assert images.shape == (len(labels), 1, 16, 16)
    assert np.array_equal(images, again)


def test_same_label_same_image_and_cache_is_exact() -> None:
    first = glyph_images(["x", "y", "x"])
    assert np.array_equal(first[0], first[2])
    assert np.array_equal(glyph_images(["x", "y", "x"]), first)


def test_colours_give_rgb_images() -> None:
    images = glyph_images(["a", "b"], size=32, foreground=(255, 255, 255), background=(0, 0, 80))
    assert images.shape == (2, 3, 32, 32)
    assert tuple(images[0, :, 0, 0]) == (0, 0, 80)
    assert images[0].max() > 200


def test_explicit_font_is_used(cjk_font: FontFace) -> None:
    explicit = glyph_images(["A"], font=cjk_font)
    assert np.array_equal(explicit[0], _render("A", cjk_font, DEFAULT_GLYPH_SIZE, (0,), (255,)))


def test_uncovered_character_warns_and_is_drawn_as_its_code_point_not_a_box() -> None:
    with pytest.warns(
        MissingGlyphWarning, match=r"U\+10FFFD.*apt-get install fonts-noto-cjk"
    ) as record:
        images = glyph_images([UNCOVERED, "ok"])
    assert record[0].filename == __file__
    (face,) = fonts_for_labels([UNCOVERED], warn=False)
    assert not np.array_equal(images[0], notdef_box(face, DEFAULT_GLYPH_SIZE))
    latin = fonts.font_for_text("U+0123456789ABCDEF")
    code = _render("U+10FFFD", latin, DEFAULT_GLYPH_SIZE, (0,), (255,), min_scale=0.0)
    assert np.array_equal(images[0], code)
    assert (images[0] < 128).sum() > 20
    with warnings.catch_warnings():  # once per character and process
        warnings.simplefilter("error", MissingGlyphWarning)
        glyph_images([UNCOVERED])


def test_explicit_font_lacking_a_character_warns(cjk_font: FontFace) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    with pytest.warns(MissingGlyphWarning, match=r"DejaVuSans.*U\+732B"):
        glyph_images(["猫"], font=dejavu)


@pytest.mark.parametrize(
    ("labels", "size", "match"),
    [
        ("abc", None, "not one string"),
        (["a"], 4, "size must be an integer"),
        (["a"], 32.5, "size must be an integer"),
    ],
)
def test_bad_arguments_are_rejected(labels: object, size: object, match: str) -> None:
    with pytest.raises(InvalidEmbeddingError, match=match):
        glyph_images(labels, size=size)  # type: ignore[arg-type]


def test_too_many_labels_for_readable_glyphs_is_a_clear_error() -> None:
    with pytest.raises(InvalidEmbeddingError, match="too small to read"):
        glyph_images(["a"] * 1_100_000)


@pytest.mark.parametrize("colour", [256, -1, (1, 2), "black", True])
def test_bad_colours_are_rejected(colour: object) -> None:
    with pytest.raises(InvalidEmbeddingError, match="foreground"):
        glyph_images(["a"], foreground=colour)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [1, 100, 16_384, 16_385, 20_000, 100_000])
def test_default_size_follows_the_writers_sprite_rule(count: int) -> None:
    size = default_glyph_size(count)
    assert size == min(DEFAULT_GLYPH_SIZE, sprite_cell_size(count, 64, 64))
    assert math.ceil(math.sqrt(count)) * size <= 8192


# --------------------------------------------------------------------------- TensorBoard


@pytest.mark.slow
def test_tensorboard_serves_the_glyph_sprite_cell_by_cell(
    cjk_font: FontFace,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
) -> None:
    labels = [*SCRIPTS, "東京", "서울", "cat"]
    images = glyph_images(labels)
    run_dir, run = shared_run()
    rng = np.random.default_rng(0)
    snap = ProjectorWriter(run_dir).add_embedding(
        rng.normal(size=(len(labels), 8)), metadata=labels, label_img=images, tag="glyphs"
    )
    shared_tensorboard.wait_for_run(run)
    entry = shared_tensorboard.embedding(run, snap.tensor_name)
    assert [int(v) for v in entry["sprite"]["singleImageDim"]] == [64, 64]
    sheet = np.asarray(Image.open(io.BytesIO(shared_tensorboard.sprite(run, snap.tensor_name))))
    per_row = math.ceil(math.sqrt(len(labels)))
    rows = math.ceil(len(labels) / per_row)
    assert sheet.shape[:2] == (rows * 64, per_row * 64)
    if sheet.ndim == 3:
        sheet = sheet[..., 0]
    for i in range(len(labels)):
        r, c = divmod(i, per_row)
        cell = sheet[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64]
        assert np.array_equal(cell, images[i, 0]), f"cell {i} is not {labels[i]!r}"
    served = shared_tensorboard.metadata(run, snap.tensor_name).splitlines()
    assert served == labels


def _colour_emoji_font() -> Path | None:
    """Debian's Noto Color Emoji, or the file named by ``EP_TEST_EMOJI_FONT``."""
    for candidate in (
        os.environ.get("EP_TEST_EMOJI_FONT", ""),
        "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def test_bitmap_only_colour_emoji_font_is_drawn_at_its_strike_and_scaled() -> None:
    path = _colour_emoji_font()
    if path is None:
        pytest.skip("no colour emoji font (apt-get install fonts-noto-color-emoji)")
    face = fonts.load_font(path)
    assert face.bitmap_sizes  # Noto Color Emoji exists only at 109 px
    grey = glyph_images(["🦊", "🐱", "🦊🐱🐶"], font=path)
    colour = glyph_images(["🦊"], font=path, background=(255, 255, 255))
    assert grey.shape == (3, 1, 64, 64) and colour.shape == (1, 3, 64, 64)
    assert not np.array_equal(grey[0], grey[1])
    assert (grey[0] < 200).sum() > 200  # a big picture, not a box outline
    assert np.ptp(colour[0].astype(int), axis=0).max() > 50  # really in colour


# --------------------------------------------------------------------------- writer shortcut


@pytest.mark.slow
def test_label_img_glyphs_shortcut_draws_the_first_metadata_column(
    cjk_font: FontFace,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
) -> None:
    chars = ["日", "月", "火", "水", "木"]
    rows = [[char, str(i)] for i, char in enumerate(chars)]
    run_dir, run = shared_run()
    snap = ProjectorWriter(run_dir).add_embedding(
        np.eye(5, 4), metadata=rows, metadata_header=["char", "n"], label_img="glyphs"
    )
    shared_tensorboard.wait_for_run(run)
    sheet = np.asarray(Image.open(io.BytesIO(shared_tensorboard.sprite(run, snap.tensor_name))))
    expected = glyph_images(chars)
    assert sheet.shape[:2] == (2 * 64, 3 * 64)
    for i in range(len(chars)):
        r, c = divmod(i, 3)
        assert np.array_equal(sheet[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64], expected[i, 0])


@pytest.mark.parametrize(
    ("metadata", "label_img", "match"),
    [(None, "glyphs", "needs metadata"), (["a", "b"], "glyph", 'or "glyphs"')],
)
def test_label_img_shortcut_errors(
    tmp_path: Path, metadata: list[str] | None, label_img: str, match: str
) -> None:
    with pytest.raises(InvalidEmbeddingError, match=match):
        ProjectorWriter(tmp_path).add_embedding(np.eye(2), metadata=metadata, label_img=label_img)
    assert not any(tmp_path.iterdir())


def test_label_img_shortcut_warning_points_at_the_caller(tmp_path: Path) -> None:
    with pytest.warns(MissingGlyphWarning) as record:
        ProjectorWriter(tmp_path).add_embedding(
            np.eye(2), metadata=[UNCOVERED, "b"], label_img="glyphs"
        )
    assert record[0].filename == __file__


def test_placeholder_uses_a_latin_font_when_the_explicit_font_has_no_latin(
    cjk_font: FontFace,
) -> None:
    """A font without "U+..." letters (an emoji font, say) must not draw the code as boxes."""
    path = _colour_emoji_font()
    if path is None:
        pytest.skip("no colour emoji font (apt-get install fonts-noto-color-emoji)")
    assert not fonts.load_font(path).covers("U+0061")
    with pytest.warns(MissingGlyphWarning, match="U\\+0061"):
        (image,) = glyph_images(["a"], font=path)
    latin = fonts.font_for_text("U+0123456789ABCDEF")
    expected = _render("U+0061", latin, DEFAULT_GLYPH_SIZE, (0,), (255,), min_scale=0.0)
    assert np.array_equal(image, expected)
