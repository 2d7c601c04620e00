"""Benchmark: one-shot export of a big word2vec binary, seed recipe vs ``export_embeddings``.

The seed recipe is what people do today: ``gensim.models.KeyedVectors.load_word2vec_format``
(whole file, or ``limit=``) and tensorboardX ``SummaryWriter.add_embedding`` (TSV text).

Cases (each one runs in a fresh subprocess, measured by ``_harness``: wall time, CPU time and
peak RSS from ``VmHWM``; library imports are inside the measured region, because a one-shot
export pays them; our package is byte-compiled first, as an install would be):

* top 100,000 rows: seed (load all, slice), seed with ``limit``, ``export_embeddings(limit=)``;
* top 100,000 rows of a word2vec **text** file and of a **GloVe** file (no header), 200,000 x
  200 each: gensim ``load_word2vec_format(binary=False, limit=)`` (GloVe: ``no_header=True``)
  + tensorboardX against ``export_embeddings(limit=)``;
* 10,000 named words scattered across the file: seed (load all, pick), ``words=``;
* ``near`` of 20 query words (10 neighbours each): seed (load all, ``most_similar``), ``near=``;
* a ``.npy`` matrix with a labels file, top 100,000 named rows: seed ``np.load`` + slice,
  ours memory-mapped (``--labels``);
* a Parquet table (vector column + title column), top 100,000 named rows: seed
  ``pandas.read_parquet`` + ``np.stack``, ours in record batches (``--vector-column``).

Usage::

    python benchmarks/bench_export.py              # word2vec 1,000,000 x 200 (~800 MB cached),
                                                   # npy/Parquet 250,000 x 768 (~730 MB each)
    python benchmarks/bench_export.py --quick      # 100,000 x 50 / 20,000 x 768: a smoke run
    python benchmarks/bench_export.py --sources npy parquet --rows 1000000   # the 3 GB files
    python benchmarks/bench_export.py --sources word2vec --cases seed_top_limit ours_top \
        --repeat 3                                 # the headline pair, median of 3 runs each

``--repeat N`` runs each case N times (fresh processes, interleaved) and reports the medians:
on a shared machine, read the CPU-time ratios and note the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from _harness import child_main, measure

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"

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


def generate_text(binary: Path, text: Path, glove: Path, rows: int) -> None:
    """The first ``rows`` rows of the binary as word2vec text (``%.6f``) and as GloVe."""
    from embedding_projector.readers import VectorFileReader

    started = time.perf_counter()
    reader = VectorFileReader(binary)
    dims = reader.info.dims
    temp_text, temp_glove = text.with_suffix(".partial"), glove.with_suffix(".partial")
    with open(temp_text, "wb") as out_text, open(temp_glove, "wb") as out_glove:
        out_text.write(f"{rows} {dims}\n".encode("ascii"))
        written = 0
        for block in reader.blocks():
            take = min(len(block), rows - written)
            matrix = block.matrix(range(take))
            lines = [
                word + " " + " ".join(map("{:.6f}".format, vector.tolist()))
                for word, vector in zip(block.words[:take], matrix, strict=True)
            ]
            data = ("\n".join(lines) + "\n").encode("utf-8")
            out_text.write(data)
            out_glove.write(data)
            written += take
            if written >= rows:
                break
    os.replace(temp_text, text)
    os.replace(temp_glove, glove)
    took = time.perf_counter() - started
    print(f"generated {text.name} and {glove.name} ({rows:,} x {dims}) in {took:.1f} s")


def generate_arrays(npy: Path, parquet: Path, labels: Path, rows: int, dims: int) -> None:
    """A float32 matrix as .npy (+ a labels file) and as Parquet (vector + title columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    npy.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(7)
    matrix = np.lib.format.open_memmap(
        npy.with_suffix(".partial.npy"), mode="w+", dtype="<f4", shape=(rows, dims)
    )
    names = [word(i) for i in range(rows)]
    schema = pa.schema([("title", pa.string()), ("embedding", pa.list_(pa.float32(), dims))])
    with pq.ParquetWriter(parquet.with_suffix(".partial"), schema) as writer:
        for start in range(0, rows, 50_000):
            block = rng.normal(size=(min(50_000, rows - start), dims)).astype("<f4")
            matrix[start : start + len(block)] = block
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), dims)
            titles = pa.array(names[start : start + len(block)])
            writer.write_table(pa.table({"title": titles, "embedding": vectors}))
    matrix.flush()
    del matrix
    os.replace(npy.with_suffix(".partial.npy"), npy)
    os.replace(parquet.with_suffix(".partial"), parquet)
    labels.write_text("\n".join(names) + "\n", encoding="utf-8")
    took = time.perf_counter() - started
    print(f"generated {npy.name} and {parquet.name} ({rows:,} x {dims}) in {took:.1f} s")


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


