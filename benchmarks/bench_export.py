"""Benchmark: one-shot export of a big word2vec binary, seed recipe vs ``export_embeddings``.

The seed recipe is what people do today: ``gensim.models.KeyedVectors.load_word2vec_format``
(whole file, or ``limit=``) and tensorboardX ``SummaryWriter.add_embedding`` (TSV text).

Cases (each one runs in a fresh subprocess; wall time and peak RSS are measured there, peak
RSS from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``; library imports are inside the timed
region, because a one-shot export pays them):

* top 100,000 rows: seed (load all, slice), seed with ``limit``, ``export_embeddings(limit=)``;
* 10,000 named words scattered across the file: seed (load all, pick), ``words=``;
* ``near`` of 20 query words (10 neighbours each): seed (load all, ``most_similar``), ``near=``.

Usage::

    python benchmarks/bench_export.py              # 1,000,000 x 200 (file cached, ~800 MB)
    python benchmarks/bench_export.py --quick      # 100,000 x 50, for a smoke run
    python benchmarks/bench_export.py --rows 300000 --dims 100

``--writer-fix`` also runs our cases with the core writer's empty event file written by
TensorBoard's own ``EventFileWriter`` instead of tensorboardX's (whose import pulls in torch).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SRC = HERE.parent / "src"

KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
)
KANJI = "東京大阪京都日本語学校電車映画音楽世界時間天気料理北海道沖縄名古屋"


def word(index: int) -> str:
    """A distinct Japanese-looking word for each index (entity-vector style, 3-8 chars)."""
    digits = []
    value = index
    while True:
        digits.append(KANA[value % len(KANA)])
        value //= len(KANA)
        if not value:
            break
    return KANJI[index % len(KANJI)] + KANJI[(index // 7) % len(KANJI)] + "".join(digits)


def generate(path: Path, rows: int, dims: int) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".partial")
    rng = np.random.default_rng(12345)
    started = time.perf_counter()
    with open(temp, "wb") as handle:
        handle.write(f"{rows} {dims}\n".encode("ascii"))
        for start in range(0, rows, 50_000):
            count = min(50_000, rows - start)
            block = rng.normal(size=(count, dims)).astype("<f4")
            handle.write(
                b"".join(
                    word(start + i).encode("utf-8") + b" " + block[i].tobytes()
                    for i in range(count)
                )
            )
    os.replace(temp, path)
    size = path.stat().st_size / 2**20
    took = time.perf_counter() - started
    print(f"generated {path} ({rows:,} x {dims}, {size:,.0f} MiB) in {took:.1f} s")


def scattered(rows: int, count: int, offset: int) -> list[str]:
    step = rows / count
    return [word(int(i * step) + offset) for i in range(count)]


# --------------------------------------------------------------------------- cases (child)


def _seed_write(logdir: str, matrix: object, labels: list[str]) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(logdir)
    writer.add_embedding(matrix, metadata=labels)
    writer.close()


def case_seed_top(args: dict[str, object]) -> int:
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(args["path"], binary=True)
    n = int(args["top"])  # type: ignore[call-overload]
    _seed_write(str(args["logdir"]), kv.vectors[:n], kv.index_to_key[:n])
    return n


def case_seed_top_limit(args: dict[str, object]) -> int:
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(args["path"], binary=True, limit=int(args["top"]))  # type: ignore[call-overload]
    _seed_write(str(args["logdir"]), kv.vectors, kv.index_to_key)
    return len(kv)


def case_seed_words(args: dict[str, object]) -> int:
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(args["path"], binary=True)
    words = [w for w in Path(str(args["words"])).read_text("utf-8").split("\n") if w and w in kv]
    _seed_write(str(args["logdir"]), kv[words], words)
    return len(words)


def case_seed_near(args: dict[str, object]) -> int:
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(args["path"], binary=True)
    chosen: list[str] = []
    for query in args["near"]:  # type: ignore[attr-defined]
        chosen.append(query)
        chosen.extend(w for w, _ in kv.most_similar(query, topn=int(args["near_k"])))  # type: ignore[call-overload]
    chosen = list(dict.fromkeys(chosen))
    _seed_write(str(args["logdir"]), kv[chosen], chosen)
    return len(chosen)


def _ours(args: dict[str, object], **options: object) -> int:
    if args.get("writer_fix"):
        _apply_writer_fix()
    from embedding_projector.export import export_embeddings

    summary = export_embeddings(str(args["path"]), str(args["logdir"]), **options)  # type: ignore[arg-type]
    return summary.rows


def _apply_writer_fix() -> None:
    """The change proposed for writer.py: TensorBoard's EventFileWriter (no torch import)."""
    import embedding_projector.writer as writer

    def write_empty_event_file(directory: Path, suffix: str) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        event_writer = EventFileWriter(str(directory), filename_suffix=f".{os.getpid()}{suffix}")
        event_writer.close()

    writer._write_empty_event_file = write_empty_event_file


def case_ours_top(args: dict[str, object]) -> int:
    return _ours(args, limit=int(args["top"]))  # type: ignore[call-overload]


def case_ours_words(args: dict[str, object]) -> int:
    return _ours(args, words=str(args["words"]))


def case_ours_near(args: dict[str, object]) -> int:
    return _ours(args, near=list(args["near"]), near_k=int(args["near_k"]))  # type: ignore[call-overload]


