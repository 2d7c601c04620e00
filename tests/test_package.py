"""Package-level promises: light import, working docstring examples."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import numpy as np
import pytest

import embedding_projector

CORE_MODULES = [
    "embedding_projector",
    "embedding_projector.writer",
    "embedding_projector.selection",
    "embedding_projector.background",
    "embedding_projector.fonts",
    "embedding_projector._font_face",
    "embedding_projector.glyphs",
]


def test_import_needs_no_torch_gensim_or_lightning():
    code = (
        "import sys\n"
        "blocked = ('torch', 'gensim', 'pytorch_lightning', 'lightning', 'matplotlib',\n"
        "           'transformers')\n"
        "for name in blocked:\n"
        "    sys.modules[name] = None  # makes 'import name' fail\n"
        "import embedding_projector, embedding_projector.cli\n"
        "heavy = [m for m in ('PIL', 'tensorboardX', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_export_imports_only_what_it_needs(tmp_path):
    # A one-shot export pays for every import: table, image, deep-learning and compare/layout
    # code, and TensorBoard's TensorFlow stub (fsspec, asyncio), are not loaded for a word2vec file.
    rows = np.random.default_rng(0).normal(size=(50, 4)).astype("<f4")
    source = tmp_path / "vectors.bin"
    source.write_bytes(
        b"50 4\n" + b"".join(f"w{i} ".encode() + row.tobytes() for i, row in enumerate(rows))
    )
    code = (
        "import sys\n"
        "from embedding_projector.cli import main\n"
        f"assert main(['export', {str(source)!r}, '--logdir', {str(tmp_path / 'run')!r},\n"
        "             '--limit', '10', '--quiet']) == 0\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert (tmp_path / "run" / "projector_config.pbtxt").is_file()
    heavy = {
        "pandas", "pyarrow", "scipy", "PIL", "torch", "tensorboardX", "gensim", "tqdm",
        "fsspec", "asyncio", "tensorboard.compat.tensorflow_stub",
        "embedding_projector.compare", "embedding_projector.layouts",
        "embedding_projector.insight", "embedding_projector.fonts", "embedding_projector.glyphs",
    }  # fmt: skip
    assert not heavy & loaded, sorted(heavy & loaded)


def test_public_api_is_exported():
    for name in embedding_projector.__all__:
        assert hasattr(embedding_projector, name), name


@pytest.mark.parametrize("module_name", CORE_MODULES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or module_name.endswith("selection")
