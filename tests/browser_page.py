"""Drive TensorBoard's Embedding Projector page in headless Chromium (a small page object).

The projector lives two iframes deep (TensorBoard page → ``plugin_entry.html`` →
``projector_binary.html``) inside open shadow roots (``vz-projector-dashboard`` →
``vz-projector`` → ``vz-projector-data-panel`` / ``vz-projector-inspector-panel``). Playwright's
CSS and text locators pierce open shadow roots, so a nested ``frame_locator`` plus CSS reaches
every control; reading the panels' Polymer properties (``runNames``, ``tensorNames``, the loaded
data set) goes through ``Frame.evaluate`` on the projector's own frame.

Everything runs offline: :func:`launch_chromium` uses Debian's ``/usr/bin/chromium`` (Playwright's
own browser download is not used) and :class:`OfflineGuard` aborts every request that does not go
to 127.0.0.1, recording it. TensorBoard 2.21's projector page makes no such request: its Polymer
bundle would add a Google Fonts ``<link>``, but ``projector_binary.js`` sets
``window.polymerSkipLoadingFontRoboto = true`` on its second line and Roboto is served locally.

The tensor dropdown's order is the frontend's, not the config's: tensors with metadata first,
then more rows first, then by name. So the steps of one tag are in step order only while their
row count stays the same (our names pad the step to 9 digits for the by-name part).

Adding a run to the browser test is one line: write it into the log dir, then
``expected.append(expect_run(logdir, "my-run", search=["東京"]))``; :meth:`ProjectorPage.check_run`
checks everything a person would look at.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Frame,
        FrameLocator,
        Locator,
        Page,
        Playwright,
        Route,
        ViewportSize,
    )

CHROMIUM_PATH = Path(os.environ.get("EP_CHROMIUM", "/usr/bin/chromium"))
#: Software WebGL (SwiftShader) is required: with ``--disable-gpu`` the projector says
#: "Your browser or device does not have WebGL enabled".
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--ignore-gpu-blocklist",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: Generous: TensorBoard and SwiftShader share 2 busy cores with other test runs.
TIMEOUT_MS = 90_000
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
LOCAL_ORIGIN = "http://127.0.0.1"

_PROJECTOR_JS = """
() => {
  const dashboard = document.querySelector('vz-projector-dashboard');
  const projector = dashboard && dashboard.shadowRoot.querySelector('vz-projector');
  if (!projector) return null;
  const data = projector.shadowRoot.querySelector('vz-projector-data-panel');
  const inspector = projector.shadowRoot.querySelector('vz-projector-inspector-panel');
  const dataSet = projector.dataSet;
  const info = dataSet && dataSet.spriteAndMetadataInfo;
  const sprite = info && info.spriteImage;
  const adapter = projector.projectorScatterPlotAdapter;
  return {
    runNames: data.runNames || [],
    selectedRun: data.selectedRun || null,
    tensorNames: (data.tensorNames || []).map(t => t.name),
    selectedTensor: data.selectedTensor || null,
    points: dataSet ? dataSet.points.length : null,
    dim: dataSet ? dataSet.dim[1] : null,
    labels: dataSet ? dataSet.points.map(p => String(p.metadata[inspector.selectedMetadataField]))
                    : [],
    selected: projector.selectedPointIndices || [],
    sprite: sprite ? {complete: sprite.complete, width: sprite.naturalWidth,
                      height: sprite.naturalHeight} : null,
    spriteMode: adapter ? !!adapter.getSpriteImageMode() : false,
  };
}
"""


_GLYPHS_JS = """
(chars) => {
  const canvas = document.createElement('canvas');
  canvas.width = 48;
  canvas.height = 40;
  const context = canvas.getContext('2d');
  return chars.map(char => {
    context.clearRect(0, 0, 48, 40);
    context.font = '28px Roboto, sans-serif';
    context.fillText(char, 2, 30);
    return Array.from(context.getImageData(0, 0, 48, 40).data).join(',');
  });
}
"""


# --------------------------------------------------------------------------- browser


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Debian Chromium with software WebGL and no background networking."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS)
    )


@contextlib.contextmanager
def open_projector(
    sync_api: Any,
    base_url: str,
    *,
    guard: OfflineGuard | None = None,
    timeout_ms: float | None = None,
) -> Iterator[ProjectorPage]:
    """Chromium (offline: only 127.0.0.1) on the projector page of the TensorBoard at
    ``base_url``; closed on exit. ``sync_api`` is ``playwright.sync_api``."""
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            (guard if guard is not None else OfflineGuard()).install(context)
            page = ProjectorPage(context.new_page(), base_url)
            if timeout_ms is not None:
                page.page.set_default_timeout(timeout_ms)
            page.open()
            yield page
        finally:
            browser.close()


@dataclass
class OfflineGuard:
    """Lets only 127.0.0.1 through; records every request and every blocked one."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def install(self, context: BrowserContext) -> None:
        context.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith((LOCAL_ORIGIN + ":", LOCAL_ORIGIN + "/", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def report(self) -> str:
        lines = [f"{len(self.requests)} requests, {len(self.blocked)} blocked (not 127.0.0.1)"]
        lines += [f"BLOCKED {url}" for url in self.blocked]
        lines += [f"ok      {url}" for url in self.requests if url not in self.blocked]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class ExpectedTensor:
    """One entry of a run's tensor dropdown."""

    name: str
    tag: str
    step: int
    rows: int
    dim: int


@dataclass(frozen=True)
class ExpectedRun:
    """What a person should see for one run.

    Attributes:
        run: the run name (its directory relative to the log dir, ``/``-separated).
        tensors: every snapshot of the run.
        search: labels each of which must match exactly one point of the default tensor.
        sprites: whether the run has sprite images.
    """

    run: str
    tensors: tuple[ExpectedTensor, ...]
    search: tuple[str, ...] = ()
    sprites: bool = False

    def tensor(self, name: str) -> ExpectedTensor:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(name)


_STEP_IN_NAME = re.compile(r"^(?P<tag>.*):(?P<step>\d+)(?: .*)?$")


def expect_run(
    logdir: str | os.PathLike[str],
    run: str,
    *,
    search: Iterable[str] = (),
    sprites: bool | None = None,
) -> ExpectedRun:
    """Expectations for ``logdir/run`` from its projector config (our writer's or tensorboardX's).

    Tag and step are read from the tensor name (``tag:000000005`` or tensorboardX's
    ``tag:00005``); ``sprites`` defaults to "the config has a sprite entry".
    """
    from embedding_projector import ProjectorWriter

    run_dir = Path(logdir) / run if run != "." else Path(logdir)
    entries = ProjectorWriter(run_dir).entries()
    if not entries:
        raise ValueError(f"{run_dir} has no projector config entries")
    tensors = []
    for entry in entries:
        match = _STEP_IN_NAME.match(entry.tensor_name)
        tag, step = (match["tag"], int(match["step"])) if match else (entry.tensor_name, 0)
        if len(entry.tensor_shape) == 2:
            rows, dim = (int(v) for v in entry.tensor_shape)
        else:  # tensorboardX writes TSV without tensor_shape
            lines = (run_dir / entry.tensor_path).read_text(encoding="utf-8").splitlines()
            rows, dim = len(lines), len(lines[0].split("\t"))
        tensors.append(ExpectedTensor(entry.tensor_name, tag, step, rows, dim))
    if sprites is None:
        sprites = any(entry.sprite.image_path for entry in entries)
    return ExpectedRun(run, tuple(tensors), tuple(search), sprites)


def check_steps_in_order(shown: Sequence[str], expected: ExpectedRun) -> None:
    """Every snapshot is listed once, and each tag's steps appear in increasing order."""
    wanted = sorted(t.name for t in expected.tensors if t.rows > 1 and t.dim > 1)
    assert sorted(shown) == wanted, f"run {expected.run}: dropdown {shown}, expected {wanted}"
    by_tag: dict[str, list[int]] = {}
    for name in shown:
        tensor = expected.tensor(name)
        by_tag.setdefault(tensor.tag, []).append(tensor.step)
    for tag, steps in by_tag.items():
        assert steps == sorted(steps), f"run {expected.run}, tag {tag}: steps shown as {steps}"


# --------------------------------------------------------------------------- page object


class ProjectorPage:
    """The projector tab of one TensorBoard, in one browser page."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.page.set_default_timeout(TIMEOUT_MS)

    # -- navigation -------------------------------------------------------------------------

    @property
    def plugin(self) -> FrameLocator:
        """The projector's own document (two iframes deep)."""
        return self.page.frame_locator("iframe").frame_locator("iframe")

    def frame(self) -> Frame:
        """The projector's frame (for reading its components' properties)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            for frame in self.page.frames:
                if "projector_binary.html" in frame.url:
                    return frame
            if time.monotonic() > deadline:
                raise AssertionError(f"no projector frame in {[f.url for f in self.page.frames]}")
            self.page.wait_for_timeout(100)

    def open(self) -> None:
        """Open ``/#projector`` and wait until a tensor is loaded (its point count shows)."""
        self.page.goto(f"{self.base_url}/#projector")
        self.wait_until_loaded()

    def reload(self) -> None:
        """What a person does after new data arrives: reload the page."""
        self.page.reload()
        self.wait_until_loaded()

    def wait_until_loaded(self) -> None:
        self.plugin.get_by_text(re.compile(r"Points: \d+")).first.wait_for()
        self.wait_for(lambda s: s["points"] and s["selectedTensor"], "a tensor to load")

    # -- reading ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Runs, tensors, selection and the loaded data set, as the page holds them."""
        result = self.frame().evaluate(_PROJECTOR_JS)
        if result is None:
            raise AssertionError("the projector components are not on the page")
        return dict(result)

    def wait_for(self, predicate: Callable[[dict[str, Any]], Any], what: str) -> dict[str, Any]:
        """Poll :meth:`state` until ``predicate`` holds (generous timeout)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.state()
            if predicate(state):
                return state
            self.page.wait_for_timeout(200)
        shown = {k: v for k, v in state.items() if k != "labels"}
        raise AssertionError(f"timed out waiting for {what}; page state: {shown}")

    def _dropdowns(self) -> Locator:
        # The run and tensor dropdowns are the only direct children of the data panel's
        # container (label-by, colour-by, edit-by sit in their own divs).
        return self.plugin.locator("vz-projector-data-panel div.container > paper-dropdown-menu")

    def _run_dropdown(self) -> Locator | None:
        dropdowns = self._dropdowns()
        return dropdowns.first if dropdowns.count() == 2 else None

    def _tensor_dropdown(self) -> Locator:
        return self._dropdowns().last

    @staticmethod
    def _item_names(dropdown: Locator) -> list[str]:
        names = dropdown.evaluate(
            """d => Array.from(d.querySelectorAll('paper-item')).map(
                   item => item.childNodes[0] ? item.childNodes[0].textContent.trim() : '')"""
        )
        return [str(name) for name in names]

    def _settled_items(self, dropdown: Locator, key: str) -> list[str]:
        """The dropdown's rendered entries once they agree with the panel's own list."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            shown = self._item_names(dropdown)
            wanted = self.state()[key]
            if shown == wanted:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"dropdown shows {shown}, the panel holds {wanted}")
            self.page.wait_for_timeout(100)

    def shown_runs(self) -> list[str]:
        """The run dropdown's entries, top to bottom (one run: no dropdown, the selected run)."""
        dropdown = self._run_dropdown()
        if dropdown is None:
            return [self.state()["selectedRun"]]
        return self._settled_items(dropdown, "runNames")

    def shown_tensors(self) -> list[str]:
        """The tensor dropdown's entries, top to bottom."""
        return self._settled_items(self._tensor_dropdown(), "tensorNames")

    # -- acting -----------------------------------------------------------------------------

    def _choose(self, dropdown: Locator, name: str) -> None:
        """Open a dropdown and click the entry whose own text is ``name`` (not a prefix)."""
        dropdown.click()
        item = dropdown.locator("paper-item", has_text=re.compile(rf"^\s*{re.escape(name)}(\s|$)"))
        item.first.click()

    def open_tensor_dropdown(self) -> None:
        """Open the tensor (step) dropdown and leave it open (for pictures)."""
        dropdown = self._tensor_dropdown()
        dropdown.click()
        dropdown.locator("paper-listbox").wait_for(state="visible")
        dropdown.locator("paper-item").last.wait_for(state="visible")

    def select_run(self, run: str) -> None:
        """Pick a run in the run dropdown and wait until its first tensor is loaded."""
        state = self.state()
        if state["selectedRun"] == run:
            return
        dropdown = self._run_dropdown()
        if dropdown is None:
            raise AssertionError(f"no run dropdown; the page shows only {state['selectedRun']!r}")
        before = state["tensorNames"]
        self._choose(dropdown, run)
        # The run name changes before the tensor list does: wait for the list too (the runs
        # in these tests never share an identical list of tensor names).
        self.wait_for(
            lambda s: (
                s["selectedRun"] == run
                and s["tensorNames"] != before
                and s["selectedTensor"] in s["tensorNames"]
                and s["points"] is not None
            ),
            f"run {run!r} to load",
        )

    def select_tensor(self, name: str, rows: int, dim: int) -> None:
        """Pick a tensor (a step) and wait until its points and dimension are shown."""
        if self.state()["selectedTensor"] != name:
            self._choose(self._tensor_dropdown(), name)
        self.wait_points(rows, dim)
        self.wait_for(
            lambda s: s["selectedTensor"] == name and s["points"] == rows and s["dim"] == dim,
            f"tensor {name!r} ({rows}x{dim}) to load",
        )

    def wait_points(self, rows: int, dim: int) -> None:
        """The status bar shows ``Points: rows | Dimension: dim``."""
        self.plugin.get_by_text(f"Points: {rows}", exact=True).wait_for()
        self.plugin.get_by_text(f"Dimension: {dim}", exact=True).wait_for()

    def search(self, text: str, *, regex: bool = False) -> str:
        """Type into the inspector's search box; returns its message (``"1 matches."``).

        Plain text matches labels containing it (case-insensitive); ``regex=True`` presses the
        box's ``.*`` toggle first.
        """
        search_box = self.plugin.locator("vz-projector-inspector-panel #search-box")
        box = search_box.locator("input")
        message = search_box.locator("span.info")
        toggle = search_box.locator("paper-button#regex")
        if (toggle.get_attribute("active") is not None) != regex:
            toggle.click()
        # Clearing first resets the message, so a stale "1 matches." is never read.
        box.fill("")
        self._wait_text(message, lambda text: text == "")
        box.fill(text)
        return self._wait_text(message, lambda text: re.fullmatch(r"\d+ matches\.", text))

    def _wait_text(self, locator: Locator, predicate: Callable[[str], Any]) -> str:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            text = str(locator.text_content() or "").strip()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; text is {text!r}")
            self.page.wait_for_timeout(100)

    def search_finds_one(self, label: str, *, exact: bool = False) -> int:
        """Search ``label``: the page must say ``1 matches.`` and select that point; its index.

        ``exact=True`` searches the regex ``^label$`` (for words that are also prefixes).
        """
        query = f"^{re.escape(label)}$" if exact else label
        message = self.search(query, regex=exact)
        assert message == "1 matches.", f"search {query!r}: {message!r}"
        state = self.wait_for(lambda s: len(s["selected"]) == 1, f"{label!r} to be selected")
        index = int(state["selected"][0])
        found = state["labels"][index]
        assert (found == label) if exact else (label.lower() in found.lower()), (label, found)
        return index

    def wait_sprites(self) -> dict[str, Any]:
        """Wait until the sprite sheet is decoded and the scatter plot draws images."""
        return self.wait_for(
            lambda s: (
                s["sprite"]
                and s["sprite"]["complete"]
                and s["sprite"]["width"] > 0
                and s["spriteMode"]
            ),
            "sprite images to load",
        )

    def glyphs_render(self, chars: str) -> bool:
        """True if each character draws differently on a canvas in the projector's frame.

        A missing font draws every character as the same empty box ("tofu"), so e.g. 東 and 京
        come out pixel-identical when no CJK font is installed (Debian ``fonts-noto-cjk``).
        """
        drawings = self.frame().evaluate(_GLYPHS_JS, list(chars))
        return len(set(drawings)) == len(set(chars))

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(target))
        return target

    # -- the whole check --------------------------------------------------------------------

    def check_run(
        self, expected: ExpectedRun, artifacts: Path | None = None, *, every_step: bool = False
    ) -> None:
        """Everything a person checks for one run: all steps listed in order, the first and the
        last step (or ``every_step``) load with the right point count and dimension, labels are
        found, sprites load. Screenshots go to ``artifacts`` if given."""
        self.select_run(expected.run)
        shown = self.shown_tensors()
        check_steps_in_order(shown, expected)
        first = expected.tensor(shown[0])
        self.select_tensor(first.name, first.rows, first.dim)
        for label in expected.search:
            self.search_finds_one(label)
        if expected.sprites:
            self.wait_sprites()
        if artifacts is not None:
            self.screenshot(artifacts / f"browser-{_slug(expected.run)}-first.png")
        later = shown[1:] if every_step else shown[1:][-1:]
        for name in later:
            tensor = expected.tensor(name)
            self.select_tensor(name, tensor.rows, tensor.dim)
        if artifacts is not None and len(shown) > 1:
            self.screenshot(artifacts / f"browser-{_slug(expected.run)}-last.png")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "root"
