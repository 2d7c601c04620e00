"""export_embeddings end to end: what a real TensorBoard serves after each kind of export."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedding_projector.errors import InvalidEmbeddingError, VectorFileError
from embedding_projector.export import ExportSummary, export_embeddings
from embedding_projector.readers import SourceOptions
from embedding_projector.readers.selection import RowSelection, select_keys
from tb_server import TensorBoard, column, served_snapshot
from vector_files import japanese_words, random_vectors, word2vec_bytes, write

gensim_models = pytest.importorskip("gensim.models")
KeyedVectors = gensim_models.KeyedVectors

RunFactory = Callable[[], tuple[Path, str]]


_SELECTION_FIELDS = set(RowSelection.__dataclass_fields__)
_SOURCE_FIELDS = set(SourceOptions.__dataclass_fields__)


def _export(source: Any, logdir: Path, **options: Any) -> ExportSummary:
    """export_embeddings with its option objects built from flat keywords (as the CLI does)."""
    selection = RowSelection(**{k: v for k, v in options.items() if k in _SELECTION_FIELDS})
    reading = SourceOptions(**{k: v for k, v in options.items() if k in _SOURCE_FIELDS})
    rest = {k: v for k, v in options.items() if k not in _SELECTION_FIELDS | _SOURCE_FIELDS}
    return export_embeddings(source, logdir, selection, source_options=reading, **rest)


def served(
    tb: TensorBoard, run: str, summary: ExportSummary
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """(tensor, header, rows) as TensorBoard serves them."""
    return served_snapshot(tb, run, summary.tensor_name)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def ja_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], np.ndarray]:
    """2,000 x 8 word2vec binary with Japanese words."""
    words, vectors = japanese_words(2000), random_vectors(2000, 8, seed=21)
    path = tmp_path_factory.mktemp("export") / "ja.bin"
    write(path, word2vec_bytes(words, vectors, binary=True))
    return path, words, vectors


def _modes(words: list[str], tmp_path: Path) -> dict[str, dict[str, Any]]:
    word_file = tmp_path / "words.txt"
    word_file.write_text("\n".join([words[1999], "存在しない", words[5], ""]) + "\n", "utf-8")
    return {
        "limit": {"limit": 50},
        "words from a file": {"words": word_file},
        "near": {"near": [words[10], words[1000], "存在しない"], "near_k": 6},
        "sample": {"sample": 40, "seed": 5},
        "combined": {
            "words": [words[1234], words[3]],
            "near": [words[3]],
            "near_k": 4,
            "limit": 8,
            "sample": 10,
            "seed": 1,
        },
    }


@pytest.mark.parametrize("mode", ["limit", "words from a file", "near", "sample", "combined"])
def test_every_selection_mode_through_tensorboard(
    shared_tensorboard: TensorBoard,
    shared_run: RunFactory,
    ja_file: tuple[Path, list[str], np.ndarray],
    tmp_path: Path,
    mode: str,
) -> None:
    path, words, vectors = ja_file
    options = _modes(words, tmp_path)[mode]
    run_dir, run = shared_run()
    summary = _export(path, run_dir, tag="ja", **options)
    expected = select_keys(words, vectors=vectors, **options)

    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert column(header, rows, "word") == expected.keys
    assert column(header, rows, "rank") == [str(i + 1) for i in expected.indices]
    np.testing.assert_array_equal(tensor, vectors[expected.indices])
    assert summary.rows == len(expected.indices) == len(rows)
    assert summary.dims == 8
    assert summary.missing_words == expected.missing
    assert summary.missing_near == expected.missing_near
    assert "count" not in header  # word2vec files have no counts
    if "near" in options:
        near = column(header, rows, "near")
        assert near == [
            r.split(":", 1)[1] if r.startswith("near:") else "" for r in expected.reasons
        ]
    if len([k for k in ("words", "near", "limit", "sample") if k in options]) > 1:
        assert set(column(header, rows, "selected by")) == {"words", "near", "limit", "sample"}
    if mode == "words from a file":
        assert summary.missing_words == ["存在しない"]
        assert column(header, rows, "word") == [words[1999], words[5]]


def test_missing_words_are_reported_never_dropped_silently(
    ja_file: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    path, words, _ = ja_file
    summary = _export(
        path, tmp_path / "run", words=[words[0], "無い", words[1], "無い"], near=["也無い"]
    )
    assert summary.missing_words == ["無い"]
    assert summary.missing_near == ["也無い"]
    assert summary.missing == ["無い", "也無い"]
    text = summary.describe()
    assert "missing words (1): 無い" in text and "missing near words (1): 也無い" in text
    assert summary.tensorboard_command == f"tensorboard --logdir {tmp_path / 'run'}"


# --------------------------------------------------------------------------- sources


def test_fasttext_binary_with_real_counts(
    shared_tensorboard: TensorBoard, shared_run: RunFactory, gensim_test_data: Path
) -> None:
    from gensim.models.fasttext import load_facebook_vectors

    path = gensim_test_data / "crime-and-punishment.bin"
    expected = load_facebook_vectors(str(path))
    run_dir, run = shared_run()
    summary = _export(path, run_dir, limit=30)
    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert header == ["word", "rank", "count"]
    assert column(header, rows, "word") == expected.index_to_key[:30]
    assert column(header, rows, "count") == [
        str(expected.get_vecattr(w, "count")) for w in expected.index_to_key[:30]
    ]
    np.testing.assert_array_equal(tensor, expected.vectors[:30])
    assert "fasttext" in summary.source


def test_supervised_fasttext_binary_fails_like_gensim(
    gensim_test_data: Path, tmp_path: Path
) -> None:
    from gensim.models.fasttext import load_facebook_vectors

    path = gensim_test_data / "pang_lee_polarity_fasttext.bin"
    with pytest.raises(NotImplementedError, match="Supervised"):
        load_facebook_vectors(str(path))  # gensim cannot read it either
    with pytest.raises(VectorFileError, match=r"Supervised fastText models are not supported"):
        _export(path, tmp_path / "logs")
    assert _projector_files(tmp_path / "logs") == []
    # Its text twin (same words and vectors) is read, by the streaming reader.
    summary = _export(
        gensim_test_data / "pang_lee_polarity_fasttext.vec",
        tmp_path / "vec",
        unicode_errors="replace",
    )
    assert (summary.rows, summary.dims) == (1694, 100)


def test_saved_keyed_vectors_without_fake_counts(
    shared_tensorboard: TensorBoard, shared_run: RunFactory, gensim_test_data: Path, tmp_path: Path
) -> None:
    kv = KeyedVectors.load_word2vec_format(str(gensim_test_data / "lee_fasttext.vec"))
    counts = [kv.get_vecattr(w, "count") for w in kv.index_to_key[:3]]
    assert counts == [len(kv), len(kv) - 1, len(kv) - 2]  # gensim's placeholders
    saved = tmp_path / "lee.kv"
    kv.save(str(saved))
    run_dir, run = shared_run()
    summary = _export(saved, run_dir, words=["night", "day"], limit=5)
    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert "count" not in header
    assert column(header, rows, "word") == ["night", "day", *kv.index_to_key[:5]]
    np.testing.assert_array_equal(tensor, kv[["night", "day", *kv.index_to_key[:5]]])


def test_trained_word2vec_model_in_memory_has_real_counts(
    shared_tensorboard: TensorBoard, shared_run: RunFactory, gensim_test_data: Path
) -> None:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    corpus = LineSentence(str(gensim_test_data / "lee_background.cor"))
    model = Word2Vec(corpus, vector_size=8, min_count=5, epochs=1, workers=1, seed=1)
    run_dir, run = shared_run()
    summary = _export(model, run_dir, near=["government"], near_k=5, limit=10)
    tensor, header, rows = served(shared_tensorboard, run, summary)
    assert header == ["word", "rank", "count", "near", "selected by"]
    words = column(header, rows, "word")
    assert words[0] == "government"
    assert column(header, rows, "count") == [str(model.wv.get_vecattr(w, "count")) for w in words]
    np.testing.assert_array_equal(tensor, model.wv[words])
    expected = [w for w, _ in model.wv.most_similar("government", topn=5)]
    assert words[1:6] == expected


def test_saved_models_and_old_fasttext_files(gensim_test_data: Path, tmp_path: Path) -> None:
    from gensim.models import Word2Vec
    from gensim.models.fasttext import load_facebook_vectors

    model = Word2Vec([["東京", "大阪", "京都", "東京"]] * 20, vector_size=4, min_count=1, seed=1)
    model.save(str(tmp_path / "w2v.model"))
    summary = _export(tmp_path / "w2v.model", tmp_path / "a")
    assert summary.columns == ["word", "rank", "count"] and summary.rows == 3
    # An old fastText binary has no magic bytes: auto-detection says how to read it.
    old = gensim_test_data / "cp852_fasttext.bin"
    with pytest.raises(VectorFileError, match="format='fasttext'"):
        _export(old, tmp_path / "b")
    summary = _export(old, tmp_path / "b", format="fasttext", limit=10)
    assert summary.rows == 10 and summary.dims == load_facebook_vectors(str(old)).vector_size
    # gensim refuses pre-3.8 fastText models: a VectorFileError, not a TypeError.
    with pytest.raises(VectorFileError, match="no longer compatible"):
        _export(gensim_test_data / "ft_kv_3.6.0.model.gz", tmp_path / "c")
    assert _projector_files(tmp_path / "c") == []


def test_matrix_labels_pair(shared_tensorboard: TensorBoard, shared_run: RunFactory) -> None:
    matrix = np.arange(40, dtype=np.float64).reshape(10, 4) / 7
    labels = [f"行{i}" for i in range(10)]
    run_dir, run = shared_run()
    summary = _export((matrix, labels), run_dir, words=["行9", "行2"], sample=3)
    tensor, header, rows = served(shared_tensorboard, run, summary)
    expected = select_keys(labels, words=["行9", "行2"], sample=3)
    assert column(header, rows, "word") == expected.keys
    np.testing.assert_allclose(tensor, matrix[expected.indices], rtol=1e-6)


def test_glove_and_compressed_text(gensim_test_data: Path, tmp_path: Path) -> None:
    import gzip

    glove = gensim_test_data / "test_glove.txt"
    gz = tmp_path / "glove.txt.gz"
    gz.write_bytes(gzip.compress(glove.read_bytes()))
    first = _export(glove, tmp_path / "a", limit=7)
    second = _export(gz, tmp_path / "b", limit=7)
    assert first.rows == second.rows == 7 and first.dims == 50
    a = np.fromfile(first.tensor_path, dtype="<f4")
    np.testing.assert_array_equal(a, np.fromfile(second.tensor_path, dtype="<f4"))


def test_doc2vec_untrained_word_vectors_warn(tmp_path: Path) -> None:
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    docs = [TaggedDocument(["a", "b", "c", "d"], [i]) for i in range(5)]
    model = Doc2Vec(docs, vector_size=4, min_count=1, epochs=1, dm=0, workers=1)
    with pytest.warns(UserWarning, match=r"dm=0 and dbow_words=0.*model\.dv"):
        summary = _export(model, tmp_path / "words")
    assert summary.rows == 4
    documents = _export(model.dv, tmp_path / "docs")  # int tags become labels
    assert documents.rows == 5


# --------------------------------------------------------------------------- limits and errors


def test_over_100000_rows_warns_once_with_how_to_narrow(tmp_path: Path) -> None:
    matrix = np.random.default_rng(0).random((100_001, 2), dtype=np.float32)
    labels = [str(i) for i in range(100_001)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = _export((matrix, labels), tmp_path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "100,001 rows selected" in messages[0] and "--limit" in messages[0]
    assert summary.rows == 100_001


def _projector_files(logdir: Path) -> list[Path]:
    return [p for p in logdir.rglob("*") if p.is_file()] if logdir.exists() else []


@pytest.mark.parametrize("case", ["truncated", "mixed dims", "not gzip", "nan", "directory"])
def test_broken_sources_write_nothing(tmp_path: Path, case: str) -> None:
    words, vectors = japanese_words(6), random_vectors(6, 3, seed=2)
    binary = word2vec_bytes(words, vectors, binary=True)
    text = word2vec_bytes(words, vectors, binary=False)
    vectors_nan = vectors.copy()
    vectors_nan[5, 1] = np.inf
    sources = {
        "truncated": write(tmp_path / "t.bin", binary[:-3]),
        "mixed dims": write(tmp_path / "m.vec", text.replace(b"\n", b" 1.0\n", 4)[:-1] + b"\n"),
        "not gzip": write(tmp_path / "n.bin.gz", binary),
        "nan": write(tmp_path / "nan.bin", word2vec_bytes(words, vectors_nan, binary=True)),
        "directory": tmp_path,
    }
    logdir = tmp_path / "logs"
    with pytest.raises(VectorFileError):
        _export(sources[case], logdir)
    assert _projector_files(logdir) == []


def test_too_few_rows_writes_nothing(
    ja_file: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    path, words, _ = ja_file
    with pytest.raises(InvalidEmbeddingError, match=r"1 row\(s\).*Not in the vocabulary: 無"):
        _export(path, tmp_path / "logs", words=[words[0], "無"])
    assert _projector_files(tmp_path / "logs") == []


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"limit": -1}, "limit must be a non-negative integer"),
        ({"sample": 1.5}, "sample must be"),
        ({"near_k": -2}, "near_k must be"),
        ({"format": "hdf5"}, "format must be one of"),
        ({"tag": ""}, "tag must be a non-empty string"),
        ({"unicode_errors": "explode"}, "unicode_errors must be one of"),
        ({"step": -1}, "step must be"),
    ],
)
def test_bad_options_fail_before_reading(
    tmp_path: Path, options: dict[str, Any], pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        _export(tmp_path / "does-not-matter.bin", tmp_path / "logs", **options)
    assert _projector_files(tmp_path / "logs") == []


def test_step_and_tag_name_the_snapshot(
    ja_file: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    path, _, _ = ja_file
    summary = _export(path, tmp_path, limit=5, tag="日本語", step=3)
    assert summary.tensor_name.startswith("日本語:000000003")
    assert (summary.step, summary.tag) == (3, "日本語")


def test_binary_flag_on_a_text_file_says_it_looks_like_text(tmp_path: Path) -> None:
    words, vectors = japanese_words(5), random_vectors(5, 40, seed=1)
    path = write(tmp_path / "v.txt", word2vec_bytes(words, vectors, binary=False))
    with pytest.raises(VectorFileError, match="looks like a word2vec text file") as raised:
        _export(path, tmp_path / "logs", binary=True)
    assert "header" not in str(raised.value)
    assert _projector_files(tmp_path / "logs") == []


@pytest.mark.parametrize("source_kind", ["file", "memory"])
def test_missing_words_suggest_their_case_variant(tmp_path: Path, source_kind: str) -> None:
    words = ["the", "australia", "King", "of", "paris"]
    vectors = random_vectors(5, 4, seed=3)
    source: Any = (vectors, words)
    if source_kind == "file":
        source = write(tmp_path / "v.bin", word2vec_bytes(words, vectors, binary=True))
    summary = _export(
        source, tmp_path / "logs", words=["Paris", "nowhere"], near=["Australia", "KING"], limit=2
    )
    assert summary.missing_words == ["Paris", "nowhere"]
    assert summary.missing_near == ["Australia", "KING"]
    assert summary.suggestions == {"Paris": "paris", "Australia": "australia", "KING": "King"}
    report = summary.describe()
    assert "missing words (2): Paris (did you mean 'paris'?), nowhere" in report
    assert "Australia (did you mean 'australia'?), KING (did you mean 'King'?)" in report
    with pytest.raises(InvalidEmbeddingError, match=r"Australia \(did you mean 'australia'\?\)"):
        _export(source, tmp_path / "none", near=["Australia"])


@pytest.mark.usefixtures("no_refresh_grace")
def test_export_leaves_only_the_run_behind(tmp_path: Path) -> None:
    """No refresh run (a ghost in every dashboard's run list) and no lock file after a one-shot."""
    from embedding_projector._format import LOCK_FILENAME, REFRESH_DIRNAME

    run = tmp_path / "run"
    export_embeddings((random_vectors(50, 8), [f"w{i}" for i in range(50)]), run)
    assert not (run / REFRESH_DIRNAME).exists()
    assert not (run / LOCK_FILENAME).exists()
    assert (run / "projector_config.pbtxt").is_file()
