"""The Embedding Evolution page in headless Chromium, read back through its test hook."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import pytest

from browser_page import VIEWPORT, OfflineGuard, launch_chromium
from tb_server import TensorBoard
from test_browser import _require_browser
from test_dashboard import EPOCHS, PLUGIN, evolution, layout, lee_word2vec, listing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = 90.0


def poll(frame: Any, script: str, predicate: Any, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = frame.evaluate(script)
        if predicate(value):
            return value
        frame.page.wait_for_timeout(200)
    raise AssertionError(f"timed out: {script} -> {value!r}")


def dashboard_frame(page: Any) -> Any:
    """The plugin's iframe, once its module has rendered."""
    handle = page.wait_for_selector("iframe", state="attached", timeout=TIMEOUT * 1000)
    frame = handle.content_frame()
    frame.wait_for_function("() => !!window.embeddingEvolution", timeout=TIMEOUT * 1000)
    return frame


def test_the_page_steps_colours_searches_and_shows_neighbours(tmp_path, artifacts_dir):
    sync_api = _require_browser()
    root = tmp_path / "logs"
    lee_word2vec(root / "word2vec")
    with TensorBoard(root) as server:
        info = server.wait_for(lambda: listing(server).get("word2vec"))["words"]
        rows, last = info["rows"], info["steps"][-1]
        assert last == EPOCHS
        meta = json.loads(evolution(server, "metadata", run="word2vec", tag="words", step=last))
        labels = meta["columns"][0]
        with sync_api.sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                context = browser.new_context(viewport=VIEWPORT)
                guard = OfflineGuard()
                guard.install(context)
                page = context.new_page()
                errors: list[str] = []
                failed: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("requestfailed", lambda r: failed.append(r.url))
                page.goto(f"{server.base}/#{PLUGIN}")
                try:
                    frame = dashboard_frame(page)
                except AssertionError as error:
                    raise AssertionError(f"{error}; console: {errors}; failed: {failed}") from None
                state = "() => window.embeddingEvolution.state()"
                poll(frame, state, lambda s: s["step"] == last and s["count"] == rows)

                # Arrow keys on the slider: last step -> step 5, drawn as step 5's layout.
                frame.locator("input[type=range]").first.focus()
                for _ in range(last - 5):
                    page.keyboard.press("ArrowLeft")
                got = poll(frame, state, lambda s: s["step"] == 5)
                assert got == {"run": "word2vec", "tag": "words", "step": 5, "count": rows}
                drawn = np.array(
                    frame.evaluate("() => Array.from(window.embeddingEvolution.positions())"),
                    dtype=np.float32,
                ).reshape(-1, 2)
                expected = layout(server, "word2vec", "words", 5)
                radius = float(np.abs(expected).max())
                np.testing.assert_allclose(drawn, expected, atol=1e-4 * radius, rtol=0)
                page.screenshot(path=str(artifacts_dir / "dashboard-step5.png"))

                # Colour by a metadata column: the legend lists its values, each row is
                # drawn in its value's colour.
                column = info["columns"][0]
                frame.locator("select[title='colour by']").first.select_option(column)
                entries = poll(
                    frame,
                    "() => [...document.querySelectorAll('.ee-legend-entry, .ee-legend-min')]"
                    ".map(e => e.textContent)",
                    bool,
                )
                cells = meta["columns"][meta["header"].index(column)]
                if entries and "(" in entries[0]:  # categorical
                    top = re.match(r"(.*) \((\d+)\)$", entries[0])
                    assert top is not None and cells.count(top[1]) == int(top[2])
                    row = cells.index(top[1])
                    swatch = frame.evaluate(
                        "() => document.querySelector('.ee-legend-entry .ee-swatch')"
                        ".style.background"
                    )
                    colour = frame.evaluate(f"() => window.embeddingEvolution.colorOf({row})")
                    assert _rgb(colour) == swatch
                else:
                    assert float(entries[0]) == min(float(c) for c in cells)

                # Search: every label containing the text, selected.
                word = next(w for w in labels if len(w) > 4)
                frame.locator("input[type=search]").first.fill(word)
                wanted = [i for i, label in enumerate(labels) if word in label.lower()]
                selection = poll(
                    frame,
                    "() => window.embeddingEvolution.selection()",
                    lambda s: sorted(s) == wanted,
                )
                assert sorted(selection) == wanted
                text = frame.locator(".ee-matches").first.inner_text()
                assert text.startswith(f"{len(wanted)} match")

                # A click: neighbours from the server, what changed, the row's path.
                row = wanted[0]
                frame.evaluate(f"() => window.embeddingEvolution.click({row})")
                shown = poll(frame, "() => window.embeddingEvolution.neighbors()", bool)
                route = json.loads(
                    evolution(
                        server, "neighbors", run="word2vec", tag="words", step=5, row=row, k=10
                    )
                )
                assert shown == route
                box = frame.locator(".ee-neighbors").first.inner_text()
                assert route["neighbors"][0]["label"] in box and "since step 4" in box
                paths = poll(frame, "() => window.embeddingEvolution.paths()", bool)
                expected_path = [layout(server, "word2vec", "words", s)[row] for s in info["steps"]]
                np.testing.assert_allclose(np.array(paths[0]), expected_path, atol=1e-6)
                page.screenshot(path=str(artifacts_dir / "dashboard-neighbours.png"))
            finally:
                browser.close()
        assert not errors, errors
        assert not failed, failed
        assert not guard.blocked, guard.report()


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_a_new_step_appears_without_a_reload(tmp_path):
    from embedding_projector import ProjectorWriter

    sync_api = _require_browser()
    root = tmp_path / "logs"
    writer = ProjectorWriter(root / "live")
    rng = np.random.default_rng(2)
    labels = [f"w{i}" if i % 3 else f"語{i}" for i in range(60)]
    for step in (1, 2):
        writer.add_embedding(rng.normal(size=(60, 8)), metadata=labels, global_step=step)
    with TensorBoard(root) as server, sync_api.sync_playwright() as playwright:
        server.wait_for(lambda: listing(server).get("live"))
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{server.base}/#{PLUGIN}")
            frame = dashboard_frame(page)
            steps = "() => window.embeddingEvolution.steps()"
            poll(frame, steps, lambda s: s == [1, 2])
            writer.add_embedding(rng.normal(size=(60, 8)), metadata=labels, global_step=3)
            poll(frame, steps, lambda s: s == [1, 2, 3])
            assert frame.locator("input[type=range]").first.get_attribute("max") == "2"
        finally:
            browser.close()
