"""Long runs on a real disk: retention (keep=N), the free-space reserve, the forecast.

The shared pipeline (SnapshotSink) with the gensim callback; tests/test_disk_budget_lightning.py
runs the same through a Lightning Trainer.
"""

from __future__ import annotations

import logging
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("gensim")

from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.test.utils import common_texts, datapath
from gensim.utils import simple_preprocess

from disk_checks import assert_complete_and_served, referenced_files, snapshot_files
from embedding_projector import ProjectorWriter
from embedding_projector._format import CONFIG_FILENAME
from embedding_projector._format.logdir import human_size
from embedding_projector.gensim import Any2VecProjector
from embedding_projector.sink import InsightOptions, SinkOptions, SnapshotRequest, SnapshotSink
from tb_server import TensorBoard

QUIET = InsightOptions(maps=False, scalars=False)
RESERVE_WARNING = re.compile(
    r"skipped 'words' at step \d+: DiskReserveError: ([\d.]+ [KM]iB) free, the snapshot needs "
    r"([\d.]+ KiB) and ([\d.]+ [KM]iB) must stay free"
)


@pytest.fixture(scope="module")
def lee() -> list[list[str]]:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [simple_preprocess(line) for line in handle]


def sorted_steps(run: Path, tag: str = "words") -> list[int]:
    return ProjectorWriter(run).steps(tag)


class DiskRecorder(CallbackAny2Vec):  # type: ignore[misc]
    """After the projector's snapshot (a synchronous sink): the steps on disk and free bytes."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.records: list[tuple[list[int], int]] = []

    def on_epoch_end(self, model: Any) -> None:
        steps = sorted_steps(self.run) if (self.run / CONFIG_FILENAME).exists() else []
        self.records.append((steps, shutil.disk_usage(self.run.parent).free))


class SaveVectors(CallbackAny2Vec):  # type: ignore[misc]
    """The run's own checkpoint: the word vectors, saved over the last one each epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved = 0

    def on_epoch_end(self, model: Any) -> None:
        model.wv.save(str(self.path))
        self.saved += 1


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep": 0}, r"keep must be an integer >= 1 \(None keeps every snapshot\); got 0"),
        ({"keep": -2}, r"keep must be an integer >= 1 .*got -2"),
        ({"keep": 2.5}, r"keep must be an integer >= 1 .*got 2.5"),
        ({"keep": True}, r"keep must be an integer >= 1 .*got True"),
        ({"disk_reserve": -1}, r"disk_reserve must be an integer >= 0 bytes \(0 disables"),
        ({"disk_reserve": "1G"}, r"disk_reserve must be an integer >= 0 .*got '1G'"),
    ],
)
def test_bad_budget_options_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SinkOptions(**kwargs)


def test_numpy_integers_are_accepted_as_plain_ints() -> None:
    options = SinkOptions(keep=np.int64(3), disk_reserve=np.int32(4096))
    assert (type(options.keep), type(options.disk_reserve)) == (int, int)


def test_a_reserve_larger_than_the_disk_fails_when_the_callback_is_made(
    small_filesystem: Path,
) -> None:
    run = small_filesystem / "run"
    with pytest.raises(ValueError, match=r"disk_reserve=4194304 \(4.0 MiB\) is not smaller"):
        Any2VecProjector(run, sink=SinkOptions(disk_reserve=4 * 2**20))
    assert not run.exists()


# --------------------------------------------------------------------------- retention


