"""Saved layouts (bookmarks) and trajectories written by the one snapshot pipeline, read back
through a real TensorBoard's projector API."""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedding_projector import AlignedLayout, ProjectorWriter
from embedding_projector.sink import InsightOptions, SinkOptions, SnapshotRequest, SnapshotSink
from tb_server import TensorBoard, parse_metadata, state_coordinates

SYNC = SinkOptions(background=False, disk_reserve=0)
NO_MAPS: dict[str, Any] = {"maps": False, "scalars": False, "map_budget": None}


def served(tb: TensorBoard, run: str, count: int) -> list[str]:
    tb.wait_for_run(run)
    return list(tb.wait_for(lambda: len(tb.tensor_names(run)) == count and tb.tensor_names(run)))


def drifting(steps: int, rows: int = 40, dims: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(rows, dims))
    return [base + 0.05 * step * rng.normal(size=(rows, dims)) for step in range(steps)]


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("bad", ["tsne", "t-SNE", "isomap", 3])
def test_bad_layout_names_fail_at_construction_listing_the_choices(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"'pca', 'umap'"):
        InsightOptions(layout=bad)


def test_umap_without_umap_learn_fails_at_construction_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gensim = pytest.importorskip("embedding_projector.gensim")
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(ImportError, match=r"embedding-projector\[layouts\]"):
        gensim.Any2VecProjector(tmp_path / "run", insight=InsightOptions(layout="umap"))
    assert not (tmp_path / "run").exists()


def test_trajectory_needs_a_layout() -> None:
    with pytest.raises(ValueError, match=r"trajectory=True .* needs layout"):
        InsightOptions(layout=None, trajectory=True)


# --------------------------------------------------------------------------- the sink


