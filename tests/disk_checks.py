"""Checks shared by the disk-budget tests: what the config references, what is on disk, and
what TensorBoard serves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedding_projector import ProjectorWriter
from embedding_projector.writer import CONFIG_FILENAME, read_config
from tb_server import TensorBoard


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
