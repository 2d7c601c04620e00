"""EmbeddingProjector under real DDP: two CPU processes (gloo), one set of snapshots, no hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")

import embedding_projector
from embedding_projector import ProjectorWriter
from tb_server import TensorBoard, parse_metadata

#: Two ranks of a tiny fit take ~6 s idle, 2-3x that on busy CPUs; a hang is far longer.
DDP_TIMEOUT = 240

# Lightning re-runs this script with LOCAL_RANK=1 for the second process (the subprocess
# launcher), so it must be a file, not `python -c`.
SCRIPT = r'''
import json, os, sys
import torch
import pytorch_lightning as pl
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from pytorch_lightning.loggers import TensorBoardLogger
from embedding_projector.lightning import EmbeddingProjector, FeatureInputs

VOCAB, DIM = 30, 4

class TinyLM(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM)
        self.positions = nn.Embedding(8, DIM)
        self.hidden = nn.Linear(DIM, DIM)
        self.decoder = nn.Linear(DIM, VOCAB)

    def forward(self, x):
        return self.decoder(torch.tanh(self.hidden(self.tokens(x) + self.positions(x % 8))))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

class Probe(pl.Callback):
    """Looks at the projector callback before teardown closes its writer thread."""

    def __init__(self, callback):
        self.callback, self.had_writer = callback, None

    def on_train_end(self, trainer, pl_module):
        self.had_writer = self.callback._sink is not None

if __name__ == "__main__":
    out, name = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (64,))
    loader = DataLoader(TensorDataset(x, (x + 1) % VOCAB), batch_size=16)
    callback = EmbeddingProjector(
        labels={"tokens": [f"w{i}" for i in range(VOCAB)]},
        features=FeatureInputs(torch.arange(VOCAB), labels=[f"w{i}" for i in range(VOCAB)],
                              layer="hidden"),
    )
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2,
        callbacks=[callback, probe := Probe(callback)],
        logger=TensorBoardLogger(save_dir=out, name=name, version=0),
        default_root_dir=os.path.join(out, "root"),
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        log_every_n_steps=1,
    )
    trainer.fit(TinyLM(), loader)
    with open(os.path.join(out, f"{name}-rank{trainer.global_rank}.json"), "w") as handle:
        json.dump({
            "rank": trainer.global_rank,
            "snapshots": len(callback.blocking_seconds),
            "background": probe.had_writer,
            "written": callback.state_dict()["written"],
        }, handle)
'''


def run_ddp_script(script: Path, out: Path, name: str) -> subprocess.CompletedProcess[str]:
    src = str(Path(embedding_projector.__file__).parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    env.pop("LOCAL_RANK", None)
    env["OMP_NUM_THREADS"] = "1"  # two ranks on two cores: no thread oversubscription
    process = subprocess.Popen(
        [sys.executable, str(script), str(out), name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # rank 1 joins this group, so a hang is killed as a whole
    )
    try:
        output, _ = process.communicate(timeout=DDP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"DDP run hung for {DDP_TIMEOUT}s:\n{output[-4000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, output, None)


@pytest.mark.slow
def test_ddp_two_processes_write_one_set_of_snapshots(
    tmp_path: Path,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
) -> None:
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT, encoding="utf-8")
    _, name = shared_run()
    out = shared_tensorboard.logdir
    result = run_ddp_script(script, out, name)
    assert result.returncode == 0, result.stdout[-4000:]

    ranks = [json.loads((out / f"{name}-rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["snapshots"] == 3  # the start (step 0) and two epochs
    assert ranks[0]["background"] is True
    assert ranks[1]["snapshots"] == 0  # rank 1 copies nothing ...
    assert ranks[1]["background"] is False  # ... and never starts a writer thread
    # Both ranks agree on what was written (a resumed run takes the same decisions everywhere).
    assert ranks[0]["written"] == ranks[1]["written"]

    run = f"{name}/version_0"
    # 64 rows / 2 ranks / batch 16 = 2 optimizer steps per epoch.
    expected = sorted(
        f"{tag}:{step:09d} {when}"
        for when, step in (("start", 0), ("epoch 0", 2), ("epoch 1", 4))
        for tag in ("tokens", "positions", "features (hidden)")
    )
    shared_tensorboard.wait_for_run(run)
    shared_tensorboard.wait_for(lambda: set(expected) <= set(shared_tensorboard.tensor_names(run)))
    assert sorted(shared_tensorboard.tensor_names(run)) == expected  # once each, no rewrites
    _, rows = parse_metadata(shared_tensorboard.metadata(run, "tokens:000000004 epoch 1"))
    assert [row[0] for row in rows] == [f"w{i}" for i in range(30)]
    assert shared_tensorboard.tensor(run, "features (hidden):000000004 epoch 1").shape == (30, 4)
    assert len(ProjectorWriter(out / name / "version_0").entries()) == 9
    assert not (out / "root" / "embeddings").exists()  # rank 1 did not fall back to a path


# FSDP2 (``fully_shard``, DTensor parameters) through Lightning's ModelParallelStrategy runs on
# CPU with gloo, so the gather-on-every-rank path is tested for real: if rank 1 did not join
# ``full_tensor()`` (a collective), rank 0 would hang and the timeout would fail the test.
# (FSDP1, ``strategy="fsdp"``, refuses CPU: see tests/gpu/check_fsdp_gather.py.)
SHARDED_SCRIPT = r"""
import os, sys
import numpy as np
import torch
import pytorch_lightning as pl
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from pytorch_lightning.strategies import ModelParallelStrategy
from embedding_projector.lightning import EmbeddingProjector, FeatureInputs

