"""Layouts written as saved states, read back through a real TensorBoard's projector API."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from disk_checks import fail_nth_replace, tree_digest
from embedding_projector import AlignedLayout, ProjectorLayout, ProjectorWriter, add_embedding
from embedding_projector.export import export_embeddings
from embedding_projector.insight.layouts import pca_layouts
from tb_server import state_coordinates


def aligned_change(before: np.ndarray, after: np.ndarray) -> float:
    """The data's relative change: unit rows, centred, after the best rotation."""

    def frame(matrix: np.ndarray) -> np.ndarray:
        unit = matrix.astype(np.float64)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        return unit - unit.mean(axis=0)

    old, new = frame(before), frame(after)
    u, _, vt = np.linalg.svd(new.T @ old)
    return float(np.linalg.norm(new @ (u @ vt) - old) / np.linalg.norm(old))


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_states_are_served_one_entry_per_row_with_the_written_coordinates(
    shared_tensorboard, shared_run
):
    run_dir, run = shared_run()
    rng = np.random.default_rng(0)
    big, small = rng.normal(size=(120, 8)), rng.normal(size=(45, 8))
    writer = ProjectorWriter(run_dir)
    first = writer.add_embedding(big, metadata=[f"w{i}" for i in range(120)], layout="pca")
    own = [ProjectorLayout("umap", rng.normal(size=(45, 2)), "mine")]
    header = ["word", "kind"]
    table = [[f"s{i}", str(i % 3)] for i in range(45)]
    second = writer.add_embedding(
        small, table, global_step=1, metadata_header=header, tag="other", layout=own
    )
    assert first.bookmarks_path is not None and first.bookmarks_path.name == "bookmarks.r1.json"
    shared_tensorboard.wait_for_run(run)

    served = shared_tensorboard.bookmarks(run, first.tensor_name)
    expected = pca_layouts(shared_tensorboard.tensor(run, first.tensor_name))
    assert [state["label"] for state in served] == [layout.label for layout in expected]
    for state, layout in zip(served, expected, strict=True):
        assert len(state["projections"]) == 120
        assert state["dataSetDimensions"] == [120, 8]
        assert state["selectedLabelOption"] == "label"  # single column: the page's name
        np.testing.assert_array_equal(state_coordinates(state), layout.coordinates)

    (state,) = shared_tensorboard.bookmarks(run, second.tensor_name)
    assert state["selectedProjection"] == "umap" and state["label"] == "mine"
    assert state["selectedLabelOption"] == "word" and len(state["projections"]) == 45
    np.testing.assert_array_equal(state_coordinates(state), own[0].coordinates)


def test_bad_layouts_write_nothing(tmp_path, monkeypatch):
    matrix = np.random.default_rng(1).normal(size=(10, 4))
    with pytest.raises(ValueError, match="t-SNE is not offered"):
        add_embedding(tmp_path / "a", matrix, layout="tsne")
    with pytest.raises(ValueError, match="'pca', 'umap'"):
        add_embedding(tmp_path / "a", matrix, layout="mds")
    with pytest.raises(ValueError, match="9 rows of coordinates but the tensor has 10"):
        add_embedding(tmp_path / "a", matrix, layout=ProjectorLayout("pca", np.ones((9, 2)), "x"))
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match="layouts"):
        add_embedding(tmp_path / "a", matrix, layout="umap")
    with pytest.raises(ImportError, match="layouts"):
        export_embeddings((matrix, [f"w{i}" for i in range(10)]), tmp_path / "a", layout="umap")
    assert _files(tmp_path / "a") == []


def test_rewrites_replace_the_states_and_remove_old_ones(tmp_path):
    matrix = np.random.default_rng(2).normal(size=(10, 4))
    writer = ProjectorWriter(tmp_path, live_refresh=False)
    writer.add_embedding(matrix, layout="pca")
    writer.add_embedding(matrix * 2, layout="pca")
    (entry,) = writer.entries()
    assert entry.bookmarks_path == "00000/default/bookmarks.r2.json"
    assert sorted(p.name for p in (tmp_path / "00000/default").iterdir()) == [
        "bookmarks.r2.json",
        "tensors.r2.bin",
    ]
    writer.add_embedding(matrix)  # no layout: no states, the old file goes
    (entry,) = writer.entries()
    assert entry.bookmarks_path == ""
    assert [p.name for p in (tmp_path / "00000/default").iterdir()] == ["tensors.r3.bin"]


def test_states_cover_only_the_rows_the_page_loads(tmp_path):
    matrix = np.random.default_rng(3).normal(size=(100_001, 2)).astype(np.float32)
    with pytest.warns(UserWarning, match="loads only the first 100000"):
        snapshot = add_embedding(tmp_path, matrix, layout="pca")
    assert snapshot.bookmarks_path is not None
    states = json.loads(snapshot.bookmarks_path.read_bytes())
    assert [len(state["projections"]) for state in states] == [100_000, 100_000]
    assert states[0]["dataSetDimensions"] == [100_000, 2]


