"""The streaming word2vec/GloVe reader: same rows as gensim's loaders, and the file mess."""

from __future__ import annotations

import gc
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedding_projector.errors import VectorFileError
from embedding_projector.readers import (
    VectorFileReader,
    detect_format,
    inspect_vector_file,
    select_from_file,
)
from embedding_projector.readers.selection import select_keys
from vector_files import japanese_words, random_vectors, word2vec_bytes, write

gensim_kv = pytest.importorskip("gensim.models.keyedvectors")
KeyedVectors = gensim_kv.KeyedVectors


def gensim_load(path: Path, **kwargs: object) -> Any:
    with warnings.catch_warnings():
        # gensim's no_header path leaves its first file handle open.
        warnings.simplefilter("ignore", ResourceWarning)
        loaded = KeyedVectors.load_word2vec_format(str(path), **kwargs)
        gc.collect()
    return loaded


# --------------------------------------------------------------------------- gensim's files


@pytest.mark.parametrize(
    ("name", "gensim_kwargs"),
    [
        ("lee_fasttext.vec", {}),
        ("crime-and-punishment.vec", {}),
        ("pang_lee_polarity_fasttext.vec", {"unicode_errors": "replace"}),
        ("test_glove.txt", {"no_header": True}),
        ("euclidean_vectors.bin", {"binary": True}),
        ("high_precision.kv.bin", {"binary": True}),
        ("high_precision.kv.txt", {}),
    ],
)
def test_gensim_shipped_files_read_like_gensim(
    gensim_test_data: Path, name: str, gensim_kwargs: dict[str, object]
) -> None:
    path = gensim_test_data / name
    expected = gensim_load(path, **gensim_kwargs)
    errors = str(gensim_kwargs.get("unicode_errors", "strict"))
    rows = select_from_file(path, unicode_errors=errors)
    assert rows.keys == list(expected.index_to_key)
    np.testing.assert_array_equal(rows.matrix, expected.vectors)
    assert rows.ranks == list(range(len(expected)))
    assert rows.rows_in_source == len(expected)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("crime-and-punishment.bin", "fasttext"),
        ("pang_lee_polarity_fasttext.bin", "fasttext"),
        ("lee_fasttext.vec", "word2vec"),
        ("euclidean_vectors.bin", "word2vec"),
        ("high_precision.kv.bin", "word2vec"),
        ("test_glove.txt", "glove"),
        ("ft_kv_3.6.0.model.gz", "keyedvectors"),
    ],
)
def test_detect_format_from_content(gensim_test_data: Path, name: str, kind: str) -> None:
    assert detect_format(gensim_test_data / name) == kind


def test_binary_and_text_sniffed_whatever_the_name(tmp_path: Path) -> None:
    words, vectors = japanese_words(5), random_vectors(5, 4)
    as_text = write(tmp_path / "really-text.bin", word2vec_bytes(words, vectors, binary=False))
    as_binary = write(tmp_path / "really-binary.txt", word2vec_bytes(words, vectors, binary=True))
    assert inspect_vector_file(as_text).binary is False
    assert inspect_vector_file(as_binary).binary is True
    for path in (as_text, as_binary):
        np.testing.assert_allclose(select_from_file(path).matrix, vectors, rtol=1e-6)


# --------------------------------------------------------------------------- generated files


@pytest.fixture(scope="module")
def japanese_binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], np.ndarray]:
    """3,000 x 12 word2vec binary with Japanese words, written by gensim itself."""
    words = japanese_words(3000)
    vectors = random_vectors(3000, 12, seed=1)
    kv = KeyedVectors(12)
    kv.add_vectors(words, vectors)
    path = tmp_path_factory.mktemp("ja") / "ja.bin"
    kv.save_word2vec_format(str(path), binary=True)
    return path, words, vectors


@pytest.mark.parametrize("buffer_size", [5, 16, 1024])
@pytest.mark.parametrize("compression", [None, "gzip", "bz2"])
def test_binary_reader_any_buffer_size(
    tmp_path: Path, buffer_size: int, compression: str | None
) -> None:
    # Like gensim's test of _load_word2vec_format with binary_chunk_size 5, 16, 1024.
    words = japanese_words(40)
    vectors = random_vectors(40, 7, seed=2)
    suffix = {None: "", "gzip": ".gz", "bz2": ".bz2"}[compression]
    path = write(
        tmp_path / f"v.bin{suffix}", word2vec_bytes(words, vectors, binary=True), compression
    )
    rows = select_from_file(path, buffer_size=buffer_size)
    assert rows.keys == words
    np.testing.assert_array_equal(rows.matrix, vectors)
    expected = gensim_load(path, binary=True)
    assert list(expected.index_to_key) == rows.keys


