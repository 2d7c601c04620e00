"""maps: aligned 2-D evolution maps and stability scalars, read back through TensorBoard."""

from __future__ import annotations

import doctest
import io
import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from embedding_projector import insight, maps
from embedding_projector.errors import InvalidEmbeddingError
from embedding_projector.glyphs.fonts import font_path, load_font
from embedding_projector.maps import EvolutionMap, MapFrame, MapStyle, silhouette
from embedding_projector.maps import drawing as map_drawing
from embedding_projector.maps.drawing import render_map
from embedding_projector.sink import log_map

SRC = Path(__file__).resolve().parent.parent / "src"
JAPANESE = ["東京", "大阪", "京都", "日本語", "機械学習", "埋め込み", "桜", "富士山", "猫", "犬"]


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def clustered(rng: np.random.Generator, rows: int = 300, dim: int = 24, classes: int = 4) -> Any:
    """Rows around ``classes`` well separated centres, and each row's class."""
    centres = rng.normal(size=(classes, dim)) * 3
    labels = np.arange(rows) % classes
    return centres[labels] + rng.normal(size=(rows, dim)), labels


def ink(image: np.ndarray) -> int:
    """Dark pixels (text, markers) of an RGB image."""
    return int((image.mean(axis=2) < 110).sum())


# -- alignment and projection ---------------------------------------------------------------


def test_a_rotated_copy_lands_on_the_same_coordinates() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 32))
    words = [f"w{i}" for i in range(200)]
    evolution = EvolutionMap(max_rows=150, render=False)
    first = evolution.update(base, words, step=0)
    rotated = base @ random_rotation(32, rng)
    second = evolution.update(rotated, words, step=1)
    np.testing.assert_allclose(second.coords, first.coords, atol=1e-9)
    assert second.drift == pytest.approx(0.0, abs=1e-12)
    assert second.neighbor_overlap == 1.0
    assert second.basis_refit is False and evolution.basis_steps == [0]


def test_a_rotated_noisy_reordered_copy_gives_near_identical_coordinates() -> None:
    rng = np.random.default_rng(1)
    base, _ = clustered(rng, rows=300, dim=32)
    words = [f"w{i}" for i in range(300)]
    evolution = EvolutionMap(max_rows=300, render=False)
    first = evolution.update(base, words, step=0)
    # Rotate, scale (norms grow during training), add noise and shuffle the rows: rows are
    # matched by label, so the map must not change beyond the noise.
    order = rng.permutation(300)
    moved = (base @ random_rotation(32, rng) * 5.0 + rng.normal(scale=0.01, size=base.shape))[order]
    second = evolution.update(moved, [words[i] for i in order], step=1)
    assert second.labels == first.labels  # the same items, in the first snapshot's order
    assert np.abs(second.coords - first.coords).max() < 0.02
    assert second.drift is not None and second.drift < 1e-4


def test_rows_stay_the_same_items_across_steps() -> None:
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(100)]
    evolution = EvolutionMap(max_rows=20, render=False)
    first = evolution.update(rng.normal(size=(100, 8)), words, step=0, highlight=["w50"])
    assert first.labels[0] == "w50" and first.labels[1:] == words[:19]
    assert first.highlight.tolist() == [True] + [False] * 19
    # Next step: a different vocabulary order, two sampled words gone, a new highlight.
    later = words[::-1]
    later.remove("w3")
    later.remove("w4")
    second = evolution.update(
        rng.normal(size=(98, 8)), later, step=1, highlight=["w50", "w99", "unknown"]
    )
    assert second.labels == [w for w in first.labels if w not in ("w3", "w4")] + ["w99"]
    assert np.isnan(second.previous_coords[-1]).all()  # type: ignore[index]
    assert np.isfinite(second.previous_coords[:-1]).all()  # type: ignore[index]