def test_export_layout_flag_writes_states(tmp_path):
    from embedding_projector.cli import main

    rng = np.random.default_rng(4)
    vectors = tmp_path / "vectors.txt"
    lines = [f"w{i} " + " ".join(f"{v:.5f}" for v in rng.normal(size=6)) for i in range(30)]
    vectors.write_text("30 6\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert (
        main(
            [
                "export",
                str(vectors),
                "--logdir",
                str(tmp_path / "run"),
                "--layout",
                "pca",
                "--quiet",
            ]
        )
        == 0
    )
    (states_file,) = (tmp_path / "run").rglob("bookmarks.r*.json")
    states = json.loads(states_file.read_bytes())
    assert [state["selectedProjection"] for state in states] == ["pca", "pca"]
    assert len(states[0]["projections"]) == 30


@pytest.mark.slow
def test_word2vec_run_stays_in_one_frame_and_the_layout_is_the_data(shared_tensorboard, shared_run):
    """Word2Vec on lee_background.cor, each epoch written with AlignedLayout's states."""
    gensim_models = pytest.importorskip("gensim.models")
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        corpus = [simple_preprocess(line) for line in handle]
    run_dir, run = shared_run()
    writer = ProjectorWriter(run_dir)
    frame = AlignedLayout()

    class Snapshots(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model) -> None:
            self.epoch += 1
            words = list(model.wv.index_to_key[:800])
            matrix = model.wv[words]
            states = frame.update(words, matrix, step=self.epoch)
            writer.add_embedding(
                matrix, metadata=words, global_step=self.epoch, tag="words", layout=states
            )

    epochs = 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        gensim_models.Word2Vec(
            corpus,
            vector_size=50,
            min_count=3,
            window=5,
            workers=1,
            seed=3,
            epochs=epochs,
            callbacks=[Snapshots()],
        )
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.wait_for(
        lambda: (
            len(shared_tensorboard.tensor_names(run)) == epochs
            and sorted(shared_tensorboard.tensor_names(run))
        )
    )
    flat = [state_coordinates(shared_tensorboard.bookmarks(run, name)[0]) for name in names]
    solid = [state_coordinates(shared_tensorboard.bookmarks(run, name)[1]) for name in names]
    tensors = [shared_tensorboard.tensor(run, name) for name in names]
    # Same words in the same rows at every step (the first 800 by frequency). Every picture
    # moves at most as far as the data did (the bound: 4 x data change + 0.02).
    assert len(frame.basis_steps) >= 2  # the basis did turn, so the bound was tested
    for index in range(1, epochs):
        data = aligned_change(tensors[index - 1], tensors[index])
        for layouts in (flat, solid):
            before, after = layouts[index - 1], layouts[index]
            picture = np.linalg.norm(after - before) / np.linalg.norm(before)
            assert picture <= 4 * data + 0.02, (index, picture, data)
    # The picture is the data: distances in the layout follow the tensor's own (cosine).
    tensor = shared_tensorboard.tensor(run, names[-1]).astype(np.float64)
    unit = tensor / np.linalg.norm(tensor, axis=1, keepdims=True)
    rows = np.random.default_rng(0).choice(len(unit), size=300, replace=False)
    upper = np.triu_indices(300, 1)

    def distances(points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(points[:, None] - points[None], axis=2)[upper]

    own = distances(unit[rows] - unit.mean(axis=0))
    assert np.corrcoef(distances(solid[-1][rows]), own)[0, 1] > 0.7
    assert np.corrcoef(distances(flat[-1][rows]), own)[0, 1] > 0.6


@pytest.mark.parametrize("failing_rename", [1, 2, 3], ids=["tensor", "bookmarks", "config"])
def test_a_failure_midway_leaves_the_earlier_states_in_place(tmp_path, monkeypatch, failing_rename):
    from embedding_projector.errors import SnapshotWriteError

    matrix = np.random.default_rng(5).normal(size=(10, 4))
    writer = ProjectorWriter(tmp_path, live_refresh=False)
    writer.add_embedding(matrix, layout="pca")
    before = tree_digest(tmp_path)
    fail_nth_replace(monkeypatch, failing_rename)
    with pytest.raises(SnapshotWriteError, match="Permission denied"):
        writer.add_embedding(matrix * 3, layout="pca")
    monkeypatch.undo()
    assert tree_digest(tmp_path) == before
    (entry,) = writer.entries()
    assert (tmp_path / entry.bookmarks_path).is_file()
