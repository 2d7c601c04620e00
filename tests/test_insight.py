"""insight: alignment, drift, neighbour overlap and neighbour tables (pure numpy)."""

from __future__ import annotations

import itertools

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
    # The axes and their opposites: the unit rows have mean zero, so centring changes nothing.
    before = np.vstack([np.eye(4), -np.eye(4)])
    after = before.copy()
    after[0, :] = [1.0, 1.0, 0.0, 0.0]  # row 0 turned by 45 degrees ...
    after[4, :] = [-1.0, -1.0, 0.0, 0.0]  # ... and its opposite with it; others fixed
    expected = 2 * (1 - np.cos(np.pi / 4)) / 8
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
    # Points on an arc: neighbours are the adjacent points (also seen from the arc's centroid;
    # points on a straight line would all be collinear once centred).
    angles = np.radians(30.0 * np.arange(6))
    line = np.column_stack([np.cos(angles), np.sin(angles)])
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
    # Three rows and their opposites: the unit rows have mean zero, so centring changes nothing.
    half = np.array([[1.0, 0.0], [10.0, 1.0], [0.1, 1.0]])
    matrix = np.vstack([half, -half])
    table = insight.neighbor_table(matrix, ["a", "b", "c", "d", "e", "f"], ["a", "nope", 2], k=2)
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


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(min_value=3, max_value=40),
    k=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_neighbor_overlap_matches_brute_force_sets(rows: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(rows, 4)), rng.normal(size=(rows, 4))

    def brute(m: np.ndarray) -> list[set[int]]:
        # Cosine between mean-centred unit rows (the frame insight measures in).
        unit = m / np.linalg.norm(m, axis=1, keepdims=True)
        centred = unit - unit.mean(axis=0)
        centred /= np.linalg.norm(centred, axis=1, keepdims=True)
        sims = centred @ centred.T
        kk = min(k, rows - 1)
        return [
            set(sorted((j for j in range(rows) if j != i), key=lambda j: -sims[i, j])[:kk])
            for i in range(rows)
        ]

    expected = np.mean(
        [len(x & y) / min(k, rows - 1) for x, y in zip(brute(a), brute(b), strict=True)]
    )
    assert insight.neighbor_overlap(a, b, k=k) == pytest.approx(expected)
    sets = insight.nearest_neighbor_sets(a, k)
    assert [set(row) for row in sets.tolist()] == brute(a)


def _uncentred_cosine_mean(matrix: np.ndarray) -> float:
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    similarity = unit @ unit.T
    n = len(unit)
    return float((similarity.sum() - n) / (n * n - n))


def test_drift_and_overlap_agree_on_a_word2vec_run_still_moving() -> None:
    """Issue 17 item 6: nearly collinear vectors must not read as a frozen embedding."""
    word2vec = pytest.importorskip("gensim.models.word2vec")
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        corpus = [simple_preprocess(line) for line in handle]
    model = word2vec.Word2Vec(corpus, vector_size=50, min_count=5, workers=1, seed=1, epochs=1)
    snapshots = [model.wv.vectors[:1000].copy()]
    for _ in range(4):
        model.train(corpus, total_examples=len(corpus), epochs=1)
        snapshots.append(model.wv.vectors[:1000].copy())
    # The trap: raw cosines say every pair of words is nearly the same direction.
    assert _uncentred_cosine_mean(snapshots[-1]) > 0.95

    for before, after in itertools.pairwise(snapshots):
        overlap = insight.neighbor_overlap(before, after, k=10)
        drift = insight.drift(before, after)
        assert overlap < 0.95  # neighbourhoods are still changing ...
        assert drift > 1e-3  # ... and drift says so (uncentred it read ~1e-4 and less)
        # Same direction of evidence: a lot of movement would mean little overlap.
        assert drift < 2 * (1 - overlap)

    labels = list(model.wv.index_to_key[:1000])
    table = insight.neighbor_table(snapshots[-1], labels, labels[:20], k=10)
    similarities = np.array([entry.similarities for entry in table])
    assert len(table) == 20
    assert similarities.min() < 0.9  # not all ~1.00 as raw cosines would show
    assert similarities.max() - similarities.min() > 0.2
    # The table is ordered by centred cosine: recompute one probe independently.
    frame = insight.centered_unit_rows(snapshots[-1].astype(np.float64))
    frame /= np.linalg.norm(frame, axis=1, keepdims=True)
    scores = frame @ frame[0]
    scores[0] = -np.inf
    expected = [labels[i] for i in np.argsort(-scores)[:3]]
    assert table[0].labels[:3] == expected
    np.testing.assert_allclose(table[0].similarities[:3], np.sort(scores)[::-1][:3], atol=1e-5)