def case_seed_text(args: dict[str, object]) -> int:
    from gensim.models import KeyedVectors

    top = int(args["top"])  # type: ignore[call-overload]
    kv = KeyedVectors.load_word2vec_format(str(args["path"]), binary=False, limit=top)
    _seed_write(str(args["logdir"]), kv.vectors, kv.index_to_key)
    return len(kv)


def case_seed_glove(args: dict[str, object]) -> int:
    from gensim.models import KeyedVectors

    top = int(args["top"])  # type: ignore[call-overload]
    kv = KeyedVectors.load_word2vec_format(
        str(args["path"]), binary=False, no_header=True, limit=top
    )
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


def _ours(
    args: dict[str, object], reading: dict[str, object] | None = None, **chosen: object
) -> int:
    from embedding_projector.export import RowSelection, SourceOptions, export_embeddings

    summary = export_embeddings(
        str(args["path"]),
        str(args["logdir"]),
        RowSelection(**chosen),  # type: ignore[arg-type]
        source_options=SourceOptions(**(reading or {})),  # type: ignore[arg-type]
    )
    return summary.rows


def case_seed_npy(args: dict[str, object]) -> int:
    import numpy as np

    matrix = np.load(str(args["path"]))
    labels = Path(str(args["labels"])).read_text("utf-8").split("\n")
    n = int(args["top"])  # type: ignore[call-overload]
    _seed_write(str(args["logdir"]), matrix[:n], labels[:n])
    return n


def case_ours_npy(args: dict[str, object]) -> int:
    return _ours(args, {"labels": str(args["labels"])}, limit=int(args["top"]))  # type: ignore[call-overload]


def case_seed_parquet(args: dict[str, object]) -> int:
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(str(args["path"]))
    n = int(args["top"])  # type: ignore[call-overload]
    head = frame.head(n)
    _seed_write(str(args["logdir"]), np.stack(head["embedding"].to_numpy()), list(head["title"]))
    return n


def case_ours_parquet(args: dict[str, object]) -> int:
    reading = {"vector_column": "embedding", "label_columns": ["title"]}
    return _ours(args, reading, limit=int(args["top"]))  # type: ignore[call-overload]


def case_ours_top(args: dict[str, object]) -> int:
    return _ours(args, limit=int(args["top"]))  # type: ignore[call-overload]


def case_ours_text(args: dict[str, object]) -> int:
    return _ours(args, limit=int(args["top"]))  # type: ignore[call-overload]


case_ours_glove = case_ours_text


def case_ours_words(args: dict[str, object]) -> int:
    return _ours(args, words=str(args["words"]))


def case_ours_near(args: dict[str, object]) -> int:
    return _ours(args, near=list(args["near"]), near_k=int(args["near_k"]))  # type: ignore[call-overload]


def case_baseline(args: dict[str, object]) -> int:
    """Interpreter + our imports + a tiny write: the floor under every RSS number."""
    import numpy as np

    from embedding_projector import ProjectorWriter

    ProjectorWriter(str(args["logdir"])).add_embedding(np.eye(3, 2) + 0.5, metadata=["a", "b", "c"])
    return 3


CASES = {
    name[len("case_") :]: function
    for name, function in list(globals().items())
    if name.startswith("case_")
}


