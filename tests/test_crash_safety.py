"""Kill -9 in the middle of writing, and two writers at once: nothing torn, nothing lost."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from embedding_projector import ProjectorWriter
from embedding_projector._format import TEMP_PREFIX
from embedding_projector._format.config import read_config
from tb_server import TensorBoard, parse_metadata

RNG = np.random.default_rng(5)

WRITER_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np

    # Fault injection: die at the N-th rename (each snapshot renames 4-5 files), i.e. at a
    # chosen point inside the writer's critical section.
    kill_at = int(os.environ.get("EP_KILL_AT_RENAME", "0"))
    renames = 0
    def dying(real):
        def rename(*args, **kwargs):
            global renames
            renames += 1
            if renames == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return rename
    os.replace, os.rename = dying(os.replace), dying(os.rename)

    from embedding_projector import ProjectorWriter

    def expected_matrix(pattern, step, writer_id):
        # Each writer's bytes its own: column 1 holds the writer's id.
        matrix = pattern + np.float32(step)
        matrix[:, 1] = writer_id
        return matrix

    logdir, tag = sys.argv[1], sys.argv[2]
    first, count, rows, cols, writer_id = map(int, sys.argv[3:8])
    writer = ProjectorWriter(logdir)
    pattern = 1e-6 * (np.arange(rows, dtype=np.float32)[:, None] + np.arange(cols))
    labels = [f"{tag}-{writer_id}-{i}" for i in range(rows)]
    images = np.zeros((rows, 1, 8, 8), dtype=np.uint8)
    for step in range(first, first + count):
        # Cheap to build, so most of the child's time is spent inside the writer.
        matrix = expected_matrix(pattern, step, writer_id)
        writer.add_embedding(matrix, metadata=labels, label_img=images, global_step=step, tag=tag)
        print(step, flush=True)
    """
)


def start_writer(
    script: Path,
    logdir: Path,
    tag: str,
    first: int,
    count: int,
    rows: int,
    cols: int = 64,
    kill_at_rename: int = 0,
    writer_id: int = 0,
) -> subprocess.Popen[str]:
    numbers = (first, count, rows, cols, writer_id)
    return subprocess.Popen(
        [sys.executable, str(script), str(logdir), tag, *map(str, numbers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EP_KILL_AT_RENAME": str(kill_at_rename)},
    )


def check_consistent(logdir: Path) -> dict[str, str]:
    """Config parses with TensorBoard's proto and every entry points at complete files.

    Returns a hash of each referenced file.
    """
    config = read_config(logdir / "projector_config.pbtxt")
    hashes = {}
    for entry in config.embeddings:
        rows, cols = entry.tensor_shape
        tensor = logdir / entry.tensor_path
        assert tensor.stat().st_size == rows * cols * 4, entry.tensor_name
        metadata = (logdir / entry.metadata_path).read_text(encoding="utf-8")
        header, labels = parse_metadata(metadata)
        assert header is None and len(labels) == rows
        sprite = logdir / entry.sprite.image_path
        assert sprite.read_bytes().endswith(b"IEND\xaeB`\x82"), "PNG is complete"
        for path in (tensor, logdir / entry.metadata_path, sprite):
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@pytest.mark.slow
def test_kill_9_mid_write_never_tears_or_loses_a_snapshot(tmp_path, start_tensorboard):
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT, encoding="utf-8")
    logdir = tmp_path / "logs" / "run"
    rng = random.Random(1234)
    previous: dict[str, str] = {}
    next_step = 0
    kills = torn_writes = 0
    for attempt in range(10):
        # Odd attempts: the child kills itself at a random rename inside the writer (after
        # its first complete snapshot). Even attempts: killed from outside at a random time.
        kill_at = rng.randint(6, 20) if attempt % 2 else 0
        process = start_writer(
            script, logdir, "words", next_step, 1000, 5000, 256, kill_at_rename=kill_at
        )
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.strip() == str(next_step), process.stderr.read()  # type: ignore[union-attr]
        if not kill_at:
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
        process.communicate()  # reaps it and closes the pipes
        assert process.returncode == -signal.SIGKILL
        kills += 1
        if any(logdir.rglob(f"{TEMP_PREFIX}*")):
            torn_writes += 1
        hashes = check_consistent(logdir)
        # Every snapshot seen before is still there, byte for byte.
        for path, digest in previous.items():
            assert hashes[path] == digest
        previous = hashes
        steps = ProjectorWriter(logdir).steps("words")
        assert steps == list(range(len(steps)))
        next_step = steps[-1] + 1
    assert kills == 10
    print(f"{torn_writes} of {kills} kills interrupted a file write")
    assert torn_writes >= 1, "no kill landed mid-write: the test proved nothing"
    # A later write cleans up whatever temp files the killed writers left.
    ProjectorWriter(logdir).add_embedding(np.ones((3, 2)) * 0.5, global_step=next_step, tag="words")
    leftovers = [p for p in logdir.rglob(f"{TEMP_PREFIX}*") if p.parent in (logdir,)]
    assert leftovers == []
    tb: TensorBoard = start_tensorboard(logdir.parent)
    tb.wait_for_run("run")
    names = tb.tensor_names("run")
    assert len(names) == next_step + 1
    served = tb.tensor("run", names[0])
    assert served.shape == (5000, 256)


def expected_matrix(rows: int, cols: int, step: int, writer_id: int) -> np.ndarray:
    """What WRITER_SCRIPT's writer ``writer_id`` writes at ``step`` (the same float32 ops)."""
    pattern = 1e-6 * (np.arange(rows, dtype=np.float32)[:, None] + np.arange(cols))
    matrix = pattern + np.float32(step)
    matrix[:, 1] = writer_id
    return matrix.astype(np.float32)  # what the writer stores


@pytest.mark.slow
def test_two_processes_writing_one_log_dir_lose_nothing(tmp_path, start_tensorboard):
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT, encoding="utf-8")
    logdir = tmp_path / "logs"
    jobs = [("alpha", 0, 1), ("beta", 0, 2), ("shared", 0, 3), ("shared", 6, 4)]
    writers = [
        start_writer(script, logdir, tag, first, 12, 200, writer_id=writer_id)
        for tag, first, writer_id in jobs
    ]
    for process in writers:
        _, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
    check_consistent(logdir)
    writer = ProjectorWriter(logdir)
    assert writer.steps("alpha") == list(range(12))
    assert writer.steps("beta") == list(range(12))
    assert writer.steps("shared") == list(range(18))
    # Steps 6..11 of "shared" were written twice: one entry each, holding one writer's data.
    config = read_config(logdir / "projector_config.pbtxt")
    shared_paths = [e.tensor_path for e in config.embeddings if "/shared/" in e.tensor_path]
    assert len(shared_paths) == len(set(shared_paths)) == 18
    tb: TensorBoard = start_tensorboard(logdir)
    tb.wait_for(lambda: len(tb.tensor_names(".")) == 42)
    owners = {"alpha": [1], "beta": [2], "shared": [3, 4]}
    winners = set()
    for entry in config.embeddings:
        tag, step = entry.tensor_path.split("/")[1], int(entry.tensor_path.split("/")[0])
        served = tb.tensor(".", entry.tensor_name)
        labels = parse_metadata(tb.metadata(".", entry.tensor_name))[1]
        # Exactly one writer's tensor and that same writer's labels, byte for byte.
        writer_ids = [w for w in owners[tag] if step in range(*_steps_of(jobs, w))]
        matches = [
            w for w in writer_ids if np.array_equal(served, expected_matrix(200, 64, step, w))
        ]
        assert len(matches) == 1, (entry.tensor_name, writer_ids)
        assert [row[0] for row in labels] == [f"{tag}-{matches[0]}-{i}" for i in range(200)]
        if tag == "shared" and 6 <= step < 12:
            winners.add(matches[0])
    print(f"steps written by both shared writers were won by writers {sorted(winners)}")


