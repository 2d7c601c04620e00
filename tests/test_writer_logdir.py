"""The log directory itself: what is refused, the modes of what is created, what stays behind."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock, Timeout

import embedding_projector as ep
from embedding_projector import _format
from embedding_projector._format import logdir as _logdir
from embedding_projector._format.logdir import ConfigLock
from embedding_projector.errors import InvalidEmbeddingError, LogDirError
from tb_server import TensorBoard

RNG = np.random.default_rng(11)
URLS = ["s3://bucket/runs/x", "gs://bucket/x", "memory://bucket/logs", "hdfs://nn:8020/logs"]


class LoggerLike:
    """What Lightning's loggers and SummaryWriters look like to resolve_logdir."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir


ENTRY_POINTS = {
    "resolve_logdir": lambda url: _logdir.resolve_logdir(url),
    "resolve_logdir(logger)": lambda url: _logdir.resolve_logdir(LoggerLike(url)),
    "ProjectorWriter": lambda url: ep.ProjectorWriter(url),
    "ProjectorWriter(Path)": lambda url: ep.ProjectorWriter(Path(url)),  # s3:/bucket/...
    "add_embedding": lambda url: ep.add_embedding(url, RNG.random((3, 2))),
    "add_embedding(logger)": lambda url: ep.add_embedding(LoggerLike(url), RNG.random((3, 2))),
}


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_url_log_dirs_are_refused_with_the_reason_before_anything_is_written(
    tmp_path, monkeypatch, entry, url
):
    monkeypatch.chdir(tmp_path)  # Path("s3://b") is the local "s3:/b": nothing may appear here
    with pytest.raises(LogDirError, match=r"remote log dir.*os\.path\.realpath.*local log dir"):
        ENTRY_POINTS[entry](url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("drive", ["C:/runs/x", "c:\\runs\\x", "D:runs"])
def test_windows_drive_letters_are_not_urls(drive):
    assert _logdir.resolve_logdir(drive) == Path(drive)


def test_a_log_dir_that_is_a_file_is_a_clear_error(tmp_path):
    path = tmp_path / "run"
    path.write_bytes(b"not a directory")
    with pytest.raises(LogDirError, match="is an existing file, not a directory"):
        ep.add_embedding(path, RNG.random((3, 2)))
    with pytest.raises(LogDirError, match="is an existing file"):
        ep.ProjectorWriter(path)
    assert path.read_bytes() == b"not a directory"
    writer = ep.ProjectorWriter(tmp_path / "later")
    (tmp_path / "later").write_bytes(b"made after the writer")
    with pytest.raises(LogDirError, match="is an existing file"):
        writer.add_embedding(RNG.random((3, 2)))


def test_nan_rows_are_reported_by_table_and_row(tmp_path):
    mat = RNG.random((10, 3))
    mat[[2, 7]] = np.nan
    with pytest.raises(
        InvalidEmbeddingError,
        match=r"^table 'words' has 2 row\(s\) containing NaN or Inf: rows 2, 7",
    ):
        ep.ProjectorWriter(tmp_path).add_embedding(mat, tag="words")


def modes(root: Path) -> dict[str, tuple[int, bool]]:
    """Permission bits and whether it is a directory, for everything under root."""
    return {
        str(path.relative_to(root)): (stat.S_IMODE(path.stat().st_mode), path.is_dir())
        for path in [root, *root.rglob("*")]
    }


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_created_files_and_directories_respect_the_umask(tmp_path, umask):
    logdir = tmp_path / "run"
    previous = os.umask(umask)
    try:
        writer = ep.ProjectorWriter(logdir)
        writer.add_embedding(
            RNG.random((4, 3)),
            metadata=[["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]],
            metadata_header=["name", "n"],
            label_img=RNG.random((4, 3, 5, 5)),
        )
        writer.add_embedding(np.zeros((4, 3)), global_step=1)  # a TSV tensor
        opened = modes(logdir)  # the refresh run and the lock file exist while writing
        writer.close()
        closed = modes(logdir)
    finally:
        os.umask(previous)
    assert any(name.endswith(".bin") for name in opened)
    assert any(name.endswith(".tsv") for name in opened)
    assert any(_format.LOCK_FILENAME in name for name in opened)
    assert any(_format.REFRESH_DIRNAME in name for name in opened)
    for found in (opened, closed):
        for name, (mode, is_dir) in found.items():
            expected = (0o777 if is_dir else 0o666) & ~umask
            assert mode == expected, f"{name}: {oct(mode)} != {oct(expected)} under {oct(umask)}"


@pytest.mark.usefixtures("no_refresh_grace")
def test_close_leaves_only_the_config_the_event_file_and_the_snapshots(tmp_path):
    logdir = tmp_path / "run"
    with ep.ProjectorWriter(logdir) as writer:
        writer.add_embedding(RNG.random((4, 3)), metadata=list("abcd"))
        writer.add_embedding(RNG.random((4, 3)), global_step=1)
        writer.add_embedding(RNG.random((4, 3)), global_step=1)  # a rewrite: 3 writes
        assert len(list((logdir / _format.REFRESH_DIRNAME).iterdir())) == 1  # one run
        assert (logdir / _format.LOCK_FILENAME).exists()
    assert top_level(logdir) == ["00000", "00001", "events", "projector_config.pbtxt"]
    assert writer.steps() == [0, 1]
    ep.add_embedding(logdir, RNG.random((4, 3)), global_step=2)  # one-shot: the same
    assert top_level(logdir) == ["00000", "00001", "00002", "events", "projector_config.pbtxt"]


def top_level(logdir: Path) -> list[str]:
    return sorted("events" if "tfevents" in p.name else p.name for p in logdir.iterdir())


def test_a_writer_waiting_for_a_lock_whose_file_is_removed_locks_the_new_file(tmp_path):
    """The closing writer unlinks the lock file while holding it; waiters must not share it."""
    acquired = threading.Event()
    with ConfigLock(tmp_path, timeout=5.0) as held:

        def waiter() -> None:
            with ConfigLock(tmp_path, timeout=5.0):
                acquired.set()
                time.sleep(1.0)

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)  # the waiter has opened the old file and polls it
        assert not acquired.is_set()
        held.remove_file()
    assert acquired.wait(5.0)
    # The waiter holds the file the path names now: a third writer must wait.
    with pytest.raises(Timeout):
        FileLock(str(tmp_path / _format.LOCK_FILENAME), timeout=0.2).acquire()
    thread.join()


def served_steps(tb: TensorBoard, run: str) -> list[str]:
    return sorted(tb.tensor_names(run))


@pytest.mark.usefixtures("no_refresh_grace")
def test_close_removes_the_refresh_run_and_tensorboard_still_sees_the_last_snapshot(
    tmp_path, start_tensorboard
):
    logdir = tmp_path / "logs"
    run = logdir / "live"
    writer = ep.ProjectorWriter(run)
    first = writer.add_embedding(RNG.random((5, 3)), global_step=0)
    tb: TensorBoard = start_tensorboard(logdir)
    tb.wait_for(lambda: any(_format.REFRESH_DIRNAME in r for r in tb.all_runs()))
    assert served_steps(tb, "live") == [first.tensor_name]
    # Written without a refresh: TensorBoard does not re-read the config ...
    quiet = ep.ProjectorWriter(run, live_refresh=False).add_embedding(
        RNG.random((5, 3)), global_step=1
    )
    time.sleep(3.0)  # three reload intervals
    assert served_steps(tb, "live") == [first.tensor_name]
    # ... until closing the writer removes the refresh run: the set of runs changes again.
    writer.close()
    assert not (run / _format.REFRESH_DIRNAME).exists()
    tb.wait_for(lambda: quiet.tensor_name in tb.tensor_names("live"))
    tb.wait_for(lambda: not any(_format.REFRESH_DIRNAME in r for r in tb.all_runs()))
    np.testing.assert_array_equal(
        tb.tensor("live", quiet.tensor_name), np.fromfile(quiet.tensor_path, "<f4").reshape(5, 3)
    )


@pytest.mark.usefixtures("no_refresh_grace")
def test_one_shot_writes_leave_no_refresh_run_and_are_still_picked_up(tmp_path, start_tensorboard):
    logdir = tmp_path / "logs"
    watched = logdir / "watched"
    writer = ep.ProjectorWriter(watched)  # e.g. a training run's callback, still open
    writer.add_embedding(RNG.random((5, 3)), global_step=0)
    tb: TensorBoard = start_tensorboard(logdir)
    tb.wait_for(lambda: any(_format.REFRESH_DIRNAME in r for r in tb.all_runs()))
    # A one-shot into that run: it bumps the refresh run, then removes it.
    snap = ep.add_embedding(watched, RNG.random((5, 3)), global_step=1)
    assert not (watched / _format.REFRESH_DIRNAME).exists()
    tb.wait_for(lambda: snap.tensor_name in tb.tensor_names("watched"))
    # A one-shot into a new run: the new run itself changes the set of runs.
    fresh = ep.add_embedding(logdir / "fresh", RNG.random((5, 3)), global_step=0)
    assert not (logdir / "fresh" / _format.REFRESH_DIRNAME).exists()
    tb.wait_for(lambda: fresh.tensor_name in tb.tensor_names("fresh"))
    tb.wait_for(lambda: not any(_format.REFRESH_DIRNAME in r for r in tb.all_runs()))


def test_a_refresh_run_too_young_to_have_been_seen_is_removed_after_the_grace(
    tmp_path, start_tensorboard, monkeypatch
):
    """A snapshot written and closed between two TensorBoard reloads is still picked up: its
    refresh run stays until TensorBoard can have seen it, then goes (a detached remover)."""
    from embedding_projector._format import logdir as _logdir

    monkeypatch.setattr(_logdir, "REFRESH_GRACE_SECONDS", 4.0)
    logdir = tmp_path / "logs"
    run = logdir / "live"
    first = ep.ProjectorWriter(run, live_refresh=False).add_embedding(RNG.random((5, 3)))
    tb: TensorBoard = start_tensorboard(logdir)
    tb.wait_for(lambda: served_steps(tb, "live") == [first.tensor_name])  # config read, cached
    with ep.ProjectorWriter(run) as writer:  # write and close at once: a fit of a few seconds
        last = writer.add_embedding(RNG.random((5, 3)), global_step=1)
    assert (run / _format.REFRESH_DIRNAME).exists()  # too young to remove yet
    tb.wait_for(lambda: last.tensor_name in tb.tensor_names("live"))
    tb.wait_for(lambda: not (run / _format.REFRESH_DIRNAME).exists(), timeout=20.0)
    assert top_level(run) == ["00000", "00001", "events", "projector_config.pbtxt"]
