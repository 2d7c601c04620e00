"""The snapshot policy alone: when, which step, already written, resume state (no Lightning)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from embedding_projector.sink.snapshot_policy import SnapshotPolicy


@pytest.mark.parametrize(
    ("every", "due"), [(1, [0, 1, 2, 3, 4, 5]), (2, [1, 3, 5]), (3, [2, 5]), (7, [])]
)
def test_due_after_every_nth_epoch(every: int, due: list[int]) -> None:
    policy = SnapshotPolicy(every_n_epochs=every)
    assert [epoch for epoch in range(6) if policy.due(epoch)] == due


@pytest.mark.parametrize(("every", "due"), [(1, [1, 2, 3, 4, 5]), (2, [2, 4]), (3, [3])])
def test_every_n_steps_is_due_at_multiples_and_replaces_epoch_ends(
    every: int, due: list[int]
) -> None:
    policy = SnapshotPolicy(every_n_steps=every)
    assert [step for step in range(6) if policy.due_at_step(step)] == due
    assert not any(policy.due(epoch) for epoch in range(6))
    assert not SnapshotPolicy().due_at_step(4)  # epoch ends only by default


def test_step_is_global_step_or_epoch_and_the_suffix_names_the_other() -> None:
    assert SnapshotPolicy(step_mode="global_step").step(3, 120) == (120, "epoch 3")
    assert SnapshotPolicy(step_mode="epoch").step(3, 120) == (3, "step 120")


def test_claim_marks_tags_once_per_step_in_order() -> None:
    policy = SnapshotPolicy()
    assert policy.claim(["b", "a"], 4) == ["b", "a"]
    assert policy.claim(["a", "c"], 4) == ["c"]
    assert policy.claim(["a"], 8) == ["a"]
    assert policy.is_written("a", 4) and policy.is_written("a", 8)
    assert not policy.is_written("b", 8)


def test_state_round_trips_and_old_or_partial_checkpoints_load() -> None:
    policy = SnapshotPolicy()
    policy.claim(["tokens"], 8)
    policy.claim(["tokens", "features"], 4)
    state = policy.state_dict()
    assert state == {"written": {"tokens": [4, 8], "features": [4]}}
    resumed = SnapshotPolicy.from_state(1, "global_step", state)
    assert resumed.claim(["tokens", "features"], 8) == ["features"]
    empty = SnapshotPolicy()
    empty.load_state_dict({})  # a checkpoint from before the callback saved anything
    assert empty.written == {}
    keyed = SnapshotPolicy()
    keyed.load_state_dict({"written": {7: ["12"]}})  # keys and steps normalised
    assert keyed.is_written("7", 12)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs must be >= 1; got 0"),
        ({"every_n_epochs": True}, TypeError, "every_n_epochs must be an int"),
        ({"step_mode": "time"}, ValueError, "step must be one of 'global_step', 'epoch'"),
        ({"every_n_steps": 0}, ValueError, "every_n_steps must be >= 1 or None; got 0"),
        ({"every_n_steps": 2.5}, TypeError, "every_n_steps must be an int or None"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        SnapshotPolicy(**kwargs)


def test_importing_the_policy_loads_no_framework() -> None:
    code = (
        "import sys, embedding_projector.sink.snapshot_policy\n"
        "loaded = [m for m in ('torch', 'lightning', 'pytorch_lightning') if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
