"""Package-level promises: light import, working docstring examples."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

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
    "embedding_projector._probe_rows",
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
