"""Layouts shipped as the projector's saved states: the maths, the JSON, bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedding_projector._format import bookmarks as _states
from embedding_projector.insight.layouts import (
    LAYOUT_KINDS,
    AlignedLayout,
    ProjectorLayout,
    check_layout_kind,
    layouts_for,
    pca_layouts,
    require_umap,
    umap_layout,
)


def _page_state_fields() -> set[str]:
    """Every field the installed projector page's State class has or its getCurrentState sets."""
    import tensorboard

    bundle = (
        Path(tensorboard.__file__).parent
        / "plugins/projector/tf_projector_plugin/projector_binary.js"
    ).read_text(encoding="utf-8")
    constructor = re.search(r'constructor\(\)\{(this\.label="",this\.isSelected=[^}]*)\}', bundle)
    assert constructor, "State class not found in the page's bundle"
    fields = set(re.findall(r"this\.(\w+)=", constructor.group(1)))
    current = re.search(r"getCurrentState\(\)\{(.*?)\}loadState\(", bundle)
    assert current, "getCurrentState not found in the page's bundle"
    fields |= set(re.findall(r"\bt\.(\w+)=", current.group(1)))
    for body in re.findall(r"populateBookmarkFromUI\(t\)\{(.*?)\}[a-zA-Z]", bundle):
        fields |= set(re.findall(r"\bt\.(\w+)=", body))
    return fields


def _clustered(rows: int, dims: int, clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dims)) * 4
    return (centres[np.arange(rows) % clusters] + rng.normal(size=(rows, dims))).astype(np.float32)


def _cosine_unit(matrix: np.ndarray) -> np.ndarray:
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit - unit.mean(axis=0)


def _pairwise(matrix: np.ndarray) -> np.ndarray:
    squared = np.sum(matrix**2, axis=1)
    dist = np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2 * matrix @ matrix.T, 0, None))
    return dist[np.triu_indices(len(matrix), 1)]


# -- names and bad input -------------------------------------------------------------------------


def test_tsne_and_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="'pca', 'umap'") as tsne:
        check_layout_kind("tsne")
    assert "t-SNE is not offered" in str(tsne.value) and "on load" in str(tsne.value)
    with pytest.raises(ValueError, match=r"'pca', 'umap'.*got 'isomap'"):
        check_layout_kind("isomap")
    with pytest.raises(ValueError, match="t-SNE"):
        layouts_for("t-SNE", np.ones((5, 3)))
    assert LAYOUT_KINDS == ("pca", "umap")


def test_umap_without_umap_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # what an uninstalled package looks like
    with pytest.raises(ImportError, match=r"embedding-projector\[layouts\]"):
        require_umap()
    with pytest.raises(ImportError, match="layouts"):
        layouts_for("umap", np.ones((5, 3)))
    with pytest.raises(ImportError, match="layouts"):
        AlignedLayout("umap")


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [
        (np.full((4, 2), np.nan), "finite"),
        (np.zeros((4, 4)), r"\(rows, 2\) or \(rows, 3\)"),
        (np.zeros(4), r"\(rows, 2\) or \(rows, 3\)"),
    ],
)
def test_projector_layout_refuses_bad_coordinates(coordinates, message):
    with pytest.raises(ValueError, match=message):
        ProjectorLayout("pca", coordinates, "bad")
    with pytest.raises(ValueError, match="tsne"):
        ProjectorLayout("tsne", np.zeros((4, 2)), "bad")


def test_layouts_for_checks_row_count_and_types():
    layout = ProjectorLayout("umap", np.zeros((4, 2)), "mine")
    assert layouts_for(layout, np.ones((4, 3))) == [layout]
    with pytest.raises(ValueError, match="4 rows of coordinates but the tensor has 5"):
        layouts_for([layout], np.ones((5, 3)))
    with pytest.raises(ValueError, match="empty"):
        layouts_for([], np.ones((5, 3)))
    with pytest.raises(ValueError, match="ProjectorLayout"):
        layouts_for([np.zeros((5, 2))], np.ones((5, 3)))  # type: ignore[list-item]


def test_aligned_layout_refuses_bad_snapshots():
    frame = AlignedLayout()
    with pytest.raises(ValueError, match="NaN"):
        frame.update(None, np.full((4, 3), np.nan), step=0)
    with pytest.raises(ValueError, match="keys has 3 entries for 4 rows"):
        frame.update(["a", "b", "c"], np.ones((4, 3)), step=0)
    with pytest.raises(ValueError, match="refit_threshold"):
        AlignedLayout(refit_threshold=2)


# -- the maths -----------------------------------------------------------------------------------


