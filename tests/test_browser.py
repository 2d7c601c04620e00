"""The projector page itself, in headless Chromium, against a real TensorBoard.

What a person checks after ``tensorboard --logdir ...`` → PROJECTOR: every step is in the tensor
dropdown in order, each step loads with the right number of points, searching a label (Japanese
included, and one that contained a tab) finds exactly that point, sprite images load, and a step
written while the page is open appears after a browser reload. Screenshots go to the
``artifacts_dir`` fixture's directory. The page must work offline: every request that does not go
to 127.0.0.1 is aborted and listed in ``browser-requests.txt``.

Adding a run (e.g. one written by the exporter or a training callback) is one entry in
``RUN_WRITERS``: a function that writes ``logdir/<run>`` and returns
``expect_run(logdir, "<run>", search=["a label"])``; ``ProjectorPage.check_run`` then checks it.

Needs Debian's ``chromium`` (and ``fonts-noto-cjk`` for the Japanese labels to render): skipped
without it, except in CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser_page import (
    CHROMIUM_PATH,
    ExpectedRun,
    OfflineGuard,
    ProjectorPage,
    expect_run,
    open_projector,
)
from tb_server import TensorBoard

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORD_STEPS = (0, 2, 1, 100_000, 99_999)  # written out of order; shown in step order
WORD_ROWS, WORD_DIM = 50, 300
JAPANESE = ("東京", "大阪")
TAB_LABEL = "tab\there"  # the writer escapes it to the visible text tab\there
LATE_LABEL = "新宿"  # only in the last step: proves switching steps loads that step's labels


def _require_browser() -> Any:
    """Playwright's sync API, or skip (fail in CI) when the browser or Playwright is missing."""
    problem = None
    if not CHROMIUM_PATH.exists():
        problem = f"{CHROMIUM_PATH} not found (apt-get install chromium fonts-noto-cjk)"
    else:
        try:
            from playwright import sync_api
        except ImportError:
            problem = "playwright is not installed (pip install playwright)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {problem}")
        pytest.skip(problem)
    return sync_api


# --------------------------------------------------------------------------- the log dir


def word_labels(step: int) -> list[str]:
    labels = [f"word{i:02d}" for i in range(WORD_ROWS - 3)] + [*JAPANESE, TAB_LABEL]
    if step == max(WORD_STEPS):
        labels[0] = LATE_LABEL
    return labels


def write_words_run(logdir: Path) -> ExpectedRun:
    """Several steps of one tag via our writer, plus a tensorboardX snapshot in the same run."""
    from tensorboardX import SummaryWriter

    from embedding_projector import ProjectorWriter

    run_dir = logdir / "words"
    rng = np.random.default_rng(8)
    tbx = SummaryWriter(str(run_dir))
    tbx.add_embedding(
        rng.normal(size=(WORD_ROWS, 16)).astype(np.float32),
        metadata=[f"tbx{i}" for i in range(WORD_ROWS)],
        tag="words_tbx",
        global_step=0,
    )
    tbx.close()
    writer = ProjectorWriter(run_dir)
    for step in WORD_STEPS:
        writer.add_embedding(
            rng.normal(size=(WORD_ROWS, WORD_DIM)),
            metadata=word_labels(step),
            global_step=step,
            tag="words",
        )
    return expect_run(logdir, "words", search=("大阪", "word07"))


def write_digits_run(logdir: Path) -> ExpectedRun:
    """scikit-learn's digits as sprite images."""
    from sklearn.datasets import load_digits

    from embedding_projector import ProjectorWriter

    digits = load_digits()
    count = 120
    images = (digits.images[:count] / 16.0)[:, None, :, :]  # N, 1, 8, 8 in [0, 1]
    labels = [f"digit{int(target)}-{i:03d}" for i, target in enumerate(digits.target[:count])]
    ProjectorWriter(logdir / "digits").add_embedding(
        digits.data[:count], metadata=labels, label_img=images, global_step=3, tag="digits"
    )
    return expect_run(logdir, "digits", search=(labels[17],), sprites=True)


