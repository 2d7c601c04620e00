from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tb_server import TensorBoard

#: Fixtures shared by the font and glyph tests (cjk_font, fresh_warnings).
pytest_plugins = ["fontcheck"]

_counter = itertools.count()


@pytest.fixture(scope="session")
def shared_tensorboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TensorBoard]:
    """One TensorBoard for the session over a root where each test adds its own run.

    A new run changes TensorBoard's set of runs, so the projector re-reads every config: tests
    that only need "TensorBoard serves what was written" share this server (fast).
    """
    root = tmp_path_factory.mktemp("tb-shared") / "logs"
    root.mkdir()
    with TensorBoard(root) as server:
        yield server


@pytest.fixture
def shared_run(
    shared_tensorboard: TensorBoard, request: pytest.FixtureRequest
) -> Callable[[], tuple[Path, str]]:
    """Returns a fresh (run directory, run name) under the shared TensorBoard's log dir."""

    def make() -> tuple[Path, str]:
        name = f"run{next(_counter):04d}"
        path = shared_tensorboard.logdir / name
        return path, name

    return make


@pytest.fixture
def start_tensorboard() -> Iterator[Callable[..., TensorBoard]]:
    """Factory for a TensorBoard of the test's own (stopped at teardown)."""
    servers: list[TensorBoard] = []

    def start(logdir: str | os.PathLike[str], **kwargs: object) -> TensorBoard:
        server = TensorBoard(logdir, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gensim_test_data() -> Path:
    """gensim's shipped test corpora and vector files."""
    gensim_test = pytest.importorskip("gensim.test.utils")
    return Path(gensim_test.datapath("lee_background.cor")).parent


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and images for people to look at."""
    path = Path(os.environ.get("EP_ARTIFACTS", Path(__file__).parent.parent / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (needs root and a sandbox that allows mounts)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
        )
        error = result.stderr.strip() if result.returncode != 0 else None
    except OSError as exception:  # no mount command at all
        error = str(exception)
    if error is not None:
        problem = f"cannot mount a tmpfs here ({error})"
        if os.environ.get("CI"):  # CI must run the real-disk fault tests, as the browser tests
            pytest.fail(f"{problem}; CI needs root and a sandbox that allows mounts")
        pytest.skip(f"{problem}; fault-injection tests below cover the same paths")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def no_refresh_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing writers remove their refresh run at once, however young (tests that check the
    tidy-up right after a close; by default a refresh run younger than a TensorBoard reload
    is removed later, by a detached process, so that TensorBoard has seen it)."""
    from embedding_projector._format import logdir as _logdir

    monkeypatch.setattr(_logdir, "REFRESH_GRACE_SECONDS", 0.0)