def test_pca_layouts_are_the_top_principal_components():
    matrix = _clustered(400, 20, 4)
    flat, solid = pca_layouts(matrix)
    assert flat.coordinates.shape == (400, 2) and solid.coordinates.shape == (400, 3)
    data = _cosine_unit(matrix.astype(np.float64))
    _, _, vt = np.linalg.svd(data, full_matrices=False)
    reference = data @ vt[:3].T
    for axis in range(3):
        correlation = np.corrcoef(solid.coordinates[:, axis], reference[:, axis])[0, 1]
        assert abs(correlation) > 0.9999
    np.testing.assert_allclose(flat.coordinates, solid.coordinates[:, :2], rtol=1e-5)
    # The picture is the data: pairwise distances follow the (cosine) geometry of the rows.
    assert np.corrcoef(_pairwise(flat.coordinates), _pairwise(data))[0, 1] > 0.8


def test_alignment_undoes_a_planted_rotation_sign_flip_and_row_shuffle():
    rng = np.random.default_rng(3)
    matrix = _clustered(300, 12, 5, seed=3)
    keys = [f"w{i}" for i in range(300)]
    frame = AlignedLayout()
    first = frame.update(keys, matrix, step=1)
    assert frame.aligned_matrix is not None
    first_aligned = frame.aligned_matrix.copy()
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    if np.linalg.det(rotation) > 0:
        rotation[:, 0] *= -1  # a reflection, not only a rotation
    assert np.linalg.det(rotation) == pytest.approx(-1.0)
    order = rng.permutation(300)
    second = frame.update([keys[i] for i in order], (matrix @ rotation)[order], step=2)
    for before, after in zip(first, second, strict=True):
        np.testing.assert_allclose(after.coordinates, before.coordinates[order], atol=2e-4)
    # Every dimension is undone, not only those the pictures show.
    np.testing.assert_allclose(frame.aligned_matrix, first_aligned[order], atol=1e-5)
    assert second[0].label == "step 2 · aligned PCA"
    assert second[1].label == "step 2 · aligned PCA 3-D"
    assert frame.basis_steps == [1]
    assert frame.aligned_matrix is not None and frame.aligned_matrix.shape == (300, 12)
    assert frame.basis is not None and frame.basis.shape == (12, 3)


def test_alignment_with_new_and_dropped_rows_keeps_the_shared_rows_in_place():
    rng = np.random.default_rng(5)
    matrix = _clustered(300, 12, 5, seed=5)
    frame = AlignedLayout()
    first = frame.update([f"w{i}" for i in range(250)], matrix[:250], step=0)
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    second = frame.update([f"w{i}" for i in range(50, 300)], matrix[50:] @ rotation, step=1)
    # Same rows, same geometry, so the same place up to the re-centring of the new row set.
    before, after = first[0].coordinates[50:], second[0].coordinates[:200]
    shift = (after - before).mean(axis=0)
    np.testing.assert_allclose(after - shift, before, atol=0.05)


def test_one_scale_for_every_step_and_refit_only_when_the_basis_stops_showing_much():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(400, 10)) * np.array([5, 4, 3] + [0.3] * 7)
    frame = AlignedLayout()
    frame.update(None, base, step=0)
    scale = frame.scale
    # Shrinking the spread keeps the scale: the picture shrinks with the data.
    shrunk = frame.update(None, base * np.array([1, 1, 1] + [1] * 7) * 0.5, step=1)
    assert frame.scale == scale and frame.basis_steps == [0]
    del shrunk
    # Variance moves to dimensions the basis does not show: the basis is refitted.
    moved = base[:, [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]] * np.array([1] * 5 + [0.01] * 5)
    moved = moved + rng.normal(size=moved.shape) * np.array([6, 5, 4, 0, 0, 0, 0, 0, 0, 0])
    frame.update(None, moved, step=2)
    assert frame.basis_steps == [0, 2]


def test_variance_moving_to_another_plane_never_makes_the_picture_jump():
    """A run engineered to need a refit: the larger spread moves from dimensions 0-2 to 5-7
    a little at each step, so the top components swap planes between two steps."""
    rng = np.random.default_rng(11)
    noise = rng.normal(size=(400, 10)) * 0.2
    old_plane, new_plane = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    frame = AlignedLayout()
    pictures, data, shown = [], [], []
    for step in range(16):
        matrix = noise.copy()
        matrix[:, 0:3] += old_plane * (3.0 - 0.1 * step)
        matrix[:, 5:8] += new_plane * (2.4 + 0.1 * step)
        pictures.append(frame.update(None, matrix, step=step))
        data.append(frame.aligned_matrix.astype(np.float64).copy())
        top = np.sum(np.linalg.eigvalsh(data[-1].T @ data[-1])[-3:])
        assert frame.basis is not None
        shown.append(float(np.sum((data[-1] @ frame.basis) ** 2) / top))
    assert len(frame.basis_steps) > 2  # the basis turned, over several steps
    for index in range(1, len(pictures)):
        change = np.linalg.norm(data[index] - data[index - 1]) / np.linalg.norm(data[index - 1])
        for before, after in zip(pictures[index - 1], pictures[index], strict=True):
            moved = np.linalg.norm(after.coordinates - before.coordinates)
            assert moved / np.linalg.norm(before.coordinates) <= 4 * change + 0.02, index
    # The price: the basis lags the swapped plane (it turns only at the data's pace).
    assert shown[-1] < 0.9