@pytest.mark.parametrize("buffer_size", [5, 16, 1024])
def test_binary_newline_after_each_vector(tmp_path: Path, buffer_size: int) -> None:
    # The original word2vec.c writes "\n" after every vector; gensim strips it from the word.
    words, vectors = japanese_words(10), random_vectors(10, 3, seed=3)
    path = write(
        tmp_path / "c.bin", word2vec_bytes(words, vectors, binary=True, newline_after_vector=True)
    )
    rows = select_from_file(path, buffer_size=buffer_size)
    assert rows.keys == words == list(gensim_load(path, binary=True).index_to_key)
    np.testing.assert_array_equal(rows.matrix, vectors)


def test_text_crlf_trailing_spaces_and_blank_lines(tmp_path: Path) -> None:
    words, vectors = japanese_words(6), random_vectors(6, 4, seed=4)
    data = word2vec_bytes(words, vectors, binary=False, line_end="\r\n", trailing_space=True)
    path = write(tmp_path / "crlf.vec", data + b"\r\n\r\n")
    rows = select_from_file(path)
    assert rows.keys == words
    np.testing.assert_allclose(rows.matrix, vectors, rtol=1e-6)
    assert rows.notes == []


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("header_rows", [3, 50])
def test_header_count_disagreeing_with_body_is_tolerated(
    tmp_path: Path, binary: bool, header_rows: int, caplog: pytest.LogCaptureFixture
) -> None:
    words, vectors = japanese_words(10), random_vectors(10, 4, seed=5)
    path = write(
        tmp_path / "h.bin",
        word2vec_bytes(words, vectors, binary=binary, header=f"{header_rows} 4"),
    )
    with caplog.at_level(logging.WARNING, logger="embedding_projector.readers"):
        rows = select_from_file(path)
    assert rows.keys == words  # the body wins
    assert rows.header_rows == header_rows
    assert any(f"header announces {header_rows} rows, the file holds 10" in n for n in rows.notes)
    assert "header announces" in caplog.text


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("buffer_size", [16, 1 << 20])
@pytest.mark.parametrize("header_rows", [3, 8, 11, 50])
def test_limit_alone_whatever_the_header_announces(
    tmp_path: Path, binary: bool, header_rows: int, buffer_size: int
) -> None:
    # With limit alone the top rows are written straight into the result, sized by the
    # header: a header that announces fewer rows than the file holds must not cut them.
    words, vectors = japanese_words(10), random_vectors(11, 4, seed=5)
    file_words = [*words[:6], words[2], *words[6:]]  # a duplicate among the top rows
    path = write(
        tmp_path / "h.bin",
        word2vec_bytes(file_words, vectors, binary=binary, header=f"{header_rows} 4"),
    )
    rows = select_from_file(path, limit=8, buffer_size=buffer_size)
    assert rows.keys == words[:8]
    expected = np.concatenate([vectors[:6], vectors[7:9]])
    np.testing.assert_array_equal(rows.matrix, expected)
    assert rows.ranks == list(range(8))
    assert rows.duplicates == [words[2]]
    assert rows.matrix.flags.c_contiguous
    bad = vectors.copy()
    bad[4, 1] = np.nan
    write(path, word2vec_bytes(file_words, bad, binary=binary, header=f"{header_rows} 4"))
    with pytest.raises(VectorFileError, match=f"vector of '{words[4]}' contains NaN"):
        select_from_file(path, limit=8, buffer_size=buffer_size)


