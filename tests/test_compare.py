"""compare_embeddings and `embedding-projector compare`: two embeddings in one aligned view."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import embedding_projector as ep
from embedding_projector import ProjectorWriter, compare_embeddings
from embedding_projector.cli import COMPARE_FLAG_TO_PARAMETER, build_parser, main
from embedding_projector.compare import CHANGES_FILENAME, MAX_SHARED_ROWS
from embedding_projector.errors import InvalidEmbeddingError
from embedding_projector.insight.layouts import pca_layouts
from embedding_projector.readers.selection import RowSelection
from tb_server import TensorBoard, parse_metadata, state_coordinates
from vector_files import word2vec_bytes, write

RunFactory = Callable[[], tuple[Path, str]]
HEADER = ["label", "source", "overlap@10", "change rank"]


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def clustered(rows: int, dims: int, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Rows in tight clusters around random centres, all shifted one way (like word vectors)."""
    centres = rng.normal(size=(clusters, dims))
    members = centres[np.arange(rows) % clusters] + 0.05 * rng.normal(size=(rows, dims))
    return (members + 3.0).astype(np.float32)  # a shared offset: raw cosines are all high


@pytest.fixture(scope="module")
def planted() -> dict[str, Any]:
    """B = A rotated, except 30 known words moved into other clusters."""
    rng = np.random.default_rng(16)
    rows, dims, clusters = 2000, 16, 100
    a = clustered(rows, dims, clusters, rng)
    labels = [f"w{i:04d}" for i in range(rows)]
    moved = sorted(rng.choice(rows, size=30, replace=False).tolist())
    b = a.copy()
    for i in moved:  # into the cluster of a row 50 clusters away
        b[i] = a[(i + 50) % rows] + 0.05 * rng.normal(size=dims).astype(np.float32)
    rotation = random_rotation(dims, rng)
    b = (b @ rotation).astype(np.float32)
    return {"a": a, "b": b, "labels": labels, "moved": [labels[i] for i in moved]}


def served(tb: TensorBoard, run: str, name: str) -> tuple[np.ndarray, list[str], list[list[str]]]:
    tb.wait_for_run(run)
    tensor = tb.tensor(run, name)
    header, rows = parse_metadata(tb.metadata(run, name))
    assert header is not None
    return tensor, header, rows


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_planted_change_through_tensorboard(
    shared_tensorboard: TensorBoard, shared_run: RunFactory, planted: dict[str, Any]
) -> None:
    run_dir, run = shared_run()
    a, b, labels, moved = planted["a"], planted["b"], planted["labels"], planted["moved"]
    summary = compare_embeddings(
        (a, labels), (b, labels), run_dir, names=("before", "after"), top=40
    )
    assert summary.shared == summary.written == 2000
    assert summary.only_in_a == summary.only_in_b == []
    # The moved words are exactly the top of the change table.
    assert {word.label for word in summary.most_changed[:30]} == set(moved)
    assert all(word.overlap <= 0.2 for word in summary.most_changed[:30])
    assert all(word.overlap >= 0.7 for word in summary.most_changed[30:])

    tensor, header, rows = served(shared_tensorboard, run, summary.tensor_name)
    assert header == HEADER
    assert tensor.shape == (4000, 16)
    assert [row[0] for row in rows] == labels + labels
    assert [row[1] for row in rows] == ["before"] * 2000 + ["after"] * 2000
    np.testing.assert_array_equal(tensor[:2000], a)  # A as it is
    unmoved = [i for i, label in enumerate(labels) if label not in set(moved)]
    # The rotation is undone: B's unmoved words sit where A's are.
    np.testing.assert_allclose(tensor[2000:][unmoved], a[unmoved], atol=2e-4)
    assert (
        np.linalg.norm(
            tensor[2000:][moved_rows(labels, moved)] - a[moved_rows(labels, moved)], axis=1
        ).min()
        > 0.5
    )
    # Metadata columns agree with the summary.
    by_label = {row[0]: row for row in rows[:2000]}
    for word in summary.most_changed:
        assert by_label[word.label][3] == str(word.rank)
        assert by_label[word.label][2] == f"{word.overlap:.2f}"
    assert summary.median_displacement < 1e-5
    # The TEXT table and the scalars, as TensorBoard's own plugins serve them.
    text = shared_tensorboard.wait_for(
        lambda: json.loads(
            shared_tensorboard.get("/data/plugin/text/text", run=run, tag="compare/most_changed")
        )
    )
    assert f"<strong>{summary.most_changed[0].label}</strong>" in text[0]["text"]
    scalar = json.loads(
        shared_tensorboard.get(
            "/data/plugin/scalars/scalars", run=run, tag="compare/mean_overlap_at_k"
        )
    )
    assert scalar[0][2] == pytest.approx(summary.mean_overlap, abs=1e-6)
    check_served_states(shared_tensorboard, run, summary.tensor_name, labels, moved)