def _word2vec_plan(options: argparse.Namespace) -> tuple[list[Plan], dict[str, object], str]:
    rows = options.rows or (100_000 if options.quick else 1_000_000)
    dims = options.dims or (50 if options.quick else 200)
    top = min(100_000, rows // 2) if options.quick else min(100_000, rows)
    named = min(10_000, rows // 10)
    path = CACHE / f"ja-{rows}x{dims}.bin"
    if not path.exists():
        generate(path, rows, dims)
    words_file = CACHE / f"ja-{rows}x{dims}-words.txt"
    words_file.write_text("\n".join(scattered(rows, named, 3)) + "\n", encoding="utf-8")
    common: dict[str, object] = {
        "path": str(path),
        "top": top,
        "words": str(words_file),
        "near": scattered(rows, 20, 11),
        "near_k": 10,
    }
    plan = [
        Plan("seed_top", f"w2v top {top:,}: seed (load all)", "seed", "top", top * dims),
        Plan("seed_top_limit", f"w2v top {top:,}: seed (limit=)", "seed", "top", top * dims),
        Plan("ours_top", f"w2v top {top:,}: export_embeddings", "ours", "top", top * dims),
        Plan("seed_words", f"w2v {named:,} named words: seed", "seed", "words", named * dims),
        Plan("ours_words", f"w2v {named:,} named words: ours", "ours", "words", named * dims),
        Plan("seed_near", "w2v near 20 words x 10: seed", "seed", "near", 220 * dims),
        Plan("ours_near", "w2v near 20 words x 10: ours", "ours", "near", 220 * dims),
    ]
    size = path.stat().st_size / 2**20
    return plan, common, f"word2vec binary {rows:,} x {dims} ({size:,.0f} MiB)"


def _text_plan(
    options: argparse.Namespace, sources: list[str]
) -> tuple[list[Plan], dict[str, object], str]:
    """word2vec text and GloVe files: the first rows of the binary, twice the top rows."""
    binary_plan = _word2vec_plan(options)[1]
    binary, top = Path(str(binary_plan["path"])), int(binary_plan["top"])  # type: ignore[call-overload]
    rows = 2 * top
    text = binary.with_name(f"{binary.stem}-top{rows}.txt")
    glove = binary.with_name(f"{binary.stem}-top{rows}.glove.txt")
    if not (text.exists() and glove.exists()):
        generate_text(binary, text, glove, rows)
    dims = int(text.open("rb").readline().split()[1])
    plan: list[Plan] = []
    if "text" in sources:
        plan += [
            Plan("seed_text", f"text top {top:,}: seed (limit=)", "seed", "text", top * dims),
            Plan("ours_text", f"text top {top:,}: export_embeddings", "ours", "text", top * dims),
        ]
    if "glove" in sources:
        plan += [
            Plan("seed_glove", f"GloVe top {top:,}: seed (limit=)", "seed", "glove", top * dims),
            Plan("ours_glove", f"GloVe top {top:,}: export", "ours", "glove", top * dims),
        ]
    common: dict[str, object] = {"top": top, "text": str(text), "glove": str(glove)}
    size = text.stat().st_size / 2**20
    return plan, common, f"word2vec text / GloVe {rows:,} x {dims} ({size:,.0f} MiB each)"


def _array_plan(
    options: argparse.Namespace, sources: list[str]
) -> tuple[list[Plan], dict[str, object], str]:
    rows = options.rows or (20_000 if options.quick else 250_000)
    dims = options.dims or 768
    top = min(100_000, rows // 2)
    npy = CACHE / f"emb-{rows}x{dims}.npy"
    parquet = CACHE / f"emb-{rows}x{dims}.parquet"
    labels = CACHE / f"emb-{rows}x{dims}-labels.txt"
    if not (npy.exists() and parquet.exists() and labels.exists()):
        generate_arrays(npy, parquet, labels, rows, dims)
    plan: list[Plan] = []
    if "npy" in sources:
        plan += [
            Plan("seed_npy", f"npy top {top:,}: np.load + add_embedding", "seed", "npy", 0),
            Plan("ours_npy", f"npy top {top:,}: export_embeddings", "ours", "npy", 0),
        ]
    if "parquet" in sources:
        plan += [
            Plan("seed_parquet", f"parquet top {top:,}: pandas + add_embedding", "seed", "pq", 0),
            Plan("ours_parquet", f"parquet top {top:,}: export_embeddings", "ours", "pq", 0),
        ]
    plan = [p._replace(values=top * dims) for p in plan]
    common: dict[str, object] = {"top": top, "labels": str(labels), "npy": str(npy)}
    common["parquet"] = str(parquet)
    size = npy.stat().st_size / 2**20
    return plan, common, f"float32 {rows:,} x {dims} as .npy / Parquet ({size:,.0f} MiB each)"


class Plan(NamedTuple):
    case: str
    label: str
    kind: str  # "seed" or "ours"
    group: str  # cases compared with each other
    values: int  # selected floats


PAIRS = {
    "ours_top": ["seed_top", "seed_top_limit"],
    "ours_text": ["seed_text"],
    "ours_glove": ["seed_glove"],
    "ours_words": ["seed_words"],
    "ours_near": ["seed_near"],
    "ours_npy": ["seed_npy"],
    "ours_parquet": ["seed_parquet"],
}


SOURCES = ("word2vec", "text", "glove", "npy", "parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help="rows in each file (see the defaults above)")
    parser.add_argument("--dims", type=int, help="dimensions (word2vec 200, arrays 768)")
    parser.add_argument("--quick", action="store_true", help="small files, for a smoke run")
    parser.add_argument(
        "--sources", nargs="+", choices=SOURCES, default=list(SOURCES), help="default: all"
    )
    parser.add_argument("--cases", nargs="+", help="only these cases (e.g. seed_top ours_top)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (medians shown)")
    parser.add_argument("--no-seed", action="store_true", help="skip the (slow) seed recipe")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ARGS"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        child_main(CASES, *options.child)
        return 0
    groups = []
    if "word2vec" in options.sources:
        groups.append(_word2vec_plan(options))
    if {"text", "glove"} & set(options.sources):
        groups.append(_text_plan(options, options.sources))
    if {"npy", "parquet"} & set(options.sources):
        groups.append(_array_plan(options, options.sources))
    floor = measure(__file__, "baseline", {})  # also warms the page cache and the imports
    print(
        f"baseline (interpreter + imports + tiny write): {floor['wall']:.2f} s, "
        f"{floor['cpu']:.2f} CPU s, {floor['peak_mib']:.0f} MiB peak RSS; load average "
        + " ".join(f"{load:.1f}" for load in os.getloadavg())
    )
    for plan, common, title in groups:
        steps = [
            step
            for step in plan
            if not (step.kind == "seed" and options.no_seed)
            and (not options.cases or step.case in options.cases)
        ]
        if steps:
            print(f"\n{title}")
            _run_group(steps, common, options.repeat)
    return 0


def _run_group(plan: list[Plan], common: dict[str, object], repeat: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {step.case: [] for step in plan}
    for _ in range(repeat):  # interleaved: a burst of load hits every case alike
        for step in plan:
            args = dict(common)
            if step.group in ("npy", "pq", "text", "glove"):
                args["path"] = common[{"pq": "parquet"}.get(step.group, step.group)]
            result = measure(__file__, step.case, args, logdir_prefix="bench-export-")
            runs[step.case].append(result)
            print(
                f"  {step.label:<52} {result['wall']:7.2f} s {result['cpu']:7.2f} cpu s "
                f"{result['peak_mib']:8.0f} MiB",
                flush=True,
            )
    results: dict[str, dict[str, Any]] = {
        step.case: {
            **{
                field: statistics.median(run[field] for run in runs[step.case])
                for field in ("wall", "cpu", "peak_mib", "rows")
            },
            "plan": step,
        }
        for step in plan
    }
    if repeat > 1:
        print(
            f"medians of {repeat} runs; load average now "
            + " ".join(f"{load:.1f}" for load in os.getloadavg())
        )
    print(
        "| case | wall s | CPU s | peak RSS MiB | rows | selected matrix MiB | "
        "seed wall / ours | seed CPU / ours | seed RSS / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, result in results.items():
        seeds = [results[s] for s in PAIRS.get(key, []) if s in results]
        ratios = [
            " / ".join(f"{s[field] / result[field]:.1f}x" for s in seeds)
            for field in ("wall", "cpu", "peak_mib")
        ]
        matrix = result["plan"].values * 4 / 2**20
        print(
            f"| {result['plan'].label} | {result['wall']:.2f} | {result['cpu']:.2f} | "
            f"{result['peak_mib']:.0f} | {int(result['rows']):,} | {matrix:.1f} | "
            f"{ratios[0]} | {ratios[1]} | {ratios[2]} |"
        )


if __name__ == "__main__":
    sys.exit(main())