def test_a_skipped_step_carries_the_last_positions_over_by_key():
    matrix = _clustered(50, 6, 3)
    keys = [f"w{i}" for i in range(50)]
    frame = AlignedLayout()
    assert frame.carry_over(keys, 50, step=0) == []  # nothing computed yet
    computed = frame.update(keys, matrix, step=3)
    order = np.arange(50)[::-1]
    carried = frame.carry_over([keys[i] for i in order], 50, step=5, reason="skipped (budget)")
    assert [layout.label for layout in carried] == [
        "step 5 · aligned PCA skipped (budget): positions of step 3",
        "step 5 · aligned PCA skipped (budget): positions of step 3 3-D",
    ]
    for before, after in zip(computed, carried, strict=True):
        np.testing.assert_array_equal(after.coordinates, before.coordinates[order])
    assert frame.carry_over([*keys[:49], "new"], 50, step=5) == []  # a row never placed
    # The frame itself is unchanged: the next update aligns to step 3 as before.
    again = frame.update(keys, matrix, step=6)
    np.testing.assert_allclose(again[0].coordinates, computed[0].coordinates, atol=1e-5)


# -- the saved-state JSON ------------------------------------------------------------------------


def _straightforward(layout, dimensions, color_by, label_by):
    """The state built the obvious way: a dict per row, json.dumps."""
    fields = _states.state_fields(
        layout, dimensions=dimensions, color_by=color_by, label_by=label_by
    )
    fields["projections"] = [
        {f"{layout.kind}-{j}": float(str(value)) for j, value in enumerate(row)}
        for row in layout.coordinates
    ]
    return json.loads(json.dumps(fields))


def _as_float32(state):
    """The state with each coordinate as the float32 it reads back as (the text need not be
    the shortest decimal: 9 significant digits round-trip)."""
    return {
        **state,
        "projections": [
            {key: np.float32(value) for key, value in point.items()}
            for point in state["projections"]
        ],
    }


def test_saved_states_json_equals_the_straightforward_construction():
    rng = np.random.default_rng(11)
    coords = rng.normal(size=(37, 3)).astype(np.float32) * np.float32(1e3)
    coords[0] = [0.0, -0.0, 1e-30]
    coords[1] = [3.4e38, -1.1754944e-38, 1.0]
    layouts = [
        ProjectorLayout("pca", coords[:, :2], 'step 1 · aligned PCA "quoted" 東京'),
        ProjectorLayout("pca", coords, "step 1 · aligned PCA 3-D"),
        ProjectorLayout("umap", coords[:, 1:], "UMAP"),
    ]
    text = _states.saved_states_json(layouts, dimensions=(37, 8), color_by="kind", label_by="word")
    loaded = json.loads(text)
    assert [_as_float32(state) for state in loaded] == [
        _as_float32(_straightforward(lay, (37, 8), "kind", "word")) for lay in layouts
    ]
    for state, layout in zip(loaded, layouts, strict=True):
        shown = np.array(
            [
                [p[f"{layout.kind}-{j}"] for j in range(layout.coordinates.shape[1])]
                for p in state["projections"]
            ],
            dtype=np.float32,
        )
        np.testing.assert_array_equal(shown, layout.coordinates)  # exact float32 round trip
    assert loaded[0]["pcaComponentDimensions"] == [0, 1]
    assert loaded[1]["pcaComponentDimensions"] == [0, 1, 2]
    assert loaded[2]["selectedProjection"] == "umap" and loaded[2]["umapIs3d"] is False
    assert not any(state["isSelected"] for state in loaded)


_FLOAT32_EDGES = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.3, 0.5, 1.5, 10.25, 1234.5, 100.0, 16777217.0, 123456789.0,
    999999999.0, 1e9, 1e10, 9.9999999e-5, 1e-5, 1e-45, -1e-45, 1.1754944e-38, 3.4028235e38,
    -3.4028235e38,
]  # fmt: skip


def _numbers(values):
    """Each value's text from ``float32_text``, as the JSON file holds it."""
    return [bytes(row).replace(b"\0", b"").decode("ascii") for row in _states.float32_text(values)]