VOCAB, DIM = 30, 4

class ShardedLM(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM)
        self.hidden = nn.Linear(DIM, DIM)
        self.decoder = nn.Linear(DIM, VOCAB)

    def configure_model(self):
        from torch.distributed.fsdp import fully_shard
        mesh = self.device_mesh["data_parallel"]
        fully_shard(self.tokens, mesh=mesh)
        fully_shard(self, mesh=mesh)

    def forward(self, x):
        return self.decoder(torch.tanh(self.hidden(self.tokens(x))))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

if __name__ == "__main__":
    out, name = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (64,))
    callback = EmbeddingProjector(
        modules=["tokens", "decoder.weight"],
        features=FeatureInputs(torch.arange(VOCAB), layer="hidden"),
        logdir=os.path.join(out, name),
    )
    trainer = pl.Trainer(
        accelerator="cpu", devices=2,
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1),
        max_epochs=2, callbacks=[callback], logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    model = ShardedLM()
    trainer.fit(model, DataLoader(TensorDataset(x, (x + 1) % VOCAB), batch_size=16))
    assert type(model.tokens.weight).__name__ == "DTensor"
    local_rows = model.tokens.weight.to_local().shape[0]
    tokens = model.tokens.weight.full_tensor().detach().numpy()  # collective: both ranks
    if trainer.global_rank == 0:
        np.save(os.path.join(out, f"{name}-tokens.npy"), tokens)
        with open(os.path.join(out, f"{name}-local-rows.txt"), "w") as handle:
            handle.write(str(local_rows))
    # ModelParallelStrategy leaves the process group up; torch's gloo threads torn down at
    # interpreter exit then abort now and then ("terminate called without an active exception").
    torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
def test_sharded_fsdp2_parameters_are_gathered_on_every_rank(
    tmp_path: Path,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
) -> None:
    import numpy as np

    pytest.importorskip("pytorch_lightning.strategies", reason="needs ModelParallelStrategy")
    script = tmp_path / "sharded_fit.py"
    script.write_text(SHARDED_SCRIPT, encoding="utf-8")
    _, name = shared_run()
    out = shared_tensorboard.logdir
    result = run_ddp_script(script, out, name)
    assert result.returncode == 0, result.stdout[-4000:]
    assert (out / f"{name}-local-rows.txt").read_text() == "15"  # really sharded: 30 rows / 2

    expected = sorted(
        f"{tag}:{step:09d} {when}"
        for when, step in (("start", 0), ("epoch 0", 2), ("epoch 1", 4))
        for tag in ("tokens", "decoder.weight", "features (hidden)")
    )
    shared_tensorboard.wait_for_run(name)
    shared_tensorboard.wait_for(lambda: set(expected) <= set(shared_tensorboard.tensor_names(name)))
    assert sorted(shared_tensorboard.tensor_names(name)) == expected
    served = shared_tensorboard.tensor(name, "tokens:000000004 epoch 1")
    np.testing.assert_allclose(served, np.load(out / f"{name}-tokens.npy"), rtol=1e-6)
    assert shared_tensorboard.tensor(name, "decoder.weight:000000004 epoch 1").shape == (30, 4)
    assert shared_tensorboard.tensor(name, "features (hidden):000000004 epoch 1").shape == (30, 4)
