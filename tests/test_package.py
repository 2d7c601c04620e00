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
    "embedding_projector.readers.selection",
    "embedding_projector.sink.background",
    "embedding_projector.glyphs.fonts",
    "embedding_projector.glyphs._font_face",
    "embedding_projector.glyphs",
    "embedding_projector.sink._followed_rows",
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


ONE_SHOT_COMMANDS = {
    "export": ["export", "{source}", "--logdir", "{run}", "--limit", "10"],
    "compare": ["compare", "{source}", "{source}", "--logdir", "{run}", "--k", "3"],
}
#: What a quick one-shot command on a word2vec file must not load: table, image and
#: deep-learning libraries, TensorBoard's TensorFlow stub (fsspec, asyncio), tqdm (a bar shows
#: only after 0.5 s), and for export the compare/layout/insight/font code.
NOT_NEEDED = {
    "pandas", "pyarrow", "scipy", "PIL", "torch", "tensorboardX", "gensim", "tqdm", "fsspec",
    "asyncio", "tensorboard.compat.tensorflow_stub", "embedding_projector.glyphs.fonts",
    "embedding_projector.glyphs",
}  # fmt: skip
NOT_NEEDED_BY_EXPORT = {
    "embedding_projector.compare", "embedding_projector.insight.layouts",
    "embedding_projector.insight",
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(ONE_SHOT_COMMANDS))
def test_one_shot_commands_import_only_what_they_need(tmp_path, command):
    # A one-shot command pays for every import it makes.
    rows = np.random.default_rng(0).normal(size=(50, 4)).astype("<f4")
    source = tmp_path / "vectors.bin"
    source.write_bytes(
        b"50 4\n" + b"".join(f"w{i} ".encode() + row.tobytes() for i, row in enumerate(rows))
    )
    argv = [a.format(source=source, run=tmp_path / "run") for a in ONE_SHOT_COMMANDS[command]]
    code = (
        "import sys\n"
        "from embedding_projector.cli import main\n"
        f"assert main({argv!r}) == 0\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(result.stderr.split())
    assert "tensorboard --logdir" in result.stdout
    assert (tmp_path / "run" / "projector_config.pbtxt").is_file()
    heavy = NOT_NEEDED | (NOT_NEEDED_BY_EXPORT if command == "export" else set())
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
