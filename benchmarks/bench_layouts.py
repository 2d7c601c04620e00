"""What saved layouts cost: aligned PCA per snapshot, the state JSON, UMAP of every row.

Run:  python benchmarks/bench_layouts.py                   (10,000x300, 100,000x300; UMAP 5,000x200)
      python benchmarks/bench_layouts.py --umap-only --umap-rows 100000  (the issue's UMAP check)
      python benchmarks/bench_layouts.py --quick             (small sizes, a smoke run)

Part 1, per snapshot of a drifting embedding (steady state, after the first step):
  * the tensor write itself (``add_embedding`` without a layout) — the cost to compare with;
  * ``AlignedLayout.update`` (Procrustes onto the previous step + fixed-basis projection);
  * the obvious recipe: scipy's ``orthogonal_procrustes`` and a full SVD on every row;
  * the saved-state JSON of the 2-D and 3-D states, against ``json.dumps`` of a dict per row,
    and against the number formatting alone done by numpy's shortest-repr cast (the way
    before ``_states.float32_text``);
  * the whole write with ``layout=states``.
Part 2, UMAP of N x 200 clustered rows (numba compiles first, untimed):
  * umap-learn's own ``UMAP(metric="cosine").fit_transform`` of the same matrix;
  * ``umap_layout`` (what ``layout="umap"`` and ``export --layout umap`` run);
  * ``AlignedLayout("umap")`` step k from step k-1's layout against a cold fit of step k.
  Each pair runs interleaved, A B A B (``--umap-rounds``), so a busy spell of a shared machine
  hits both sides; every round prints wall and process CPU time (all threads) and its ratios,
  the table gives the medians and the peak RSS growth during a fit (sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import embedding_projector as ep
from embedding_projector._format import bookmarks as _states
from embedding_projector.insight.layouts import AlignedLayout, require_umap, umap_layout
from embedding_projector.sink.background import single_threaded_blas


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``run()`` and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def drifting(rows: int, dims: int, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Snapshots of a clustered embedding that drifts a little and rotates freely each step."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, dims)).astype(np.float32) * 2
    base = centres[np.arange(rows) % 100] + rng.normal(size=(rows, dims)).astype(np.float32)
    out = []
    for step in range(steps):
        rotation, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
        noise = rng.normal(size=base.shape).astype(np.float32) * np.float32(0.05 * step)
        out.append(((base + noise) @ rotation.astype(np.float32)).astype(np.float32))
    return out


def obvious_aligned_pca(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Full Procrustes on every row, then a full SVD of the aligned snapshot."""
    from scipy.linalg import orthogonal_procrustes

    rotation, _ = orthogonal_procrustes(current, previous)
    aligned = current @ rotation
    centred = aligned - aligned.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray(centred @ vt[:3].T, dtype=np.float32)


def obvious_json(states: list[ep.ProjectorLayout], rows: int, dims: int) -> bytes:
    out = []
    for layout in states:
        fields = _states.state_fields(layout, dimensions=(rows, dims))
        fields["projections"] = [
            {f"{layout.kind}-{j}": float(v) for j, v in enumerate(row)}
            for row in layout.coordinates.tolist()
        ]
        out.append(fields)
    return json.dumps(out, separators=(",", ":")).encode()


def numpy_repr_numbers(states: list[ep.ProjectorLayout]) -> int:
    """Only the numbers of the states, as numpy's float -> bytes cast formats them."""
    size = 0
    for layout in states:
        for column in range(layout.coordinates.shape[1]):
            size += np.ascontiguousarray(layout.coordinates[:, column]).astype("S16").size
    return size


