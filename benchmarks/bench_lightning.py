"""How much does EmbeddingProjector slow down training? Epoch times with and without it.

A model with a 50,000 x 256 embedding trains for a few epochs of a few seconds each, four ways
in one process, interleaved so that background load hits all of them alike:

* ``baseline``: no callback;
* ``callback``: ``EmbeddingProjector`` as shipped (copy on the training thread, write, aligned
  map and stability scalars on a background thread);
* ``callback, no maps``: the same with ``insight=InsightOptions(maps=False, scalars=False)``
  (snapshots and their aligned-PCA saved states);
* ``callback, no layout``: the shipped callback with ``insight=InsightOptions(layout=None)``
  (no saved states): against ``callback``, what the default layout costs;
* ``synchronous``: the same callback writing on the training thread (what a hand-written
  ``logger.experiment.add_embedding`` in ``on_train_epoch_end`` costs, but with our writer).

The first epoch of every run is a warm-up and is not counted. "blocking" is the time the
training thread spends inside a snapshot (gather + copy + hand-off), measured by the callback.

Run::

    PYTHONPATH=src python benchmarks/bench_lightning.py            # ~2 minutes on 2 cores
    PYTHONPATH=src python benchmarks/bench_lightning.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from embedding_projector.lightning import EmbeddingProjector
from embedding_projector.sink import InsightOptions, SinkOptions

MODES = ("baseline", "callback", "callback, no maps", "callback, no layout", "synchronous")


class BagOfTokens(pl.LightningModule):
    """Mean of token embeddings -> linear classifier; the 50,000 x 256 table is the payload."""

    def __init__(self, rows: int, dim: int, classes: int = 16) -> None:
        super().__init__()
        self.tokens = nn.Embedding(rows, dim)
        self.head = nn.Linear(dim, classes)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return nn.functional.cross_entropy(self.head(self.tokens(x).mean(dim=1)), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class EpochTimer(pl.Callback):
    """Wall time and process CPU time (all threads, the writer's included) of every epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []
        self._start = self._cpu_start = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # Runs after EmbeddingProjector (callbacks run in order), so its blocking part counts;
        # the background write of epoch k overlaps epoch k + 1 and counts there.
        self.times.append(time.perf_counter() - self._start)
        self.cpu.append(time.process_time() - self._cpu_start)


def run(
    mode: str, args: argparse.Namespace, logdir: Path
) -> tuple[list[float], list[float], list[float], list[float]]:
    torch.manual_seed(0)
    x = torch.randint(0, args.rows, (args.steps * args.batch, 32))
    y = torch.randint(0, 16, (args.steps * args.batch,))
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch)
    timer = EpochTimer()
    callbacks: list[Any] = []
    projector = None
    if mode != "baseline":
        with_maps = mode != "callback, no maps"
        projector = EmbeddingProjector(
            logdir=logdir / mode.replace(",", "").replace(" ", "-"),
            insight=InsightOptions(
                maps=with_maps,
                scalars=with_maps,
                layout=None if mode == "callback, no layout" else "pca",
            ),
            sink=SinkOptions(background=mode != "synchronous"),
        )
        callbacks.append(projector)
    callbacks.append(timer)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=args.epochs,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(BagOfTokens(args.rows, args.dim), loader)
    if projector is None:
        return timer.times[1:], timer.cpu[1:], [], []
    return timer.times[1:], timer.cpu[1:], projector.blocking_seconds, projector.write_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per epoch")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        help="what to compare (baseline is always run)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.dim, args.steps, args.epochs, args.repeats = 2_000, 32, 5, 3, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*does not have many workers")
    warnings.filterwarnings("ignore", message=".*LeafSpec")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval")
    import logging

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)

    modes = ["baseline", *(mode for mode in MODES if mode in args.modes and mode != "baseline")]
    epochs: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    blocking: dict[str, list[float]] = {mode: [] for mode in modes if mode != "baseline"}
    writing: dict[str, list[float]] = {mode: [] for mode in modes if mode != "baseline"}
    #: Per mode: its median epoch over the baseline's median epoch in the same round.
    paired: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for mode in epochs:
                # A fresh directory per run: steps already on disk are (rightly) not rewritten.
                times, cpu_times, blocked, written = run(mode, args, Path(tmp) / str(repeat))
                if mode == "baseline":
                    round_base = statistics.median(times)
                paired[mode].append(statistics.median(times) / round_base - 1)
                epochs[mode].extend(times)
                cpu[mode].extend(cpu_times)
                if mode in blocking:
                    blocking[mode].extend(blocked)
                    writing[mode].extend(written)

    base = statistics.median(epochs["baseline"])
    base_fastest = min(epochs["baseline"])
    base_cpu = statistics.median(cpu["baseline"])
    print(
        f"embedding {args.rows} x {args.dim} ({args.rows * args.dim * 4 / 1e6:.0f} MB float32), "
        f"{args.steps} steps/epoch, {args.epochs - 1} timed epochs x {args.repeats} runs, "
        f"torch threads {torch.get_num_threads()}"
    )
    print()
    print(
        "| mode | epoch wall, median (s) | overhead | paired overhead, median (range) "
        "| fastest epoch (s) | overhead | epoch CPU (s) | CPU overhead "
        "| blocking per snapshot (ms) | write per snapshot (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, times in epochs.items():
        median, fastest = statistics.median(times), min(times)
        median_cpu = statistics.median(cpu[mode])
        is_base = mode == "baseline"
        overhead = "-" if is_base else f"{(median / base - 1) * 100:+.1f}%"
        fastest_overhead = "-" if is_base else f"{(fastest / base_fastest - 1) * 100:+.1f}%"
        cpu_overhead = "-" if is_base else f"{(median_cpu / base_cpu - 1) * 100:+.1f}%"
        pairs = paired[mode]
        paired_overhead = (
            "-"
            if is_base
            else f"{statistics.median(pairs) * 100:+.1f}% "
            f"({min(pairs) * 100:+.1f}% .. {max(pairs) * 100:+.1f}%)"
        )
        print(
            f"| {mode} | {median:.3f} | {overhead} | {paired_overhead} "
            f"| {fastest:.3f} | {fastest_overhead} "
            f"| {median_cpu:.3f} | {cpu_overhead} | {_ms(blocking.get(mode))} "
            f"| {_ms(writing.get(mode))} |"
        )
    low, high = min(epochs["baseline"]), max(epochs["baseline"])
    print()
    print(
        f"Baseline epochs alone ranged {low:.3f}-{high:.3f} s ({(high - low) / base * 100:.0f}% "
        "of the median): wall-clock differences smaller than that are noise on this machine."
    )
    print(
        "Paired: each round runs every mode once; its overhead is against that round's baseline "
        "(slow drift in machine load cancels). Fastest epoch: the least disturbed by other load."
    )
    print("CPU: process CPU time, all threads.")
    print("blocking: training-thread time inside a snapshot (synchronous: includes the write);")
    print("write: the writer's time per snapshot (on the background thread unless synchronous).")
    return 0


def _ms(values: list[float] | None) -> str:
    return f"{statistics.median(values) * 1000:.1f}" if values else "-"


if __name__ == "__main__":
    raise SystemExit(main())
