"""Long Lightning runs on a real disk: retention (keep=N), the reserve that keeps room for the
run's checkpoints, the forecast at setup (the same pipeline as tests/test_disk_budget.py)."""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("pytorch_lightning")

from pytorch_lightning.callbacks import ModelCheckpoint  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from disk_checks import assert_complete_and_served, referenced_files, snapshot_files  # noqa: E402
from embedding_projector import ProjectorWriter  # noqa: E402
from embedding_projector._format.logdir import human_size  # noqa: E402
from embedding_projector.lightning import EmbeddingProjector  # noqa: E402
from embedding_projector.sink import InsightOptions, SinkOptions  # noqa: E402
from tb_server import TensorBoard  # noqa: E402
from test_lightning_callback import LIGHTNING_NOISE, TinyLM, make_trainer, token_data  # noqa: E402

pytestmark = [pytest.mark.filterwarnings(f) for f in LIGHTNING_NOISE]

QUIET = InsightOptions(maps=False, scalars=False)
WIDE_ROWS, WIDE_DIM = 2000, 64  # 512 kB a snapshot


class WideLM(pl.LightningModule):  # type: ignore[misc]
    """One 2,000 x 64 table: 512 kB a snapshot, a 0.5 MB checkpoint (plain SGD, no state)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(WIDE_ROWS, WIDE_DIM)
        self.head = nn.Linear(WIDE_DIM, 8)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return nn.functional.cross_entropy(self.head(self.tokens(x)), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def wide_data() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, WIDE_ROWS, (64,), generator=generator)
    return DataLoader(TensorDataset(x, x % 8), batch_size=16)


class DiskRecorder(pl.Callback):  # type: ignore[misc]
    """After the projector's snapshot (a synchronous sink): the steps on disk and free bytes."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.records: list[tuple[list[int], int]] = []

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        steps = ProjectorWriter(self.run).steps("tokens")
        self.records.append((steps, shutil.disk_usage(self.run.parent).free))


def our_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "EmbeddingProjector" in str(w.message)]


# --------------------------------------------------------------------------- bad input


def test_a_reserve_larger_than_the_disk_fails_at_construction_or_setup(
    small_filesystem: Path,
) -> None:
    too_big = SinkOptions(disk_reserve=4 * 2**20)
    with pytest.raises(ValueError, match=r"disk_reserve=4194304 \(4.0 MiB\) is not smaller"):
        EmbeddingProjector(modules=["tokens"], logdir=small_filesystem / "run", sink=too_big)
    # Without a log dir it is known at setup: fit stops before training.
    callback = EmbeddingProjector(modules=["tokens"], sink=too_big)
    trainer = make_trainer([callback], default_root_dir=small_filesystem, max_epochs=1)
    model = TinyLM()
    before = model.tokens.weight.detach().clone()
    with pytest.raises(ValueError, match="is not smaller than the whole file system"):
        trainer.fit(model, token_data())
    assert torch.equal(model.tokens.weight, before)
    assert not (small_filesystem / "embeddings").exists()


# --------------------------------------------------------------------------- retention


