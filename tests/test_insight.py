"""insight: alignment, drift, neighbour overlap and neighbour tables (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_projector import insight


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))  # a proper random orthogonal matrix (Haar)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(min_value=3, max_value=60),
    dim=st.integers(min_value=2, max_value=12),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_procrustes_recovers_a_known_rotation(rows: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(max(rows, dim + 1), dim))
    rotation = random_rotation(dim, rng)
    found = insight.orthogonal_procrustes(source, source @ rotation)
    np.testing.assert_allclose(found, rotation, atol=1e-9)
    reference, _ = scipy.linalg.orthogonal_procrustes(source, source @ rotation)
    np.testing.assert_allclose(found, reference, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_procrustes_matches_scipy_on_noisy_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    reference, _ = scipy.linalg.orthogonal_procrustes(a, b)
    found = insight.orthogonal_procrustes(a, b)
    np.testing.assert_allclose(found, reference, atol=1e-9)
    np.testing.assert_allclose(found @ found.T, np.eye(5), atol=1e-12)


def test_align_undoes_a_rotation_in_float32() -> None:
    rng = np.random.default_rng(0)
    previous = rng.normal(size=(500, 16)).astype(np.float32)
    current = (previous @ random_rotation(16, rng)).astype(np.float32)
    aligned = insight.align(current, previous)
    assert aligned.dtype == np.float32
    np.testing.assert_allclose(aligned, previous, atol=1e-5)


def test_align_fits_on_leading_rows_but_rotates_all() -> None:
    rng = np.random.default_rng(1)
    previous = rng.normal(size=(100, 4))
    current = previous @ random_rotation(4, rng)
    current[50:] += 10.0  # junk beyond max_rows must not change the fitted rotation
    aligned = insight.align(current, previous, max_rows=50)
    np.testing.assert_allclose(aligned[:50], previous[:50], atol=1e-9)
    assert aligned.shape == current.shape


def test_drift_is_zero_for_rotation_and_scaling() -> None:
    rng = np.random.default_rng(2)
    before = rng.normal(size=(200, 10))
    after = 3.0 * before @ random_rotation(10, rng)
    assert insight.drift(before, after) == pytest.approx(0.0, abs=1e-9)
    # Without alignment, the rotation looks like a lot of movement.
    assert insight.drift(before, after, aligned=False) > 0.5


def test_drift_measures_real_movement() -> None:
    before = np.eye(4)
    after = np.eye(4)
    after[0, :] = [1.0, 1.0, 0.0, 0.0]  # row 0 turned by 45 degrees, others fixed
    expected = (1 - np.cos(np.pi / 4)) / 4
    assert insight.drift(before, after, aligned=False) == pytest.approx(expected)
    assert 0 < insight.drift(before, after) <= expected + 1e-12


def test_drift_uses_at_most_max_rows() -> None:
    rng = np.random.default_rng(3)
    before = rng.normal(size=(100, 6))
    after = before.copy()
    after[10:] = rng.normal(size=(90, 6))
    assert insight.drift(before, after, max_rows=10) == pytest.approx(0.0, abs=1e-12)
    assert insight.drift(before, after, max_rows=None) > 0.1


def test_neighbor_overlap_is_one_for_the_same_geometry() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 8))
    assert insight.neighbor_overlap(x, 2 * x @ random_rotation(8, rng), k=10) == 1.0


def test_neighbor_overlap_is_low_for_unrelated_snapshots() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    overlap = insight.neighbor_overlap(a, b, k=10)
    # Random neighbourhoods share about k / (n - 1) of their members.
    assert overlap < 0.1


def test_neighbor_overlap_counts_partial_overlap_exactly() -> None:
    # Points on a line: neighbours are the adjacent points.
    line = np.array([[1.0, 0.1 * i] for i in range(6)])
    assert insight.neighbor_overlap(line, line, k=2) == 1.0
    swapped = line[[1, 0, 2, 3, 4, 5]]  # rows 0 and 1 exchange positions
    value = insight.neighbor_overlap(line, swapped, k=1)
    assert 0 < value < 1


def test_neighbor_overlap_bounds_rows_and_k() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 3))
    y = x.copy()
    y[20:] = rng.normal(size=(30, 3))
    assert insight.neighbor_overlap(x, y, k=5, max_rows=20) == 1.0
    assert insight.neighbor_overlap(x[:3], x[:3], k=50) == 1.0  # k capped at n - 1
    with pytest.raises(ValueError, match="k must be"):
        insight.neighbor_overlap(x, y, k=0)
    with pytest.raises(ValueError, match="max_rows"):
        insight.neighbor_overlap(x, y, max_rows=1)


def test_shape_mismatch_is_explained() -> None:
    with pytest.raises(ValueError, match="match_rows"):
        insight.drift(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        insight.drift(np.zeros(3), np.zeros(3))


def test_match_rows_pairs_shared_labels() -> None:
    prev_index, cur_index = insight.match_rows(["a", "b", "c", "a"], ["c", "z", "a", "b"])
    assert prev_index.tolist() == [2, 0, 1]
    assert cur_index.tolist() == [0, 2, 3]


def test_neighbor_table_ranks_by_cosine() -> None:
    matrix = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    table = insight.neighbor_table(matrix, ["a", "b", "c", "d"], ["a", "nope", 2], k=2)
    assert [entry.query for entry in table] == ["a", "c"]
    assert table[0].labels == ["b", "c"]  # length does not matter, direction does
    assert table[0].similarities[0] == pytest.approx(10 / np.sqrt(101))
    assert table[1].labels == ["b", "a"]


def test_format_neighbor_table_escapes_markdown() -> None:
    table = [insight.Neighbors("a|b", ["x_y", "*"], [0.5, 0.25])]
    text = insight.format_neighbor_table(table)
    lines = text.splitlines()
    assert lines[0] == "| word | 1 | 2 |"
    assert lines[2] == "| **a\\|b** | x\\_y 0.50 | \\* 0.25 |"
    assert insight.format_neighbor_table([]) == "(no probe words found)"