def case_baseline(args: dict[str, object]) -> int:
    """Interpreter + our imports + a tiny write: the floor under every RSS number."""
    if args.get("writer_fix"):
        _apply_writer_fix()
    import numpy as np

    from embedding_projector import ProjectorWriter

    ProjectorWriter(str(args["logdir"])).add_embedding(np.eye(3, 2) + 0.5, metadata=["a", "b", "c"])
    return 3


CASES = {
    name[len("case_") :]: function
    for name, function in list(globals().items())
    if name.startswith("case_")
}


_START_USAGE = resource.getrusage(resource.RUSAGE_SELF)
CPU_AT_START = _START_USAGE.ru_utime + _START_USAGE.ru_stime


def run_child(name: str, args_json: str) -> None:
    args = json.loads(args_json)
    started = time.perf_counter()
    rows = CASES[name](args)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - CPU_AT_START
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mib": usage.ru_maxrss / 1024, "rows": rows}))


# --------------------------------------------------------------------------- driver


def measure(name: str, args: dict[str, object]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as logdir:
        child_args = {**args, "logdir": logdir}
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        result = subprocess.run(
            [sys.executable, __file__, "--child", name, json.dumps(child_args)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"case {name} failed:\n{result.stderr[-3000:]}")
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the file")
    parser.add_argument("--dims", type=int, default=200, help="dimensions")
    parser.add_argument("--quick", action="store_true", help="100,000 x 50, smaller selections")
    parser.add_argument("--no-seed", action="store_true", help="skip the (slow) seed recipe")
    parser.add_argument("--writer-fix", action="store_true", help="also run ours with the fix")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ARGS"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        run_child(*options.child)
        return 0
    rows, dims = (100_000, 50) if options.quick else (options.rows, options.dims)
    top = min(100_000, rows // 2) if options.quick else min(100_000, rows)
    named = min(10_000, rows // 10)
    path = CACHE / f"ja-{rows}x{dims}.bin"
    if not path.exists():
        generate(path, rows, dims)
    words_file = CACHE / f"ja-{rows}x{dims}-words.txt"
    words_file.write_text("\n".join(scattered(rows, named, 3)) + "\n", encoding="utf-8")
    near = scattered(rows, 20, 11)
    common: dict[str, object] = {
        "path": str(path),
        "top": top,
        "words": str(words_file),
        "near": near,
        "near_k": 10,
    }
    plan = [
        ("baseline", "baseline (imports + tiny write)", "ours"),
        ("seed_top", f"top {top:,}: seed (load all)", "seed"),
        ("seed_top_limit", f"top {top:,}: seed (limit=)", "seed"),
        ("ours_top", f"top {top:,}: export_embeddings", "ours"),
        ("seed_words", f"{named:,} named words: seed", "seed"),
        ("ours_words", f"{named:,} named words: export_embeddings", "ours"),
        ("seed_near", "near 20 words x 10: seed", "seed"),
        ("ours_near", "near 20 words x 10: export_embeddings", "ours"),
    ]
    variants = [False, True] if options.writer_fix else [False]
    results: dict[str, dict[str, float]] = {}
    for name, label, kind in plan:
        if kind == "seed" and options.no_seed:
            continue
        for fix in variants if kind == "ours" else [False]:
            key = name + (" +fix" if fix else "")
            results[key] = measure(name, {**common, "writer_fix": fix})
            results[key]["label"] = label + (" (writer fix)" if fix else "")  # type: ignore[assignment]
            print(
                f"  {results[key]['label']:<52} {results[key]['wall']:7.2f} s "
                f"{results[key]['cpu']:7.2f} cpu s "
                f"{results[key]['peak_mib']:8.0f} MiB",
                flush=True,
            )

    matrix_mib = {
        "top": top * dims * 4 / 2**20,
        "words": named * dims * 4 / 2**20,
        "near": 20 * 11 * dims * 4 / 2**20,
    }
    print()
    print(f"file: {rows:,} x {dims} word2vec binary ({path.stat().st_size / 2**20:,.0f} MiB)")
    print(
        "| case | wall s | CPU s | peak RSS MiB | rows | selected matrix MiB | "
        "seed wall / ours | seed CPU / ours | seed RSS / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    pairs = {
        "ours_top": ["seed_top", "seed_top_limit"],
        "ours_words": ["seed_words"],
        "ours_near": ["seed_near"],
    }
    for key, result in results.items():
        base = key.split(" ")[0]
        kind = base.split("_", 1)[1] if "_" in base else ""
        kind = kind.replace("top_limit", "top")
        matrix = matrix_mib.get(kind, 0.0)
        ratios_wall = ratios_cpu = ratios_rss = ""
        if base in pairs:
            seeds = [results[s] for s in pairs[base] if s in results]
            ratios_wall = " / ".join(f"{s['wall'] / result['wall']:.1f}x" for s in seeds)
            ratios_cpu = " / ".join(f"{s['cpu'] / result['cpu']:.1f}x" for s in seeds)
            ratios_rss = " / ".join(f"{s['peak_mib'] / result['peak_mib']:.1f}x" for s in seeds)
        print(
            f"| {result['label']} | {result['wall']:.2f} | {result['cpu']:.2f} | "
            f"{result['peak_mib']:.0f} | {int(result['rows']):,} | {matrix:.1f} | "
            f"{ratios_wall} | {ratios_cpu} | {ratios_rss} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