def pca_part(rows: int, dims: int, repeats: int) -> list[tuple[str, float, str]]:
    snaps = drifting(rows, dims, repeats + 2)
    words = [f"w{i}" for i in range(rows)]
    frame = AlignedLayout()
    frame.update(words, snaps[0], step=0)
    update_times, states = [], []
    for step, snap in enumerate(snaps[1:], start=1):
        start = time.perf_counter()
        with single_threaded_blas():  # as beside training (see background.single_threaded_blas)
            states = frame.update(words, snap, step=step)
        update_times.append(time.perf_counter() - start)
    update = statistics.median(update_times)
    with single_threaded_blas():
        obvious, _ = timed(lambda: obvious_aligned_pca(snaps[0], snaps[1]), max(1, repeats // 2))
    json_ours, text = timed(
        lambda: _states.saved_states_json(states, dimensions=(rows, dims)), repeats
    )
    json_obvious, _ = timed(lambda: obvious_json(states, rows, dims), max(1, repeats // 2))
    numpy_numbers, _ = timed(lambda: numpy_repr_numbers(states), repeats)
    target = Path(tempfile.mkdtemp(prefix="bench-layouts-"))
    try:
        writer = ep.ProjectorWriter(target / "a", live_refresh=False)
        counter = iter(range(10**6))
        write, _ = timed(
            lambda: writer.add_embedding(snaps[-1], global_step=next(counter)), repeats
        )
        writer_b = ep.ProjectorWriter(target / "b", live_refresh=False)
        with_states, _ = timed(
            lambda: writer_b.add_embedding(snaps[-1], global_step=next(counter), layout=states),
            repeats,
        )
    finally:
        shutil.rmtree(target, ignore_errors=True)
    label = f"{rows:,}x{dims}"
    return [
        (f"{label} tensor write (no layout)", write, "1.00x"),
        (f"{label} AlignedLayout.update", update, f"{update / write:.2f}x the write"),
        (
            f"{label} obvious: scipy Procrustes + full SVD",
            obvious,
            f"{obvious / update:.1f}x AlignedLayout",
        ),
        (
            f"{label} state JSON, 2 states ({len(text) / 1e6:.1f} MB)",
            json_ours,
            f"{json_ours / write:.2f}x the write",
        ),
        (
            f"{label} obvious: json.dumps, a dict per row",
            json_obvious,
            f"{json_obvious / json_ours:.1f}x ours",
        ),
        (
            f"{label} numbers alone by numpy's shortest repr",
            numpy_numbers,
            f"{numpy_numbers / json_ours:.1f}x our whole JSON",
        ),
        (f"{label} write with layout=states", with_states, f"{with_states / write:.2f}x the write"),
        (
            f"{label} layout per snapshot in all",
            update + with_states,
            f"{(update + with_states) / write:.2f}x the write",
        ),
    ]


class Fit:
    """Wall seconds, process CPU seconds (every thread) and peak RSS growth of one call."""

    def __init__(self, run: Callable[[], Any]) -> None:
        rss_before = _rss_mib()
        peak = [rss_before]
        done = threading.Event()

        def sample() -> None:  # RSS every 50 ms: the high-water mark of this call alone
            while not done.wait(0.05):
                peak[0] = max(peak[0], _rss_mib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu, wall = time.process_time(), time.perf_counter()
        self.result = run()
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu
        done.set()
        sampler.join()
        self.rss = max(peak[0], _rss_mib()) - rss_before


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def interleaved(
    pair: tuple[Callable[[], Any], Callable[[], Any]], rounds: int, names: tuple[str, str]
) -> list[tuple[Fit, Fit]]:
    """A B A B ...: each round runs both, so slow phases of a shared machine hit both."""
    out = []
    for index in range(rounds):
        first = Fit(pair[0])
        second = Fit(pair[1])
        out.append((first, second))
        print(
            f"  round {index + 1}: {names[0]} {first.wall:.1f} s wall / {first.cpu:.1f} s CPU, "
            f"{names[1]} {second.wall:.1f} s / {second.cpu:.1f} s  "
            f"(ratio {second.wall / first.wall:.2f} wall, {second.cpu / first.cpu:.2f} CPU; "
            f"load {_load()})",
            flush=True,
        )
    return out


def ratio_row(name: str, runs: list[tuple[Fit, Fit]], against: str) -> tuple[str, float, str]:
    """Median wall of the second, and its per-round wall and CPU ratios to the first."""
    walls = [second.wall / first.wall for first, second in runs]
    cpus = [second.cpu / first.cpu for first, second in runs]
    wall = statistics.median(second.wall for _, second in runs)
    cpu = statistics.median(second.cpu for _, second in runs)
    rss = max(second.rss for _, second in runs)
    return (
        name,
        wall,
        f"{statistics.median(walls):.2f}x {against} wall (rounds "
        + ", ".join(f"{r:.2f}" for r in walls)
        + f"), CPU {cpu:.0f} s: {statistics.median(cpus):.2f}x (rounds "
        + ", ".join(f"{r:.2f}" for r in cpus)
        + f"), +{rss:.0f} MiB RSS",
    )


def first_row(name: str, runs: list[tuple[Fit, Fit]]) -> tuple[str, float, str]:
    wall = statistics.median(first.wall for first, _ in runs)
    cpu = statistics.median(first.cpu for first, _ in runs)
    rss = max(first.rss for first, _ in runs)
    return (name, wall, f"1.00x (CPU {cpu:.0f} s, +{rss:.0f} MiB RSS)")


def umap_part(rows: int, dims: int, rounds: int) -> list[tuple[str, float, str]]:
    umap = require_umap()
    start = time.perf_counter()
    # numba compiles here: exact neighbours below 4,096 rows, NN-descent (cosine) above.
    umap_layout(np.random.default_rng(9).normal(size=(300, dims)), n_epochs=10)
    umap_layout(np.random.default_rng(9).normal(size=(4500, 20)), n_epochs=10)
    compile_s = time.perf_counter() - start
    snaps = drifting(rows, dims, 2, seed=1)
    label = f"UMAP {rows:,}x{dims}"
    print(f"{label}: umap-learn's own fit (A) and umap_layout (B), interleaved", flush=True)
    fits = interleaved(
        (
            lambda: umap.UMAP(n_components=2, metric="cosine", n_neighbors=15).fit_transform(
                snaps[0]
            ),
            lambda: umap_layout(snaps[0]),
        ),
        rounds,
        ("umap-learn", "ours"),
    )
    words = [f"w{i}" for i in range(rows)]
    frame = AlignedLayout("umap")
    frame.update(words, snaps[0], step=0)  # step k-1 (a cold fit, untimed)
    print(f"{label}: cold fit of step k (A) and step k from step k-1 (B), interleaved", flush=True)
    steps = interleaved(
        (
            lambda: umap_layout(snaps[1]),
            lambda: copy.deepcopy(frame).update(words, snaps[1], step=1),
        ),
        rounds,
        ("cold", "warm"),
    )
    return [
        ("UMAP first calls (numba compiles; untimed below)", compile_s, ""),
        first_row(f"{label} umap-learn's own fit_transform", fits),
        ratio_row(f"{label} umap_layout (layout='umap')", fits, "umap-learn"),
        first_row(f"{label} cold fit of step k", steps),
        ratio_row(
            f"{label} step k from step k-1 ({frame.warm_epochs} epochs)", steps, "the cold fit"
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--umap-rows", type=int, default=5000, help="rows of the UMAP part")
    parser.add_argument(
        "--umap-rounds", type=int, default=2, help="interleaved rounds of each UMAP pair"
    )
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP part")
    parser.add_argument("--umap-only", action="store_true", help="skip the aligned-PCA part")
    args = parser.parse_args()
    sizes = [(2000, 64)] if args.quick else [(10_000, 300), (100_000, 300)]
    print(f"{'case':<56}  {'seconds':>9}  ratio", flush=True)

    def show(rows_out: list[tuple[str, float, str]]) -> None:
        for name, seconds, ratio in rows_out:
            print(f"{name:<56}  {seconds:>9.3f}  {ratio}", flush=True)

    print(f"load average at start: {_load()} ({os.cpu_count()} cores)", flush=True)
    for rows, dims in [] if args.umap_only else sizes:
        show(pca_part(rows, dims, repeats=3 if args.quick else 5))
    if not args.no_umap:
        show(umap_part(500 if args.quick else args.umap_rows, 200, args.umap_rounds))
    print(f"load average at end: {_load()}", flush=True)


if __name__ == "__main__":
    main()
