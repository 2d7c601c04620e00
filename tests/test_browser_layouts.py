"""Saved layouts in the real projector page: click the bookmark, the page holds our coordinates.

A run written step by step with :class:`AlignedLayout`, plus a UMAP state on the last step; and
a real Word2Vec run whose states the gensim callback wrote through the snapshot sink with its
default layout. In headless Chromium: pick the step, click each state's radio icon
under BOOKMARKS, then read what the page holds (``vz-projector``'s ``dataSet.points[i]
.projections`` and ``projection.projectionType``) and compare it with the file.

The 100,000-row check exports through the CLI with ``--layout umap`` and reads every point
back from the page (about 3 minutes on 2 cores; ``-s`` prints where the time goes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser_page import ProjectorPage, open_projector
from embedding_projector import AlignedLayout, ProjectorWriter
from embedding_projector.insight.layouts import umap_layout
from tb_server import TensorBoard
from test_browser import _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS, DIM = 400, 16

_HELD_JS = """
() => {
  const dashboard = document.querySelector('vz-projector-dashboard');
  const projector = dashboard.shadowRoot.querySelector('vz-projector');
  const projection = projector.projection;
  return {
    type: projection ? projection.projectionType : null,
    components: projection ? projection.projectionComponents : null,
    points: projector.dataSet.points.length,
    projections: projector.dataSet.points.map(point => point.projections),
  };
}
"""

#: One radio icon per state; the selected state's is swapped for a "checked" copy, the
#: unchecked one staying hidden in the DOM: count only the visible ones.
_RADIOS = "vz-projector-bookmark-panel .state-radio paper-icon-button >> visible=true"


def _write_run(logdir: Path) -> tuple[str, Path, str, Path]:
    """Three steps of a drifting embedding, aligned states each; UMAP too on the last.

    Plus a tensor without metadata (the states then name no label column).
    """
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, DIM)) * 3
    base = centres[np.arange(ROWS) % 5] + rng.normal(size=(ROWS, DIM))
    words = [f"w{i:03d}" for i in range(ROWS)]
    table = [[word, f"c{i % 5}"] for i, word in enumerate(words)]
    frame = AlignedLayout()
    writer = ProjectorWriter(logdir / "aligned")
    snapshot = None
    for step in range(3):
        rotation, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
        matrix = (base + rng.normal(size=base.shape) * 0.1 * step) @ rotation
        states = frame.update(words, matrix, step=step)
        if step == 2:
            states.append(umap_layout(matrix, seed=0))
        snapshot = writer.add_embedding(
            matrix,
            table,
            global_step=step,
            tag="words",
            metadata_header=["word", "cluster"],
            layout=states,
        )
    bare = writer.add_embedding(base[:150, :8], tag="bare", layout="pca")
    assert snapshot is not None and snapshot.bookmarks_path is not None
    assert bare.bookmarks_path is not None
    return snapshot.tensor_name, snapshot.bookmarks_path, bare.tensor_name, bare.bookmarks_path


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, TensorBoard, tuple[str, Path, str, Path]]]:
    sync_api = _require_browser()
    pytest.importorskip("umap")
    logdir = tmp_path_factory.mktemp("browser-layouts") / "logs"
    written = _write_run(logdir)
    with TensorBoard(logdir) as server:
        server.wait_for(lambda: "aligned" in server.runs(), timeout=60)
        yield sync_api, server, written


def _check_states(page: ProjectorPage, states: list[dict[str, Any]], rows: int) -> None:
    """Click every state in turn; the page holds each one's coordinates."""
    for index in range(len(states)):
        _check_state(page, states, index, rows)


def _check_state(page: ProjectorPage, states: list[dict[str, Any]], index: int, rows: int) -> None:
    """Click ``states[index]``'s radio icon; the page holds exactly its coordinates."""
    radios = page.plugin.locator(_RADIOS)
    radios.nth(len(states) - 1).wait_for()
    for _ in range(100):  # the previous tensor's states are replaced once its data loads
        if radios.count() == len(states):
            break
        page.page.wait_for_timeout(200)
    assert radios.count() == len(states)
    state = states[index]
    radios.nth(index).click()
    kind = state["selectedProjection"]
    columns = len(state["projections"][0])
    keys = [f"{kind}-{j}" for j in range(columns)]

    def loaded(held: dict[str, Any]) -> bool:
        return (
            held["type"] == kind
            and held["components"][:columns] == keys
            and held["projections"][0] == state["projections"][0]
        )

    held = page.frame().evaluate(_HELD_JS)
    for _ in range(100):
        if loaded(held):
            break
        page.page.wait_for_timeout(200)
        held = page.frame().evaluate(_HELD_JS)
    assert loaded(held), (state["label"], held["type"], held["components"])
    assert held["points"] == rows
    page_coords = np.array([[p[k] for k in keys] for p in held["projections"]])
    file_coords = np.array([[p[k] for k in keys] for p in state["projections"]])
    np.testing.assert_array_equal(page_coords, file_coords)