def check_served_states(
    tb: TensorBoard, run: str, name: str, labels: list[str], moved: list[str]
) -> None:
    """Aligned PCA of both sets, then each source alone, as TensorBoard serves them."""
    rows = len(labels)
    states = tb.bookmarks(run, name)
    assert [state["label"] for state in states] == [
        "before and after aligned (PCA) · 2-D",
        "before and after aligned (PCA) · 3-D",
        "before only · aligned PCA · 2-D",
        "after only · aligned PCA · 2-D",
    ]
    assert all(state["selectedColorOptionName"] == "source" for state in states)
    assert all(state["selectedLabelOption"] == "label" for state in states)
    assert all(state["dataSetDimensions"] == [2 * rows, 16] for state in states)
    unmoved = [i for i, label in enumerate(labels) if label not in set(moved)]
    # One PCA basis for both sets: the layouts module's PCA of the served combined tensor.
    expected = pca_layouts(tb.tensor(run, name))
    for state, layout in zip(states[:2], expected, strict=True):
        assert state["filteredPoints"] is None  # one entry per row of the combined tensor
        coords = state_coordinates(state)
        assert coords.shape == (2 * rows, len(state["pcaComponentDimensions"]))
        np.testing.assert_allclose(coords, layout.coordinates, atol=1e-5)
        apart = np.linalg.norm(coords[:rows] - coords[rows:], axis=1)
        assert apart[unmoved].max() < 1e-4  # an unmoved word's two points coincide
        assert apart[moved_rows(labels, moved)].min() > 0.2  # a moved word's are far apart
        assert np.median(apart[moved_rows(labels, moved)]) > 0.5
    flat = state_coordinates(states[0])
    for state, wanted in zip(states[2:], (range(rows), range(rows, 2 * rows)), strict=True):
        # The page filters, then copies projections[i] onto the i-th filtered point.
        assert state["filteredPoints"] == list(wanted)
        np.testing.assert_array_equal(state_coordinates(state), flat[list(wanted)])


def moved_rows(labels: list[str], moved: list[str]) -> list[int]:
    index = {label: i for i, label in enumerate(labels)}
    return [index[label] for label in moved]


def test_change_table_tsv_text_and_scalars(tmp_path: Path, planted: dict[str, Any]) -> None:
    a, b, labels, moved = planted["a"], planted["b"], planted["labels"], planted["moved"]
    summary = compare_embeddings((a, labels), (b, labels), tmp_path, top=35, k=10)
    lines = (tmp_path / CHANGES_FILENAME).read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == [
        "rank", "label", "overlap@10", "displacement", "neighbours in a", "neighbours in b",
    ]  # fmt: skip
    assert len(lines) == 36
    first = lines[1].split("\t")
    assert first[0] == "1" and first[1] in moved
    neighbours_a, neighbours_b = first[4].split(", "), first[5].split(", ")
    assert len(neighbours_a) == len(neighbours_b) == 10
    assert not set(neighbours_a) & set(neighbours_b)  # moved into another cluster
    assert summary.changes_path == tmp_path / CHANGES_FILENAME
    assert not list(tmp_path.glob(".*.tmp"))

    acc = events(tmp_path)
    scalars = {tag: acc.Scalars(tag)[0].value for tag in acc.Tags()["scalars"]}
    assert scalars["compare/mean_overlap_at_k"] == pytest.approx(summary.mean_overlap, abs=1e-6)
    assert scalars["compare/median_aligned_displacement"] == pytest.approx(
        summary.median_displacement, abs=1e-6
    )
    text_events = acc.Tensors("compare/most_changed")
    text = text_events[0].tensor_proto.string_val[0].decode("utf-8")
    assert "| rank | word | overlap@10 |" in text
    assert f"**{summary.most_changed[0].label}**" in text
    report = summary.describe()
    assert "shared labels: 2,000" in report
    assert summary.most_changed[0].label in report
    assert summary.tensorboard_command in report