def test_centered_unit_rows_remove_a_shared_direction() -> None:
    rng = np.random.default_rng(7)
    spread = rng.normal(size=(200, 6))
    shared = np.zeros(6)
    shared[0] = 50.0
    collinear = spread + shared  # every row points almost along axis 0
    assert _uncentred_cosine_mean(collinear) > 0.99
    frame = insight.centered_unit_rows(collinear)
    np.testing.assert_allclose(frame.mean(axis=0), 0.0, atol=1e-12)
    # Rotation and scaling of the input rotate the frame with it: no measure changes.
    rotation = random_rotation(6, rng)
    np.testing.assert_allclose(
        insight.centered_unit_rows(3.0 * collinear @ rotation), frame @ rotation, atol=1e-12
    )
    assert insight.drift(collinear, 3.0 * collinear @ rotation) == pytest.approx(0, abs=1e-9)
    assert insight.row_drift(collinear, collinear).shape == (200,)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(min_value=4, max_value=80),
    dim=st.integers(min_value=2, max_value=10),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_fit_alignment_is_procrustes_on_centred_unit_rows(rows: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(max(rows, dim + 2), dim)) + rng.normal(size=dim) * 3
    source = rng.normal(size=target.shape)

    def frame(m: np.ndarray) -> np.ndarray:
        unit = m / np.linalg.norm(m, axis=1, keepdims=True)
        centred = unit - unit.mean(axis=0)
        return centred / np.linalg.norm(centred, axis=1, keepdims=True)

    reference, _ = scipy.linalg.orthogonal_procrustes(frame(source), frame(target))
    fit = insight.fit_alignment(source, target)
    np.testing.assert_allclose(fit.rotation, reference, atol=1e-8)
    # A rotated, scaled copy is recovered exactly.
    rotation = random_rotation(dim, rng)
    turned = insight.fit_alignment(2.5 * target @ rotation, target)
    np.testing.assert_allclose(turned.rotation, rotation.T, atol=1e-8)
    assert turned.distances(2.5 * target @ rotation, target).max() < 1e-9


def test_fit_alignment_trim_ignores_the_rows_that_moved() -> None:
    rng = np.random.default_rng(11)
    target = rng.normal(size=(400, 8)) + 2.0
    source = target @ random_rotation(8, rng)
    moved = rng.choice(400, size=20, replace=False)
    source[moved] = rng.normal(size=(20, 8)) * 3
    plain = insight.fit_alignment(source, target)
    trimmed = insight.fit_alignment(source, target, trim=0.1)
    still = np.setdiff1d(np.arange(400), moved)
    assert trimmed.distances(source, target)[still].max() < 1e-9
    assert plain.distances(source, target)[still].max() > 1e-4  # the moved rows tilt a plain fit
    assert not trimmed.fitted[moved].any()
    with pytest.raises(ValueError, match="trim"):
        insight.fit_alignment(source, target, trim=0.5)


@pytest.mark.parametrize(("rows", "k"), [(3000, 10), (2561, 7), (50, 10), (700, 1)])
def test_nearest_neighbors_match_a_full_sort(rows: int, k: int) -> None:
    """The chunked top-k pass gives each row's exact k best (a full argsort as reference)."""
    rng = np.random.default_rng(rows)
    matrix = rng.normal(size=(rows, 12)).astype(np.float32) + 2.0
    indices, similarities = insight.nearest_neighbors(matrix, None, k)
    unit = insight.centered_unit_rows(matrix)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(scores, expected, axis=1)
    # The same scores in the same order (a near-tie may swap equal-scored rows: BLAS sums
    # a batch's products in another order than the full product's).
    np.testing.assert_allclose(np.take_along_axis(scores, indices, axis=1), best, atol=1e-5)
    np.testing.assert_allclose(similarities, best, atol=1e-5)
    assert (indices == expected).mean() > 0.999
    assert (indices != np.arange(rows)[:, None]).all()
    some, _ = insight.nearest_neighbors(matrix, [5, 0], k)
    np.testing.assert_array_equal(some, indices[[5, 0]])