def test_random_sample_is_deterministic_and_keeps_highlights() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(1000, 8))
    labels = [f"item{i}" for i in range(1000)]
    picks = [
        EvolutionMap(max_rows=50, sample="random", seed=7, render=False)
        .update(matrix, labels, step=0, highlight=[999])
        .labels
        for _ in range(2)
    ]
    assert picks[0] == picks[1] and len(picks[0]) == 50 and picks[0][0] == "item999"
    assert picks[0][1:] != labels[:49]  # not just the first rows


def test_rows_without_labels_or_with_repeated_labels_are_matched_by_index() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(60, 6))
    evolution = EvolutionMap(max_rows=60, render=False)
    first = evolution.update(base, ["a", "b", "c"] * 20, step=0)
    assert first.labels[:4] == ["a", "b", "c", "a"]
    second = evolution.update(base @ random_rotation(6, rng), None, step=1)
    assert second.labels[:3] == ["0", "1", "2"]
    assert second.drift == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(second.coords, first.coords, atol=1e-9)
    # Unique labels now: a different way of matching rows, so a new chain starts.
    third = evolution.update(base, [f"r{i}" for i in range(60)], step=2)
    assert third.drift is None and evolution.basis_steps == [2]  # reset() starts over


def test_basis_turns_toward_the_structure_only_as_far_as_the_data_moved() -> None:
    rng = np.random.default_rng(5)
    rows, dim = 300, 40
    noise = rng.normal(size=(rows, dim))  # like a random initialisation: no structure
    structure = noise * 0.05
    structure[:, 7] += rng.normal(size=rows) * 4
    structure[:, 11] += rng.normal(size=rows) * 2
    evolution = EvolutionMap(max_rows=rows, render=False, refit_threshold=0.5)
    first = evolution.update(noise, step=0)
    trained = evolution.update(structure, step=1)
    assert trained.basis_refit and evolution.basis_steps == [0, 1]
    assert trained.explained_variance > 2 * first.explained_variance
    # The picture (unit RMS radius each step, so compare shapes) moved at most twice the data.
    data = _aligned_change(noise, structure)
    picture = np.linalg.norm(trained.coords - first.coords) / np.linalg.norm(first.coords)
    assert picture <= 2 * data + 1e-9
    # While the data keeps moving the basis keeps turning toward the structure ...
    shown = [trained.explained_variance]
    for step in range(2, 6):
        blend = structure + noise * 0.3 * (6 - step) / 4
        shown.append(evolution.update(blend, step=step).explained_variance)
    assert shown[-1] > 0.8 and shown[-1] > shown[0] + 0.2
    # ... and small further changes keep the picture where it was.
    last = evolution.update(structure, step=6)
    nudged = evolution.update(structure + rng.normal(scale=0.01, size=structure.shape), step=7)
    assert np.abs(nudged.coords - last.coords).max() < 0.05
    # refit_threshold=0: the first basis is never replaced.
    frozen = EvolutionMap(max_rows=rows, render=False, refit_threshold=0.0)
    frozen.update(noise, step=0)
    assert not frozen.update(structure, step=1).basis_refit
    assert frozen.basis_steps == [0]


def _aligned_change(before: np.ndarray, after: np.ndarray) -> float:
    """Relative change of the unit, centred rows after the best rotation."""

    def frame(matrix: np.ndarray) -> np.ndarray:
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        return unit - unit.mean(axis=0)

    old, new = frame(before), frame(after)
    u, _, vt = np.linalg.svd(new.T @ old)
    return float(np.linalg.norm(new @ (u @ vt) - old) / np.linalg.norm(old))


# -- scalars -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_silhouette_matches_scikit_learn(seed: int, metric: str) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    matrix, classes = clustered(rng, rows=120, dim=6, classes=3)
    matrix[:40] += rng.normal(scale=3, size=(40, 6))  # overlapping classes, negative scores
    classes = classes.astype(object)
    classes[7] = "alone"  # a class of one row scores 0, as in scikit-learn
    expected = metrics.silhouette_score(matrix, classes.astype(str), metric=metric)
    assert silhouette(matrix, list(classes), metric=metric) == pytest.approx(expected, abs=1e-9)