def test_duplicates_reported_first_kept_like_gensim(tmp_path: Path) -> None:
    words = ["東京", "大阪", "東京", "京都", "大阪"]
    vectors = random_vectors(5, 3, seed=6)
    path = write(tmp_path / "dup.bin", word2vec_bytes(words, vectors, binary=True))
    rows = select_from_file(path)
    expected = gensim_load(path, binary=True)
    # gensim 4.4 keeps its preallocated slots for the dropped duplicates: None keys, zero rows.
    assert list(expected.index_to_key) == ["東京", "大阪", "京都", None, None]
    assert rows.keys == list(expected.index_to_key)[:3]
    np.testing.assert_array_equal(rows.matrix, expected.vectors[:3])
    assert rows.duplicates == ["東京", "大阪"]
    assert rows.rows_in_source == 3
    # Named selection finds the first occurrence; ranks skip duplicates like gensim's indices.
    named = select_from_file(path, words=["京都", "東京"])
    assert named.ranks == [2, 0]
    np.testing.assert_array_equal(named.matrix, vectors[[3, 0]])


@pytest.mark.parametrize("binary", [True, False])
def test_invalid_utf8_in_words(tmp_path: Path, binary: bool) -> None:
    words = ["ok", "bad", "fine"]
    raw = [b"ok", "東京".encode()[:-1], b"fine"]  # a multibyte character cut in half
    vectors = random_vectors(3, 4, seed=7)
    path = write(
        tmp_path / "u.bin",
        word2vec_bytes(words, vectors, binary=binary, encoded_words=raw),
    )
    with pytest.raises(VectorFileError, match=r"not valid utf-8.*unicode_errors") as info:
        select_from_file(path)
    assert info.value.row == 1
    assert info.value.path == str(path)
    for errors in ("replace", "ignore"):
        rows = select_from_file(path, unicode_errors=errors)
        expected = gensim_load(path, binary=binary, unicode_errors=errors)
        assert rows.keys == list(expected.index_to_key)
        np.testing.assert_allclose(rows.matrix, expected.vectors, rtol=1e-6)


def test_limit_reads_only_the_first_rows(tmp_path: Path) -> None:
    words, vectors = japanese_words(200), random_vectors(200, 8, seed=8)
    data = word2vec_bytes(words, vectors, binary=True)
    path = write(tmp_path / "cut.bin", data[: len(data) - 10])  # damaged at the very end
    with pytest.raises(VectorFileError, match="truncated"):
        select_from_file(path)
    seen: list[tuple[int, int | None]] = []
    rows = select_from_file(
        path, limit=20, buffer_size=1024, progress=lambda done, total: seen.append((done, total))
    )
    assert rows.keys == words[:20]
    np.testing.assert_array_equal(rows.matrix, vectors[:20])
    assert rows.rows_in_source is None  # not read to the end
    assert seen and seen[-1][0] < path.stat().st_size / 2  # stopped early


# --------------------------------------------------------------------------- selection


def _selection_cases(words: list[str]) -> dict[str, dict[str, object]]:
    return {
        "limit": {"limit": 25},
        "words": {"words": [words[100], "ない言葉", words[2500]]},
        "near": {"near": [words[7], words[2999], "ない言葉"], "near_k": 7},
        "sample": {"sample": 30, "seed": 3},
        "all combined": {
            "words": [words[1500]],
            "near": [words[100]],
            "near_k": 5,
            "limit": 10,
            "sample": 20,
            "seed": 9,
        },
        "sample everything": {"limit": 0, "sample": 3000},
    }


@pytest.mark.parametrize(
    "case", ["limit", "words", "near", "sample", "all combined", "sample everything"]
)
@pytest.mark.parametrize("buffer_size", [1024, 1 << 20])
def test_streamed_selection_equals_selection_on_loaded_vectors(
    japanese_binary: tuple[Path, list[str], np.ndarray], case: str, buffer_size: int
) -> None:
    path, words, vectors = japanese_binary
    options: dict[str, Any] = _selection_cases(words)[case]
    loaded = gensim_load(path, binary=True)
    expected = select_keys(list(loaded.index_to_key), vectors=loaded.vectors, **options)
    rows = select_from_file(path, buffer_size=buffer_size, **options)
    assert rows.keys == expected.keys
    assert rows.ranks == expected.indices
    assert rows.reasons == expected.reasons
    assert rows.missing == expected.missing
    assert rows.missing_near == expected.missing_near
    np.testing.assert_array_equal(rows.matrix, vectors[expected.indices])


