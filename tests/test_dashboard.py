"""The Embedding Evolution plugin, through a real TensorBoard that found it by entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedding_projector import AlignedLayout, ProjectorWriter
from tb_server import TensorBoard, TensorBoardError, state_coordinates

PLUGIN = "embedding_evolution"
EPOCHS = 8


def evolution(server: TensorBoard, route: str, **params: Any) -> bytes:
    return server.get(f"/data/plugin/{PLUGIN}/{route}", **params)


def listing(server: TensorBoard) -> dict[str, Any]:
    return dict(json.loads(evolution(server, "runs")))


def layout(server: TensorBoard, run: str, tag: str, step: int) -> np.ndarray:
    raw = evolution(server, "layout", run=run, tag=tag, step=step)
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def two_d_state(server: TensorBoard, run: str, name: str) -> np.ndarray:
    """The tensor's 2-D saved state, as TensorBoard's own projector serves it."""
    states = [s for s in server.bookmarks(run, name) if len(s["projections"][0]) == 2]
    return state_coordinates(states[0])


def lee_word2vec(run_dir: Path, epochs: int = EPOCHS, **callback: Any) -> None:
    """Word2Vec on gensim's lee corpus with the gensim callback at its defaults."""
    word2vec = pytest.importorskip("gensim.models.word2vec")
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    from embedding_projector.gensim import Any2VecProjector

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        lee = [simple_preprocess(line) for line in handle]
    word2vec.Word2Vec(
        lee,
        vector_size=24,
        min_count=3,
        workers=1,
        seed=7,
        epochs=epochs,
        compute_loss=True,
        callbacks=[Any2VecProjector(run_dir, **callback)],
    )


@pytest.fixture(scope="module")
def lee_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("evolution") / "logs"
    lee_word2vec(root / "word2vec")
    with TensorBoard(root) as server:
        yield server


@pytest.mark.slow
def test_word2vec_run_is_listed_and_every_layout_is_its_saved_state(lee_server):
    plugins = json.loads(lee_server.get("/data/plugins_listing"))
    assert plugins[PLUGIN]["enabled"] is True
    assert plugins[PLUGIN]["loading_mechanism"]["module_path"] == f"/data/plugin/{PLUGIN}/index.js"

    runs = lee_server.wait_for(lambda: listing(lee_server).get("word2vec"))
    assert list(runs) == ["words"]
    info = runs["words"]
    assert info["steps"] == list(range(EPOCHS + 1))
    names = {int(name.split(":")[1][:9]): name for name in lee_server.tensor_names("word2vec")}
    rows, _ = lee_server.tensor("word2vec", names[0]).shape
    assert info["rows"] == rows and info["columns"]

    for step in info["steps"]:
        served = layout(lee_server, "word2vec", "words", step)
        expected = two_d_state(lee_server, "word2vec", names[step])
        assert served.shape == (rows, 2)
        np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    assert not np.allclose(
        layout(lee_server, "word2vec", "words", 0), layout(lee_server, "word2vec", "words", 8)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"run": "nope", "tag": "words", "step": 1}, b"no run 'nope'"),
        ({"run": "word2vec", "tag": "nope", "step": 1}, b"has no tag 'nope'"),
        ({"run": "word2vec", "tag": "words", "step": 99}, b"has no step 99"),
        ({"run": "word2vec", "tag": "words", "step": "x"}, b"step must be an integer"),
        ({"run": "word2vec", "tag": "words"}, b"step is required"),
        ({"tag": "words", "step": 1}, b"run and tag are required"),
        ({"run": "../word2vec", "tag": "words", "step": 1}, b"no run '../word2vec'"),
        ({"run": "/etc", "tag": "words", "step": 1}, b"no run '/etc'"),
    ],
)
def test_bad_requests_are_400_with_a_message(lee_server, params, message):
    for route in ("layout", "metadata"):
        with pytest.raises(TensorBoardError, match="HTTP 400") as error:
            evolution(lee_server, route, **params)
        assert message in str(error.value).encode("utf-8").decode("unicode_escape").encode()


