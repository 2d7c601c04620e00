"""The snapshot sink on its own: one warning per problem and tag, the map budget, closing."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

import embedding_projector.sink as sink_module
from embedding_projector import ProjectorWriter
from embedding_projector.sink import InsightOptions, SinkOptions, SnapshotRequest, SnapshotSink

RNG = np.random.default_rng(0)


def poisoned(rows: int = 6) -> np.ndarray:
    matrix = RNG.normal(size=(rows, 4)).astype(np.float32)
    matrix[2, 1] = np.nan
    return matrix


@pytest.mark.parametrize("background", [True, False])
def test_each_problem_is_reported_once_per_tag_with_its_first_step(
    tmp_path: Path, background: bool, caplog: pytest.LogCaptureFixture
) -> None:
    sink = SnapshotSink(
        tmp_path,
        options=SinkOptions(background=background),
        insight=InsightOptions(maps=False, scalars=False),
        name="Tester",
    )
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        for step in (1, 2, 3):
            sink.submit(step, [SnapshotRequest("a", poisoned()), SnapshotRequest("b", poisoned())])
        sink.submit(4, [SnapshotRequest("a", RNG.normal(size=(6, 4)))])
        sink.close()
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2, messages
    assert messages[0].startswith("Tester skipped 'a' at step 1: InvalidEmbeddingError")
    assert messages[1].startswith("Tester skipped 'b' at step 1: InvalidEmbeddingError")
    assert all(w.category is RuntimeWarning for w in caught)
    assert "skipped 'a' at step 3" in caplog.text  # repeats go to the log
    assert ProjectorWriter(tmp_path).steps("a") == [4]


def test_adapter_warnings_go_through_the_same_channel(tmp_path: Path) -> None:
    given: list[tuple[str, type[Warning]]] = []
    sink = SnapshotSink(tmp_path, warn=lambda message, category: given.append((message, category)))
    assert sink.warn("words", "too-few", "only 1 row", UserWarning)
    assert not sink.warn("words", "too-few", "only 1 row again", UserWarning)
    assert sink.warn("docs", "too-few", "only 1 doc", UserWarning)
    assert given == [("only 1 row", UserWarning), ("only 1 doc", UserWarning)]
    sink.close()


def map_steps(logdir: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(logdir), size_guidance={IMAGES: 0})
    events.Reload()
    return [image.step for image in events.Images(f"{tag}/map")]


@pytest.mark.parametrize(("budget", "expected"), [(None, [0, 1, 2]), (1e-6, [0])])
def test_maps_keep_to_their_time_budget(
    tmp_path: Path, budget: float | None, expected: list[int]
) -> None:
    insight = InsightOptions(map_budget=budget, map_rows=20, map_size=(128, 128))
    with SnapshotSink(tmp_path, insight=insight) as sink:
        for step in range(3):
            labels = [f"w{i}" for i in range(30)]
            sink.submit(step, [SnapshotRequest("words", RNG.normal(size=(30, 8)), labels=labels)])
    assert ProjectorWriter(tmp_path).steps("words") == [0, 1, 2]
    assert map_steps(tmp_path, "words") == expected


def test_close_closes_a_writer_that_can_be_closed_and_a_later_submit_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Path] = []

    class ClosingWriter(ProjectorWriter):
        def close(self) -> None:
            closed.append(self.logdir)

    monkeypatch.setattr(sink_module, "ProjectorWriter", ClosingWriter)
    sink = SnapshotSink(tmp_path, insight=InsightOptions(maps=False, scalars=False))
    sink.submit(0, [SnapshotRequest("t", np.eye(3))])
    sink.close()
    assert closed == [tmp_path]
    sink.submit(1, [SnapshotRequest("t", np.eye(3))])
    sink.close()
    assert closed == [tmp_path, tmp_path]
    assert ProjectorWriter(tmp_path).steps("t") == [0, 1]