def test_near_returns_true_cosine_neighbours(
    japanese_binary: tuple[Path, list[str], np.ndarray],
) -> None:
    path, words, vectors = japanese_binary
    query = words[42]
    rows = select_from_file(path, near=[query], near_k=10, buffer_size=2048)
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = normed @ normed[42]
    similarity[42] = -np.inf
    best = np.argsort(-similarity, kind="stable")[:10]
    assert rows.keys == [query] + [words[i] for i in best]
    assert rows.reasons == [f"near:{query}"] * 11


def test_words_select_stops_when_all_found(
    japanese_binary: tuple[Path, list[str], np.ndarray],
) -> None:
    path, words, _ = japanese_binary
    rows = select_from_file(path, words=[words[3], words[1]], buffer_size=1024)
    assert rows.keys == [words[3], words[1]]
    assert rows.rows_in_source is None


# --------------------------------------------------------------------------- broken files


def _broken_files(tmp_path: Path) -> dict[str, tuple[Path, str, int | None]]:
    """name -> (path, message pattern, row where the problem is or None)."""
    words, vectors = japanese_words(5), random_vectors(5, 4, seed=10)
    binary = word2vec_bytes(words, vectors, binary=True)
    text = word2vec_bytes(words, vectors, binary=False)
    lines = text.split(b"\n")
    mixed = b"\n".join([*lines[:3], lines[3] + b" 0.5", *lines[4:]])
    short_line = b"\n".join([*lines[:4], lines[4].rsplit(b" ", 1)[0], *lines[5:]])
    not_number = b"\n".join([*lines[:2], lines[2].rsplit(b" ", 1)[0] + b" abc", *lines[3:]])
    (tmp_path / "a-directory.bin").mkdir()
    return {
        "truncated binary": (
            write(tmp_path / "trunc.bin", binary[:-7]),
            r"ends in the middle of a row.*truncated",
            4,
        ),
        "truncated text": (
            write(tmp_path / "trunc.vec", text[: text.rstrip().rfind(b" ") + 1]),
            r"row has 3 values",
            4,
        ),
        "mixed dims": (write(tmp_path / "mixed.vec", mixed), r"row has 5 values, expected 4", 2),
        "short text line": (write(tmp_path / "short.vec", short_line), r"row has 3 values", 3),
        "not a number": (write(tmp_path / "nan.vec", not_number), r"not a number", 1),
        "empty": (write(tmp_path / "empty.vec", b""), r"is empty", None),
        "header only": (write(tmp_path / "header.vec", b"0 4\n"), r"holds no vectors", None),
        "directory": (tmp_path / "a-directory.bin", r"is a directory", None),
        "missing": (tmp_path / "no-such-file.bin", r"no such file", None),
        "gz not gzip": (write(tmp_path / "plain.vec.gz", text), r"not gzip", None),
        "truncated gzip": (
            write(tmp_path / "cut.vec.gz", __import__("gzip").compress(text)[:-30]),
            r"compressed data is truncated or corrupt",
            None,
        ),
        "glove garbage": (
            write(tmp_path / "garbage.txt", b"\x00\x01\x02 not vectors\n"),
            r"neither a word2vec file",
            0,
        ),
        "nan in binary": (
            write(
                tmp_path / "nan.bin",
                word2vec_bytes(words, np.where(np.eye(5, 4) > 0, np.nan, vectors), binary=True),
            ),
            r"NaN or Inf",
            0,
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "truncated binary",
        "truncated text",
        "mixed dims",
        "short text line",
        "not a number",
        "empty",
        "header only",
        "directory",
        "missing",
        "gz not gzip",
        "truncated gzip",
        "glove garbage",
        "nan in binary",
    ],
)
def test_broken_files_raise_with_file_and_position(tmp_path: Path, case: str) -> None:
    path, pattern, row = _broken_files(tmp_path)[case]
    with pytest.raises(VectorFileError, match=pattern) as info:
        select_from_file(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert info.value.row == row
    if row is not None:
        assert info.value.offset is not None and f"row {row}" in str(info.value)


def test_vector_file_error_pickles() -> None:
    import pickle

    error = VectorFileError("bad", "f.bin", row=3, offset=99)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.row, copy.offset, str(copy)) == ("f.bin", 3, 99, str(error))