@pytest.mark.slow
def test_two_word2vec_seeds(tmp_path: Path) -> None:
    word2vec = pytest.importorskip("gensim.models.word2vec")
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        corpus = [simple_preprocess(line) for line in handle]
    options = {"vector_size": 32, "min_count": 5, "workers": 1, "epochs": 30, "window": 3}
    first = word2vec.Word2Vec(corpus, seed=1, **options)
    second = word2vec.Word2Vec(corpus, seed=2, **options)
    summary = compare_embeddings(first, second, tmp_path, names=("seed 1", "seed 2"))
    assert summary.shared == len(first.wv) == len(second.wv)
    chance = 10 / (summary.shared - 1)
    assert 20 * chance < summary.mean_overlap < 0.95  # clearly related, not identical
    assert 0 < summary.median_displacement < 0.5
    assert summary.most_changed[0].overlap < summary.mean_overlap
    # Frequent words settle better than rare ones.
    frequent = compare_embeddings(
        first, second, tmp_path / "top", selection=RowSelection(limit=300)
    )
    assert summary.mean_overlap < frequent.mean_overlap < 0.95


def test_different_dimensions_are_projected_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a = clustered(600, 8, 30, rng)
    embed, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    b = (a @ embed[:8]).astype(np.float32)  # the same points inside a 12-dim space
    labels = [f"w{i}" for i in range(600)]
    summary = compare_embeddings((a, labels), (b, labels), tmp_path)
    assert summary.dims == (8, 12)
    assert "'b' (12 dims) projected onto its top 8 principal components" in summary.alignment
    assert summary.mean_overlap == pytest.approx(1.0)
    assert summary.median_displacement < 1e-5
    written = np.fromfile(summary.tensor_path, dtype="<f4").reshape(1200, 8)
    np.testing.assert_array_equal(written[:600], a)


def test_shared_only_in_and_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(40, 6)).astype(np.float32)
    labels_a = [f"w{i}" for i in range(40)]
    labels_b = [f"w{i}" for i in range(10, 40)] + ["new1", "new2"]
    b = np.vstack([a[10:], rng.normal(size=(2, 6))]).astype(np.float32)[::-1]
    summary = compare_embeddings((a, labels_a), (b, labels_b[::-1]), tmp_path, k=3)
    assert summary.shared == 30
    assert summary.only_in_a == labels_a[:10]
    assert summary.only_in_b == ["new2", "new1"]
    assert "only in 'a': 10 (w0, w1," in summary.describe()
    tensor = np.fromfile(summary.tensor_path, dtype="<f4").reshape(60, 6)
    np.testing.assert_allclose(tensor[30:], a[10:], atol=1e-5)  # matched by label, not position


def test_shared_rows_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import embedding_projector.compare as compare_module

    monkeypatch.setattr(compare_module, "MAX_SHARED_ROWS", 50)
    rng = np.random.default_rng(6)
    a = rng.normal(size=(80, 4)).astype(np.float32)
    labels = [f"w{i}" for i in range(80)]
    summary = compare_embeddings((a, labels), (a, labels), tmp_path, k=3)
    assert (summary.shared, summary.written) == (80, 50)
    assert any("kept the first 50" in note for note in summary.notes)
    assert MAX_SHARED_ROWS == 50_000


