"""Exporting today's embedding files: NumPy arrays, Parquet/Arrow tables, safetensors and
Hugging Face model folders — served back by a real TensorBoard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedding_projector.cli import main
from embedding_projector.errors import VectorFileError
from embedding_projector.export import ExportSummary, RowSelection, SourceOptions, export_embeddings
from embedding_projector.readers import load_rows
from embedding_projector.readers.selection import select_keys
from tb_server import TensorBoard, column, served_snapshot
from vector_files import japanese_words, random_vectors

RunFactory = Callable[[], tuple[Path, str]]


def served(
    tb: TensorBoard, run: str, summary: ExportSummary
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """(tensor, header, rows) as TensorBoard serves them."""
    return served_snapshot(tb, run, summary.tensor_name)  # type: ignore[no-any-return]


def nothing_written(logdir: Path) -> bool:
    return not logdir.exists() or not any(p.is_file() for p in logdir.rglob("*"))


# --------------------------------------------------------------------------- NumPy


def test_npy_with_tsv_labels_through_tensorboard(
    tmp_path: Path, shared_tensorboard: TensorBoard, shared_run: RunFactory
) -> None:
    vectors = random_vectors(500, 16, seed=3)
    titles = japanese_words(500)
    np.save(tmp_path / "docs.npy", vectors)
    labels = tmp_path / "docs.tsv"
    labels.write_text(
        "title\tlang\n"
        + "".join(f"{t}\t{'ja' if i % 2 else 'en'}\n" for i, t in enumerate(titles)),
        encoding="utf-8",
    )
    run_dir, run = shared_run()
    selection = RowSelection(words=[titles[321]], near=[titles[7]], near_k=4, limit=20)
    summary = export_embeddings(
        tmp_path / "docs.npy", run_dir, selection, source_options=SourceOptions(labels=str(labels))
    )
    expected = select_keys(
        titles, words=[titles[321]], near=[titles[7]], near_k=4, limit=20, vectors=vectors
    )
    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert header == ["title", "rank", "lang", "near", "selected by"]
    assert column(header, rows, "title") == expected.keys
    assert column(header, rows, "lang") == ["ja" if i % 2 else "en" for i in expected.indices]
    np.testing.assert_array_equal(tensor, vectors[expected.indices])
    assert np.fromfile(summary.tensor_path, dtype="<f4").tobytes() == (
        vectors[expected.indices].astype("<f4").tobytes()
    )


def test_npz_member_with_plain_labels_and_npy_without_labels(
    tmp_path: Path, shared_tensorboard: TensorBoard, shared_run: RunFactory
) -> None:
    vectors = random_vectors(40, 5, seed=8).astype(np.float16)
    np.savez_compressed(tmp_path / "m.npz", emb=vectors, other=np.zeros(3))
    (tmp_path / "l.txt").write_text("\n".join(f"w{i}" for i in range(40)) + "\n", "utf-8")
    with pytest.raises(VectorFileError, match=r"holds 2 arrays \(emb, other\); pick one"):
        load_rows(tmp_path / "m.npz")
    with pytest.raises(VectorFileError, match="has no array 'nope'"):
        load_rows(tmp_path / "m.npz", options=SourceOptions(tensor="nope"))
    run_dir, run = shared_run()
    summary = export_embeddings(
        tmp_path / "m.npz",
        run_dir,
        RowSelection(sample=10, seed=2),
        source_options=SourceOptions(tensor="emb", labels=str(tmp_path / "l.txt")),
    )
    tensor, header, rows = served(shared_tensorboard, run, summary)
    expected = select_keys([f"w{i}" for i in range(40)], sample=10, seed=2)
    assert header == ["label", "rank"] and column(header, rows, "label") == expected.keys
    np.testing.assert_array_equal(tensor, vectors[expected.indices].astype(np.float32))
    # Without labels, rows are named by their number.
    np.save(tmp_path / "plain.npy", vectors.astype(np.float32))
    rows_read = load_rows(tmp_path / "plain.npy", RowSelection(words=["3", "39", "40"]))
    assert rows_read.key_column == "row" and rows_read.keys == ["3", "39"]
    assert rows_read.missing == ["40"]


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("1-D", r"shape \(12,\) \(1-D\); expected a 2-D matrix"),
        ("3-D", r"shape \(2, 3, 4\) \(3-D\)"),
        ("strings", "holds <U1 values; expected numbers"),
        ("truncated", "not a readable NumPy file"),
        ("label count", "holds 6 rows but the labels file .* has 5 labels"),
        ("tsv fields", "line 3 has 1 tab-separated fields; the header has 2"),
    ],
)
def test_bad_arrays_raise_vector_file_error_and_write_nothing(
    tmp_path: Path, case: str, pattern: str
) -> None:
    path = tmp_path / "a.npy"
    labels: str | None = None
    if case == "1-D":
        np.save(path, np.zeros(12, dtype=np.float32))
    elif case == "3-D":
        np.save(path, np.zeros((2, 3, 4), dtype=np.float32))
    elif case == "strings":
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
    elif case == "truncated":
        np.save(path, random_vectors(100, 8))
        path.write_bytes(path.read_bytes()[:-50])
    else:
        np.save(path, random_vectors(6, 3))
        labels = str(tmp_path / "labels.txt")
        if case == "label count":
            Path(labels).write_text("a\nb\nc\nd\ne\n", "utf-8")
        else:
            Path(labels).write_text("w\tn\na\t1\nb\n", "utf-8")
    logdir = tmp_path / "logs"
    with pytest.raises(VectorFileError, match=pattern) as raised:
        export_embeddings(path, logdir, source_options=SourceOptions(labels=labels))
    assert str(path) in str(raised.value) or (labels and labels in str(raised.value))
    assert nothing_written(logdir)


@pytest.mark.slow
def test_selecting_rows_of_a_big_memory_mapped_npy_reads_only_those_rows(tmp_path: Path) -> None:
    rows, dims = 300_000, 768  # 880 MB, written sparse: only the header and a few rows
    path = tmp_path / "big.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, dims), dtype="<f4"))
    header["shape"] = (rows, dims)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        start = handle.tell()
        handle.truncate(start + rows * dims * 4)
        handle.seek(start + 12_345 * dims * 4)
        handle.write(np.full(dims, 0.5, dtype="<f4").tobytes())
    size_mib = path.stat().st_size / 2**20
    script = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np
        from embedding_projector.export import RowSelection, export_embeddings
        summary = export_embeddings({str(path)!r}, {str(tmp_path / "logs")!r},
                                    RowSelection(limit=10_000, words=["12345"]))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        try:  # ru_maxrss also counts the parent's peak after (v)fork + exec; VmHWM does not
            status = open("/proc/self/status").read()
            peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
        except (OSError, IndexError):
            pass
        with open(summary.tensor_path, "rb") as handle:  # TSV (zeros are short) or float32
            first = handle.read(768 * 4)
        if summary.tensor_path.suffix == ".tsv":
            first = np.array(first.split(b"\\n")[0].split(b"\\t"), dtype=np.float32)
        else:
            first = np.frombuffer(first, dtype="<f4")
        assert summary.rows == 10_001 and (first == 0.5).all(), (summary, first)
        print(peak)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert result.returncode == 0, result.stderr
    peak_mib = float(result.stdout.split()[-1])
    # The interpreter, numpy, protobuf and the writer take ~150 MiB; the file is 880 MiB.
    assert peak_mib < size_mib / 3, (peak_mib, size_mib)


def test_cli_exports_npy_with_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "v.npy", random_vectors(30, 4))
    (tmp_path / "l.txt").write_text("".join(f"item {i}\n" for i in range(30)), "utf-8")
    code = main(
        [
            "export",
            str(tmp_path / "v.npy"),
            "--labels",
            str(tmp_path / "l.txt"),
            "--logdir",
            str(tmp_path / "o"),
            "--words",
            str(tmp_path / "l.txt"),
            "--limit",
            "3",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Wrote 30 rows x 4 dims" in out


# --------------------------------------------------------------------------- Parquet / Arrow


def _table(rows: int, dims: int, *, fixed: bool, seed: int = 0) -> tuple[object, np.ndarray]:
    pa = pytest.importorskip("pyarrow")
    vectors = random_vectors(rows, dims, seed=seed)
    values = pa.array(vectors.ravel())
    column = (
        pa.FixedSizeListArray.from_arrays(values, dims)
        if fixed
        else pa.ListArray.from_arrays(pa.array(np.arange(0, rows * dims + 1, dims)), values)
    )
    words = japanese_words(rows)
    table = pa.table(
        {
            "id": pa.array(np.arange(rows) * 10),
            "title": words,
            "source": [f"s{i % 3}" for i in range(rows)],
            "embedding": column,
            "score": pa.array(np.linspace(0, 1, rows)),
        }
    )
    return table, vectors


@pytest.mark.parametrize("layout", ["parquet file", "parquet dir", "feather", "arrow ipc"])
def test_tables_through_tensorboard(
    tmp_path: Path, shared_tensorboard: TensorBoard, shared_run: RunFactory, layout: str
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    feather = pytest.importorskip("pyarrow.feather")
    table, vectors = _table(3000, 12, fixed=layout != "parquet file", seed=5)
    words = japanese_words(3000)
    if layout == "parquet file":
        path = tmp_path / "t.parquet"
        pq.write_table(table, path, row_group_size=700)
    elif layout == "parquet dir":
        path = tmp_path / "parts"
        path.mkdir()
        for part, start in enumerate(range(0, 3000, 1000)):
            pq.write_table(table.slice(start, 1000), path / f"part-{part}.parquet")
    elif layout == "feather":
        path = tmp_path / "t.feather"
        feather.write_feather(table, path)
    else:
        path = tmp_path / "t.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=500)
    run_dir, run = shared_run()
    selection = RowSelection(words=[words[2999]], near=[words[1500]], near_k=5, sample=7, seed=1)
    options = SourceOptions(label_columns=["title", "id"], metadata_columns=True)
    summary = export_embeddings(path, run_dir, selection, source_options=options)
    expected = select_keys(
        words, words=[words[2999]], near=[words[1500]], near_k=5, sample=7, seed=1, vectors=vectors
    )
    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert header == ["title", "rank", "id", "source", "score", "near", "selected by"]
    assert column(header, rows, "title") == expected.keys
    assert column(header, rows, "id") == [str(i * 10) for i in expected.indices]
    assert column(header, rows, "source") == [f"s{i % 3}" for i in expected.indices]
    np.testing.assert_array_equal(tensor, vectors[expected.indices])


def test_table_without_labels_and_with_chosen_columns(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    table, vectors = _table(50, 4, fixed=True)
    pq.write_table(table, tmp_path / "t.parquet")
    rows = load_rows(
        tmp_path / "t.parquet",
        RowSelection(limit=3),
        SourceOptions(vector_column="embedding", metadata_columns=["source"]),
    )
    assert rows.key_column == "row" and rows.keys == ["0", "1", "2"]
    assert rows.columns == {"source": ["s0", "s1", "s2"]}
    np.testing.assert_array_equal(rows.matrix, vectors[:3])


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("ragged", r"vector column 'embedding' is ragged: row 2 has 3 values, expected 4"),
        ("null vector", r"vector column 'embedding' is null in row 1"),
        ("null value", r"holds null values"),
        ("missing label column", r"has no column 'name' \(label column\)"),
        ("two list columns", r"has 2 columns of number lists \(a, b\)"),
        ("not a list", r"column 'title' is string; the vector column must hold lists"),
        ("truncated", r"(not a readable parquet table|cannot be read past row)"),
    ],
)
def test_bad_tables_raise_vector_file_error_and_write_nothing(
    tmp_path: Path, case: str, pattern: str
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "bad.parquet"
    options = SourceOptions()
    if case == "ragged":
        table = pa.table({"embedding": [[1.0, 2, 3, 4], [1.0, 2, 3, 4], [1.0, 2, 3]]})
    elif case == "null vector":
        table = pa.table({"embedding": [[1.0, 2, 3, 4], None, [1.0, 2, 3, 4]]})
    elif case == "null value":
        table = pa.table({"embedding": [[1.0, 2], [None, 2.0], [1.0, 2]]})
    elif case == "missing label column":
        table, _ = _table(5, 3, fixed=True)
        options = SourceOptions(label_columns=["name"])
    elif case == "two list columns":
        table = pa.table({"a": [[1.0, 2.0], [3.0, 4.0]], "b": [[1.0, 2.0], [3.0, 4.0]]})
    elif case == "not a list":
        table, _ = _table(5, 3, fixed=True)
        options = SourceOptions(vector_column="title")
    else:
        table, _ = _table(2000, 16, fixed=True)
    pq.write_table(table, path, row_group_size=500)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    logdir = tmp_path / "logs"
    with pytest.raises(VectorFileError, match=pattern) as raised:
        export_embeddings(path, logdir, source_options=options)
    assert str(path) in str(raised.value)
    assert nothing_written(logdir)


def test_cli_exports_a_parquet_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    table, _ = _table(40, 6, fixed=False)
    pq.write_table(table, tmp_path / "t.parquet")
    args = ["export", str(tmp_path / "t.parquet"), "--logdir", str(tmp_path / "o")]
    code = main([*args, "--label-column", "title", "--label-column", "id", "--metadata-columns"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Wrote 40 rows x 6 dims" in out and "(title, rank, id, source, score)" in out
    code = main([*args, "--vector-column", "nope"])
    assert code == 2 and "has no column 'nope' (vector column)" in capsys.readouterr().err


# --------------------------------------------------------------------------- safetensors / HF

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], np.ndarray]:
    """A tiny BERT saved with save_pretrained and a WordLevel tokenizer trained here."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from gensim.test.utils import datapath

    folder = tmp_path_factory.mktemp("hf") / "tiny-bert"
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(vocab_size=600, special_tokens=SPECIAL)
    tokenizer.train([datapath("lee_background.cor")], trainer)
    config = transformers.BertConfig(
        vocab_size=tokenizer.get_vocab_size() + 7,  # padded: rows without a token
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    model = transformers.BertForMaskedLM(config)
    model.save_pretrained(folder)
    tokenizer.save(str(folder / "tokenizer.json"))
    vocab = tokenizer.get_vocab()
    tokens = [f"<row {i}>" for i in range(config.vocab_size)]
    for token, index in vocab.items():
        tokens[index] = token
    weights = model.get_input_embeddings().weight.detach().numpy().copy()
    return folder, tokens, weights


def test_model_folder_input_embedding_with_vocabulary(
    tiny_bert: tuple[Path, list[str], np.ndarray],
    shared_tensorboard: TensorBoard,
    shared_run: RunFactory,
) -> None:
    folder, tokens, weights = tiny_bert
    run_dir, run = shared_run()
    selection = RowSelection(words=["[CLS]", "Australia"], near=["government"], near_k=5, limit=8)
    summary = export_embeddings(folder, run_dir, selection)
    expected = select_keys(
        tokens,
        words=["[CLS]", "Australia"],
        near=["government"],
        near_k=5,
        limit=8,
        vectors=weights,
    )
    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert header == ["token", "rank", "special", "near", "selected by"]
    assert column(header, rows, "token") == expected.keys
    specials = column(header, rows, "special")
    assert [t for t, s in zip(expected.keys, specials, strict=True) if s == "special"] == [
        t for t in expected.keys if t in SPECIAL
    ]
    np.testing.assert_array_equal(tensor, weights[expected.indices])
    assert "word_embeddings.weight" in summary.source


@pytest.mark.parametrize("variant", ["bf16", "fp16", "sharded"])
def test_model_folder_variants(tmp_path: Path, variant: str) -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config = transformers.BertConfig(
        vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    model = transformers.BertModel(config)
    weights = model.get_input_embeddings().weight.detach()
    if variant == "bf16":
        model = model.to(torch.bfloat16)
        expected = weights.to(torch.bfloat16).float().numpy()
    elif variant == "fp16":
        model = model.half()
        expected = weights.half().float().numpy()
    else:
        expected = weights.numpy()
    shard = {"max_shard_size": "20KB"} if variant == "sharded" else {}
    model.save_pretrained(tmp_path / "m", **shard)
    if variant == "sharded":
        assert (tmp_path / "m" / "model.safetensors.index.json").is_file()
    rows = load_rows(tmp_path / "m", RowSelection(sample=50, seed=3, near=["17"], near_k=3))
    chosen = select_keys(
        [str(i) for i in range(300)], sample=50, seed=3, near=["17"], near_k=3, vectors=expected
    )
    assert rows.key_column == "row" and rows.keys == chosen.keys
    np.testing.assert_array_equal(rows.matrix, expected[chosen.indices])


def test_bf16_without_torch_reads_the_raw_bits(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from embedding_projector.readers.huggingface import SafetensorsBlocks

    weights = torch.randn(70, 6).to(torch.bfloat16)
    safetensors_torch.save_file(
        {"emb": weights, "bias": torch.zeros(6)}, tmp_path / "e.safetensors"
    )
    blocks = SafetensorsBlocks(tmp_path / "e.safetensors", "emb")
    blocks._framework = "bits"  # what happens where torch is not installed
    got = blocks.take(np.array([69, 3, 4, 40], dtype=np.int64))
    np.testing.assert_array_equal(got, weights.float().numpy()[[69, 3, 4, 40]])
    # A file's only 2-D tensor is the default; a 1-D one is refused by name.
    rows = load_rows(tmp_path / "e.safetensors", RowSelection(limit=4))
    np.testing.assert_array_equal(rows.matrix, weights.float().numpy()[:4])
    with pytest.raises(VectorFileError, match=r"tensor 'bias' has shape \(6,\) \(1-D\)"):
        load_rows(tmp_path / "e.safetensors", options=SourceOptions(tensor="bias"))


def test_bad_safetensors_and_hub_names(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "x.safetensors"
    safetensors_torch.save_file({"a": torch.zeros(4, 3, 2), "b": torch.zeros(5, 4)}, path)
    with pytest.raises(VectorFileError, match=r"tensor 'a' has shape \(4, 3, 2\) \(3-D\)"):
        load_rows(path, options=SourceOptions(tensor="a"))
    with pytest.raises(VectorFileError, match="has no tensor 'c'; its 2-D tensors: b"):
        load_rows(path, options=SourceOptions(tensor="c"))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(VectorFileError, match="truncated"):
        export_embeddings(path, tmp_path / "logs")
    assert nothing_written(tmp_path / "logs")
    with pytest.raises(VectorFileError, match="never downloads"):
        load_rows("google-bert/bert-base-uncased")


def test_cli_exports_a_model_folder_and_refuses_hub_names(
    tiny_bert: tuple[Path, list[str], np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, _, _ = tiny_bert
    code = main(["export", str(folder), "--logdir", str(tmp_path / "o"), "--limit", "12"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Wrote 12 rows x 32 dims" in out and "(token, rank, special)" in out
    code = main(["export", "bert-base-uncased", "--format", "huggingface", "--logdir", "o"])
    err = capsys.readouterr().err
    assert code == 2 and "never downloads" in err
    assert not Path("o").exists()
