"""Benchmark: compare two big word2vec binaries, obvious recipe vs ``compare_embeddings``.

Two files are generated (and cached): A has random rows; B is A rotated by a random orthogonal
matrix plus small noise, with ``--moved`` words (300) among the first ``--top`` given another
word's vector, and the row order shuffled within windows of 1,000 (so rows are matched by word,
not by position). Both cases take the top ``--top`` rows of each file, match them by word,
align B onto A, find every shared word's 10 nearest neighbours in both and write one projector
tensor of both sets (at most 50,000 shared words). Ours also ranks the most changed words
(``--changed`` of them, as ``compare --top``); the table says how many of the moved words it
names.

* **recipe**: gensim ``load_word2vec_format(limit=)`` twice, ``scipy.linalg.
  orthogonal_procrustes`` on unit rows, neighbours by blocks of ``unit @ unit.T`` with
  ``argpartition``, tensorboardX ``add_embedding`` (TSV text);
* **ours**: ``compare_embeddings(a, b, logdir, selection=RowSelection(limit=top))``;
* **baseline**: interpreter + imports + a tiny compare (the floor under every RSS number).

Each case runs in a fresh subprocess, measured by ``_harness``: wall time, CPU time and peak
RSS (``VmHWM``: ``ru_maxrss`` would count the parent's peak). The memory target: peak RSS minus
the baseline at most 3x the two selected matrices (``2 x top x dims x 4`` bytes).

Usage::

    python benchmarks/bench_compare.py                     # 200,000 x 100, top 20,000
    python benchmarks/bench_compare.py --rows 400000 --top 40000 --changed 1000
    python benchmarks/bench_compare.py --rows 1000000 --dims 200 --top 100000
    python benchmarks/bench_compare.py --no-recipe         # ours only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _harness import child_main, measure

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SHARED_CAP = 50_000
#: Standard deviation of the noise added to B (A's rows have unit variance per dimension).
NOISE = 0.05


def generate(path_a: Path, path_b: Path, rows: int, dims: int, moved: int, among: int) -> None:
    """A: random rows; B: A rotated plus small noise, ``moved`` of the first ``among`` rows
    replaced by another word's vector, shuffled within windows of 1,000.

    The moved words go to ``<B>.moved``, one a line (the change table should name them).
    """
    import numpy as np

    rng = np.random.default_rng(2026)
    rotation, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    planted = np.sort(rng.choice(min(among, rows), size=min(moved, among, rows), replace=False))
    path_a.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    temp_a, temp_b = path_a.with_suffix(".partial"), path_b.with_suffix(".partial")
    with open(temp_a, "wb") as out_a, open(temp_b, "wb") as out_b:
        header = f"{rows} {dims}\n".encode("ascii")
        out_a.write(header)
        out_b.write(header)
        for start in range(0, rows, 50_000):
            count = min(50_000, rows - start)
            block = rng.normal(size=(count, dims)).astype("<f4")
            turned = block @ rotation + NOISE * rng.normal(size=(count, dims))
            here = planted[(planted >= start) & (planted < start + count)] - start
            # Each moved word takes the (turned) vector of a word far from it in the block.
            turned[here] = turned[(here + count // 2) % count] + NOISE * rng.normal(
                size=(len(here), dims)
            )
            turned = turned.astype("<f4")
            words = [f"w{start + i:07d}".encode("ascii") for i in range(count)]
            order = np.concatenate(
                [rng.permutation(np.arange(s, min(s + 1000, count))) for s in range(0, count, 1000)]
            )
            out_a.write(b"".join(words[i] + b" " + block[i].tobytes() for i in range(count)))
            out_b.write(b"".join(words[i] + b" " + turned[i].tobytes() for i in order))
    os.replace(temp_a, path_a)
    os.replace(temp_b, path_b)
    path_b.with_suffix(".moved").write_text(
        "".join(f"w{i:07d}\n" for i in planted.tolist()), encoding="ascii"
    )
    took = time.perf_counter() - started
    print(f"generated {path_a.name} and {path_b.name} ({rows:,} x {dims} each) in {took:.1f} s")


# --------------------------------------------------------------------------- cases


def case_recipe(args: dict[str, object]) -> int:
    import numpy as np
    import scipy.linalg
    from gensim.models import KeyedVectors
    from tensorboardX import SummaryWriter

    top = int(args["top"])  # type: ignore[call-overload]
    a = KeyedVectors.load_word2vec_format(str(args["a"]), binary=True, limit=top)
    b = KeyedVectors.load_word2vec_format(str(args["b"]), binary=True, limit=top)
    shared = [word for word in a.index_to_key if word in b.key_to_index][:SHARED_CAP]
    rows_a, rows_b = a[shared], b[shared]
    unit_a = rows_a / np.linalg.norm(rows_a, axis=1, keepdims=True)
    unit_b = rows_b / np.linalg.norm(rows_b, axis=1, keepdims=True)
    rotation, _ = scipy.linalg.orthogonal_procrustes(unit_b, unit_a)
    aligned = rows_b @ rotation
    for unit in (unit_a, unit_b):
        for start in range(0, len(unit), 1024):
            scores = unit[start : start + 1024] @ unit.T
            np.argpartition(-scores, 11, axis=1)[:, :11]
    with SummaryWriter(str(args["logdir"])) as writer:
        writer.add_embedding(
            np.vstack([rows_a, aligned]),
            metadata=[[w, s] for s in ("a", "b") for w in shared],
            metadata_header=["label", "source"],
            tag="compare",
        )
    return 2 * len(shared)


def case_ours(args: dict[str, object]) -> dict[str, int]:
    from embedding_projector import RowSelection, compare_embeddings

    summary = compare_embeddings(
        args["a"],
        args["b"],
        str(args["logdir"]),
        selection=RowSelection(limit=args["top"]),
        top=int(args["changed"]),  # type: ignore[call-overload]
    )
    moved = set(Path(str(args["moved"])).read_text(encoding="ascii").split())
    found = sum(word.label in moved for word in summary.most_changed)
    return {"rows": 2 * summary.written, "found": found, "moved": len(moved)}


def case_baseline(args: dict[str, object]) -> int:
    import numpy as np

    from embedding_projector import compare_embeddings

    matrix = np.random.default_rng(0).normal(size=(20, 4))
    labels = [f"w{i}" for i in range(20)]
    compare_embeddings((matrix, labels), (matrix, labels), str(args["logdir"]), k=3)
    return 40


def _paths(rows: int, dims: int, moved: int, among: int) -> tuple[Path, Path]:
    name = f"{rows}x{dims}-moved{moved}of{among}"
    return CACHE / f"compare-a-{name}.bin", CACHE / f"compare-b-{name}.bin"


CASES = {"recipe": case_recipe, "ours": case_ours, "baseline": case_baseline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per file (<= 1,000,000)")
    parser.add_argument("--dims", type=int, default=100, help="dimensions")
    parser.add_argument("--top", type=int, default=20_000, help="top rows of each file")
    parser.add_argument("--moved", type=int, default=300, help="moved words among the top")
    parser.add_argument(
        "--changed", type=int, default=1000, help="most changed words ours lists (compare --top)"
    )
    parser.add_argument("--no-recipe", action="store_true", help="skip the (slow) recipe")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ARGS"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=4, type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        child_main(CASES, *options.child)
        return 0
    if options.generate:
        generate(*_paths(*options.generate), *options.generate)
        return 0
    rows, dims, top = options.rows, options.dims, min(options.top, options.rows)
    path_a, path_b = _paths(rows, dims, options.moved, top)
    if not (path_a.exists() and path_b.exists()):
        # In a child, so that this process stays small (it starts every measured case).
        plan_args = [str(value) for value in (rows, dims, options.moved, top)]
        subprocess.run([sys.executable, __file__, "--generate", *plan_args], check=True)
    common: dict[str, object] = {
        "a": str(path_a),
        "b": str(path_b),
        "top": top,
        "changed": options.changed,
        "moved": str(path_b.with_suffix(".moved")),
    }
    plan = [("baseline", "baseline (imports + tiny compare)"), ("ours", "compare_embeddings")]
    if not options.no_recipe:
        plan.insert(1, ("recipe", "recipe: gensim + scipy + numpy + tensorboardX"))
    results = {}
    for name, label in plan:
        results[name] = measure(__file__, name, common, logdir_prefix="bench-compare-")
        print(f"  {label:<48} {results[name]['wall']:7.2f} s {results[name]['peak_mib']:7.0f} MiB")
    selected = 2 * top * dims * 4 / 2**20
    floor = results["baseline"]["peak_mib"]
    print()
    print(
        f"files: 2 x {rows:,} x {dims} word2vec binary; top {top:,} of each; selected "
        f"matrices {selected:.0f} MiB"
    )
    print(
        "| case | wall s | CPU s | peak RSS MiB | (RSS - baseline) / selected | rows written |"
        " recipe wall / ours | recipe RSS / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, label in plan:
        result = results[name]
        ratio = (result["peak_mib"] - floor) / selected if name != "baseline" else 0.0
        versus = ("", "")
        if name == "ours" and "recipe" in results:
            versus = (
                f"{results['recipe']['wall'] / result['wall']:.1f}x",
                f"{results['recipe']['peak_mib'] / result['peak_mib']:.1f}x",
            )
        print(
            f"| {label} | {result['wall']:.2f} | {result['cpu']:.2f} | "
            f"{result['peak_mib']:.0f} | {ratio:.2f} | {int(result['rows']):,} | "
            f"{versus[0]} | {versus[1]} |"
        )
    ours = (results["ours"]["peak_mib"] - floor) / selected
    found, moved = int(results["ours"]["found"]), int(results["ours"]["moved"])
    print(f"\nmoved words named among ours' {options.changed:,} most changed: {found} of {moved}")
    print(
        f"memory target (RSS - baseline <= 3x selected): {'met' if ours <= 3 else 'MISSED'} "
        f"({ours:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
