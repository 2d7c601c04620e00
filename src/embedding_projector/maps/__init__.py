"""Aligned 2-D maps of an embedding, one per step, and the stability scalars that go with them.

TensorBoard's projector recomputes PCA for every snapshot, so its axes flip and rotate from one
epoch to the next. :class:`EvolutionMap` keeps one coordinate frame for the whole run, so the
IMAGES tab's step slider plays the evolution with stable axes:

1. **Same rows.** At the first :meth:`EvolutionMap.update` it picks at most ``max_rows`` rows
   (``sample="first"``: the leading rows, callers order them most important first;
   ``"random"``: a seeded sample) plus the highlighted rows, and keeps *those items* for the
   whole run. Rows are matched across steps by label when the labels are unique (a word keeps
   its identity even if the vocabulary order changes), by row index otherwise.
2. **Cosine geometry.** Each snapshot's rows are scaled to unit length and centred (as in
   Hamilton et al., 2016, "Diachronic word embeddings"), so growing vector norms during
   training do not blow the map up.
3. **Alignment.** Each snapshot is rotated onto the previous *aligned* one with orthogonal
   Procrustes on the rows both share (:func:`embedding_projector.insight.orthogonal_procrustes`);
   a rotation changes no cosine neighbourhood, so the chain of snapshots lives in the frame of
   the first one.
4. **One 2-D basis, moving only as far as the data.** The projection is PCA fitted on the first
   snapshot. When the variance of the current (aligned) snapshot that it shows falls below
   ``refit_threshold`` times what the snapshot's own top-2 principal components show, it turns
   toward them along the shortest path, only as far as keeps the picture's change within twice
   the data's (:func:`embedding_projector.insight._layout_core.follow_basis`, the same rule as the
   projector's aligned layouts): a new plane is reached over several steps, never in a jump.
   :attr:`MapFrame.basis_refit` says at which steps it moved.
5. **Fixed axes.** The 2-D coordinates are scaled to unit RMS radius and drawn in the same
   square ``[-extent, extent]`` at every step (points beyond it are clipped to the edge), so
   the map shows shape, not scale. :attr:`MapFrame.xlim` and :attr:`MapFrame.ylim` are the
   limits used.

Each :class:`MapFrame` also carries the stability scalars, computed on the same bounded sample
by :mod:`embedding_projector.insight` (one implementation for every callback): ``drift`` (mean
cosine distance to the previous snapshot after alignment), ``neighbor_overlap`` (mean overlap
of the ``k`` nearest neighbours with the previous snapshot) and, when ``colors`` gives a class
per row, ``separation`` (mean silhouette coefficient, cosine distance, see :func:`silhouette`).

Drawing is in :mod:`embedding_projector.maps.drawing` (Pillow, ~10 ms for 500 points);
logging to TensorBoard in :mod:`embedding_projector.sink`.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> words = [f"w{i}" for i in range(100)]
    >>> evolution = EvolutionMap(max_rows=50, render=False)
    >>> first = evolution.update(rng.normal(size=(100, 16)), words, step=0)
    >>> first.coords.shape, first.drift
    ((50, 2), None)
    >>> second = evolution.update(rng.normal(size=(100, 16)), words, step=1)
    >>> second.xlim == first.xlim and 0.5 < second.drift < 1.5
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from .. import insight
from ..errors import InvalidEmbeddingError
from ..insight._alignment import unit_rows as _unit_rows
from ..insight._layout_core import follow_basis
from ..insight._layout_core import top_directions as _top_directions
from ._arrays import as_matrix as _as_matrix
from ._arrays import category as _category
from ._arrays import check_int as _check_int
from ._arrays import finite_rows as _finite_rows
from .frame import MapFrame

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_MAP_ROWS",
    "EvolutionMap",
    "MapFrame",
    "MapStyle",
    "silhouette",
]

logger = logging.getLogger(__name__)

#: Rows drawn and used for the scalars unless told otherwise (rendering ~10 ms).
DEFAULT_MAP_ROWS = 500

_FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MapStyle:
    """How an :class:`EvolutionMap` draws its images (the alignment and scalars do not change).

    Attributes:
        size: image (width, height) in pixels, each at least 64.
        title: text drawn above the map (``"<title> - step <n>"``).
        font: a font file for all text; default: chosen per map by
            :func:`embedding_projector.glyphs.fonts.font_path` so that every label is covered.
        label_count: how many rows besides the highlighted ones get a text label (chosen in
            row order, skipping labels that would overlap).
        trails: draw a line from each highlighted row's previous position.
        max_legend: classes shown in the legend with their own colour; the rest are grey
            ("other").
        draw_rows: draw only the first this many of the map's rows (highlighted rows always);
            default all. Lets the scalars use more rows than a readable picture shows.

    Raises:
        ValueError: a value is out of range.

    Example:
        >>> style = MapStyle(size=(320, 240), title="words", label_count=10)
        >>> EvolutionMap(max_rows=50, style=style).style.size
        (320, 240)
    """

    size: tuple[int, int] = (640, 640)
    title: str | None = None
    font: str | None = None
    label_count: int = 25
    trails: bool = True
    max_legend: int = 10
    draw_rows: int | None = None

    def __post_init__(self) -> None:
        if self.draw_rows is not None:
            _check_int("draw_rows", self.draw_rows, minimum=1)
        _check_int("label_count", self.label_count, minimum=0)
        _check_int("max_legend", self.max_legend, minimum=1)
        size = self.size
        if len(size) != 2 or min(size) < 64:
            raise ValueError(f"size must be (width, height), each >= 64 pixels; got {size!r}.")
        object.__setattr__(self, "size", (int(size[0]), int(size[1])))


class EvolutionMap:
    """Aligned 2-D maps of successive snapshots of one embedding, with stability scalars.

    Stateful: call :meth:`update` once per snapshot, in step order, from one thread at a time
    (the callbacks call it from their background writer). See the module docstring for the
    alignment, basis and axis rules.

    Args:
        max_rows: rows drawn and used for the scalars, highlighted rows included (highlights
            that appear later are added); bounds the cost (neighbour overlap and silhouette
            are quadratic in it).
        sample: ``"first"`` keeps the leading rows (callers order rows most important first),
            ``"random"`` a sample drawn with ``seed``. Chosen once, at the first update.
        seed: seed of ``sample="random"``.
        neighbors_k: the k of the neighbour overlap.
        render: draw images; ``False`` computes the scalars only.
        scalars: compute drift, neighbour overlap and separation.
        refit_threshold: turn the 2-D basis (as far as the data moved) when it shows less than
            this fraction of what the current snapshot's own top-2 principal components would
            show (0 never turns it after the first step; 1, the default, whenever a better
            basis exists).
        extent: half-width of the fixed square axes, in units of the map's RMS radius.
        style: how the images are drawn (:class:`MapStyle`: size, title, font, labels,
            trails, legend, rows drawn); default ``MapStyle()``.

    Raises:
        ValueError: an argument is out of range.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> evolution = EvolutionMap(max_rows=30, render=False)
        >>> base = rng.normal(size=(40, 8))
        >>> rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
        >>> a = evolution.update(base, step=0)
        >>> b = evolution.update(base @ rotation, step=1)
        >>> bool(np.allclose(a.coords, b.coords)), round(b.drift, 6)
        (True, 0.0)
    """

    def __init__(
        self,
        *,
        max_rows: int = DEFAULT_MAP_ROWS,
        sample: Literal["first", "random"] = "first",
        seed: int = 0,
        neighbors_k: int = 10,
        render: bool = True,
        scalars: bool = True,
        refit_threshold: float = 1.0,
        extent: float = 3.0,
        style: MapStyle | None = None,
    ) -> None:
        _check_int("max_rows", max_rows, minimum=2)
        if style is not None and not isinstance(style, MapStyle):
            raise TypeError(f"style must be a MapStyle or None; got {type(style).__name__}.")
        style = style if style is not None else MapStyle()
        _check_int("neighbors_k", neighbors_k, minimum=1)
        if sample not in ("first", "random"):
            raise ValueError(f"sample must be 'first' or 'random'; got {sample!r}.")
        if not 0.0 <= float(refit_threshold) <= 1.0:
            raise ValueError(f"refit_threshold must be in [0, 1]; got {refit_threshold!r}.")
        if not float(extent) > 0.0:
            raise ValueError(f"extent must be positive; got {extent!r}.")
        self.style = style
        self.max_rows = max_rows
        self.sample = sample
        self.seed = seed
        self.neighbors_k = neighbors_k
        self.render = render
        self.scalars = scalars
        self.refit_threshold = float(refit_threshold)
        self.extent = float(extent)
        self.reset()

    def reset(self) -> None:
        """Forget all previous snapshots (the next update starts a new chain and basis)."""
        self._keys: list[str] | None = None
        self._by_label: bool | None = None
        self._dim: int | None = None
        self._basis: _FloatArray | None = None
        #: Previous step: keys, raw rows, aligned centred unit rows.
        self._prev_keys: list[str] = []
        self._prev_raw: _FloatArray | None = None
        #: Neighbour sets of all of the previous step's rows (when computed on all of them).
        self._prev_neighbors: npt.NDArray[np.int64] | None = None
        self._prev_aligned: _FloatArray | None = None
        self._basis_steps: list[int] = []
        self._row_key_cache: (
            tuple[int, list[str] | None, list[str], dict[str, int], bool] | None
        ) = None

    @property
    def limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(xlim, ylim)`` of every map this object draws."""
        return (-self.extent, self.extent), (-self.extent, self.extent)

    @property
    def basis_steps(self) -> list[int]:
        """Steps at which the 2-D basis was fitted (the first step, then each refit)."""
        return list(self._basis_steps)

    def update(
        self,
        matrix: Any,
        labels: Sequence[str] | None = None,
        *,
        step: int,
        colors: Sequence[Any] | None = None,
        highlight: Sequence[int | str] | None = None,
    ) -> MapFrame:
        """Align a new snapshot to the previous one, project it, compute scalars, render.

        Args:
            matrix: (rows, dims) snapshot (numpy array or anything ``np.asarray`` takes).
            labels: one label per row. Unique labels identify rows across steps; without
                labels, or with repeated ones, row ``i`` is the same item at every step.
            step: the step the frame belongs to (``add_image``'s step).
            colors: one class per row (e.g. the label column of feature embeddings): colours
                the points, adds a legend and the ``separation`` score.
            highlight: rows (indices or labels) always labelled and drawn on top, e.g. probe
                words. Unknown labels are ignored.

        Returns:
            The step's :class:`MapFrame`.

        Raises:
            InvalidEmbeddingError: ``matrix`` is not a finite 2-D matrix with at least one row,
                or ``labels``/``colors`` do not have one entry per row.
        """
        # Only the sampled rows are converted and checked: the snapshot itself may be a large
        # float32 table that the callbacks hand over every epoch.
        array = _as_matrix(matrix, convert=False)
        rows, dim = array.shape
        label_list = None if labels is None else list(map(str, labels))
        if label_list is not None and len(label_list) != rows:
            raise InvalidEmbeddingError(f"labels has {len(label_list)} entries for {rows} rows.")
        if colors is not None and len(colors) != rows:
            raise InvalidEmbeddingError(f"colors has {len(colors)} entries for {rows} rows.")
        keys, lookup, by_label = self._row_keys(label_list, rows)
        highlight_keys = self._highlight_keys(highlight, keys, lookup, label_list)
        restart = self._keys is not None and (by_label != self._by_label or dim != self._dim)
        sample = self._sample(keys, highlight_keys, restart)
        present = [key for key in sample if key in lookup]
        index = np.asarray([lookup[key] for key in present], dtype=np.int64)
        raw = _finite_rows(array, index)
        if restart:
            logger.info("map rows or dimensions changed (dims %s -> %d); restart", self._dim, dim)
            self.reset()
        self._keys, self._by_label, self._dim = sample, by_label, dim
        shown_labels = [label_list[i] for i in index] if label_list is not None else present
        categories = None if colors is None else [_category(colors[i]) for i in index]
        highlighted = set(highlight_keys)
        mask = np.asarray([key in highlighted for key in present], dtype=bool)

        aligned, prev_index, cur_index = self._align(raw, present)
        coords, explained, refit = self._project(aligned, step, prev_index, cur_index)
        previous_coords = self._trails(coords, prev_index, cur_index)
        drift, overlap, separation, neighbors = self._scores(
            raw, present, prev_index, cur_index, categories
        )

        frame = MapFrame(
            step=int(step),
            coords=coords,
            labels=shown_labels,
            xlim=(-self.extent, self.extent),
            ylim=(-self.extent, self.extent),
            drift=drift,
            neighbor_overlap=overlap,
            neighbors_k=self.neighbors_k,
            separation=separation,
            explained_variance=explained,
            basis_refit=refit,
            categories=categories,
            highlight=mask,
            previous_coords=previous_coords if self.style.trails else None,
        )
        self._prev_keys, self._prev_raw = present, raw
        self._prev_aligned = aligned
        self._prev_neighbors = neighbors
        return self._render(frame) if self.render else frame

    # -- helpers ---------------------------------------------------------------------------

    def _sample(self, keys: list[str], highlight_keys: list[str], restart: bool) -> list[str]:
        if self._keys is None or restart:
            return self._choose_sample(keys, highlight_keys)
        known = set(self._keys)
        return self._keys + [key for key in highlight_keys if key not in known]

    def _trails(self, coords: _FloatArray, prev_index: Any, cur_index: Any) -> _FloatArray | None:
        """Where the rows were one step earlier, drawn with this step's basis."""
        if self._prev_aligned is None or self._basis is None:
            return None
        before = self._prev_aligned @ self._basis
        radius = float(np.sqrt(np.mean(np.sum(before**2, axis=1))))
        previous_coords = np.full_like(coords, np.nan)
        previous_coords[cur_index] = before[prev_index] / (radius if radius > 0 else 1.0)
        return previous_coords

    def _align(
        self, raw: _FloatArray, present: list[str]
    ) -> tuple[_FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Cosine geometry (unit rows, centred), rotated onto the previous aligned snapshot."""
        centred = _unit_rows(raw)
        centred = centred - centred.mean(axis=0) if len(centred) else centred
        prev_index, cur_index = insight.match_rows(self._prev_keys, present)
        aligned = centred
        if self._prev_aligned is not None and len(cur_index) >= 2:
            rotation = insight.orthogonal_procrustes(
                centred[cur_index], self._prev_aligned[prev_index]
            )
            aligned = centred @ rotation
        return aligned, prev_index, cur_index

    def _scores(
        self,
        raw: _FloatArray,
        present: list[str],
        prev_index: Any,
        cur_index: Any,
        categories: list[str] | None,
    ) -> tuple[float | None, float | None, float | None, Any]:
        """Drift, neighbour overlap and separation against the previous step (if asked)."""
        drift = overlap = separation = None
        neighbors = None
        if self.scalars:
            if self._prev_raw is not None and len(cur_index) >= 2:
                before, after = self._prev_raw[prev_index], raw[cur_index]
                drift = insight.drift(before, after, max_rows=None)
                # When "before" is all of last step's rows in order (the usual case), last
                # step's neighbour sets are its sets; the search is the quadratic part.
                previous_sets = self._prev_neighbors
                if previous_sets is None or not np.array_equal(
                    prev_index, np.arange(len(self._prev_keys))
                ):
                    previous_sets = insight.nearest_neighbor_sets(
                        before, self.neighbors_k, max_rows=None
                    )
                current_sets = insight.nearest_neighbor_sets(after, self.neighbors_k, max_rows=None)
                overlap = insight.overlap_of_neighbor_sets(previous_sets, current_sets)
                if len(cur_index) == len(present):
                    neighbors = current_sets
            if categories is not None:
                separation = silhouette(raw, categories)
        return drift, overlap, separation, neighbors

    def _render(self, frame: MapFrame) -> MapFrame:
        from .drawing import render_map  # Pillow is imported only when drawing

        image = render_map(
            frame,
            size=self.style.size,
            title=self.style.title,
            font=self.style.font,
            label_count=self.style.label_count,
            max_legend=self.style.max_legend,
            max_points=self.style.draw_rows,
        )
        return _with_image(frame, image)

    def _row_keys(
        self, label_list: list[str] | None, rows: int
    ) -> tuple[list[str], dict[str, int], bool]:
        """Each row's identity, the row of each identity, and whether labels identify rows.

        Remembered between updates: callbacks pass the same vocabulary at every step, and
        hashing every label of a large table each epoch is wasted work.
        """
        cached = self._row_key_cache
        if cached is not None and cached[0] == rows and cached[1] == label_list:
            return cached[2], cached[3], cached[4]
        by_label = label_list is not None and len(set(label_list)) == rows
        keys = label_list if by_label and label_list is not None else [str(i) for i in range(rows)]
        lookup = {key: row for row, key in enumerate(keys)}
        self._row_key_cache = (rows, label_list, keys, lookup, by_label)
        return keys, lookup, by_label

    def _highlight_keys(
        self,
        highlight: Sequence[int | str] | None,
        keys: list[str],
        lookup: dict[str, int],
        labels: list[str] | None,
    ) -> list[str]:
        if not highlight:
            return []
        found: list[str] = []
        for item in highlight:
            row: int | None = None
            if isinstance(item, str):
                row = insight.first_index(labels or [], item)
            elif isinstance(item, (int, np.integer)) and 0 <= int(item) < len(keys):
                row = int(item)
            if row is not None and keys[row] not in found:
                found.append(keys[row])
        return found

    def _choose_sample(self, keys: list[str], highlight_keys: list[str]) -> list[str]:
        chosen = list(highlight_keys)
        taken = set(chosen)
        if self.sample == "random" and len(keys) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            order = np.sort(rng.choice(len(keys), size=self.max_rows, replace=False))
            candidates = [keys[i] for i in order]
        else:
            candidates = keys[: self.max_rows + len(chosen)]
        for key in candidates:
            if len(chosen) >= max(self.max_rows, len(highlight_keys)):
                break
            if key not in taken:
                chosen.append(key)
                taken.add(key)
        return chosen

    def _project(
        self, aligned: _FloatArray, step: int, prev_index: Any, cur_index: Any
    ) -> tuple[_FloatArray, float, bool]:
        """2-D coordinates (unit RMS radius), explained variance, whether the basis moved."""
        rows = aligned.shape[0]
        total = float(np.sum(aligned**2))
        if rows == 0 or total <= 0.0:
            return np.zeros((rows, 2)), 0.0, False
        top, variances = _top_directions(aligned, 2)
        best_basis: _FloatArray = np.asarray(top, dtype=np.float64)
        best = float(variances.sum())
        refit = False
        if self._basis is None:
            self._basis, refit = best_basis, True
        elif float(np.sum((aligned @ self._basis) ** 2)) < self.refit_threshold * best:
            if self._prev_aligned is None or len(cur_index) < 2:
                self._basis, refit = best_basis, True
            else:
                # The frame's one rule (follow_basis): toward the better plane, only as far as
                # the data moved.
                before = self._prev_aligned[prev_index]
                turn = follow_basis(
                    self._basis, best_basis, aligned[cur_index], before, before @ self._basis
                )
                if turn.fraction > 0:
                    self._basis, refit = np.asarray(turn.basis, dtype=np.float64), True
        if refit:
            self._basis_steps.append(int(step))
            logger.debug("map basis fitted or turned at step %d", step)
        basis: _FloatArray = self._basis
        projected = aligned @ basis
        radius = float(np.sqrt(np.mean(np.sum(projected**2, axis=1))))
        coords = projected / radius if radius > 0 else projected
        return coords, float(np.sum(projected**2)) / total, refit


def silhouette(matrix: Any, classes: Sequence[Any], *, metric: str = "cosine") -> float | None:
    """Mean silhouette coefficient of labelled rows: how well the classes separate.

    For each row, ``a`` is its mean distance to the other rows of its class and ``b`` the
    smallest mean distance to the rows of another class; its coefficient is
    ``(b - a) / max(a, b)`` (0 for a row alone in its class), as in scikit-learn's
    ``silhouette_score``. Quadratic in the number of rows: pass a sample.

    Args:
        matrix: (N, D) rows.
        classes: N class labels (any hashable values).
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.

    Returns:
        A number in [-1, 1] (1: tight, well separated classes), or ``None`` when it is
        undefined (fewer than 2 classes, or every row its own class).

    Raises:
        InvalidEmbeddingError: shapes do not match, or ``metric`` is unknown.

    Example:
        >>> import numpy as np
        >>> points = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> round(silhouette(points, ["a", "a", "b", "b"]), 3)
        0.993
    """
    array = _as_matrix(matrix)
    if len(classes) != array.shape[0]:
        raise InvalidEmbeddingError(f"classes has {len(classes)} entries for {len(array)} rows.")
    names, codes = np.unique(np.asarray([_category(c) for c in classes]), return_inverse=True)
    count = len(names)
    if count < 2 or count >= array.shape[0]:
        return None
    if metric == "cosine":
        unit = _unit_rows(array)
        distances = np.clip(1.0 - unit @ unit.T, 0.0, None)
    elif metric == "euclidean":
        squared = np.sum(array**2, axis=1)
        distances = np.sqrt(
            np.clip(squared[:, None] + squared[None, :] - 2 * array @ array.T, 0, None)
        )
    else:
        raise InvalidEmbeddingError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}.")
    np.fill_diagonal(distances, 0.0)
    onehot = np.zeros((array.shape[0], count))
    onehot[np.arange(array.shape[0]), codes] = 1.0
    sizes = onehot.sum(axis=0)
    sums = distances @ onehot  # (N, classes): total distance of each row to each class
    own = sizes[codes] - 1
    a = sums[np.arange(len(codes)), codes] / np.where(own > 0, own, 1)
    means = sums / sizes
    means[np.arange(len(codes)), codes] = np.inf
    b = means.min(axis=1)
    denominator = np.maximum(a, b)
    scores = np.where(denominator > 0, (b - a) / np.where(denominator > 0, denominator, 1), 0.0)
    scores[own == 0] = 0.0
    return float(np.mean(scores))


def _with_image(frame: MapFrame, image: npt.NDArray[np.uint8]) -> MapFrame:
    from dataclasses import replace

    return replace(frame, image=image)