def test_clicking_a_saved_state_shows_exactly_the_written_coordinates(
    site: tuple[Any, TensorBoard, tuple[str, Path, str, Path]], artifacts_dir: Path
) -> None:
    sync_api, server, (name, states_file, bare_name, bare_file) = site
    states = json.loads(states_file.read_bytes())
    assert [state["selectedProjection"] for state in states] == ["pca", "pca", "umap"]
    with open_projector(sync_api, server.base) as page:
        page.select_tensor(name, ROWS, DIM)
        _check_states(page, states, ROWS)
        page.plugin.locator(_RADIOS).first.click()
        page.screenshot(artifacts_dir / "browser-layout-bookmark.png")
        # No metadata: the states name no label column, and still load.
        page.select_tensor(bare_name, 150, 8)
        _check_states(page, json.loads(bare_file.read_bytes()), 150)


def test_a_bookmark_written_by_a_word2vec_run_loads_its_coordinates(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    """The gensim callback's default layout, through the sink: pick a step, click its
    ``step N · aligned PCA`` bookmark, the page holds the file's coordinates."""
    sync_api = _require_browser()
    word2vec = pytest.importorskip("gensim.models.word2vec")
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    from embedding_projector.gensim import Any2VecProjector
    from embedding_projector.sink import InsightOptions

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        lee = [simple_preprocess(line) for line in handle]
    run_dir = tmp_path / "logs" / "word2vec"
    words, dims, step = 300, 24, 2
    # The default layout; no maps, no time budget: every step gets its computed states.
    insight = InsightOptions(maps=False, scalars=False, map_budget=None)
    callback = Any2VecProjector(run_dir, limit=words, insight=insight)
    word2vec.Word2Vec(
        lee,
        vector_size=dims,
        min_count=3,
        workers=1,
        seed=3,
        epochs=4,
        compute_loss=True,
        callbacks=[callback],
    )
    (entry,) = [
        e
        for e in ProjectorWriter(run_dir).entries()
        if e.tensor_name.startswith(f"words:{step:09d}")
    ]
    states = json.loads((run_dir / entry.bookmarks_path).read_bytes())
    labels = [state["label"] for state in states]
    assert labels == [f"step {step} · aligned PCA", f"step {step} · aligned PCA 3-D"]
    with TensorBoard(tmp_path / "logs") as server:
        server.wait_for(lambda: "word2vec" in server.runs(), timeout=60)
        with open_projector(sync_api, server.base) as page:
            page.select_tensor(entry.tensor_name, words, dims)
            _check_state(page, states, labels.index(f"step {step} · aligned PCA"), words)
            page.screenshot(artifacts_dir / "browser-layout-word2vec-bookmark.png")


#: What the page holds, without the per-point data: polled until a clicked state has loaded.
_LOADED_JS = """
() => {
  const dashboard = document.querySelector('vz-projector-dashboard');
  const projector = dashboard.shadowRoot.querySelector('vz-projector');
  const projection = projector.projection;
  const points = projector.dataSet.points;
  return {
    type: projection ? projection.projectionType : null,
    components: projection ? projection.projectionComponents : null,
    points: points.length,
    first: points.length ? points[0].projections : null,
  };
}
"""

#: In one call: every point's coordinates as the page holds them (flat, row by row), and the
#: positions the scatter plot draws (its point sprites' WebGL position buffer, x y z per point).
_COORDINATES_JS = """
(keys) => {
  const dashboard = document.querySelector('vz-projector-dashboard');
  const projector = dashboard.shadowRoot.querySelector('vz-projector');
  const points = projector.dataSet.points;
  const held = new Float64Array(points.length * keys.length);
  points.forEach((point, i) => keys.forEach((key, j) => {
    held[i * keys.length + j] = point.projections[key];
  }));
  const plot = projector.projectorScatterPlotAdapter.scatterPlot;
  const sprites = plot.visualizers.find(v => v.points && v.points.geometry);
  const drawn = sprites ? sprites.points.geometry.getAttribute('position') : null;
  return {
    held: Array.from(held),
    drawn: drawn ? Array.from(drawn.array) : null,
    drawnCount: drawn ? drawn.count : null,
  };
}
"""


def _check_big_state(page: ProjectorPage, state: dict[str, Any], rows: int) -> np.ndarray:
    """Click the one state; every point the page holds and draws sits where the file says.

    Polls only the projection type and the first point (not 100,000 points per poll), then
    reads all coordinates and the scatter plot's position buffer in one call. Returns the
    drawn positions (rows x 3).
    """
    radios = page.plugin.locator(_RADIOS)
    radios.first.wait_for()
    radios.first.click()
    kind = state["selectedProjection"]
    keys = [f"{kind}-{j}" for j in range(len(state["projections"][0]))]

    def loaded(held: dict[str, Any]) -> bool:
        return (
            held["type"] == kind
            and held["components"][: len(keys)] == keys
            and held["first"] == state["projections"][0]
        )

    held = page.frame().evaluate(_LOADED_JS)
    for _ in range(300):
        if loaded(held):
            break
        page.page.wait_for_timeout(200)
        held = page.frame().evaluate(_LOADED_JS)
    assert loaded(held), (state["label"], held)
    assert held["points"] == rows
    read = page.frame().evaluate(_COORDINATES_JS, keys)
    file_coords = np.array([[point[key] for key in keys] for point in state["projections"]])
    page_coords = np.array(read["held"], dtype=np.float64).reshape(rows, len(keys))
    np.testing.assert_array_equal(page_coords, file_coords)
    assert read["drawnCount"] == rows, "the scatter plot does not draw every point"
    return np.array(read["drawn"], dtype=np.float64).reshape(rows, 3)


@pytest.mark.timeout(900)  # ~3 minutes on 2 idle cores; shared CI machines are slower
def test_100k_row_umap_export_loads_every_point(tmp_path: Path, artifacts_dir: Path) -> None:
    """``embedding-projector export --layout umap`` of 100,000 rows, clicked in the page.

    100,000 x 16 (UMAP's cost is mostly its 100,000-row neighbour graph and epochs; low
    dimensions keep the neighbour search and the page's own PCA on load short): through the
    CLI, the page's data set holds exactly the file's coordinates for all 100,000 points, and
    the scatter plot's position buffer draws all of them where those coordinates put them.
    """
    sync_api = _require_browser()
    pytest.importorskip("umap")
    from embedding_projector.cli import main
    from vector_files import word2vec_bytes

    rows, dims = 100_000, 16
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, dims)) * 3
    matrix = (centres[np.arange(rows) % 50] + rng.normal(size=(rows, dims))).astype(np.float32)
    source = tmp_path / "vectors.bin"
    source.write_bytes(word2vec_bytes([f"r{i}" for i in range(rows)], matrix, binary=True))
    clock = _Phases()
    assert main(["export", str(source), "--logdir", str(tmp_path / "big"), "--layout", "umap"]) == 0
    clock.done("export --layout umap (UMAP of every row)")
    (states_file,) = (tmp_path / "big").rglob("bookmarks.r*.json")
    (state,) = json.loads(states_file.read_bytes())
    assert state["selectedProjection"] == "umap" and len(state["projections"]) == rows
    (entry,) = ProjectorWriter(tmp_path / "big").entries()
    tensor_name = entry.tensor_name
    with TensorBoard(tmp_path) as server:
        server.wait_for(lambda: "big" in server.runs(), timeout=60)
        clock.done("TensorBoard up")
        with open_projector(sync_api, server.base, timeout_ms=600_000) as page:
            page.select_tensor(tensor_name, rows, dims)
            clock.done("page open, 100,000 points loaded")
            drawn = _check_big_state(page, state, rows)
            clock.done("bookmark clicked, coordinates read and compared")
            page.screenshot(artifacts_dir / "browser-layout-umap-100k.png")
    # The drawn positions are the file's coordinates, each axis scaled into the plot's box
    # (an increasing affine map), flat in z: every point drawn where its coordinates put it.
    coords = np.array([[p["umap-0"], p["umap-1"]] for p in state["projections"]])
    for axis in range(2):
        slope, offset = np.polyfit(coords[:, axis], drawn[:, axis], 1)
        assert slope > 0
        residual = drawn[:, axis] - (slope * coords[:, axis] + offset)
        assert np.abs(residual).max() <= 1e-5 * np.ptp(drawn[:, axis])
    assert not drawn[:, 2].any()
    clock.done("drawn positions checked")
    print(clock.report())


class _Phases:
    """Where a long test's time goes (printed with ``-s``)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.lines: list[str] = []

    def done(self, what: str) -> None:
        now = time.perf_counter()
        self.lines.append(f"{now - self.last:7.1f} s  {what}")
        self.last = now

    def report(self) -> str:
        total = time.perf_counter() - self.start
        return "\n".join([*self.lines, f"{total:7.1f} s  in all"])
