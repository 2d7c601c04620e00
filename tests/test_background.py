"""BackgroundWriter and single_threaded_blas: the work done beside training."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from embedding_projector.sink.background import BackgroundWriter, single_threaded_blas


def blas_threads() -> set[int]:
    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


@pytest.fixture
def several_blas_threads() -> set[int]:
    """numpy's BLAS thread count(s) before the test; skips where there is nothing to limit."""
    before = blas_threads()
    if not before or before == {1}:
        pytest.skip("numpy's BLAS runs on one thread here (or threadpoolctl cannot see it)")
    return before


def test_jobs_run_in_order_and_errors_become_warnings() -> None:
    done: list[int] = []

    def fail() -> None:
        raise OSError("disk on fire")

    with BackgroundWriter(max_pending=1) as background:
        for value in range(5):
            background.submit(done.append, value)
        background.submit(fail)
        with pytest.warns(RuntimeWarning, match="skipped a snapshot: OSError: disk on fire"):
            background.flush()
    assert done == [0, 1, 2, 3, 4]


def test_blas_is_single_threaded_inside_and_restored_after(several_blas_threads: set[int]) -> None:
    with single_threaded_blas():
        assert blas_threads() == {1}
        np.linalg.svd(np.eye(4))
    assert blas_threads() == several_blas_threads


def test_overlapping_blocks_from_two_threads_restore_the_original_count(
    several_blas_threads: set[int],
) -> None:
    """Block A starts, block B starts, A ends, B ends: B must stay limited and end restored."""
    inside = threading.Event()

    def short_block() -> None:
        with single_threaded_blas():
            inside.set()
            time.sleep(0.1)

    first = threading.Thread(target=short_block)
    first.start()
    inside.wait(5)
    with single_threaded_blas():
        time.sleep(0.3)  # outlives the other block
        during = blas_threads()
    first.join()
    assert during == {1}
    assert blas_threads() == several_blas_threads
