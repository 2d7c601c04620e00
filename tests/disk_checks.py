"""Checks shared by the disk tests: what the config references, what is on disk (and whether
it changed), what TensorBoard serves; and a rename that fails midway."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from embedding_projector import ProjectorWriter
from embedding_projector._format import CONFIG_FILENAME, LOCK_FILENAME
from embedding_projector._format.config import read_config
from tb_server import TensorBoard


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (the lock file aside) with its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != LOCK_FILENAME
    }


def fail_nth_replace(monkeypatch: pytest.MonkeyPatch, failing: int) -> None:
    """Make the ``failing``-th ``os.replace`` from now on raise EACCES (the others work)."""
    real_replace = os.replace
    calls = {"n": 0}

    def replace(source: str, target: str) -> None:
        calls["n"] += 1
        if calls["n"] == failing:
            raise PermissionError(errno.EACCES, "Permission denied", target)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)


def referenced_files(run: Path) -> dict[str, set[Path]]:
    """Tensor name -> the files its config entry points to."""
    return {
        entry.tensor_name: {
            run / path
            for path in (entry.tensor_path, entry.metadata_path, entry.bookmarks_path)
            if path
        }
        for entry in read_config(run / CONFIG_FILENAME).embeddings
    }


def snapshot_files(run: Path) -> set[Path]:
    """Every file under ``run`` but the config, event files, the lock and the refresh run."""
    return {
        path
        for path in run.rglob("*")
        if path.is_file()
        and path.name != CONFIG_FILENAME
        and "tfevents" not in path.name
        and not path.name.startswith(".")
        and ".projector-refresh" not in path.parts
    }


def assert_complete_and_served(tb: TensorBoard, run_name: str, run: Path) -> list[str]:
    """Every snapshot in the config is complete on disk and TensorBoard serves it as written;
    no file is left over from a removed one. Returns the tensor names, sorted."""
    files = referenced_files(run)
    assert snapshot_files(run) == set().union(*files.values())
    writer = ProjectorWriter(run)
    tb.wait_for_run(run_name)
    tb.wait_for(lambda: sorted(tb.tensor_names(run_name)) == sorted(files))
    for name in files:
        tag, step = name.split()[0].split(":")
        matrix, _, _ = writer.read(tag, int(step))
        entry = next(e for e in writer.entries() if e.tensor_name == name)
        assert (run / entry.tensor_path).stat().st_size == matrix.size * 4
        np.testing.assert_array_equal(tb.tensor(run_name, name), matrix)
    return sorted(files)
