"""No word lost: a row is a duplicate only when its word *equals* an earlier one.

CPython's ``hash()`` of a 1-character BMP string U+XXYY equals that of the 2-letter Latin-1
string chr(0xYY) + chr(0xXX) (both hash the same two bytes), in every process whatever the
seed: ``hash("低") == hash("NO")``. These tests write files holding both members of every such
pair in U+4E00-U+9FFF and check that every word reaches TensorBoard.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedding_projector import compare_embeddings
from embedding_projector.export import export_embeddings
from embedding_projector.readers.selection import RowSelection
from tb_server import JS_WHITESPACE, TensorBoard, column, served_snapshot
from vector_files import word2vec_bytes, write

RunFactory = Callable[[], tuple[Path, str]]

#: Repeated words planted among the colliding ones (the only true duplicates).
TRUE_DUPLICATES = ["低", "NO", "千"]


def colliding_pairs() -> list[tuple[str, str]]:
    """(CJK character, 2-letter Latin-1 string of its UTF-16 bytes), both bytes printable."""
    pairs = []
    for code in range(0x4E00, 0xA000):
        low, high = code & 0xFF, code >> 8
        if 0x21 <= low <= 0x7E and 0x21 <= high <= 0x7E:
            pairs.append((chr(code), chr(low) + chr(high)))
    return pairs


def test_the_premise_hash_is_no_fingerprint() -> None:
    pairs = colliding_pairs()
    assert len(pairs) == 4606
    assert all(hash(cjk) == hash(latin) for cjk, latin in pairs)
    assert ("低", "NO") in pairs and ("千", "CS") in pairs


def _colliding_file(
    directory: Path, binary: bool, rotation: np.ndarray | None = None
) -> tuple[Path, list[str], np.ndarray, list[str]]:
    """Both members of every pair, then the true duplicates: (path, distinct words, their
    vectors (first occurrences), file words)."""
    colliding = [word for pair in colliding_pairs() for word in pair]
    first = ["低", "NO", "千", "CS"]  # the true duplicates' first occurrences come first
    distinct = [*first, *(word for word in colliding if word not in first)]
    file_words = [*distinct[:100], *TRUE_DUPLICATES, *distinct[100:], TRUE_DUPLICATES[0]]
    vectors = np.random.default_rng(3).normal(size=(len(file_words), 4)).astype(np.float32)
    if rotation is not None:
        vectors = vectors @ rotation
    suffix = "bin" if binary else "vec"
    name = f"{'rotated' if rotation is not None else 'colliding'}.{suffix}"
    path = write(directory / name, word2vec_bytes(file_words, vectors, binary=binary))
    rows: dict[str, int] = {}
    for row, word in enumerate(file_words):
        rows.setdefault(word, row)
    return path, distinct, vectors[list(rows.values())], file_words


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
def test_export_keeps_every_colliding_word(
    shared_tensorboard: TensorBoard, shared_run: RunFactory, tmp_path: Path, binary: bool
) -> None:
    path, distinct, first_vectors, _ = _colliding_file(tmp_path, binary)
    run_dir, run = shared_run()
    summary = export_embeddings(path, run_dir, tag="words")
    assert summary.duplicates == TRUE_DUPLICATES
    tensor, header, rows = served_snapshot(shared_tensorboard, run, summary.tensor_name)
    assert column(header, rows, "word") == distinct  # one row per distinct word, file order
    assert column(header, rows, "rank") == [str(i + 1) for i in range(len(distinct))]
    np.testing.assert_array_equal(tensor, first_vectors)


def test_named_colliding_words_are_each_found(tmp_path: Path) -> None:
    path, distinct, _, _ = _colliding_file(tmp_path, binary=True)
    wanted = ["NO", "低", "CS", "千", distinct[-1]]
    summary = export_embeddings(path, tmp_path / "run", RowSelection(words=wanted, limit=6))
    labels = summary.metadata_path.read_text("utf-8").split("\n")[1:-1]
    assert [row.split("\t")[0] for row in labels] == [*wanted, *distinct[4:6]]
    assert summary.missing_words == []


def test_compare_of_the_colliding_file_with_itself_rotated_writes_both_sets(
    shared_tensorboard: TensorBoard, shared_run: RunFactory, tmp_path: Path
) -> None:
    rotation, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(4, 4)))
    path, distinct, _, _ = _colliding_file(tmp_path, binary=True)
    rotated, _, _, _ = _colliding_file(tmp_path, binary=False, rotation=rotation)
    run_dir, run = shared_run()
    summary = compare_embeddings(path, rotated, run_dir, k=2, layout=None)
    assert (summary.shared, summary.only_in_a, summary.only_in_b) == (len(distinct), [], [])
    assert summary.duplicates == (TRUE_DUPLICATES, TRUE_DUPLICATES)
    tensor, header, rows = served_snapshot(shared_tensorboard, run, summary.tensor_name)
    assert column(header, rows, "label") == distinct + distinct
    assert column(header, rows, "source") == ["a"] * len(distinct) + ["b"] * len(distinct)
    assert summary.median_displacement < 1e-4  # each word met its own rotated row
    assert len(tensor) == 2 * len(distinct)


# --------------------------------------------------------------------------- any words

#: What the word2vec formats cannot carry in a word: ASCII whitespace separates fields
#: (bytes.split), surrogates are not UTF-8. A word that is blank to JavaScript's trim() is
#: shown as "(empty)" (the projector skips blank metadata lines), so it is left out too.
_FORMAT_SEPARATORS = frozenset(" \t\n\r\x0b\x0c")
_words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=_FORMAT_SEPARATORS),
    min_size=1,
    max_size=6,
).filter(lambda word: not all(char in JS_WHITESPACE for char in word) and word != "(empty)")
_cases = itertools.count()
_vocabularies = st.lists(
    st.one_of(
        _words,
        st.sampled_from(
            ["\u304c", "\u304b\u3099", "低", "NO", "千", "CS", "🦜", "e\u0301", "é", "a\u3000b"]
        ),
    ),
    min_size=2,
    max_size=12,
    unique=True,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(words=_vocabularies, repeats=st.lists(st.integers(0, 11), max_size=4), binary=st.booleans())
def test_any_distinct_words_round_trip_through_export_and_compare(
    tmp_path: Path, words: list[str], repeats: list[int], binary: bool
) -> None:
    injected = [words[i % len(words)] for i in repeats]
    file_words = [*words, *injected]
    vectors = np.random.default_rng(len(file_words)).normal(size=(len(file_words), 3))
    directory = Path(tmp_path) / f"case{next(_cases)}"
    directory.mkdir()
    path = write(directory / "v.bin", word2vec_bytes(file_words, vectors, binary=binary))
    summary = export_embeddings(path, directory / "export")
    labels = [row.split("\t")[0] for row in summary.metadata_path.read_text("utf-8").split("\n")]
    assert labels[1:-1] == words
    assert summary.duplicates == list(dict.fromkeys(injected))
    compared = compare_embeddings(
        (vectors[: len(words)], words), path, directory / "compare", k=1, layout=None
    )
    assert compared.shared == len(words)
    assert compared.duplicates == ([], list(dict.fromkeys(injected)))


# --------------------------------------------------------------------------- normal forms

NFC_GA, NFD_GA = "\u304c", "\u304b\u3099"  # が as one code point, and as two


def test_labels_are_byte_exact_and_a_miss_names_the_other_normal_form(tmp_path: Path) -> None:
    words = [NFC_GA, "ABC", "東京"]
    vectors = np.random.default_rng(0).normal(size=(3, 3))
    path = write(tmp_path / "v.bin", word2vec_bytes(words, vectors, binary=True))
    summary = export_embeddings(
        path, tmp_path / "run", RowSelection(words=[NFD_GA, "ＡＢＣ", "東京"], limit=2)
    )
    assert summary.missing_words == [NFD_GA, "ＡＢＣ"]  # not matched by their normal forms
    assert summary.suggestions == {NFD_GA: NFC_GA, "ＡＢＣ": "ABC"}
    text = summary.describe()
    assert f"{NFD_GA} (did you mean {NFC_GA!r}? (the same text in Unicode NFC))" in text
    assert "ＡＢＣ (did you mean 'ABC'? (the same text in Unicode NFKC))" in text


def test_a_probe_label_in_another_normal_form_is_named() -> None:
    from embedding_projector.sink._followed_rows import resolve_probe_rows

    assert resolve_probe_rows("words", ("NO", "低"), 3, ["低", "NO", NFC_GA]) == (1, 0)
    with pytest.raises(ValueError, match=r"has 'が': the same text in Unicode NFC"):
        resolve_probe_rows("words", (NFD_GA,), 3, ["低", "NO", NFC_GA])


# --------------------------------------------------------------------------- messy text files


def test_glove_words_with_spaces_are_read_whole(tmp_path: Path) -> None:
    # glove.840B style: the vector is the last ``dims`` fields; the first row has such a word.
    words = [". . .", "the", "at name@domain.com", "東京\u3000タワー", "no\xa0break"]
    vectors = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    path = write(tmp_path / "glove.txt", word2vec_bytes(words, vectors, binary=False, header=None))
    summary = export_embeddings(path, tmp_path / "run")
    labels = summary.metadata_path.read_text("utf-8").split("\n")[1:-1]
    assert [row.split("\t")[0] for row in labels] == words
    assert summary.dims == 3
    np.testing.assert_allclose(np.fromfile(summary.tensor_path, "<f4").reshape(5, 3), vectors)
    assert any("contain spaces" in note for note in summary.notes)


def test_a_row_with_more_numbers_than_dims_is_still_an_error(tmp_path: Path) -> None:
    from embedding_projector.errors import VectorFileError

    text = b"2 3\nking 0.1 0.2 0.3\nqueen 0.5 0.1 0.2 0.3\n"  # mixed dimensions, no spaced word
    with pytest.raises(VectorFileError, match="row has 4 values, expected 3"):
        export_embeddings(write(tmp_path / "mixed.vec", text), tmp_path / "run")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
def test_words_split_only_on_ascii_space(tmp_path: Path, binary: bool) -> None:
    words = ["東京\u3000都", "\u3000", "a\xa0b", "x\u2003y", "ab"]
    vectors = np.random.default_rng(4).normal(size=(5, 2))
    path = write(tmp_path / "v.vec", word2vec_bytes(words, vectors, binary=binary))
    summary = export_embeddings(path, tmp_path / "run")
    labels = summary.metadata_path.read_text("utf-8").split("\n")[1:-1]
    # "\u3000" alone stays itself: its line also holds the rank, so the frontend keeps it.
    assert [row.split("\t")[:2] for row in labels] == [[w, str(i + 1)] for i, w in enumerate(words)]


# --------------------------------------------------------------------------- gensim callback


def test_gensim_callback_follows_each_colliding_probe_word(tmp_path: Path) -> None:
    pytest.importorskip("gensim")
    from gensim.models import Word2Vec

    from embedding_projector.gensim import Any2VecProjector

    probes = ["低", "NO", "千", "CS"]  # two pairs of equal hash()
    rng = np.random.default_rng(0)
    vocabulary = [*probes, *(f"w{i}" for i in range(20))]
    corpus = [list(rng.choice(vocabulary, size=12)) for _ in range(200)]
    callback = Any2VecProjector(tmp_path, limit=24, probe_rows=probes)
    Word2Vec(
        corpus,
        vector_size=8,
        min_count=1,
        epochs=2,
        workers=1,
        seed=1,
        compute_loss=True,
        callbacks=[callback],
    )
    from test_gensim_callback import events, texts

    last = texts(events(tmp_path), "words/neighbors")[2]
    for word in probes:
        assert f"| **{word}** |" in last
