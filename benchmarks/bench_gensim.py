"""How much does Any2VecProjector slow Word2Vec training down?

Trains Word2Vec on a generated Zipfian corpus (default ~5M tokens) with and without the
callback (10,000 words snapshotted every epoch, 5 probe words, drift and neighbour overlap on),
alternating the two so that machine load hits both alike, and prints a table::

    python benchmarks/bench_gensim.py                     # ~5M tokens, 3 epochs, 2 repeats
    python benchmarks/bench_gensim.py --tokens 1000000 --repeats 1

Epoch time is measured from the first callback's ``on_epoch_begin`` to the last callback's
``on_epoch_end``, so it includes the snapshot hook; the background writing overlaps the next
epoch (and competes with it for CPU), and the flush at the end of ``train()`` is in "total".
"CPU" is the process's CPU time (all threads) for the whole ``train()`` call: on a busy
machine it is far steadier than wall time, and it counts the background thread's work in
full. Target: <= 2% overhead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from embedding_projector.gensim import Any2VecProjector
from embedding_projector.sink import warm_up_imports


def zipf_corpus(tokens: int, vocab: int, seed: int, sentence_length: int = 20) -> list[list[str]]:
    """Sentences of words ``w0 .. w{vocab-1}`` drawn with Zipfian frequencies (s = 1.07)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1, dtype=np.float64)
    probabilities = ranks**-1.07
    probabilities /= probabilities.sum()
    # Words with nearby ids co-occur more often, so there is some structure to learn.
    ids = rng.choice(vocab, size=tokens, p=probabilities)
    words = [f"w{i}" for i in range(vocab)]
    flat = [words[i] for i in ids.tolist()]
    return [flat[i : i + sentence_length] for i in range(0, tokens, sentence_length)]


class EpochStart(CallbackAny2Vec):  # type: ignore[misc]
    """First callback: notes when each epoch begins."""

    def __init__(self) -> None:
        self.started = 0.0

    def on_epoch_begin(self, model: Any) -> None:
        self.started = time.perf_counter()


class EpochStop(CallbackAny2Vec):  # type: ignore[misc]
    """Last callback: epoch time up to the end of every other callback's on_epoch_end."""

    def __init__(self, start: EpochStart) -> None:
        self.start = start
        self.times: list[float] = []

    def on_epoch_end(self, model: Any) -> None:
        self.times.append(time.perf_counter() - self.start.started)


COSTS: list[tuple[float, float, int]] = []  # (hook s, background CPU s, snapshots) per run