def test_nothing_outside_the_log_dir_is_read(start_tensorboard, tmp_path):
    root = tmp_path / "logs"
    outside = tmp_path / "outside"
    matrix = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    ProjectorWriter(outside).add_embedding(matrix, global_step=1, tag="secret")
    run_dir = root / "run"
    ProjectorWriter(run_dir).add_embedding(matrix, global_step=1, tag="fine")
    # A config entry pointing out of the log dir, as a hostile or moved config could.
    config = (run_dir / "projector_config.pbtxt").read_text()
    secret = next(p for p in outside.rglob("*.bin"))
    (run_dir / "projector_config.pbtxt").write_text(
        config.replace('tensor_name: "fine:', 'tensor_name: "secret:').replace(
            config.split('tensor_path: "')[1].split('"')[0], str(secret)
        )
    )
    server = start_tensorboard(root)
    for params in (
        {"run": "run", "tag": "secret", "step": 1},
        {"run": "../outside", "tag": "secret", "step": 1},
        {"run": str(outside), "tag": "secret", "step": 1},
    ):
        with pytest.raises(TensorBoardError, match="HTTP 400"):
            evolution(server, "layout", **params)
    assert "outside" not in listing(server) and "run" not in listing(server)


def test_tensorboardx_run_gets_an_aligned_pca_made_once(start_tensorboard, tmp_path):
    from tensorboardX import SummaryWriter

    root = tmp_path / "logs"
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 6))
    labels = [f"w{i}" if i % 2 else f"語{i}" for i in range(40)]
    with SummaryWriter(str(root / "tbx")) as writer:
        for step in range(3):
            matrix = base + 0.3 * step * rng.normal(size=base.shape)
            writer.add_embedding(matrix, metadata=labels, global_step=step, tag="emb")
    server = start_tensorboard(root)
    info = server.wait_for(lambda: listing(server).get("tbx"))
    assert info["emb"]["steps"] == [0, 1, 2] and info["emb"]["rows"] == 40
    server.wait_for_run("tbx")
    names = sorted(server.tensor_names("tbx"))
    frame = AlignedLayout()
    for step, name in enumerate(names):
        served = server.tensor("tbx", name)
        expected = frame.update(labels, served, step)[0].coordinates
        got = layout(server, "tbx", "emb", step)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        np.testing.assert_array_equal(layout(server, "tbx", "emb", step), got)  # cached
    meta = json.loads(evolution(server, "metadata", run="tbx", tag="emb", step=2))
    assert meta == {"header": ["label"], "columns": [labels]}


def test_neighbors_are_the_full_dimension_cosine_ones(start_tensorboard, tmp_path):
    from embedding_projector.insight import neighbor_table

    root = tmp_path / "logs"
    rng = np.random.default_rng(5)
    labels = ["東京", "tokyo", "大阪", "osaka", *[f"w{i}" for i in range(26)]]
    writer = ProjectorWriter(root / "run")
    first = rng.normal(size=(30, 16))
    first[0] = -first[2]  # 東京 starts opposite 大阪 ...
    second = first.copy()
    second[0] = second[2] + 0.01 * rng.normal(size=16)  # ... and moves next to it
    writer.add_embedding(first, metadata=labels, global_step=1, tag="w", layout="pca")
    writer.add_embedding(second, metadata=labels, global_step=2, tag="w", layout="pca")
    server = start_tensorboard(root)
    server.wait_for_run("run")
    answer = json.loads(evolution(server, "neighbors", run="run", tag="w", step=2, row=0, k=3))
    served = server.tensor("run", server.tensor_names("run")[-1])
    (expected,) = neighbor_table(served, labels, [0], k=3)
    assert [n["label"] for n in answer["neighbors"]] == expected.labels
    assert answer["neighbors"][0] == {
        "label": "大阪",
        "row": 2,
        "similarity": pytest.approx(expected.similarities[0]),
    }
    (before,) = neighbor_table(first.astype(np.float32), labels, [0], k=3)
    assert answer["previous"]["step"] == 1 and "大阪" in answer["previous"]["joined"]
    assert answer["previous"]["left"] == [x for x in before.labels if x not in expected.labels]
    with pytest.raises(TensorBoardError, match="HTTP 400"):
        evolution(server, "neighbors", run="run", tag="w", step=2, row=30)