def test_every_snapshot_gets_aligned_states_by_default_and_none_when_off(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    on_dir, on_run = shared_run()
    off_dir, off_run = shared_run()
    matrices = drifting(4)
    labels = [f"w{i}" for i in range(40)]
    for run_dir, insight in ((on_dir, InsightOptions(**NO_MAPS)), (off_dir, None)):
        options = InsightOptions(**NO_MAPS, layout=None) if insight is None else insight
        with SnapshotSink(run_dir, options=SYNC, insight=options) as sink:
            for step, matrix in enumerate(matrices):
                sink.submit(step, [SnapshotRequest("words", matrix, labels=labels)])

    names = served(shared_tensorboard, on_run, 4)
    frame = AlignedLayout()
    for step, name in enumerate(names):
        states = shared_tensorboard.bookmarks(on_run, name)
        expected = frame.update(labels, matrices[step], step)
        assert [s["label"] for s in states] == [
            f"step {step} · aligned PCA",
            f"step {step} · aligned PCA 3-D",
        ]
        for state, layout in zip(states, expected, strict=True):
            np.testing.assert_allclose(state_coordinates(state), layout.coordinates, atol=1e-6)
    for name in served(shared_tensorboard, off_run, 4):
        assert "bookmarksPath" not in shared_tensorboard.embedding(off_run, name)
    assert not list(off_dir.rglob("bookmarks*"))


def test_a_failing_layout_warns_once_and_the_snapshots_are_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: AlignedLayout, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("layout maths exploded")

    monkeypatch.setattr(AlignedLayout, "update", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with SnapshotSink(tmp_path, options=SYNC, insight=InsightOptions(**NO_MAPS)) as sink:
            for step, matrix in enumerate(drifting(3)):
                sink.submit(step, [SnapshotRequest("words", matrix)])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "without its pca layout" in messages[0] and "layout maths exploded" in messages[0]
    writer = ProjectorWriter(tmp_path)
    assert writer.steps("words") == [0, 1, 2]
    assert all(not entry.bookmarks_path for entry in writer.entries())


def test_layouts_over_the_time_budget_carry_the_last_positions_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = AlignedLayout.update

    def slow(self: AlignedLayout, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AlignedLayout, "update", slow)
    insight = InsightOptions(maps=False, scalars=False, map_budget=0.05)
    matrices = drifting(4)
    with SnapshotSink(tmp_path, options=SYNC, insight=insight) as sink:
        for step, matrix in enumerate(matrices):
            sink.submit(step, [SnapshotRequest("words", matrix)], final=step == 3)
    told = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(told) == 1 and "layout of 'words' was skipped at step 1" in told[0]
    labels = []
    for entry in sorted(ProjectorWriter(tmp_path).entries(), key=lambda e: e.tensor_name):
        states = json.loads((tmp_path / entry.bookmarks_path).read_text(encoding="utf-8"))
        labels.extend(state["label"] for state in states)
    assert labels == [
        "step 0 · aligned PCA",
        "step 0 · aligned PCA 3-D",
        "step 1 · aligned PCA skipped (time budget): positions of step 0",  # 2-D only
        "step 2 · aligned PCA skipped (time budget): positions of step 0",
        "step 3 · aligned PCA",  # the final step always gets its own
        "step 3 · aligned PCA 3-D",
    ]


def test_a_cheap_layout_is_never_skipped_for_a_dear_map(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    insight = InsightOptions(maps=True, scalars=False, map_budget=1e-6, map_rows=20)
    labels = [f"w{i}" for i in range(30)]
    with SnapshotSink(tmp_path, options=SYNC, insight=insight) as sink:
        for step, matrix in enumerate(drifting(3)):
            sink.submit(step, [SnapshotRequest("words", matrix[:30], labels=labels)])
    told = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(told) == 1 and "map image of 'words' was skipped at step 1" in told[0]
    labels_found = []
    for entry in sorted(ProjectorWriter(tmp_path).entries(), key=lambda e: e.tensor_name):
        states = json.loads((tmp_path / entry.bookmarks_path).read_text(encoding="utf-8"))
        labels_found.append(states[0]["label"])
    assert labels_found == [f"step {step} · aligned PCA" for step in range(3)]


def test_trajectory_of_the_probe_rows_with_a_state_per_step(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    run_dir, run = shared_run()
    labels = [f"w{i}" for i in range(40)]
    probes = [3, 7]
    insight = InsightOptions(**NO_MAPS, trajectory=True)
    with SnapshotSink(run_dir, options=SYNC, insight=insight) as sink:
        for step, matrix in enumerate(drifting(3)):
            request = SnapshotRequest("words", matrix, labels=labels, probes=probes)
            sink.submit(step, [request])

    names = served(shared_tensorboard, run, 4)  # 3 snapshots + the newest trajectory
    trajectory = [name for name in names if "trajectory" in name]
    assert len(trajectory) == 1 and trajectory[0].startswith("words · trajectory:")
    header, rows = parse_metadata(shared_tensorboard.metadata(run, trajectory[0]))
    assert header == ["label", "step"]
    assert rows == [[labels[p], str(s)] for s in range(3) for p in probes]
    states = shared_tensorboard.bookmarks(run, trajectory[0])
    assert [s["label"] for s in states] == [
        "steps 0–2 · aligned PCA",
        "steps 0–2 · aligned PCA 3-D",
        "step 0 · aligned PCA",
        "step 1 · aligned PCA",
        "step 2 · aligned PCA",
    ]
    assert states[0]["selectedColorOptionName"] == "step"
    assert [s["filteredPoints"] for s in states[2:]] == [[0, 1], [2, 3], [4, 5]]
    # Each step's rows sit where that step's own aligned state put them.
    path = state_coordinates(states[0])
    snapshots = [name for name in names if "trajectory" not in name]
    for step, name in enumerate(sorted(snapshots)):
        own = state_coordinates(shared_tensorboard.bookmarks(run, name)[0])
        np.testing.assert_allclose(path[2 * step : 2 * step + 2], own[probes], atol=1e-6)
    # The tensor holds the probe rows in the run's aligned frame (unit length, centred).
    vectors = shared_tensorboard.tensor(run, trajectory[0])
    assert vectors.shape == (6, 6)


def test_trajectory_without_probe_rows_warns_once(tmp_path: Path) -> None:
    insight = InsightOptions(**NO_MAPS, trajectory=True)
    sink = SnapshotSink(tmp_path, options=SYNC, insight=insight)
    with pytest.warns(RuntimeWarning, match="no probe rows") as caught, sink:
        for step, matrix in enumerate(drifting(2)):
            sink.submit(step, [SnapshotRequest("words", matrix)])
    assert len(caught) == 1
    assert ProjectorWriter(tmp_path).steps("words") == [0, 1]


def test_tags_without_probe_rows_stay_silent_while_another_tag_is_followed(
    tmp_path: Path,
) -> None:
    insight = InsightOptions(**NO_MAPS, trajectory=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one warning
        with SnapshotSink(tmp_path, options=SYNC, insight=insight) as sink:
            for step, matrix in enumerate(drifting(3)):
                sink.submit(
                    step,
                    [
                        SnapshotRequest("positions", matrix[:8]),  # first, and never followed
                        SnapshotRequest("words", matrix, probes=[3, 7]),
                    ],
                )
    writer = ProjectorWriter(tmp_path)
    assert writer.steps("words · trajectory") == [2]
    assert writer.steps("positions · trajectory") == []


# --------------------------------------------------------------------------- adapters


def test_word2vec_run_gets_aligned_pca_states_that_stay_put(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    gensim_models = pytest.importorskip("gensim.models")
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    from embedding_projector.gensim import Any2VecProjector

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        lee = [simple_preprocess(line) for line in handle]
    run_dir, run = shared_run()
    epochs = 8
    probes = ["police", "government"]
    insight = InsightOptions(maps=False, scalars=False, map_budget=None, trajectory=True)
    callback = Any2VecProjector(run_dir, limit=300, probe_rows=probes, insight=insight)
    gensim_models.Word2Vec(
        lee, vector_size=24, min_count=3, window=5, workers=1, seed=3, epochs=epochs,
        compute_loss=True, callbacks=[callback],
    )  # fmt: skip
    # The start, every epoch, and the newest trajectory.
    names = sorted(served(shared_tensorboard, run, epochs + 2))
    (trajectory,) = [name for name in names if "trajectory" in name]
    _, rows = parse_metadata(shared_tensorboard.metadata(run, trajectory))
    assert [row[0] for row in rows] == probes * (epochs + 1)
    assert [int(row[1]) for row in rows[::2]] == list(range(epochs + 1))
    names.remove(trajectory)
    states = [shared_tensorboard.bookmarks(run, name) for name in names]
    assert all(len(found) == 2 for found in states)
    assert all(" · aligned PCA" in found[0]["label"] for found in states)
    flat = [state_coordinates(found[0]) for found in states]
    solid = [state_coordinates(found[1]) for found in states]
    for layouts in (flat, solid):  # the last epochs: no flips, no rotations
        for before, after in zip(layouts[-4:-1], layouts[-3:], strict=True):
            for axis in range(before.shape[1]):
                assert np.corrcoef(before[:, axis], after[:, axis])[0, 1] > 0.9


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning")
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_lightning_run_gets_a_state_for_every_snapshot(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("pytorch_lightning")
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from embedding_projector.lightning import EmbeddingProjector

    class Tiny(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(30, 4)
            self.decoder = nn.Linear(4, 30)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return nn.functional.cross_entropy(self.decoder(self.tokens(x)), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.5)

    run_dir, run = shared_run()
    x = torch.randint(0, 30, (64,), generator=torch.Generator().manual_seed(0))
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=3, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
        callbacks=[EmbeddingProjector(logdir=run_dir)],
    )  # fmt: skip
    trainer.fit(Tiny(), DataLoader(TensorDataset(x, (x + 1) % 30), batch_size=16))
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.wait_for(lambda: len(shared_tensorboard.tensor_names(run)) >= 3)
    names = shared_tensorboard.tensor_names(run)
    for name in names:
        found = shared_tensorboard.bookmarks(run, name)
        # 2-D and 3-D when computed; the 2-D one carried over when over the time budget.
        assert [len(state["projections"]) for state in found] in ([30, 30], [30])
        assert " · aligned PCA" in found[0]["label"]
