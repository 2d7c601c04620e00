"""examples/char_embeddings.py: Japanese character vectors with glyph sprites, end to end."""

from __future__ import annotations

import importlib.util
import io
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from embedding_projector.glyphs import glyph_images
from embedding_projector.glyphs.fonts import FontFace
from fontcheck import require_cjk_font
from tb_server import TensorBoard, parse_metadata

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "char_embeddings.py"

pytest.importorskip("gensim")


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("char_embeddings_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cjk_font() -> FontFace:
    return require_cjk_font()


def test_generated_corpus_is_japanese_and_reproducible(example: ModuleType) -> None:
    first = example.generated_sentences(50, seed=1)
    assert first == example.generated_sentences(50, seed=1)
    assert first != example.generated_sentences(50, seed=2)
    text = "".join(first)
    assert any("\u3040" <= char <= "\u309f" for char in text)  # hiragana
    assert any("\u4e00" <= char <= "\u9fff" for char in text)  # kanji


def test_packaged_corpus_is_read_when_installed(example: ModuleType) -> None:
    sentences = example.hironsan_sentences()
    if sentences is None:
        pytest.skip("hironsancorpus is not installed (pip install hironsancorpus)")
    assert len(sentences) == 500
    assert all("\t" not in sentence for sentence in sentences)
    assert sentences[0].startswith("2005年7月14日")


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["generated", "auto"])
def test_example_writes_glyph_sprites_tensorboard_serves(
    example: ModuleType,
    cjk_font: FontFace,
    corpus: str,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir, run = shared_run()
    argv = ["--logdir", str(run_dir), "--corpus", corpus, "--epochs", "2"]
    argv += ["--vector-size", "16", "--max-sentences", "300", "--max-chars", "150"]
    assert example.main(argv) == 0
    assert "wrote" in capsys.readouterr().out

    shared_tensorboard.wait_for_run(run)
    (name,) = shared_tensorboard.tensor_names(run)
    header, rows = parse_metadata(shared_tensorboard.metadata(run, name))
    assert header == ["char", "count", "script"]
    chars = [row[0] for row in rows]
    assert len(chars) == len(set(chars)) > 20
    assert all(len(char) == 1 for char in chars)
    assert {"kanji", "hiragana"} <= {row[2] for row in rows}
    tensor = shared_tensorboard.tensor(run, name)
    assert tensor.shape == (len(chars), 16)

    sheet = np.asarray(Image.open(io.BytesIO(shared_tensorboard.sprite(run, name))))
    per_row = math.ceil(math.sqrt(len(chars)))
    assert sheet.shape[:2] == (math.ceil(len(chars) / per_row) * 64, per_row * 64)
    expected = glyph_images(chars)
    for i in range(len(chars)):
        r, c = divmod(i, per_row)
        cell = sheet[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64]
        assert np.array_equal(cell, expected[i, 0]), f"cell {i} is not {chars[i]!r}"