def test_keep_3_over_10_epochs_serves_step_0_and_the_last_three(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    run, name = shared_run()
    callback = Any2VecProjector(
        run, limit=12, insight=QUIET, log_loss=False, sink=SinkOptions(keep=3)
    )
    Word2Vec(common_texts, vector_size=8, min_count=1, workers=1, epochs=10, callbacks=[callback])
    assert callback.steps_written() == list(range(11))
    assert sorted_steps(run) == [0, 8, 9, 10]
    names = assert_complete_and_served(shared_tensorboard, name, run)
    assert names == [f"words:{step:09d}" for step in (0, 8, 9, 10)]


def test_continuing_training_prunes_what_it_finds_the_same_way(tmp_path: Path) -> None:
    run = tmp_path / "run"
    model = Word2Vec(common_texts, vector_size=8, min_count=1, workers=1, epochs=4)
    first = Any2VecProjector(run, limit=12, insight=QUIET, log_loss=False)
    model.train(common_texts, total_examples=len(common_texts), epochs=4, callbacks=[first])
    assert sorted_steps(run) == [0, 1, 2, 3, 4]
    before = referenced_files(run)

    again = Any2VecProjector(run, limit=12, insight=QUIET, log_loss=False, sink=SinkOptions(keep=2))
    model.train(common_texts, total_examples=len(common_texts), epochs=2, callbacks=[again])
    assert sorted_steps(run) == [0, 5, 6]
    files = referenced_files(run)
    assert snapshot_files(run) == set().union(*files.values())
    for step in (1, 2, 3, 4):
        assert not any(path.exists() for path in before[f"words:{step:09d}"])


def test_a_step_older_than_the_kept_ones_is_not_written(tmp_path: Path) -> None:
    sink = SnapshotSink(tmp_path, options=SinkOptions(background=False, keep=2), insight=QUIET)
    for step in (0, 5, 6, 7, 3):
        sink.submit(step, [SnapshotRequest("t", np.eye(3) * (step + 1))])
    sink.close()
    assert sink.steps("t") == [0, 6, 7]


# --------------------------------------------------------------------------- reserve


@pytest.mark.slow
def test_word2vec_longer_than_the_disk_finishes_with_its_checkpoint_default_reserve(
    small_filesystem: Path, lee: list[list[str]], start_tensorboard: Callable[..., TensorBoard]
) -> None:
    run = small_filesystem / "run"
    # 1,750 words x 64 dims: 448 kB a snapshot, 4.9 MB over 11 snapshots on a 4 MiB disk.
    # Default reserve: twice the snapshot (more than 5 % of this file system); the run's own
    # checkpoint (the word vectors, 480 kB, saved over each epoch) fits in it.
    callback = Any2VecProjector(
        run,
        limit=5000,
        insight=QUIET,
        log_loss=False,
        sink=SinkOptions(background=False),
    )
    recorder = DiskRecorder(run)
    checkpoint = SaveVectors(small_filesystem / "vectors.kv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Word2Vec(
            lee,
            vector_size=64,
            min_count=5,
            workers=1,
            seed=1,
            epochs=10,
            callbacks=[callback, recorder, checkpoint],
        )
    messages = [str(w.message) for w in caught]
    forecast = [m for m in messages if "will not fit" in m]
    skipped = [m for m in messages if "DiskReserveError" in m]
    assert len(forecast) == 1 and "11 snapshots of" in forecast[0], messages
    assert len(skipped) == 1 and RESERVE_WARNING.search(skipped[0]), messages
    assert len(messages) == 2, messages

    # Training finished and its checkpoint is complete.
    assert checkpoint.saved == 10
    saved = KeyedVectors.load(str(small_filesystem / "vectors.kv"))
    np.testing.assert_array_equal(saved.vectors, model.wv.vectors)

    snapshot = len(model.wv) * 64 * 4
    steps = sorted_steps(run)
    assert 2 <= len(steps) < 11 and 11 * snapshot > shutil.disk_usage(small_filesystem).total
    # Nothing was written past the reserve: after each snapshot written, at least twice the
    # snapshot stayed free, and the snapshot files fit in the disk less the reserve.
    written_at = [
        free
        for (now, free), (before, _) in zip(recorder.records[1:], recorder.records, strict=False)
        if len(now) > len(before)
    ]
    assert written_at and min(written_at) >= 2 * snapshot
    on_disk = sum(-(-p.stat().st_size // 4096) * 4096 for p in snapshot_files(run))
    assert on_disk <= shutil.disk_usage(small_filesystem).total - 2 * snapshot

    tb = start_tensorboard(small_filesystem)
    assert len(assert_complete_and_served(tb, "run", run)) == len(steps)


def test_snapshots_resume_when_space_returns(small_filesystem: Path) -> None:
    run = small_filesystem / "run"
    ballast = small_filesystem / "ballast"
    reserve = 256 * 1024

    class FreeSpaceAtEpoch3(CallbackAny2Vec):  # type: ignore[misc]
        epoch = 0

        def on_epoch_begin(self, model: Any) -> None:
            self.epoch += 1
            if self.epoch == 3:
                ballast.unlink()

    callback = Any2VecProjector(
        run,
        limit=200,
        insight=QUIET,
        log_loss=False,
        sink=SinkOptions(background=False, disk_reserve=reserve),
    )
    ballast.write_bytes(b"\0" * (shutil.disk_usage(small_filesystem).free - reserve - 4096))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Word2Vec(
            common_texts * 20,
            vector_size=64,
            min_count=1,
            workers=1,
            epochs=5,
            callbacks=[FreeSpaceAtEpoch3(), callback],
        )
    skipped = [str(w.message) for w in caught if "DiskReserveError" in str(w.message)]
    assert len(skipped) == 1  # steps 0, 1 and 2 skipped: one warning, with the figures
    _free, _needed, kept = RESERVE_WARNING.search(skipped[0]).groups()  # type: ignore[union-attr]
    assert kept == human_size(reserve)
    assert sorted_steps(run) == [3, 4, 5]


# --------------------------------------------------------------------------- forecast


def test_the_forecast_counts_snapshots_every_n_epochs_and_keep(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    words = sorted({word for text in common_texts for word in text})
    callback = Any2VecProjector(
        tmp_path, words=words, every_n_epochs=3, insight=QUIET, log_loss=False
    )
    with caplog.at_level(logging.INFO, logger="embedding_projector.sink"):
        Word2Vec(
            common_texts, vector_size=16, min_count=1, workers=1, epochs=10, callbacks=[callback]
        )
    snapshot = human_size(len(words) * 16 * 4)
    # Step 0, epochs 3, 6, 9 and the last (10): five snapshots.
    assert f"5 snapshots of {snapshot} each: {human_size(5 * len(words) * 64)} in all" in (
        caplog.text
    )
    assert callback.steps_written() == [0, 3, 6, 9, 10]


def test_the_sink_forecast_with_the_readme_figures(small_filesystem: Path) -> None:
    sink = SnapshotSink(small_filesystem / "run", options=SinkOptions(keep=3))
    with pytest.warns(UserWarning, match=r"will not fit in .*: 100 snapshots of 48.8 MiB each"):
        plan = sink.forecast({"words": (50_000, 256)}, 100)
    assert plan is not None
    assert plan.snapshot_bytes == 51_200_000 and plan.total_bytes == 5_120_000_000
    assert plan.peak_bytes == 5 * 51_200_000  # step 0, three recent, the next before pruning
    assert plan.reserve == 2 * 51_200_000 and not plan.fits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, small = sink.forecast({"words": (50_000, 256)}, 100), sink.forecast({"t": (9, 9)}, 9)
        assert again is not None and not again.fits  # warned once only
        assert small is not None and small.fits
    assert not (small_filesystem / "run").exists()  # a forecast writes nothing