def test_silhouette_is_undefined_for_one_class_or_all_singletons() -> None:
    assert silhouette(np.eye(3), ["a", "a", "a"]) is None
    assert silhouette(np.eye(3), ["a", "b", "c"]) is None
    with pytest.raises(InvalidEmbeddingError, match="metric"):
        silhouette(np.eye(3), ["a", "a", "b"], metric="manhattan")


def test_separation_rises_when_classes_pull_apart() -> None:
    rng = np.random.default_rng(6)
    tight, classes = clustered(rng)
    mixed = rng.normal(size=tight.shape)
    evolution = EvolutionMap(max_rows=200, render=False)
    before = evolution.update(mixed, step=0, colors=classes)
    after = evolution.update(tight, step=1, colors=classes)
    assert before.separation is not None and after.separation is not None
    assert before.separation < 0.05 < 0.5 < after.separation
    assert after.drift is not None and after.drift > 0.5
    assert after.neighbor_overlap is not None and after.neighbor_overlap < 0.5
    assert after.categories is not None and set(after.categories) == {"0", "1", "2", "3"}


def test_scalars_are_named_like_the_callbacks_log_them() -> None:
    rng = np.random.default_rng(7)
    evolution = EvolutionMap(max_rows=50, neighbors_k=5, render=False)
    matrix, classes = clustered(rng, rows=50)
    evolution.update(matrix, step=0, colors=classes)
    frame = evolution.update(matrix + rng.normal(size=matrix.shape), step=1, colors=classes)
    assert set(frame.scalars("features")) == {
        "features/drift",
        "features/neighbor_overlap_at_5",
        "features/separation",
        "features/map_explained_variance",
    }
    quiet = EvolutionMap(max_rows=50, render=False, scalars=False)
    quiet.update(matrix, step=0)
    assert set(quiet.update(matrix, step=1).scalars("x")) == {"x/map_explained_variance"}


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(500, 64), (20, 64), (5, 1), (3, 5)])
def test_top_two_directions_are_the_leading_singular_vectors(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=shape) * np.linspace(3.0, 1.0, shape[1])
    basis, variances = maps._top_directions(matrix, 2)
    captured = float(variances.sum())
    _, values, vt = np.linalg.svd(matrix, full_matrices=False)
    shown = min(2, len(values))
    assert captured == pytest.approx(float(np.sum(values[:shown] ** 2)))
    # The same directions up to sign; unused columns stay zero.
    np.testing.assert_allclose(np.abs(basis[:, :shown].T @ vt[:shown].T), np.eye(shown), atol=1e-8)
    assert not basis[:, shown:].any()


def test_scalars_match_insight_step_by_step_while_rows_come_and_go() -> None:
    """Neighbour sets are carried over between steps; the numbers must not change."""
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(80)]
    matrix = rng.normal(size=(80, 12))
    evolution = EvolutionMap(max_rows=60, neighbors_k=5, render=False)
    previous: tuple[list[str], np.ndarray] | None = None
    for step, keep in enumerate([80, 80, 80, 70, 70, 80]):
        matrix = matrix + 0.3 * rng.normal(size=matrix.shape)
        order = rng.permutation(80)[:keep] if keep < 80 else np.arange(80)
        frame = evolution.update(matrix[order], [words[i] for i in order], step=step)
        rows = {word: matrix[i] for i, word in enumerate(words) if i in set(order.tolist())}
        sample = [word for word in words[:60] if word in rows]
        if previous is not None:
            shared = [word for word in previous[0] if word in rows]
            before = np.array([previous[1][previous[0].index(word)] for word in shared])
            after = np.array([rows[word] for word in shared])
            assert frame.neighbor_overlap == pytest.approx(
                insight.neighbor_overlap(before, after, 5, max_rows=None)
            )
            assert frame.drift == pytest.approx(insight.drift(before, after, max_rows=None))
        previous = (sample, np.array([rows[word] for word in sample]))