def _matrix(rows: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    return (
        np.random.default_rng(seed).normal(size=(rows, 4)).astype(np.float32),
        [f"w{i}" for i in range(rows)],
    )


def _bad_inputs() -> dict[str, tuple[Any, Any, str]]:
    good = _matrix()
    nan = good[0].copy()
    nan[3, 1] = np.nan
    return {
        "no shared labels": (good, (good[0], [f"x{i}" for i in range(20)]), "share 0 label"),
        "empty source": (good, (np.zeros((0, 4)), []), "source 'b' .* is empty"),
        "NaN row": (good, (nan, good[1]), r"source 'b' .*1 row\(s\) with NaN.*'w3'"),
        "bad names": (good, good, "names must be"),
    }


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_inputs_name_the_source_and_write_nothing(tmp_path: Path, case: str) -> None:
    a, b, message = _bad_inputs()[case]
    logdir = tmp_path / "run"
    names = ("same", "same") if case == "bad names" else ("a", "b")
    with pytest.raises(ValueError, match=message):
        compare_embeddings(a, b, logdir, names=names)
    assert not logdir.exists()


def test_repeated_labels_keep_their_first_row_and_are_reported(tmp_path: Path) -> None:
    vectors = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    path = write(
        tmp_path / "dup.bin", word2vec_bytes(["x", "y", "x", "z", "y"], vectors, binary=True)
    )
    in_memory = (vectors[[2, 0, 1, 3, 4]], ["x", "NO", "低", "z", "x"])  # hash('低') == hash('NO')
    summary = compare_embeddings(in_memory, path, tmp_path / "run", k=1, layout=None)
    assert summary.duplicates == (["x"], ["x", "y"])
    assert (summary.shared, summary.only_in_a, summary.only_in_b) == (2, ["NO", "低"], ["y"])
    text = summary.describe()
    assert "duplicated labels in 'a', first kept (1): x" in text
    assert "duplicated labels in 'b', first kept (2): x, y" in text
    labels = [row.split("\t")[0] for row in summary.metadata_path.read_text("utf-8").split("\n")]
    assert labels[1:5] == ["x", "z", "x", "z"]
    # A's rows are each label's first occurrence (x: vectors[2], not vectors[4]).
    served = np.fromfile(summary.tensor_path, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(served[:2], vectors[[2, 3]], atol=1e-5)


def test_projector_run_as_a_source(tmp_path: Path, planted: dict[str, Any]) -> None:
    a, b, labels, moved = planted["a"], planted["b"], planted["labels"], planted["moved"]
    experiment = tmp_path / "exp1"
    writer = ProjectorWriter(experiment)
    for step, matrix in ((1, a), (3, b)):
        writer.add_embedding(matrix, metadata=labels, global_step=step, tag="words")
    summary = compare_embeddings(
        f"{experiment}::words@1", f"{experiment}::words", tmp_path / "cmp", names=("1", "3")
    )
    assert summary.sources == (f"{experiment}::words@1", f"{experiment}::words")
    assert {word.label for word in summary.most_changed[:30]} == set(moved)
    with pytest.raises(
        InvalidEmbeddingError, match=r"no snapshot of tag 'words' at step 2.*\[1, 3\]"
    ):
        compare_embeddings(f"{experiment}::words@2", f"{experiment}::words", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_tensorboardx_tsv_run_as_a_source(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    matrix, labels = _matrix(30, seed=2)
    with SummaryWriter(str(tmp_path / "tbx")) as writer:
        writer.add_embedding(matrix, metadata=labels, global_step=7, tag="emb")
    summary = compare_embeddings(
        f"{tmp_path / 'tbx'}::emb@7", (matrix, labels), tmp_path / "cmp", k=5
    )
    assert summary.shared == 30
    assert summary.mean_overlap == pytest.approx(1.0)


def _compare_parser() -> argparse.ArgumentParser:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["compare"]  # type: ignore[no-any-return]
    raise AssertionError("no compare subcommand")


def test_cli_flags_match_the_python_api() -> None:
    """Every flag is a parameter (the selection object expanded into its fields) and back."""
    parameters = {
        name: parameter.default
        for name, parameter in inspect.signature(compare_embeddings).parameters.items()
    }
    assert parameters.pop("selection") is None
    for option in dataclasses.fields(RowSelection):
        parameters[option.name] = option.default
    destinations = {
        action.dest
        for action in _compare_parser()._actions
        if not isinstance(action, argparse._HelpAction)
    }
    assert {COMPARE_FLAG_TO_PARAMETER.get(d, d) for d in destinations} == set(parameters)
    for action in _compare_parser()._actions:
        if action.dest in parameters and action.dest not in ("a", "b", "logdir", "names"):
            assert action.default == parameters[action.dest], action.dest


def test_cli_end_to_end(
    tmp_path: Path, planted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, labels, moved = planted["a"], planted["b"], planted["labels"], planted["moved"]
    file_a = write(tmp_path / "a.bin", word2vec_bytes(labels, a, binary=True))
    file_b = write(tmp_path / "b.txt", word2vec_bytes(labels[::-1], b[::-1], binary=False))
    logdir = tmp_path / "cmp"
    code = main(
        ["compare", str(file_a), str(file_b), "--logdir", str(logdir), "--names", "A", "B",
         "--limit", "1500"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    # --limit applies to each file: A's first 1,500 and B's first 1,500 (= A's last 1,500).
    assert "shared labels: 1,000" in out
    assert "only in 'A': 500 (w0000, w0001," in out
    assert "only in 'B': 500 (w1999, w1998," in out
    assert "Most changed" in out and f"tensorboard --logdir {logdir}" in out
    shown = [line.split()[1] for line in out.splitlines() if line.strip()[:3].strip(" .").isdigit()]
    expected = {m for m in moved if 500 <= int(m[1:]) < 1500}
    assert set(shown[: len(expected)]) == expected
    assert (logdir / CHANGES_FILENAME).is_file()
    assert len(list(logdir.rglob("bookmarks*.json"))) == 1
    bare = tmp_path / "bare"
    args = ["compare", str(file_a), str(file_b), "--logdir", str(bare), "--no-layout", "--quiet"]
    assert main(args) == 0
    assert list(bare.rglob("bookmarks*.json")) == []
    assert ProjectorWriter(bare).entries()[0].bookmarks_path == ""


def test_cli_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    file_a = write(tmp_path / "a.bin", word2vec_bytes(list("abcde"), vectors, binary=True))
    file_b = write(tmp_path / "b.bin", word2vec_bytes(list("vwxyz"), vectors, binary=True))
    code = main(["compare", str(file_a), str(file_b), "--logdir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("embedding-projector compare: error: ")
    assert "share 0 label" in err[0]
    assert not (tmp_path / "run").exists()
    code = main(["compare", str(file_a), str(tmp_path / "nope.bin"), "--logdir", str(tmp_path)])
    assert code == 2


def test_package_exports() -> None:
    assert "compare_embeddings" in ep.__all__ and "CompareSummary" in ep.__all__


def test_progress_reports_reading_and_neighbour_stages(tmp_path: Path) -> None:
    matrix, labels = _matrix(300, seed=9)
    path = write(tmp_path / "a.bin", word2vec_bytes(labels, matrix, binary=True))
    seen: dict[str, tuple[int, int | None]] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        seen[stage] = (done, total)

    compare_embeddings(
        path, (matrix, labels), tmp_path / "run", names=("x", "y"), progress=progress
    )
    assert seen["neighbours x"] == seen["neighbours y"] == (300, 300)
    assert seen["reading x"][0] == path.stat().st_size


def test_a_bad_layout_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    matrix, labels = _matrix(30, seed=4)
    with pytest.raises(ValueError, match="t-SNE is not offered"):
        compare_embeddings(
            (matrix, labels),
            (matrix, labels),
            tmp_path / "run",
            layout="tsne",  # type: ignore[arg-type]
        )
    assert not (tmp_path / "run").exists()


def test_a_state_filter_must_name_rows_of_the_tensor() -> None:
    """The writer layer's check behind the per-source states (nothing is written on error)."""
    from embedding_projector._format.bookmarks import SavedState, saved_states_json

    coords = np.arange(8, dtype=np.float32).reshape(4, 2)
    text = saved_states_json(
        [SavedState("pca", coords, "odd rows", range(1, 4, 2), "source")], dimensions=(4, 3)
    )
    (state,) = json.loads(text)
    assert state["filteredPoints"] == [1, 3] and state["selectedColorOptionName"] == "source"
    assert state_coordinates(state).tolist() == [[2, 3], [6, 7]]
    for bad in ([], [4], [-1]):
        with pytest.raises(ValueError, match=r"filtered_points must be non-empty row indices"):
            saved_states_json([SavedState("pca", coords, "x", bad)], dimensions=(4, 3))


@pytest.mark.slow
def test_umap_states_of_all_points_and_each_source(tmp_path: Path) -> None:
    pytest.importorskip("umap")
    rng = np.random.default_rng(5)
    labels = [f"w{i}" for i in range(150)]
    a = clustered(150, 8, 6, rng)
    b = (a @ random_rotation(8, rng)).astype(np.float32)
    summary = compare_embeddings((a, labels), (b, labels), tmp_path / "run", layout="umap", k=5)
    (path,) = summary.logdir.rglob("bookmarks*.json")
    states = json.loads(path.read_bytes())
    assert [state["label"] for state in states[4:]] == [
        "a and b aligned (UMAP of all 300 points)",
        "a only · aligned UMAP",
        "b only · aligned UMAP",
    ]
    mapped = state_coordinates(states[4])
    assert mapped.shape == (300, 2) and states[4]["selectedProjection"] == "umap"
    # A word's two (identical) points land together: far closer than its cluster's spread.
    apart = np.linalg.norm(mapped[:150] - mapped[150:], axis=1)
    assert np.median(apart) < 0.1 * np.ptp(mapped, axis=0).max()
    assert states[5]["filteredPoints"] == list(range(150))
    np.testing.assert_array_equal(state_coordinates(states[6]), mapped[150:])


@pytest.mark.usefixtures("no_refresh_grace")
def test_compare_leaves_only_the_run_behind(tmp_path: Path) -> None:
    """No refresh run and no lock file after a comparison; the selection must be an object."""
    from embedding_projector._format import LOCK_FILENAME, REFRESH_DIRNAME

    rng = np.random.default_rng(3)
    labels = [f"w{i}" for i in range(40)]
    matrix = rng.normal(size=(40, 6)).astype(np.float32)
    with pytest.raises(TypeError, match="RowSelection"):
        compare_embeddings(  # type: ignore[arg-type]
            (matrix, labels), (matrix, labels), tmp_path / "bad", selection={"limit": 3}
        )
    assert not (tmp_path / "bad").exists()
    compare_embeddings((matrix, labels), (matrix * 2, labels), tmp_path / "run")
    assert not (tmp_path / "run" / REFRESH_DIRNAME).exists()
    assert not (tmp_path / "run" / LOCK_FILENAME).exists()


@pytest.fixture(scope="module")
def lee_models() -> dict[str, Any]:
    """Two lee Word2Vec models of one recipe (seeds 1 and 2), and seed 1 trained further."""
    word2vec = pytest.importorskip("gensim.models.word2vec")
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        corpus = [simple_preprocess(line) for line in handle]
    options = {"vector_size": 50, "min_count": 10, "workers": 1, "epochs": 10}
    first = word2vec.Word2Vec(corpus, seed=1, **options)
    second = word2vec.Word2Vec(corpus, seed=2, **options)
    further = word2vec.Word2Vec(corpus, seed=1, **options)
    further.train(corpus, total_examples=len(corpus), epochs=10)
    # gensim's defaults (100 dims, 5 epochs): barely trained, one dominant shared direction,
    # the case where rotating raw rows by the cosine frames' rotation drew A as a thin spike.
    defaults = {"min_count": 5, "workers": 1}
    return {
        "seed 1": first.wv,
        "seed 2": second.wv,
        "seed 1, 20 epochs": further.wv,
        "defaults, seed 1": word2vec.Word2Vec(corpus, seed=1, **defaults).wv,
        "defaults, seed 2": word2vec.Word2Vec(corpus, seed=2, **defaults).wv,
    }


def aligned_state(tb: TensorBoard, run: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of the "a and b aligned (PCA) · 2-D" state, as TensorBoard serves it."""
    tb.wait_for_run(run)
    (state,) = [s for s in tb.bookmarks(run, name) if s["label"].endswith("aligned (PCA) · 2-D")]
    coords = state_coordinates(state)
    half = len(coords) // 2
    return coords[:half], coords[half:]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("a_name", "b_name", "spread_bounds", "closer"),
    [
        ("seed 1", "seed 2", ((0.67, 1.5), (0.67, 1.5)), 0.5),
        # Training further flattens the spectrum (its first principal component carries ~30 %
        # of the variance of the centred unit rows instead of ~50 %): an orthogonal alignment
        # keeps that, so the second axis is wider in B. The first axis must still agree.
        ("seed 1", "seed 1, 20 epochs", ((0.67, 1.5), (0.4, 1.5)), 0.5),
        # Barely trained models agree on little, but their sets still overlap (it was A a
        # spike 0.03 as wide as B, and a word's two points as far apart as random pairs).
        ("defaults, seed 1", "defaults, seed 2", ((0.33, 3.0), (0.33, 3.0)), 0.9),
    ],
)
def test_independent_models_share_one_aligned_frame(
    shared_tensorboard: TensorBoard,
    shared_run: RunFactory,
    lee_models: dict[str, Any],
    a_name: str,
    b_name: str,
    spread_bounds: tuple[tuple[float, float], tuple[float, float]],
    closer: float,
) -> None:
    """Models whose row lengths differ (not a planted rotation): the view is one space."""
    run_dir, run = shared_run()
    a, b = lee_models[a_name], lee_models[b_name]
    summary = compare_embeddings(a, b, run_dir, names=("a", "b"), top=30)
    assert summary.shared == len(a) > 500
    points_a, points_b = aligned_state(shared_tensorboard, run, summary.tensor_name)
    ratio = points_a.std(axis=0) / points_b.std(axis=0)
    for axis, (low, high) in enumerate(spread_bounds):
        assert low <= ratio[axis] <= high, ratio
    apart = np.linalg.norm(points_a - points_b, axis=1)
    shuffled = np.random.default_rng(0).permutation(len(points_b))
    random_pairs = np.linalg.norm(points_a - points_b[shuffled], axis=1)
    assert np.median(apart) < closer * np.median(random_pairs)
    # The displacement is the angle between the word's two written points in A's cosine frame.
    tensor = shared_tensorboard.tensor(run, summary.tensor_name)
    frame = tensor / np.linalg.norm(tensor, axis=1, keepdims=True)
    frame -= frame[: summary.written].mean(axis=0)
    frame /= np.linalg.norm(frame, axis=1, keepdims=True)
    cosine = np.einsum("ij,ij->i", frame[: summary.written], frame[summary.written :])
    assert float(np.median(1 - cosine)) == pytest.approx(summary.median_displacement, rel=0.05)
    # What a mean overlap means: against unrelated neighbour lists.
    assert summary.chance_overlap == pytest.approx(summary.k / (summary.shared - 1))
    assert summary.mean_overlap > 3 * summary.chance_overlap
    report = summary.describe()
    assert f"chance {summary.chance_overlap:.3f}" in report
    # Many words share overlap 0; the displacement still orders them.
    zeros = [word for word in summary.most_changed if word.overlap == 0]
    assert len(zeros) >= 10
    assert [w.displacement for w in zeros] == sorted((w.displacement for w in zeros), reverse=True)