def test_keep_3_over_10_epochs_serves_step_0_and_the_last_three(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    run, name = shared_run()
    callback = EmbeddingProjector(
        modules=["tokens"], step="epoch", logdir=run, insight=QUIET, sink=SinkOptions(keep=3)
    )
    make_trainer([callback], max_epochs=10).fit(TinyLM(), token_data())
    assert ProjectorWriter(run).steps("tokens") == [0, 7, 8, 9]
    names = assert_complete_and_served(shared_tensorboard, name, run)
    assert [n.split()[0] for n in names] == [f"tokens:{s:09d}" for s in (0, 7, 8, 9)]


def test_a_resumed_run_prunes_what_it_finds(tmp_path: Path) -> None:
    run, checkpoints = tmp_path / "run", tmp_path / "ckpt"

    def fit(keep: int | None, max_epochs: int, ckpt_path: Path | None = None) -> None:
        callback = EmbeddingProjector(
            modules=["tokens"], step="epoch", logdir=run, insight=QUIET, sink=SinkOptions(keep=keep)
        )
        saver = ModelCheckpoint(dirpath=checkpoints, save_top_k=-1, every_n_epochs=1)
        trainer = make_trainer([callback, saver], max_epochs=max_epochs, enable_checkpointing=True)
        trainer.fit(TinyLM(), token_data(), ckpt_path=ckpt_path)

    fit(None, 4)
    assert ProjectorWriter(run).steps("tokens") == [0, 1, 2, 3]
    before = referenced_files(run)
    # Resume after epoch 0 with keep=2: epochs 1-3 are on disk already, epoch 4 is new.
    fit(2, 5, checkpoints / "epoch=0-step=4.ckpt")
    assert ProjectorWriter(run).steps("tokens") == [0, 3, 4]
    files = referenced_files(run)
    assert snapshot_files(run) == set().union(*files.values())
    gone = [name for name in before if name not in files]
    assert len(gone) == 2 and not any(path.exists() for name in gone for path in before[name])


# --------------------------------------------------------------------------- reserve


@pytest.mark.slow
def test_a_run_longer_than_the_disk_keeps_room_for_its_checkpoints(
    small_filesystem: Path, start_tensorboard: Callable[..., TensorBoard]
) -> None:
    run = small_filesystem / "run"
    # 10 snapshots of 512 kB on a 4 MiB disk. The checkpoints (0.5 MB, two at once while
    # ModelCheckpoint replaces the last) need 1.1 MB: that is the reserve.
    reserve = 1280 * 1024
    callback = EmbeddingProjector(
        modules=["tokens"],
        step="epoch",
        logdir=run,
        insight=QUIET,
        sink=SinkOptions(background=False, disk_reserve=reserve),
    )
    recorder = DiskRecorder(run)
    saver = ModelCheckpoint(dirpath=small_filesystem / "ckpt", save_top_k=1)
    trainer = make_trainer([callback, recorder, saver], max_epochs=10, enable_checkpointing=True)
    model = WideLM()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, wide_data())
    messages = our_warnings(caught)
    assert len(messages) == 2, messages
    assert "will not fit" in messages[0] and "10 snapshots of 500.0 KiB" in messages[0]
    assert "skipped 'tokens' at step" in messages[1] and "1.2 MiB must stay free" in messages[1]

    # Training finished; its last checkpoint was saved and loads.
    assert trainer.current_epoch == 10
    assert saver.best_model_path.endswith("epoch=9-step=40.ckpt")
    saved = torch.load(saver.best_model_path, weights_only=False)
    assert torch.equal(saved["state_dict"]["tokens.weight"], model.tokens.weight)
    loaded = WideLM.load_from_checkpoint(saver.best_model_path)
    assert torch.equal(loaded.tokens.weight, model.tokens.weight)

    steps = ProjectorWriter(run).steps("tokens")
    assert 2 <= len(steps) < 10
    # Nothing was written past the reserve: after each snapshot written, the reserve was free,
    # and the snapshot files fit in the disk less the reserve.
    previous = [([], 0), *recorder.records]
    written_at = [
        free
        for (now, free), (before, _) in zip(recorder.records, previous, strict=False)
        if len(now) > len(before)
    ]
    assert len(written_at) == len(steps) and min(written_at) >= reserve
    on_disk = sum(-(-p.stat().st_size // 4096) * 4096 for p in snapshot_files(run))
    assert on_disk <= shutil.disk_usage(small_filesystem).total - reserve

    tb = start_tensorboard(small_filesystem)
    assert len(assert_complete_and_served(tb, "run", run)) == len(steps)


# --------------------------------------------------------------------------- forecast


def test_the_forecast_at_setup_counts_every_n_epochs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    callback = EmbeddingProjector(every_n_epochs=3, step="epoch", logdir=tmp_path, insight=QUIET)
    with caplog.at_level(logging.INFO, logger="embedding_projector.sink"):
        make_trainer([callback], max_epochs=10).fit(TinyLM(), token_data())
    # tokens (30 x 4) and positions (8 x 4), after epochs 2, 5 and 8, and at the fit's end (9).
    snapshot = (30 * 4 + 8 * 4) * 4
    assert f"4 snapshots of {human_size(snapshot)} each: {human_size(4 * snapshot)}" in caplog.text
    assert ProjectorWriter(tmp_path).steps("tokens") == [2, 5, 8, 9]