def write_gensim_run(logdir: Path) -> ExpectedRun:
    """The gensim callback on Japanese characters, each point drawn as its glyph."""
    from gensim.models import Word2Vec

    from embedding_projector.gensim import DEFAULT_INSIGHT, Any2VecProjector

    text = "東京都は日本の首都です。大阪は西にあります。京都も古い都です。" * 30
    sentences = [list(line) for line in text.split("。") if line]
    callback = Any2VecProjector(
        logdir / "gensim",
        sprites="glyphs",
        insight=replace(DEFAULT_INSIGHT, maps=False),
        log_loss=False,
    )
    Word2Vec(
        sentences, vector_size=16, min_count=1, workers=1, seed=3, epochs=3, callbacks=[callback]
    )
    return expect_run(logdir, "gensim", search=("京",), sprites=True)


def write_lightning_run(logdir: Path) -> ExpectedRun:
    """The Lightning callback in a TensorBoardLogger's version_0 (a nested run name)."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    from embedding_projector.lightning import EmbeddingProjector
    from embedding_projector.sink import InsightOptions

    class Tokens(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(40, 6)
            self.out = torch.nn.Linear(6, 40)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            (tokens,) = batch
            return torch.nn.functional.cross_entropy(self.out(self.embed(tokens)), tokens)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.5)

    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randint(0, 40, (64,))), batch_size=16)
    vocab = [f"tok{i}" for i in range(40)]
    trainer = pl.Trainer(
        max_epochs=3,
        logger=TensorBoardLogger(str(logdir), name="lightning", version=0),
        callbacks=[
            EmbeddingProjector(
                labels={"embed": vocab}, insight=InsightOptions(maps=False, scalars=False)
            )
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice about workers and logging
        trainer.fit(Tokens(), data)
    return expect_run(logdir, "lightning/version_0", search=("tok17",))


def write_export_run(logdir: Path) -> ExpectedRun:
    """The one-shot exporter on gensim's shipped fastText vectors: a neighbourhood first."""
    from gensim.test.utils import datapath

    from embedding_projector.export import RowSelection, export_embeddings

    export_embeddings(
        datapath("lee_fasttext.vec"),
        logdir / "export",
        RowSelection(near=["suicide"], near_k=15, limit=300),
    )
    return expect_run(logdir, "export", search=("suicide", "officials"))


#: One function per run; each writes ``logdir/<run>`` and returns what the page must show.
RUN_WRITERS: dict[str, Callable[[Path], ExpectedRun]] = {
    "words": write_words_run,
    "digits": write_digits_run,
    "export": write_export_run,
    "gensim": write_gensim_run,
    "lightning/version_0": write_lightning_run,
}


def write_live_run(logdir: Path, steps: tuple[int, ...]) -> list[str]:
    """A small run the live-refresh test adds steps to while the page is open."""
    from embedding_projector import ProjectorWriter

    writer = ProjectorWriter(logdir / "live")
    rng = np.random.default_rng(len(writer.steps("live")))
    return [
        writer.add_embedding(
            rng.normal(size=(20, 8)),
            metadata=[f"live{i}" for i in range(20)],
            global_step=s,
            tag="live",
        ).tensor_name
        for s in steps
    ]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sync_api() -> Any:
    return _require_browser()


@pytest.fixture(scope="module")
def site(
    sync_api: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TensorBoard, dict[str, ExpectedRun]]]:
    logdir = tmp_path_factory.mktemp("browser") / "logs"
    expected = {name: write(logdir) for name, write in RUN_WRITERS.items()}
    write_live_run(logdir, steps=(0,))
    with TensorBoard(logdir) as server:
        server.wait_for(lambda: set(expected) | {"live"} <= set(server.runs()), timeout=60)
        yield server, expected


@pytest.fixture(scope="module")
def guard() -> OfflineGuard:
    return OfflineGuard()


