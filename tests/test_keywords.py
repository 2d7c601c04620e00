"""A misspelt keyword of a public constructor: a TypeError at the call that names the
parameter meant, before anything is written; and no ``**kwargs`` that would let mypy pass it.
(That the check adds no frame, so warnings keep pointing at the caller's line, is
``test_glyphs.py::test_label_img_shortcut_warning_points_at_the_caller``.)"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import embedding_projector as ep


def _entry_points(tmp_path: Path) -> list[tuple[str, Callable[..., Any], str]]:
    """(name, call with one misspelt keyword, what the message must suggest)."""
    logdir = tmp_path / "run"
    cases: list[tuple[str, Callable[..., Any], str]] = [
        ("ProjectorWriter", lambda: ep.ProjectorWriter(logdir, direct_i0=True), "'direct_io'"),
    ]
    try:
        from embedding_projector.gensim import Any2VecProjector
    except ImportError:
        pass
    else:
        cases += [
            ("Any2VecProjector", lambda: Any2VecProjector(logdir, limt=5), "'limit'"),
            (
                "Any2VecProjector",
                lambda: Any2VecProjector(logdir, map_rows=8),
                r"insight=InsightOptions\(map_rows=\.\.\.\)",
            ),
        ]
    try:
        from embedding_projector.lightning import EmbeddingProjector
    except ImportError:
        pass
    else:
        cases += [
            ("EmbeddingProjector", lambda: EmbeddingProjector(probe_row=[1]), "'probe_rows'"),
            (
                "EmbeddingProjector",
                lambda: EmbeddingProjector(stabilty=False),
                "unexpected keyword argument 'stabilty'",
            ),
        ]
    try:
        from embedding_projector.transformers import EmbeddingProjectorCallback
    except ImportError:
        pass
    else:
        cases.append(
            (
                "EmbeddingProjectorCallback",
                lambda: EmbeddingProjectorCallback(every_n_step=5),
                "'every_n_steps'",
            )
        )
    return cases


def test_a_misspelt_keyword_names_the_parameter_meant_and_writes_nothing(
    tmp_path: Path,
) -> None:
    cases = _entry_points(tmp_path)
    assert len(cases) >= 1
    for name, call, suggestion in cases:
        with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument"):
            call()
        with pytest.raises(TypeError, match=suggestion):
            call()
        assert not (tmp_path / "run").exists(), name


def test_public_signatures_list_their_parameters() -> None:
    """No ``**kwargs`` catch-all: mypy sees the real parameters (through the decorator)."""
    entry_points: list[Any] = [
        ep.export_embeddings,
        ep.compare_embeddings,
        ep.add_embedding,
        ep.ProjectorWriter,
        ep.ProjectorWriter.add_embedding,
    ]
    for module, name in [
        ("embedding_projector.gensim", "Any2VecProjector"),
        ("embedding_projector.lightning", "EmbeddingProjector"),
        ("embedding_projector.transformers", "EmbeddingProjectorCallback"),
    ]:
        entry_points.append(getattr(pytest.importorskip(module), name))
    for entry in entry_points:
        parameters = inspect.signature(entry).parameters.values()
        assert parameters, entry
        assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters), entry
