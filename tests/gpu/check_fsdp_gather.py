"""GPU check of EmbeddingProjector under FSDP1 (``strategy="fsdp"``), which refuses CPU.

Not collected by pytest (no ``test_`` prefix). On a machine with one (or more) CUDA GPUs::

    PYTHONPATH=src python tests/gpu/check_fsdp_gather.py [--devices 1]

Each case trains a tiny model for 2 epochs under Lightning's FSDPStrategy and checks that the
projector got one snapshot per epoch of every table, with the full (rows, dim) shape, equal to
the fully gathered parameters after training. Exit code 0 when every case passes. Takes well
under a minute on one H100 (mostly CUDA start-up).

Cases: embeddings in their own FSDP unit or only in the root unit; ``use_orig_params`` True
and False (FSDP swaps the original parameters for flat-parameter views, so the callback must
look them up inside ``summon_full_params``); a tied decoder named by parameter path; a probe
through a named layer (run through the FSDP root on every rank).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from embedding_projector import ProjectorWriter
from embedding_projector.lightning import EmbeddingProjector, FeatureInputs

VOCAB, DIM = 1000, 64


class LM(pl.LightningModule):
    def __init__(self, tie: bool) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM)
        self.hidden = nn.Linear(DIM, DIM)
        self.decoder = nn.Linear(DIM, VOCAB)
        if tie:
            self.decoder.weight = self.tokens.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.tanh(self.hidden(self.tokens(x))))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def run_case(name: str, devices: int, wrap: bool, use_orig_params: bool, tie: bool) -> None:
    out = Path(tempfile.mkdtemp(prefix=f"fsdp-{name}-"))
    strategy = FSDPStrategy(
        auto_wrap_policy={nn.Embedding} if wrap else None,
        use_orig_params=use_orig_params,
    )
    modules = ["tokens"] if tie else ["tokens", "decoder.weight"]
    callback = EmbeddingProjector(
        modules=modules,
        features=FeatureInputs(torch.arange(200), layer="hidden"),
        logdir=out,
    )
    trainer = pl.Trainer(
        accelerator="cuda",
        devices=devices,
        strategy=strategy,
        max_epochs=2,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (512,))
    model = LM(tie)
    trainer.fit(model, DataLoader(TensorDataset(x, (x + 1) % VOCAB), batch_size=64))
    fsdp_root = trainer.strategy.model
    assert isinstance(fsdp_root, FullyShardedDataParallel), type(fsdp_root)
    with FullyShardedDataParallel.summon_full_params(fsdp_root, writeback=False):
        expected = {
            "tokens": model.tokens.weight.detach().float().cpu().numpy().copy(),
            "decoder.weight": model.decoder.weight.detach().float().cpu().numpy().copy(),
        }
    if trainer.global_rank != 0:
        return
    writer = ProjectorWriter(out)
    names = [entry.tensor_name for entry in writer.entries()]
    steps = trainer.global_step
    tags = [*modules, "features (hidden)"]
    for tag in tags:
        assert len(writer.steps(tag)) == 3, (tag, names)  # the start (step 0) and 2 epochs
        assert writer.steps(tag)[-1] == steps, (tag, writer.steps(tag), steps)
    for entry in writer.entries():
        tag = entry.tensor_name.split(":")[0]
        shape = tuple(entry.tensor_shape)
        want = (200, DIM) if tag.startswith("features") else (VOCAB, DIM)
        assert shape == want, (entry.tensor_name, shape, want)
        if tag in expected and entry.tensor_name.startswith(f"{tag}:{steps:09d}"):
            got = np.fromfile(out / entry.tensor_path, dtype="<f4").reshape(shape)
            np.testing.assert_allclose(got, expected[tag], rtol=1e-5, atol=1e-6)
    print(f"PASS {name}: {names}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device", flush=True)
        return 0
    cases = [
        ("wrapped-orig-params", True, True, False),
        ("wrapped-flat-params", True, False, False),
        ("root-only-orig-params", False, True, False),
        ("root-only-flat-params", False, False, False),
        ("tied-wrapped-orig-params", True, True, True),
    ]
    failed = 0
    for name, wrap, orig, tie in cases:
        try:
            run_case(name, args.devices, wrap, orig, tie)
        except Exception:
            failed += 1
            rank = os.environ.get("LOCAL_RANK", "0")
            print(f"FAIL {name} (rank {rank}):\n{traceback.format_exc()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