@pytest.fixture(scope="module")
def projector(
    sync_api: Any,
    site: tuple[TensorBoard, dict[str, ExpectedRun]],
    guard: OfflineGuard,
    artifacts_dir: Path,
) -> Iterator[ProjectorPage]:
    server, _ = site
    with open_projector(sync_api, server.base, guard=guard) as page:
        try:
            yield page
        finally:
            (artifacts_dir / "browser-requests.txt").write_text(guard.report(), encoding="utf-8")


# --------------------------------------------------------------------------- tests


def test_page_works_offline_and_lists_every_run(
    projector: ProjectorPage,
    site: tuple[TensorBoard, dict[str, ExpectedRun]],
    guard: OfflineGuard,
    artifacts_dir: Path,
) -> None:
    """The page loads with every request not to 127.0.0.1 aborted (TensorBoard 2.21 makes none:
    see browser-requests.txt), lists our runs and not the writer's refresh marker run."""
    _, expected = site
    state = projector.state()
    assert state["points"] and state["dim"], state
    shown = projector.shown_runs()
    assert set(expected) | {"live"} <= set(shown), shown
    assert not any(".projector-refresh" in run for run in shown), shown
    assert any("/data/plugin/projector/tensor?" in url for url in guard.requests)
    projector.screenshot(artifacts_dir / "browser-opened.png")


@pytest.mark.parametrize("run", list(RUN_WRITERS))
def test_run_as_a_person_sees_it(
    projector: ProjectorPage,
    site: tuple[TensorBoard, dict[str, ExpectedRun]],
    artifacts_dir: Path,
    run: str,
) -> None:
    _, expected = site
    projector.check_run(expected[run], artifacts_dir)


def test_steps_listed_in_step_order_and_switching_loads_that_step(
    projector: ProjectorPage, artifacts_dir: Path
) -> None:
    projector.select_run("words")
    assert projector.shown_tensors() == [
        "words:000000000",
        "words:000000001",
        "words:000000002",
        "words:000099999",
        "words:000100000",
        "words_tbx:000000000",  # tensorboardX's name, brought to our 9 digits on our write
    ]
    # The last step has its own labels: the page must load that step's metadata, not reuse.
    projector.select_tensor("words:000100000", WORD_ROWS, WORD_DIM)
    assert projector.search_finds_one(LATE_LABEL) == 0
    projector.screenshot(artifacts_dir / "browser-words-step-100000.png")

    projector.select_tensor("words:000000000", WORD_ROWS, WORD_DIM)
    assert projector.search(LATE_LABEL) == "0 matches."
    # Japanese labels are drawn as glyphs, not as identical empty boxes (needs a CJK font).
    assert projector.glyphs_render("".join(JAPANESE) + LATE_LABEL), "no CJK font: fonts-noto-cjk"
    # The found point is the right row: labels stay aligned (escaped tab, Japanese).
    assert projector.search_finds_one("東京") == word_labels(0).index("東京")
    assert projector.search_finds_one("tab\\there") == word_labels(0).index(TAB_LABEL)


def test_digits_sprites_load(projector: ProjectorPage, artifacts_dir: Path) -> None:
    projector.select_run("digits")
    projector.select_tensor("digits:000000003", 120, 64)
    state = projector.wait_sprites()
    # 120 cells of 8x8 px in an 11 x 11 grid.
    assert (state["sprite"]["width"], state["sprite"]["height"]) == (88, 88)
    projector.screenshot(artifacts_dir / "browser-digits-sprites.png")


def test_new_step_appears_after_browser_reload(
    projector: ProjectorPage,
    site: tuple[TensorBoard, dict[str, ExpectedRun]],
    artifacts_dir: Path,
) -> None:
    server, _ = site
    projector.select_run("live")
    assert projector.shown_tensors() == ["live:000000000"]

    (name,) = write_live_run(server.logdir, steps=(7,))
    # TensorBoard notices the renamed refresh run on its next reload (1 s here).
    server.wait_for(lambda: name in server.tensor_names("live"), timeout=60)
    projector.reload()
    projector.select_run("live")
    assert projector.shown_tensors() == ["live:000000000", "live:000000007"]
    projector.select_tensor(name, 20, 8)
    projector.screenshot(artifacts_dir / "browser-live-refresh.png")