def train(
    corpus: list[list[str]], args: argparse.Namespace, logdir: str | None
) -> tuple[list[float], float, float]:
    model = Word2Vec(
        vector_size=args.dim, window=5, min_count=5, workers=args.workers, seed=args.seed
    )
    model.build_vocab(corpus)
    begin = EpochStart()
    end = EpochStop(begin)
    callbacks: list[Any] = [begin]
    if logdir is not None:
        callbacks.append(
            Any2VecProjector(
                logdir,
                limit=args.words,
                probe_rows=[f"w{i}" for i in (10, 20, 50, 100, 200)],
            )
        )
    callbacks.append(end)
    started = time.perf_counter()
    cpu_started = time.process_time()
    with warnings.catch_warnings():
        # Expected here: workers > 1, and 5M tokens push the float32 loss past 2**22.
        warnings.filterwarnings("ignore", message=".*running loss")
        model.train(
            corpus,
            total_examples=model.corpus_count,
            epochs=args.epochs,
            compute_loss=True,
            callbacks=callbacks,
        )
        for callback in callbacks:
            if isinstance(callback, Any2VecProjector):
                callback.close()  # wait for the last snapshot: its cost counts
                COSTS.append(
                    (
                        callback.hook_seconds,
                        callback.write_cpu_seconds,
                        len(callback.steps_written()),
                    )
                )
                print(
                    f"    callback: {callback.hook_seconds:.2f} s in hooks (training thread), "
                    f"{callback.write_cpu_seconds:.2f} CPU s writing in the background, "
                    f"for {len(callback.steps_written())} snapshots",
                    flush=True,
                )
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    epochs = end.times
    return epochs, total, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5_000_000, help="corpus size in tokens")
    parser.add_argument("--vocab", type=int, default=60_000, help="word types in the generator")
    parser.add_argument("--words", type=int, default=10_000, help="words snapshotted")
    parser.add_argument("--dim", type=int, default=100, help="vector size")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="alternating pairs of runs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    # One-time costs, paid once per process, not per snapshot: pay them before timing (the
    # writer's lazy imports and the font lookup the callback's first hook does; printed here).
    warm_up_imports(maps=True)
    print(f"one-time import/setup: {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    corpus = zipf_corpus(args.tokens, args.vocab, args.seed)
    print(
        f"corpus: {args.tokens:,} tokens, {len(corpus):,} sentences, generated in "
        f"{time.perf_counter() - started:.1f} s; dim={args.dim}, workers={args.workers}, "
        f"epochs={args.epochs}, repeats={args.repeats}",
        flush=True,
    )
    results: dict[str, list[tuple[list[float], float, float]]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for label in ("without", "with") if repeat % 2 == 0 else ("with", "without"):
                logdir = None if label == "without" else str(Path(scratch) / f"run{repeat}")
                epochs, total, cpu = train(corpus, args, logdir)
                results[label].append((epochs, total, cpu))
                print(
                    f"  run {repeat + 1} {label:>7} callback: epochs "
                    + ", ".join(f"{t:.2f}" for t in epochs)
                    + f" s; total {total:.2f} s; CPU {cpu:.2f} s",
                    flush=True,
                )
        snapshot_bytes = sum(
            f.stat().st_size for f in Path(scratch).rglob("tensors.*") if f.is_file()
        )

    def epoch_median(label: str) -> float:
        return statistics.median(t for epochs, _, _ in results[label] for t in epochs)

    def total_median(label: str) -> float:
        return statistics.median(total for _, total, _ in results[label])

    def cpu_median(label: str) -> float:
        return statistics.median(cpu for _, _, cpu in results[label])

    base_epoch, with_epoch = epoch_median("without"), epoch_median("with")
    base_total, with_total = total_median("without"), total_median("with")
    print()
    print(f"| {'measure (median)':<26} | {'without':>9} | {'with':>9} | {'overhead':>8} |")
    print(f"|{'-' * 28}|{'-' * 11}|{'-' * 11}|{'-' * 10}|")
    for name, base, other in (
        ("epoch time (s)", base_epoch, with_epoch),
        ("train() total, wall (s)", base_total, with_total),
        ("train() total, CPU (s)", cpu_median("without"), cpu_median("with")),
    ):
        print(f"| {name:<26} | {base:>9.3f} | {other:>9.3f} | {100 * (other / base - 1):>7.2f}% |")
    hook = sum(c[0] for c in COSTS) / sum(c[2] for c in COSTS)
    background = sum(c[1] for c in COSTS) / sum(c[2] for c in COSTS)
    epoch_cpu = cpu_median("without") / args.epochs
    print(
        f"| {'callback work per snapshot':<26} | {'':>9} | {hook + background:>9.3f} | "
        f"{100 * (hook + background) / epoch_cpu:>7.2f}% |"
    )
    print(
        f"\ncallback work per snapshot = {hook:.3f} s in the hook (training thread, wall) + "
        f"{background:.3f} CPU s in the background writer, measured by the callback itself; "
        f"its % is of one epoch's CPU time without the callback ({epoch_cpu:.2f} s)."
    )
    print(
        f"\nsnapshots: {args.words:,} words x {args.dim} dims per epoch "
        f"({snapshot_bytes / 1e6:.1f} MB of tensors written in all); target <= 2% overhead"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
