"""Saved layouts in the real projector page: click the bookmark, the page holds our coordinates.

A run written step by step with :class:`AlignedLayout`, plus a UMAP state on the last step; and
a real Word2Vec run whose states the gensim callback wrote through the snapshot sink with its
default layout. In headless Chromium: pick the step, click each state's radio icon
under BOOKMARKS, then read what the page holds (``vz-projector``'s ``dataSet.points[i]
.projections`` and ``projection.projectionType``) and compare it with the file.

The 100,000-row UMAP check (``EP_BROWSER_100K=1``) takes minutes on 2 cores; run it by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser_page import OfflineGuard, ProjectorPage, launch_chromium
from embedding_projector import AlignedLayout, ProjectorWriter
from embedding_projector.layouts import umap_layout
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
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            OfflineGuard().install(context)
            page = ProjectorPage(context.new_page(), server.base)
            page.open()
            page.select_tensor(name, ROWS, DIM)
            _check_states(page, states, ROWS)
            page.plugin.locator(_RADIOS).first.click()
            page.screenshot(artifacts_dir / "browser-layout-bookmark.png")
            # No metadata: the states name no label column, and still load.
            page.select_tensor(bare_name, 150, 8)
            _check_states(page, json.loads(bare_file.read_bytes()), 150)
        finally:
            browser.close()


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
        with sync_api.sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                OfflineGuard().install(context)
                page = ProjectorPage(context.new_page(), server.base)
                page.open()
                page.select_tensor(entry.tensor_name, words, dims)
                _check_state(page, states, labels.index(f"step {step} · aligned PCA"), words)
                page.screenshot(artifacts_dir / "browser-layout-word2vec-bookmark.png")
            finally:
                browser.close()


@pytest.mark.skipif(
    not os.environ.get("EP_BROWSER_100K"), reason="minutes on 2 cores: EP_BROWSER_100K=1 to run"
)
def test_100k_row_umap_export_loads_every_point(tmp_path: Path, artifacts_dir: Path) -> None:
    """``embedding-projector export --layout umap`` of 100,000 rows, clicked in the page."""
    sync_api = _require_browser()
    pytest.importorskip("umap")
    from embedding_projector import export_embeddings

    rows, dims = 100_000, 200
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, dims)) * 2
    matrix = (centres[np.arange(rows) % 50] + rng.normal(size=(rows, dims))).astype(np.float32)
    words = [f"r{i}" for i in range(rows)]
    summary = export_embeddings((matrix, words), tmp_path / "big", layout="umap")
    (states_file,) = (tmp_path / "big").rglob("bookmarks.r*.json")
    states = json.loads(states_file.read_bytes())
    with TensorBoard(tmp_path) as server:
        server.wait_for(lambda: "big" in server.runs(), timeout=60)
        with sync_api.sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = ProjectorPage(context.new_page(), server.base)
                page.page.set_default_timeout(600_000)
                page.open()
                page.select_tensor(summary.tensor_name, rows, dims)
                _check_states(page, states, rows)
                page.screenshot(artifacts_dir / "browser-layout-umap-100k.png")
            finally:
                browser.close()
