"""Disk full, read-only, permission denied, lock held: a clear error, nothing earlier damaged."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

import embedding_projector as ep
from disk_checks import fail_nth_replace, tree_digest
from embedding_projector import _format
from embedding_projector._format import files as _files
from embedding_projector.errors import DiskReserveError, SnapshotWriteError

RNG = np.random.default_rng(7)


def test_disk_full_raises_a_clear_error_and_keeps_earlier_snapshots(small_filesystem):
    logdir = small_filesystem / "run"
    writer = ep.ProjectorWriter(logdir, disk_reserve=0)  # no reserve: the file system refuses
    writer.add_embedding(RNG.random((100, 8)), metadata=[str(i) for i in range(100)])
    before = tree_digest(logdir)
    with pytest.raises(SnapshotWriteError, match="No space left on device") as info:
        writer.add_embedding(RNG.random((2000, 1000)), global_step=1)  # 8 MB > 4 MiB
    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value, OSError)
    assert tree_digest(logdir) == before  # no partial file, no temp file, same config
    # Space freed (nothing to free here), a smaller write works again.
    writer.add_embedding(RNG.random((100, 8)), global_step=2)
    assert writer.steps() == [0, 2]


def test_the_default_reserve_stops_snapshots_before_the_disk_fills(small_filesystem):
    logdir = small_filesystem / "run"
    writer = ep.ProjectorWriter(logdir)
    matrix = RNG.random((500, 200))  # 400 kB a snapshot on a 4 MiB file system
    for step in range(12):
        before = tree_digest(logdir) if logdir.exists() else {}
        try:
            writer.add_embedding(matrix, global_step=step)
        except DiskReserveError as error:
            refused = error
            break
        # Twice the snapshot (more than 5 % of 4 MiB) stayed free after each write.
        assert shutil.disk_usage(small_filesystem).free >= 2 * matrix.size * 4
    else:
        pytest.fail("the reserve never refused a snapshot")
    assert 2 <= step < 12
    assert tree_digest(logdir) == before  # refused before any file was touched
    assert isinstance(refused, SnapshotWriteError) and isinstance(refused, OSError)
    assert refused.errno == errno.ENOSPC
    assert refused.needed >= matrix.size * 4
    assert refused.reserve == 2 * refused.needed
    assert refused.free - refused.needed < refused.reserve
    message = str(refused)
    assert f"snapshot 'default' step {step} was not written" in message
    assert "disk_reserve=" in message  # the knob
    for figure in (refused.needed, refused.free, refused.reserve):
        assert f"{figure / 1024:.1f} KiB" in message
    writer.add_embedding(RNG.random((10, 4)), global_step=step)  # a small one still fits
    assert writer.steps() == list(range(step + 1))


def test_an_explicit_reserve_refuses_before_the_log_dir_is_created(small_filesystem):
    writer = ep.ProjectorWriter(small_filesystem / "run", disk_reserve=3 * 2**20)
    with pytest.raises(DiskReserveError, match=r"3\.0 MiB must stay free") as info:
        writer.add_embedding(RNG.random((500, 600)))  # 1.2 MB
    assert info.value.reserve == 3 * 2**20
    assert not (small_filesystem / "run").exists()
    ep.ProjectorWriter(small_filesystem / "run", disk_reserve=0).add_embedding(
        RNG.random((500, 600))
    )


@pytest.mark.parametrize(
    ("reserve", "message"),
    [
        (5 * 2**20, "not smaller than the whole file system"),
        (-1, "number of bytes >= 0"),
        (1.5, "number of bytes >= 0"),
        (True, "number of bytes >= 0"),
    ],
)
def test_an_impossible_reserve_is_refused_at_construction(small_filesystem, reserve, message):
    with pytest.raises(ValueError, match=message):
        ep.ProjectorWriter(small_filesystem / "run", disk_reserve=reserve)


def test_read_only_log_dir_raises_a_clear_error(small_filesystem):
    logdir = small_filesystem / "run"
    ep.add_embedding(logdir, RNG.random((10, 4)))
    before = tree_digest(logdir)
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    with pytest.raises(SnapshotWriteError, match="Read-only file system") as info:
        ep.add_embedding(logdir, RNG.random((10, 4)), global_step=1)
    assert info.value.errno == errno.EROFS
    assert tree_digest(logdir) == before


@pytest.mark.parametrize("failing_rename", [1, 2, 3], ids=["tensor", "metadata", "config"])
def test_permission_denied_midway_removes_partial_files(tmp_path, monkeypatch, failing_rename):
    logdir = tmp_path / "run"
    writer = ep.ProjectorWriter(logdir)
    writer.add_embedding(RNG.random((10, 4)), metadata=list("abcdefghij"), global_step=0)
    before = tree_digest(logdir)
    fail_nth_replace(monkeypatch, failing_rename)
    with pytest.raises(SnapshotWriteError, match="Permission denied"):
        writer.add_embedding(RNG.random((10, 4)), metadata=list("abcdefghij"), global_step=0)
    monkeypatch.undo()
    assert tree_digest(logdir) == before
    assert [p for p in logdir.rglob(f"{_format.TEMP_PREFIX}*")] == []


def test_a_lock_held_too_long_is_reported(tmp_path):
    logdir = tmp_path / "run"
    ep.add_embedding(logdir, RNG.random((10, 4)))
    with (
        FileLock(str(logdir / _format.LOCK_FILENAME)),
        pytest.raises(SnapshotWriteError, match="held the lock"),
    ):
        ep.ProjectorWriter(logdir, lock_timeout=0.2).add_embedding(RNG.random((10, 4)))


def test_hostile_numbers_are_written_correctly(tmp_path):
    cases = {
        "float16": RNG.random((20, 6)).astype(np.float16),
        "float64": RNG.random((20, 6)),
        "ints": RNG.integers(-5, 5, size=(20, 6)),
        "wide": RNG.random((3, 10_000)),
        "two-by-two": np.array([[1.5, -2.0], [3.0, 4.0]]),
    }
    writer = ep.ProjectorWriter(tmp_path)
    for tag, matrix in cases.items():
        snap = writer.add_embedding(matrix, tag=tag)
        stored = (
            np.fromfile(snap.tensor_path, dtype="<f4")
            if snap.tensor_path.suffix == ".bin"
            else np.loadtxt(snap.tensor_path, dtype=np.float32, ndmin=2)
        )
        np.testing.assert_array_equal(stored.reshape(matrix.shape), matrix.astype(np.float32))


def test_gensim_callback_on_a_full_disk_warns_and_training_goes_on(small_filesystem):
    pytest.importorskip("gensim")
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    from embedding_projector._format.config import read_config
    from embedding_projector.gensim import Any2VecProjector
    from embedding_projector.sink import InsightOptions

    class EpochCounter(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self):
            self.ended, self.start_rows = 0, None

        def on_train_begin(self, model):
            self.start_rows = model.wv.vectors[:100].copy()

        def on_epoch_end(self, model):
            self.ended += 1

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        sentences = [simple_preprocess(line) for line in handle]
    run = small_filesystem / "run"
    # 1,000 words x 200 dims = 800 kB a snapshot: the 4 MiB disk fills after a few epochs.
    callback = Any2VecProjector(
        run, limit=1000, insight=InsightOptions(maps=False, scalars=False), log_loss=False
    )
    epochs = EpochCounter()
    with (
        pytest.warns(UserWarning, match=r"will not fit in .*: 9 snapshots of 781.2 KiB each"),
        pytest.warns(
            RuntimeWarning,
            # DiskReserveError is the SnapshotWriteError raised before the disk is full.
            match=r"skipped 'words' at step \d+: (SnapshotWriteError|DiskReserveError): .*No space",
        ),
    ):
        model = Word2Vec(
            sentences,
            vector_size=200,
            min_count=2,
            workers=1,
            seed=1,
            epochs=8,
            callbacks=[epochs, callback],
        )
    # Training went on: every epoch ended, and the vectors moved away from their start.
    assert epochs.ended == 8
    assert callback.steps_written()[-1] == 8
    rows = epochs.start_rows
    assert not np.allclose(model.wv.vectors[: len(rows)], rows)
    steps = ep.ProjectorWriter(run).steps("words")
    assert 0 < len(steps) < 9
    for entry in read_config(run / "projector_config.pbtxt").embeddings:
        rows, cols = entry.tensor_shape
        assert (run / entry.tensor_path).stat().st_size == rows * cols * 4


# -- O_DIRECT for big tensors -------------------------------------------------------------------

BIG_ROWS = 8219  # 8219 x 256 float32 = 8.4 MB: above the O_DIRECT threshold, not block-aligned


def direct_capable(path: Path) -> bool:
    probe = np.zeros(_files.DIRECT_WRITE_MIN_BYTES // 4, dtype=np.float32)
    target = path / "probe"
    target.touch()
    return _files.write_direct(str(target), probe) > 0


def test_big_tensors_bypass_the_page_cache_and_keep_every_byte(tmp_path):
    if not direct_capable(tmp_path):
        pytest.skip(f"{tmp_path} does not take O_DIRECT writes")
    matrix = RNG.standard_normal((BIG_ROWS, 256)).astype(np.float32)
    assert matrix.nbytes >= _files.DIRECT_WRITE_MIN_BYTES and matrix.nbytes % 4096
    snap = ep.ProjectorWriter(tmp_path / "run", direct_io=True).add_embedding(matrix)
    np.testing.assert_array_equal(np.fromfile(snap.tensor_path, dtype="<f4"), matrix.ravel())


@pytest.mark.parametrize("refused_at", ["open", "write"])
def test_a_file_system_refusing_o_direct_gets_a_buffered_write(tmp_path, monkeypatch, refused_at):
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        pytest.skip("no O_DIRECT on this platform")
    real_open, real_write = os.open, os.write
    direct_fds: set[int] = set()

    def fake_open(path, flags, *args, **kwargs):
        if flags & direct and refused_at == "open":
            raise OSError(errno.EINVAL, "Invalid argument")
        fd = real_open(path, flags, *args, **kwargs)
        if flags & direct:
            direct_fds.add(fd)
        return fd

    writes = {"direct": 0}

    def fake_write(fd, data):
        if fd in direct_fds:
            writes["direct"] += 1
            if writes["direct"] == 2:  # the second chunk: part of the file is already there
                raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)
    matrix = RNG.standard_normal((BIG_ROWS * 2, 256)).astype(np.float32)  # two 8 MiB chunks
    snap = ep.ProjectorWriter(tmp_path / "run", direct_io=True).add_embedding(matrix)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.fromfile(snap.tensor_path, dtype="<f4"), matrix.ravel())
    leftovers = [p.name for p in snap.directory.iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_a_full_disk_during_a_direct_write_is_a_clear_error(tmp_path, monkeypatch):
    direct = getattr(os, "O_DIRECT", 0)
    if not direct or not direct_capable(tmp_path):
        pytest.skip(f"{tmp_path} does not take O_DIRECT writes")
    logdir = tmp_path / "run"
    writer = ep.ProjectorWriter(logdir, direct_io=True)
    writer.add_embedding(RNG.random((10, 4)))
    before = tree_digest(logdir)
    real_open, real_write = os.open, os.write
    direct_fds: set[int] = set()

    def fake_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if flags & direct:
            direct_fds.add(fd)
        return fd

    def fake_write(fd, data):
        if fd in direct_fds:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)
    with pytest.raises(SnapshotWriteError, match="No space left on device") as info:
        writer.add_embedding(RNG.standard_normal((BIG_ROWS, 256)), global_step=1)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert tree_digest(logdir) == before