def _steps_of(jobs: list[tuple[str, int, int]], writer_id: int) -> tuple[int, int]:
    for _, first, job_id in jobs:
        if job_id == writer_id:
            return first, first + 12
    raise KeyError(writer_id)


PRUNE_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys

    # Die at the N-th file-system change the pruning makes (config rename, unlinks, rmdirs).
    kill_at, calls = int(sys.argv[2]), 0
    def dying(real):
        def change(*args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return change
    os.replace, os.unlink, os.rmdir = dying(os.replace), dying(os.unlink), dying(os.rmdir)

    from embedding_projector import ProjectorWriter

    print(ProjectorWriter(sys.argv[1]).retain("words", keep=3), flush=True)
    """
)


@pytest.mark.slow
def test_kill_9_while_pruning_leaves_a_config_of_complete_snapshots(tmp_path):
    script = tmp_path / "prune.py"
    script.write_text(PRUNE_SCRIPT, encoding="utf-8")
    template = tmp_path / "template"
    writer = ProjectorWriter(template, live_refresh=False)
    images = np.zeros((50, 1, 8, 8), dtype=np.uint8)
    for step in range(10):
        writer.add_embedding(
            RNG.random((50, 8)), [str(i) for i in range(50)], images, global_step=step, tag="words"
        )
    before = check_consistent(template)
    outcomes = set()
    # 1: the config's rename; then 6 pruned steps x (3 unlinks + 2 rmdirs); 40: none is hit.
    for kill_at in (1, 2, 3, 5, 9, 14, 22, 31, 40):
        logdir = tmp_path / f"kill-{kill_at}"
        shutil.copytree(template, logdir)
        process = subprocess.run(
            [sys.executable, str(script), str(logdir), str(kill_at)], capture_output=True, text=True
        )
        hashes = check_consistent(logdir)  # parses; every entry's files complete
        steps = ProjectorWriter(logdir).steps("words")
        assert steps in ([0, 7, 8, 9], list(range(10))), steps
        for path, digest in hashes.items():  # what is referenced is byte-identical
            assert before[path.replace(str(logdir), str(template))] == digest
        leftovers = [s for s in range(1, 7) if (logdir / f"{s:05d}" / "words").exists()]
        if process.returncode == -signal.SIGKILL:
            outcomes.add("before commit" if steps == list(range(10)) else "mid-prune")
        else:
            assert process.returncode == 0, process.stderr
            assert leftovers == []
            outcomes.add("finished")
        # Pruning again finishes the job: no orphaned files, no temp files.
        ProjectorWriter(logdir).retain("words", keep=3)
        assert ProjectorWriter(logdir).steps("words") == [0, 7, 8, 9]
        assert not any((logdir / f"{s:05d}").exists() for s in range(1, 7))
        assert list(logdir.rglob(f"{TEMP_PREFIX}*")) == []
    assert outcomes == {"before commit", "mid-prune", "finished"}, outcomes