def test_float32_text_reads_back_as_the_same_float32_at_the_edges():
    powers = np.array([10.0**k for k in range(-45, 39)], dtype=np.float32)
    powers = powers[powers > 0]
    edges = np.concatenate(
        [
            np.array(_FLOAT32_EDGES, dtype=np.float32),
            powers,
            np.nextafter(powers, np.float32(np.inf)),
            np.nextafter(powers, np.float32(0)),
        ]
    )
    values = np.concatenate([edges, -edges])
    texts = _numbers(values)
    read = [json.loads(text) for text in texts]  # valid JSON numbers, each
    assert all(isinstance(number, float) for number in read)  # "1e0", not "1": floats in Python
    np.testing.assert_array_equal(np.array(read, dtype=np.float32), values)
    assert max(map(len, texts)) <= 15
    assert texts[:9] == ["0.0", "-0.0", "1e0", "-1e0", "1e-1", "3e-1", "5e-1", "15e-1",
                         "1025e-2"]  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1))
def test_float32_text_round_trips_any_float32(floats):
    values = np.array(floats, dtype=np.float32)
    read = np.array([json.loads(text) for text in _numbers(values)], dtype=np.float32)
    np.testing.assert_array_equal(read, values)


def test_every_state_carries_every_field_of_the_pages_state():
    page_fields = _page_state_fields()
    assert {"projections", "pcaComponentDimensions", "selectedLabelOption"} <= page_fields
    layout = ProjectorLayout("pca", np.zeros((3, 2)), "x")
    written = json.loads(_states.saved_states_json([layout], dimensions=(3, 4)))[0]
    assert page_fields <= set(written), page_fields - set(written)


def test_saved_states_json_refuses_bad_coordinates():
    layout = _states.SavedState("pca", np.zeros((3, 2), np.float32), "x")
    with pytest.raises(ValueError, match=r"\(4, 2\) or \(4, 3\)"):
        _states.saved_states_json([layout], dimensions=(4, 4))
    bad = _states.SavedState("pca", np.array([[np.nan, 0]] * 3, np.float32), "x")
    with pytest.raises(ValueError, match="finite"):
        _states.saved_states_json([bad], dimensions=(3, 4))
    with pytest.raises(ValueError, match="pca"):
        _states.saved_states_json(
            [_states.SavedState("tsne", np.zeros((3, 2), np.float32), "x")], dimensions=(3, 4)
        )


# -- UMAP (numba compiles for ~20-30 s on first use) ---------------------------------------------


@pytest.mark.slow
def test_umap_of_every_row_keeps_clusters_and_a_warm_step_stays_put():
    pytest.importorskip("umap")
    matrix = _clustered(300, 16, 3, seed=2)
    cold = umap_layout(matrix, seed=0)
    assert cold.kind == "umap" and cold.coordinates.shape == (300, 2)
    assert "all 300 rows" in cold.label
    # Each row's nearest neighbour in the layout is in its own cluster.
    dist = np.linalg.norm(cold.coordinates[:, None] - cold.coordinates[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argmin(dist, axis=1)
    assert np.mean(nearest % 3 == np.arange(300) % 3) > 0.95

    frame = AlignedLayout("umap", seed=0)
    keys = [f"w{i}" for i in range(300)]
    (first,) = frame.update(keys, matrix, step=1)
    rng = np.random.default_rng(4)
    nudged = matrix + rng.normal(size=matrix.shape).astype(np.float32) * 0.05
    (second,) = frame.update(keys, nudged, step=2)
    assert second.label == "step 2 · aligned UMAP of all 300 rows"
    for axis in range(2):
        correlation = np.corrcoef(first.coordinates[:, axis], second.coordinates[:, axis])[0, 1]
        assert correlation > 0.9


@pytest.mark.parametrize(
    "module_name",
    ["insight.layouts", "insight._layout_core", "insight._aligned_layout", "_format.bookmarks"],
)
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    module = importlib.import_module(f"embedding_projector.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_float32_text_reads_back_as_numpys_shortest_decimals():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    special = [0.0, -0.0, 1e-45, -1.1754944e-38, 3.4028235e38, 1e-4, 9.99999e-5, 0.1, 1e16]
    values = np.concatenate([values[np.isfinite(values)], np.array(special, np.float32)])
    rows = _states.float32_text(values)
    text = b"[" + b",".join(bytes(row[row != 0]) for row in rows) + b"]"
    read = np.array(json.loads(text), dtype=np.float64)
    # Every float32 comes back bit for bit (signed zeros too) ...
    np.testing.assert_array_equal(read.astype(np.float32).view(np.uint32), values.view(np.uint32))
    # ... and as the same decimal as numpy's shortest repr (no longer than needed).
    np.testing.assert_array_equal(read, [float(value) for value in values.astype("S16")])