def test_reader_blocks_give_offsets(tmp_path: Path) -> None:
    words, vectors = japanese_words(4), random_vectors(4, 2, seed=11)
    path = write(tmp_path / "o.bin", word2vec_bytes(words, vectors, binary=True))
    blocks = list(VectorFileReader(path, buffer_size=16).blocks())
    offsets = [offset for block in blocks for offset in block.offsets]
    data = path.read_bytes()
    for word, offset in zip(words, offsets, strict=True):
        assert data[offset:].startswith(word.encode() + b" ")


# --------------------------------------------------------------------------- property


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    rows=st.integers(min_value=2, max_value=60),
    binary=st.booleans(),
    buffer_size=st.sampled_from([7, 64, 4096]),
)
def test_streaming_matches_select_keys_on_deduplicated_vocabulary(
    tmp_path: Path, data: st.DataObject, rows: int, binary: bool, buffer_size: int
) -> None:
    vocabulary = japanese_words(rows)
    # Some rows repeat an earlier word (the first one wins, like gensim).
    words = [
        vocabulary[data.draw(st.integers(0, i - 1))]
        if i and data.draw(st.booleans()) and i % 5 == 0
        else vocabulary[i]
        for i in range(rows)
    ]
    vectors = random_vectors(rows, 3, seed=rows)
    path = write(tmp_path / f"p-{rows}-{binary}.bin", word2vec_bytes(words, vectors, binary=binary))
    first = {}
    for i, w in enumerate(words):
        first.setdefault(w, i)
    keys = list(first)
    matrix = vectors[list(first.values())]
    pool = [*keys, "無い"]
    options: dict[str, Any] = {}
    if data.draw(st.booleans()):
        options["limit"] = data.draw(st.integers(0, rows + 2))
    if data.draw(st.booleans()):
        options["words"] = data.draw(st.lists(st.sampled_from(pool), max_size=6))
    if data.draw(st.booleans()):
        options["near"] = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        options["near_k"] = data.draw(st.integers(0, 5))
    if data.draw(st.booleans()):
        options["sample"] = data.draw(st.integers(0, rows))
        options["seed"] = data.draw(st.integers(0, 3))
    expected = select_keys(keys, vectors=matrix, **options)
    got = select_from_file(path, buffer_size=buffer_size, **options)
    assert got.keys == expected.keys
    assert got.ranks == expected.indices
    assert got.reasons == expected.reasons
    assert got.missing == expected.missing and got.missing_near == expected.missing_near
    np.testing.assert_allclose(got.matrix, matrix[expected.indices], rtol=1e-6)
    if got.rows_in_source is None:  # stopped early: everything asked for was found
        assert not got.missing
        return
    assert got.rows_in_source == len(keys)
    assert got.duplicates == list(dict.fromkeys(w for i, w in enumerate(words) if first[w] != i))


@pytest.mark.parametrize("binary", [True, False])
def test_near_query_that_is_duplicated_uses_its_first_row(tmp_path: Path, binary: bool) -> None:
    words = ["東京", "大阪", "東京", "京都"]
    vectors = random_vectors(4, 3, seed=12)
    path = write(tmp_path / "q.bin", word2vec_bytes(words, vectors, binary=binary))
    rows = select_from_file(path, near=["東京"], near_k=2)
    assert rows.keys[0] == "東京" and rows.ranks[0] == 0
    np.testing.assert_allclose(rows.matrix[0], vectors[0], rtol=1e-6)
    assert sorted(rows.keys[1:]) == ["京都", "大阪"]
    assert rows.duplicates == ["東京"]


@pytest.mark.parametrize("batch_rows", [1, 7, 500])
def test_near_search_batches_do_not_change_the_result(
    japanese_binary: tuple[Path, list[str], np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    batch_rows: int,
) -> None:
    import embedding_projector.readers.streaming as streaming

    path, words, vectors = japanese_binary
    monkeypatch.setattr(streaming, "NEAR_BATCH_ROWS", batch_rows)
    options: dict[str, Any] = _selection_cases(words)["all combined"] | {"near_k": 9}
    expected = select_keys(words, vectors=vectors, **options)
    rows = select_from_file(path, buffer_size=4096, **options)
    assert rows.keys == expected.keys and rows.ranks == expected.indices
    np.testing.assert_array_equal(rows.matrix, vectors[expected.indices])
