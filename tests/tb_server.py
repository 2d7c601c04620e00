"""A real TensorBoard subprocess for tests, and a client for its projector HTTP API.

Tests assert on what TensorBoard itself serves (``/data/plugin/projector/...``), never on our
own reading of our files.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TensorBoardError(AssertionError):
    """TensorBoard answered with an HTTP error."""


class TensorBoard:
    """``tensorboard --logdir LOGDIR --host 127.0.0.1 --port <free>``, stopped by its pid."""

    def __init__(self, logdir: str | os.PathLike[str], *, reload_interval: float = 1.0) -> None:
        self.logdir = Path(logdir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.logdir.parent / f"tensorboard-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(self.logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--reload_interval",
                str(reload_interval),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"tensorboard exited early: {self.log_path.read_text()}")
            try:
                self.get("/data/plugins_listing")
                break
            except (urllib.error.URLError, ConnectionError, TensorBoardError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> bytes:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            raise TensorBoardError(f"{url}: HTTP {error.code}: {error.read()[:500]!r}") from error

    def projector(self, route: str, **params: Any) -> bytes:
        return self.get(f"/data/plugin/projector/{route}", **params)

    def runs(self) -> list[str]:
        return list(json.loads(self.projector("runs")))

    def all_runs(self) -> list[str]:
        return list(json.loads(self.get("/data/runs")))

    def info(self, run: str) -> dict[str, Any]:
        return dict(json.loads(self.projector("info", run=run)))

    def tensor_names(self, run: str) -> list[str]:
        return [entry["tensorName"] for entry in self.info(run).get("embeddings", [])]

    def embedding(self, run: str, name: str) -> dict[str, Any]:
        for entry in self.info(run).get("embeddings", []):
            if entry["tensorName"] == name:
                return dict(entry)
        raise KeyError(f"{name!r} not in run {run!r}: {self.tensor_names(run)}")

    def tensor(self, run: str, name: str, num_rows: int | None = None) -> np.ndarray:
        params: dict[str, Any] = {"run": run, "name": name}
        if num_rows is not None:
            params["num_rows"] = num_rows
        raw = self.projector("tensor", **params)
        shape = [int(v) for v in self.embedding(run, name)["tensorShape"]]
        rows = shape[0] if num_rows is None else min(num_rows, shape[0])
        return np.frombuffer(raw, dtype="<f4").reshape(rows, shape[1])

    def metadata(self, run: str, name: str, num_rows: int | None = None) -> str:
        params: dict[str, Any] = {"run": run, "name": name}
        if num_rows is not None:
            params["num_rows"] = num_rows
        return self.projector("metadata", **params).decode("utf-8")

    def bookmarks(self, run: str, name: str) -> list[dict[str, Any]]:
        """The saved states (bookmarks) the projector serves for tensor ``name``."""
        return list(json.loads(self.projector("bookmarks", run=run, name=name)))

    def sprite(self, run: str, name: str) -> bytes:
        return self.projector("sprite_image", run=run, name=name)

    def wait_for(self, predicate: Any, timeout: float = 30.0, interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except (TensorBoardError, KeyError, ValueError):
                last = None
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {predicate}; last={last!r}")

    def wait_for_run(self, run: str, timeout: float = 30.0) -> None:
        self.wait_for(lambda: run in self.runs(), timeout=timeout)


#: What JavaScript's String.prototype.trim() removes (WhiteSpace and LineTerminator).
JS_WHITESPACE = frozenset(
    "\t\n\v\f\r \xa0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)


def parse_metadata(text: str) -> tuple[list[str] | None, list[list[str]]]:
    """Parse served metadata the way the projector frontend does (``TO`` in its bundle).

    Lines are split on "\n"; lines that JavaScript's ``trim()`` empties are skipped; a first
    line containing a tab is the header.
    """
    header = None
    rows: list[list[str]] = []
    for line in text.split("\n"):
        if all(char in JS_WHITESPACE for char in line):
            continue
        if header is None and not rows and "\t" in line:
            header = line.split("\t")
            continue
        rows.append(line.split("\t"))
    return header, rows


def state_coordinates(state: dict[str, Any]) -> np.ndarray:
    """A saved state's ``projections`` as a (points, 2 or 3) float32 array, in their order."""
    kind = state["selectedProjection"]
    columns = len(state["projections"][0])
    return np.array(
        [[point[f"{kind}-{j}"] for j in range(columns)] for point in state["projections"]],
        dtype=np.float32,
    )


def served_snapshot(tb: TensorBoard, run: str, tensor_name: str) -> tuple[Any, list[str], Any]:
    """(tensor, header, rows) of a snapshot with several metadata columns, as TensorBoard serves
    them."""
    tb.wait_for_run(run)
    tensor = tb.tensor(run, tensor_name)
    header, rows = parse_metadata(tb.metadata(run, tensor_name))
    assert header is not None
    return tensor, header, rows


def column(header: list[str], rows: list[list[str]], name: str) -> list[str]:
    """The cells of the metadata column ``name``."""
    index = header.index(name)
    return [row[index] for row in rows]
