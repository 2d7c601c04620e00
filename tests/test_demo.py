"""The README's main job: `embedding-projector demo` trains word2vec, TensorBoard shows it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("gensim")

from embedding_projector import ProjectorWriter
from embedding_projector.cli import build_parser, main
from embedding_projector.demo import run_demo
from tb_server import TensorBoard, parse_metadata

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_runs_end_to_end_and_tensorboard_serves_it(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logdir, name = shared_run()
    out = io.StringIO()
    assert run_demo(logdir, epochs=2, limit=200, vector_size=16, stream=out) == 0
    text = out.getvalue()
    assert f"tensorboard --logdir {logdir}" in text
    (run_dir,) = [path for path in logdir.iterdir() if path.is_dir()]
    assert str(run_dir) in text
    assert "SCALARS" in text and "TEXT" in text and "PROJECTOR" in text

    run = f"{name}/{run_dir.name}"
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.wait_for(
        lambda: (
            len(shared_tensorboard.tensor_names(run)) == 3 and shared_tensorboard.tensor_names(run)
        )
    )
    assert names == ["words:000000000", "words:000000001", "words:000000002"]
    header, rows = parse_metadata(shared_tensorboard.metadata(run, names[-1]))
    assert header == ["word", "rank", "count"]
    assert len(rows) == 200

    # A second demo run goes next to the first one, not over it.
    assert run_demo(logdir, epochs=1, limit=50, vector_size=8, stream=io.StringIO()) == 0
    assert len([path for path in logdir.iterdir() if path.is_dir()]) == 2


@pytest.mark.slow
def test_cli_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--logdir", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "tensorboard --logdir" in out
    (run_dir,) = list(tmp_path.iterdir())
    assert ProjectorWriter(run_dir).steps("words") == [0, 1]


def test_cli_demo_defaults_match_the_python_api() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.logdir == run_demo.__defaults__[0]  # type: ignore[index]
    assert args.epochs == run_demo.__defaults__[1]  # type: ignore[index]


@pytest.mark.parametrize("epochs", ["0", "-3", "ten"])
def test_cli_demo_rejects_bad_epochs(epochs: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", epochs]) == 2
    assert "positive integer" in capsys.readouterr().err


def test_run_demo_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="epochs"):
        run_demo(tmp_path, epochs=0)


@pytest.mark.slow
def test_demo_works_without_torch_or_lightning(tmp_path: Path) -> None:
    """``pip install ".[gensim]"`` has no torch: the demo must never need it."""
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("torch", "lightning", "pytorch_lightning"):
                    raise ImportError(f"{name} is not installed (blocked by the test)")
                return None

        sys.meta_path.insert(0, Block())
        from embedding_projector.cli import main
        code = main(["demo", "--logdir", sys.argv[1], "--epochs", "1"])
        assert not any(m.split(".")[0] in ("torch", "lightning") for m in sys.modules)
        sys.exit(code)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    assert "tensorboard --logdir" in result.stdout


@pytest.mark.slow
def test_demo_without_gensim_names_the_extra(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "gensim":
                    raise ImportError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Block())
        from embedding_projector.cli import main
        sys.exit(main(["demo", "--logdir", sys.argv[1], "--epochs", "1"]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 1
    assert "embedding-projector[gensim]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


DEMO_ARGS = ("demo", "--logdir")


@pytest.mark.slow
def test_demo_runs_without_any_warning(tmp_path: Path) -> None:
    """The README's first screen: the demo with its defaults, warnings as errors, prints
    nothing on stderr (10 epochs took gensim's float32 running loss past 2**22 and warned)."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "embedding_projector.cli", *DEMO_ARGS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "it/s]" in line or "%|" in line]
    assert result.stderr.splitlines() == progress, result.stderr  # tqdm bars only
    assert "Done in" in result.stdout and "tensorboard --logdir" in result.stdout
    (run_dir,) = list(tmp_path.iterdir())
    assert ProjectorWriter(run_dir).steps("words") == list(range(11))
