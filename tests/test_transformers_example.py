"""examples/transformers_mlm.py runs (on small settings) and TensorBoard serves what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("tokenizers")
pytest.importorskip("gensim")

from example_modules import EXAMPLES, load_example
from tb_server import TensorBoard, free_port, parse_metadata


@pytest.mark.slow
def test_transformers_mlm_example_shows_the_tokens_beside_the_loss(
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    example = load_example("transformers_mlm")
    output_dir, name = shared_run()
    argv = ["--output-dir", str(output_dir), "--epochs", "2", "--lines", "64", "--max-length", "16"]
    assert example.main(argv) == 0

    (run_dir,) = (output_dir / "runs").iterdir()
    run = f"{name}/runs/{run_dir.name}"
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.wait_for(
        lambda: (found := shared_tensorboard.tensor_names(run)) and len(found) == 3 and found
    )
    assert [n.split(":")[0] for n in names] == ["bert.embeddings.word_embeddings"] * 3
    assert int(names[0].split(":")[1].split()[0]) == 0  # the starting weights
    header, rows = parse_metadata(shared_tensorboard.metadata(run, names[-1]))
    assert header == ["token", "special"]
    assert rows[:5] == [[token, "yes"] for token in example.SPECIAL_TOKENS]
    assert all(flag == "no" for _, flag in rows[5:])
    shared_tensorboard.wait_for(
        lambda: (
            "train/loss"
            in json.loads(shared_tensorboard.get("/data/plugin/scalars/tags")).get(run, {})
        )
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_under_torchrun_only_process_zero_writes_each_step_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    env.pop("TENSORBOARD_LOGGING_DIR", None)
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"),
        *("--master_port", str(free_port()), str(EXAMPLES / "transformers_mlm.py")),
        *("--output-dir", str(tmp_path), "--epochs", "2", "--lines", "64", "--max-length", "16"),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = (run_dir / "projector_config.pbtxt").read_text(encoding="utf-8")
    names = [line.split('"')[1] for line in config.splitlines() if "tensor_name" in line]
    # 64 lines, batch 16 per process, 2 processes: 2 steps per epoch
    assert names == [
        "bert.embeddings.word_embeddings:000000000 start of training",
        "bert.embeddings.word_embeddings:000000002 epoch 0",
        "bert.embeddings.word_embeddings:000000004 epoch 1",
    ]
    assert result.stdout.count("Snapshots in") == 1
