"""Write speed, memory and size: embedding-projector vs tensorboardX vs the raw ``tofile`` floor.

Also: how soon a freshly started TensorBoard serves the latest of 10 snapshots.

Run:  python benchmarks/bench_write.py            (full: 10,000x100 and 100,000x300)
      python benchmarks/bench_write.py --quick    (small sizes, for a smoke run)

Targets: >= 100x faster than tensorboardX at 100,000x300; <= 3x the raw tofile floor;
TensorBoard serving the 10-snapshot run >= 8x sooner than with tensorboardX's files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

import embedding_projector as ep


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(write: Callable[[Path], object], repeats: int) -> tuple[float, float, int]:
    """Median seconds, peak traced MB and bytes on disk of ``write(fresh_dir)``."""
    times, peaks, sizes = [], [], []
    for _ in range(repeats):
        target = Path(tempfile.mkdtemp(prefix="bench-write-"))
        try:
            tracemalloc.start()
            start = time.perf_counter()
            write(target)
            times.append(time.perf_counter() - start)
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
            tracemalloc.stop()
            sizes.append(dir_bytes(target))
        finally:
            shutil.rmtree(target, ignore_errors=True)
    return statistics.median(times), max(peaks), max(sizes)


def write_cases(rows: int, cols: int, repeats: int, tbx_repeats: int) -> list[tuple[str, ...]]:
    from tensorboardX import SummaryWriter

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((rows, cols)).astype(np.float32)
    labels = [f"word{i}" for i in range(rows)]

    def raw(target: Path) -> None:
        matrix.tofile(target / "tensor.bin")

    def ours(target: Path) -> None:
        ep.add_embedding(target, matrix, metadata=labels)

    def ours_tensor_only(target: Path) -> None:
        ep.add_embedding(target, matrix)

    def tbx(target: Path) -> None:
        with SummaryWriter(str(target)) as writer:
            writer.add_embedding(matrix, metadata=labels)

    results = {
        "raw tofile (tensor only)": measure(raw, repeats),
        "embedding-projector (tensor only)": measure(ours_tensor_only, repeats),
        "embedding-projector": measure(ours, repeats),
        "tensorboardX add_embedding": measure(tbx, tbx_repeats),
    }
    ours_time = results["embedding-projector"][0]
    table = []
    for name, (seconds, peak, size) in results.items():
        table.append(
            (
                f"{rows:,}x{cols}",
                name,
                f"{seconds * 1000:,.0f} ms",
                f"{peak:,.0f} MB",
                f"{size / 1e6:,.1f} MB",
                f"{seconds / ours_time:,.1f}x",
            )
        )
    return table


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_serve(logdir: Path, tensor_name: str) -> float:
    """Seconds from starting TensorBoard until its projector serves ``tensor_name``."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/data/plugin/projector/tensor?run=.&name=" + (
        urllib.request.quote(tensor_name)
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=300) as response:
                    response.read()
                return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError):
                if time.perf_counter() - start > 600:
                    raise
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait()


def serve_cases(rows: int, cols: int, snapshots: int) -> list[tuple[str, ...]]:
    from tensorboardX import SummaryWriter

    rng = np.random.default_rng(1)
    labels = [f"w{i}" for i in range(rows)]
    root = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        tbx_dir, ours_dir = root / "tbx", root / "ours"
        with SummaryWriter(str(tbx_dir)) as writer:
            for step in range(snapshots):
                writer.add_embedding(
                    rng.standard_normal((rows, cols)).astype(np.float32),
                    metadata=labels,
                    global_step=step,
                )
        last = None
        for step in range(snapshots):
            last = ep.add_embedding(
                ours_dir, rng.standard_normal((rows, cols)), metadata=labels, global_step=step
            )
        assert last is not None
        tbx_seconds = time_to_serve(tbx_dir, f"default:{str(snapshots - 1).zfill(5)}")
        ours_seconds = time_to_serve(ours_dir, last.tensor_name)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    case = f"{snapshots} x {rows:,}x{cols}"
    return [
        (case, "tensorboardX files", f"{tbx_seconds:.2f} s", f"{tbx_seconds / ours_seconds:.1f}x"),
        (case, "embedding-projector files", f"{ours_seconds:.2f} s", "1.0x"),
    ]


def print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    sizes = [(2_000, 50), (10_000, 100)] if args.quick else [(10_000, 100), (100_000, 300)]
    write_rows: list[tuple[str, ...]] = []
    for rows, cols in sizes:
        tbx_repeats = 1 if rows * cols > 5_000_000 else 3
        write_rows += write_cases(rows, cols, repeats=3, tbx_repeats=tbx_repeats)
    print(f"Writing one snapshot with labels (median; {os.cpu_count()} CPUs)")
    print("(ratios: time / embedding-projector's time with labels)")
    print_table(("matrix", "writer", "time", "peak traced", "on disk", "time vs ours"), write_rows)
    serve_rows = serve_cases(2_000 if args.quick else 20_000, 128, 10)
    print("Starting TensorBoard until the projector serves the latest snapshot")
    print_table(("run", "files", "time", "vs ours"), serve_rows)


if __name__ == "__main__":
    main()