@pytest.mark.parametrize(
    ("matrix", "labels", "match"),
    [
        (np.zeros(5), None, "2-D"),
        (np.zeros((0, 3)), None, "at least one row"),
        (np.array([[1.0, np.nan]]), None, "NaN"),
        (np.array([["a", "b"]]), None, "real-valued"),
        (np.zeros((3, 2)), ["a", "b"], "labels has 2 entries for 3 rows"),
    ],
)
def test_bad_snapshots_are_rejected(matrix: Any, labels: Any, match: str) -> None:
    with pytest.raises(InvalidEmbeddingError, match=match):
        EvolutionMap(render=False).update(matrix, labels, step=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_rows": 1}, "max_rows"),
        ({"sample": "best"}, "sample"),
        ({"refit_threshold": 1.5}, "refit_threshold"),
        ({"extent": 0}, "extent"),
        ({"neighbors_k": True}, "neighbors_k"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EvolutionMap(**kwargs)


def test_map_style_is_checked() -> None:
    assert EvolutionMap().style == MapStyle()
    with pytest.raises(ValueError, match="size"):
        MapStyle(size=(10, 10))
    with pytest.raises(TypeError, match="colour"):
        EvolutionMap(colour="red")  # type: ignore[call-arg]


# -- images ------------------------------------------------------------------------------------


def test_every_step_has_an_image_with_identical_axes() -> None:
    rng = np.random.default_rng(8)
    evolution = EvolutionMap(max_rows=100, style=MapStyle(size=(320, 240), title="words"))
    words = [f"w{i}" for i in range(120)]
    frames = [
        evolution.update(rng.normal(size=(120, 16)) * (step + 1), words, step=step)
        for step in range(3)
    ]
    assert {(frame.xlim, frame.ylim) for frame in frames} == {evolution.limits}
    for frame in frames:
        assert frame.image is not None
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
    assert not np.array_equal(frames[0].image, frames[2].image)


def red_centre(image: np.ndarray, x: float, y: float, reach: int = 10) -> tuple[float, float]:
    """Centre of the red pixels (a highlighted point's ring) within ``reach`` of (x, y)."""
    left, top = round(x) - reach, round(y) - reach
    window = image[top : top + 2 * reach + 1, left : left + 2 * reach + 1].astype(int)
    red = (window[..., 0] > 150) & (window[..., 1] < 110) & (window[..., 2] < 110)
    rows, cols = np.nonzero(red)
    assert len(rows) > 10, "no red ring there"
    return left + cols.mean() + 0.5, top + rows.mean() + 0.5


@pytest.mark.parametrize("size", [(640, 640), (320, 240), (300, 500)])
def test_the_same_coordinates_land_on_the_same_pixels_at_every_step(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(16)
    left, top, side = map_drawing._plot_area(size)
    assert left >= 0 and top > 0 and left + side <= size[0] and top + side <= size[1]
    steps = []
    for step, (title, labels, classes) in enumerate(
        [
            ("words", [f"w{i}" for i in range(40)], None),
            ("単語", JAPANESE * 4, list("abc") * 13 + ["d"]),
        ]
    ):
        # The highlighted rows sit at known places, the rest of the picture changes.
        coords = np.vstack([[[1.5, -1.5], [-2.0, -2.0]], rng.uniform(-2.5, 0.0, size=(38, 2))])
        coords[2:, 1] += 2.5
        frame = MapFrame(
            step,
            coords,
            labels,
            (-3.0, 3.0),
            (-3.0, 3.0),
            categories=classes,
            highlight=np.arange(40) < 2,
        )
        image = render_map(frame, size=size, title=title, draw_labels=False)
        assert image.shape == (size[1], size[0], 3)
        steps.append(
            [
                red_centre(image, left + side * (x + 3) / 6, top + side * (3 - y) / 6)
                for x, y in coords[:2]
            ]
        )
    # Where the axes say (a square: the same scale both ways, y up), and the same at each step.
    for found, expected in zip(steps[0], [(0.75, 0.75), (1 / 6, 5 / 6)], strict=True):
        assert found == pytest.approx(
            (left + side * expected[0], top + side * expected[1]), abs=0.75
        )
    np.testing.assert_allclose(steps[0], steps[1], atol=0.1)


def test_labels_are_drawn_where_they_were_placed_and_do_not_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(17)
    matrix, classes = clustered(rng, rows=400, classes=6)
    labels = [f"{JAPANESE[i % len(JAPANESE)]}{i}" if i % 3 else f"word_{i}" for i in range(400)]
    frame = EvolutionMap(max_rows=400, render=False).update(
        matrix, labels, step=0, colors=classes, highlight=["word_0"]
    )
    frame = MapFrame(**{**frame.__dict__, "previous_coords": None})  # no trail lines
    recorded: list[Any] = []
    place = map_drawing._place_labels

    def recording(*args: Any, **kwargs: Any) -> Any:
        recorded[:] = place(*args, **kwargs)
        return recorded[:]

    legend_boxes: list[Any] = []
    legend_box = map_drawing._legend_box

    def recording_legend(*args: Any, **kwargs: Any) -> Any:
        legend_boxes.append(legend_box(*args, **kwargs))
        return legend_boxes[-1]

    monkeypatch.setattr(map_drawing, "_place_labels", recording)
    monkeypatch.setattr(map_drawing, "_legend_box", recording_legend)
    labelled = render_map(frame, size=(480, 480), label_count=40)
    unlabelled = render_map(frame, size=(480, 480), draw_labels=False)
    assert 20 <= len(recorded) <= 41 and recorded[0].highlighted
    boxes = [label.box for label in recorded]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    left, top, side = map_drawing._plot_area((480, 480))
    for label in recorded[1:]:
        x0, y0, x1, y1 = label.box
        assert left <= x0 and x1 <= left + side and top <= y0 and y1 <= top + side
    # Every pixel the labels changed lies in a placed box (leader lines aside): the boxes
    # the placement avoided overlapping are the ones drawn.
    inside = np.zeros(labelled.shape[:2], dtype=bool)
    for label in recorded:
        x0, y0, x1, y1 = (round(v) for v in label.box)
        inside[max(y0 - 1, 0) : y1 + 2, max(x0 - 1, 0) : x1 + 2] = True
    changed = np.abs(labelled.astype(int) - unlabelled.astype(int)).max(axis=2) > 40
    # (Outside the plot the title and facts may change: the labels choose the font.)
    changed[:top] = changed[top + side :] = False
    changed[:, :left] = changed[:, left + side :] = False
    for legend in legend_boxes:  # and the legend's text
        x0, y0, x1, y1 = (round(v) for v in legend.box)
        changed[y0 : y1 + 1, x0 : x1 + 1] = False
    ys, xs = np.nonzero(changed & ~inside)
    assert not any(label.leader for label in recorded)
    assert len(ys) == 0, list(zip(xs.tolist(), ys.tolist(), strict=True))[:20]
    assert (changed & inside).sum() > 500


def test_draw_rows_limits_the_picture_not_the_scalars() -> None:
    rng = np.random.default_rng(15)
    words = [f"w{i}" for i in range(300)]
    evolution = EvolutionMap(
        max_rows=300, style=MapStyle(draw_rows=20, size=(300, 300), label_count=0)
    )
    evolution.update(rng.normal(size=(300, 8)), words, step=0)
    frame = evolution.update(rng.normal(size=(300, 8)), words, step=1, highlight=["w299"])
    assert len(frame.coords) == 300 and frame.drift is not None
    everything = render_map(frame, size=(300, 300), label_count=0)
    assert frame.image is not None
    assert ink(frame.image) < ink(everything)


def test_colors_give_a_legend_and_coloured_points() -> None:
    rng = np.random.default_rng(9)
    matrix, classes = clustered(rng, rows=200, classes=12)
    frame = EvolutionMap(max_rows=200, render=False).update(matrix, step=0, colors=classes)
    plain = render_map(frame, size=(300, 300))
    frame_plain = MapFrame(frame.step, frame.coords, frame.labels, frame.xlim, frame.ylim)
    monochrome = render_map(frame_plain, size=(300, 300))

    def hues(image: np.ndarray) -> int:
        quantized = image[(image.max(axis=2) - image.min(axis=2)) > 60] // 32
        return len({tuple(pixel) for pixel in quantized})

    assert hues(plain) > hues(monochrome) + 5  # 10 legend colours (+ grey "other")


def test_awkward_labels_render_without_errors() -> None:
    labels = ["$x$", "a_b^c", "$100 and $200", "\\frac{1}{2}", "tab\there", "x" * 80, "", "🙂"]
    matrix = np.random.default_rng(10).normal(size=(len(labels), 4))
    frame = EvolutionMap(max_rows=10, render=False).update(matrix, labels, step=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="embedding_projector")
        image = render_map(frame, size=(200, 200), title="$not math$")
    assert image.shape == (200, 200, 3)


def test_japanese_labels_add_ink_and_no_glyph_is_missing() -> None:
    path = font_path(JAPANESE)
    if not load_font(path).covers("".join(JAPANESE)):
        pytest.skip("no installed font covers Japanese (apt-get install fonts-noto-cjk)")
    matrix = np.random.default_rng(11).normal(size=(len(JAPANESE), 8))
    frame = EvolutionMap(render=False).update(matrix, JAPANESE, step=0, highlight=["東京"])
    placeholders = MapFrame(
        frame.step,
        frame.coords,
        ["?" * len(label) for label in frame.labels],
        frame.xlim,
        frame.ylim,
        highlight=frame.highlight,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labelled = render_map(frame, size=(400, 400))
        unlabelled = render_map(frame, size=(400, 400), draw_labels=False)
        question_marks = render_map(placeholders, size=(400, 400))
    assert [str(w.message) for w in caught] == []  # no MissingGlyphWarning: the font has them
    assert ink(labelled) > ink(unlabelled) + 200
    # Drawn as kanji, not replaced: kanji are denser than the same number of "?".
    assert ink(labelled) > ink(question_marks) + 100


# -- logging, read back by TensorBoard ---------------------------------------------------------


def _tensorboardx_writer(logdir: Path) -> Any:
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(logdir))


def _torch_writer(logdir: Path) -> Any:
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    return tensorboard.SummaryWriter(str(logdir))


@pytest.mark.parametrize("make_writer", [_tensorboardx_writer, _torch_writer])
def test_log_map_is_read_back_by_tensorboards_event_reader(
    tmp_path: Path, make_writer: Callable[[Path], Any]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import (
        IMAGES,
        SCALARS,
        EventAccumulator,
    )

    rng = np.random.default_rng(12)
    evolution = EvolutionMap(max_rows=80, style=MapStyle(size=(300, 200)))
    base, classes = clustered(rng, rows=80)
    writer = make_writer(tmp_path)
    frames = []
    for step in range(3):
        frame = evolution.update(base + rng.normal(size=base.shape), step=step, colors=classes)
        log_map(writer, frame, "features (hidden)")
        frames.append(frame)
    writer.close()

    events = EventAccumulator(str(tmp_path), size_guidance={IMAGES: 0, SCALARS: 0})
    events.Reload()
    # Both writers give the names tensorboardX gives (torch's writer would keep the spaces).
    assert sorted(events.Tags()["scalars"]) == [
        "features__hidden_/drift",
        "features__hidden_/map_explained_variance",
        "features__hidden_/neighbor_overlap_at_10",
        "features__hidden_/separation",
    ]
    images = events.Images("features__hidden_/map")
    assert [image.step for image in images] == [0, 1, 2]
    assert {(image.width, image.height) for image in images} == {(300, 200)}
    decoded = np.asarray(Image.open(io.BytesIO(images[2].encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(decoded, frames[2].image)
    drift = events.Scalars("features__hidden_/drift")
    assert [event.step for event in drift] == [1, 2]
    assert drift[1].value == pytest.approx(frames[2].drift, rel=1e-6)
    assert [e.step for e in events.Scalars("features__hidden_/separation")] == [0, 1, 2]


def test_tensorboard_serves_the_map_at_every_step(shared_tensorboard: Any, shared_run: Any) -> None:
    from tensorboardX import SummaryWriter

    run_dir, run = shared_run()
    rng = np.random.default_rng(13)
    evolution = EvolutionMap(max_rows=60, style=MapStyle(size=(256, 192), title="words"))
    words = [f"w{i}" for i in range(60)]
    with SummaryWriter(str(run_dir)) as writer:
        for step in (0, 5, 10):
            frame = evolution.update(rng.normal(size=(60, 8)), words, step=step)
            log_map(writer, frame, "words")

    def served() -> list[dict[str, Any]]:
        entries = json.loads(
            shared_tensorboard.get("/data/plugin/images/images", run=run, tag="words/map")
        )
        return list(entries) if len(entries) == 3 else []

    entries = shared_tensorboard.wait_for(served)
    assert [entry["step"] for entry in entries] == [0, 5, 10]
    sizes = set()
    for entry in entries:
        png = shared_tensorboard.get("/data/plugin/images/individualImage?" + entry["query"])
        sizes.add(Image.open(io.BytesIO(png)).size)
    assert sizes == {(256, 192)}
    scalars = json.loads(
        shared_tensorboard.get("/data/plugin/scalars/scalars", run=run, tag="words/drift")
    )
    assert [point[1] for point in scalars] == [5, 10]


# -- a real training run -----------------------------------------------------------------------


def test_word2vec_drift_falls_over_epochs(gensim_test_data: Path) -> None:
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.models.word2vec import LineSentence

    evolution = EvolutionMap(max_rows=300, render=False)
    frames: list[MapFrame] = []

    class Snapshot(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model: Any) -> None:
            self.epoch += 1
            words = model.wv.index_to_key[:300]
            frames.append(
                evolution.update(np.array(model.wv.vectors[:300]), words, step=self.epoch)
            )

    corpus = LineSentence(str(gensim_test_data / "lee_background.cor"))
    Word2Vec(
        corpus, vector_size=50, min_count=3, workers=1, seed=3, epochs=6, callbacks=[Snapshot()]
    )
    drift = [frame.drift for frame in frames[1:]]
    overlap = [frame.neighbor_overlap for frame in frames[1:]]
    assert all(value is not None for value in drift + overlap)
    assert drift[0] > 10 * drift[-1], drift  # type: ignore[operator]
    assert overlap[-1] > overlap[0], overlap  # type: ignore[operator]
    assert {(frame.xlim, frame.ylim) for frame in frames} == {evolution.limits}


def test_docstring_examples_run() -> None:
    result = doctest.testmod(maps, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 5


# -- no optional dependency -----------------------------------------------------------------


def test_maps_are_drawn_without_importing_matplotlib() -> None:
    script = textwrap.dedent(
        """
        import sys, warnings
        import numpy as np
        from embedding_projector.maps import EvolutionMap, MapStyle
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            evolution = EvolutionMap(max_rows=30, style=MapStyle(title="words"))
            words, classes = [f"w{i}" for i in range(30)], [i % 3 for i in range(30)]
            frames = [
                evolution.update(np.random.rand(30, 5), words, step=s, colors=classes)
                for s in range(3)
            ]
        print(len(caught), [f.image.shape for f in frames], "matplotlib" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "0 [(640, 640, 3), (640, 640, 3), (640, 640, 3)] False"


def test_frames_without_an_image_log_only_their_scalars() -> None:
    rng = np.random.default_rng(14)
    evolution = EvolutionMap(max_rows=40, render=False)
    evolution.update(rng.normal(size=(40, 6)), step=0)
    frame = evolution.update(rng.normal(size=(40, 6)), step=1)
    assert frame.image is None and frame.drift is not None

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def add_image(self, tag: str, *args: Any, **kwargs: Any) -> None:
            self.calls.append(("image", tag))

        def add_scalar(self, tag: str, *args: Any, **kwargs: Any) -> None:
            self.calls.append(("scalar", tag))

    recorder = Recorder()
    log_map(recorder, frame, "words")
    assert ("scalar", "words/drift") in recorder.calls
    assert all(kind == "scalar" for kind, _ in recorder.calls)
