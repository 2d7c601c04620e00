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
4. **One 2-D basis.** The projection is PCA fitted on the first snapshot, and kept. It is refit
   only when it has gone stale: when the variance of the current (aligned) snapshot captured by
   the old basis falls below ``refit_threshold`` times what the snapshot's own top-2 principal
   components capture (typical from a random initialisation to the first trained epoch). A
   refit basis is turned (2-D Procrustes) to match the old one as well as possible, so the
   picture does not flip. :attr:`MapFrame.basis_refit` says when it happened.
5. **Fixed axes.** The 2-D coordinates are scaled to unit RMS radius and drawn in the same
   square ``[-extent, extent]`` at every step (points beyond it are clipped to the edge), so
   the map shows shape, not scale. :attr:`MapFrame.xlim` and :attr:`MapFrame.ylim` are the
   limits used.

Each :class:`MapFrame` also carries the stability scalars, computed on the same bounded sample
by :mod:`embedding_projector.insight` (one implementation for every callback): ``drift`` (mean
cosine distance to the previous snapshot after alignment), ``neighbor_overlap`` (mean overlap
of the ``k`` nearest neighbours with the previous snapshot) and, when ``colors`` gives a class
per row, ``separation`` (mean silhouette coefficient, cosine distance, see :func:`silhouette`).

Maps are drawn with Pillow (no display, no optional dependency; about 10 ms for 500 points
at 640x640, so rendering every epoch on a background thread barely competes with training).
Text goes through :func:`embedding_projector.fonts.font_path`, so Japanese, Chinese and
Korean labels are drawn as text. :func:`log_map` logs a frame to a tensorboardX or
``torch.utils.tensorboard`` ``SummaryWriter``.

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

import functools
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from . import insight
from .errors import InvalidEmbeddingError
from .fonts import FontFace, font_path, load_font, needs_shaping

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "DEFAULT_MAP_ROWS",
    "EvolutionMap",
    "MapFrame",
    "log_map",
    "render_map",
    "silhouette",
]

logger = logging.getLogger(__name__)

#: Rows drawn and used for the scalars unless told otherwise (rendering ~10 ms).
DEFAULT_MAP_ROWS = 500

_FloatArray = npt.NDArray[np.float64]
_OTHER = "other"
_MAX_LABEL_CHARS = 24
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")


@dataclass(frozen=True)
class MapFrame:
    """One step of an :class:`EvolutionMap`: aligned 2-D coordinates, scalars, image.

    Attributes:
        step: the step given to :meth:`EvolutionMap.update`.
        coords: (N, 2) aligned, projected coordinates of the map's rows (unit RMS radius).
        labels: the N rows' labels (row numbers as text when none were given).
        xlim: x-axis limits of the map; the same at every step of one :class:`EvolutionMap`.
        ylim: y-axis limits of the map; the same at every step.
        image: the rendered map, (H, W, 3) RGB ``uint8``; ``None`` only with
            ``render=False``.
        drift: mean cosine distance of each row to its previous vector after alignment (on
            the rows shared with the previous step); ``None`` at the first step.
        neighbor_overlap: mean fraction of each row's ``neighbors_k`` nearest neighbours that
            were its neighbours at the previous step; ``None`` at the first step.
        neighbors_k: the k of ``neighbor_overlap``.
        separation: mean silhouette coefficient of the ``colors`` classes (cosine distance,
            in [-1, 1], higher is better separated); ``None`` without ``colors``.
        explained_variance: fraction of the (centred, unit-row) snapshot's variance that the
            map's 2-D basis shows.
        basis_refit: the 2-D basis was (re)fitted at this step (always at the first).
        categories: the N rows' ``colors`` values as text, or ``None``.
        highlight: (N,) bool mask of the highlighted rows.
        previous_coords: (N, 2) coordinates of the same rows at the previous step (NaN where
            a row is new), for trails.
    """

    step: int
    coords: _FloatArray
    labels: list[str]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    image: npt.NDArray[np.uint8] | None = None
    drift: float | None = None
    neighbor_overlap: float | None = None
    neighbors_k: int = 10
    separation: float | None = None
    explained_variance: float = 0.0
    basis_refit: bool = False
    categories: list[str] | None = None
    highlight: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    previous_coords: _FloatArray | None = None

    def scalars(self, tag: str) -> dict[str, float]:
        """The frame's scalars as ``{name: value}``, named as both callbacks log them.

        ``<tag>/drift``, ``<tag>/neighbor_overlap_at_<k>`` (tensorboardX allows no ``@`` in a
        tag), ``<tag>/separation`` and ``<tag>/map_explained_variance``; absent ones are left
        out.

        Example:
            >>> frame = MapFrame(3, np.zeros((2, 2)), ["a", "b"], (-1.0, 1.0), (-1.0, 1.0),
            ...                  drift=0.25)
            >>> frame.scalars("words")
            {'words/drift': 0.25, 'words/map_explained_variance': 0.0}
        """
        values: dict[str, float] = {}
        if self.drift is not None:
            values[f"{tag}/drift"] = self.drift
        if self.neighbor_overlap is not None:
            values[f"{tag}/neighbor_overlap_at_{self.neighbors_k}"] = self.neighbor_overlap
        if self.separation is not None:
            values[f"{tag}/separation"] = self.separation
        values[f"{tag}/map_explained_variance"] = self.explained_variance
        return values


class EvolutionMap:
    """Aligned 2-D maps of successive snapshots of one embedding, with stability scalars.

    Stateful: call :meth:`update` once per snapshot, in step order, from one thread at a time
    (the callbacks call it from their background writer). See the module docstring for the
    alignment, basis and axis rules.

    Args:
        max_rows: rows drawn and used for the scalars, highlighted rows included (highlights
            that appear later are added); bounds the cost (neighbour overlap and silhouette
            are quadratic in it).
        draw_rows: draw only the first this many of those rows (highlighted rows always);
            default all. Lets the scalars use more rows than a readable picture shows.
        sample: ``"first"`` keeps the leading rows (callers order rows most important first),
            ``"random"`` a sample drawn with ``seed``. Chosen once, at the first update.
        seed: seed of ``sample="random"``.
        neighbors_k: the k of the neighbour overlap.
        render: draw images; ``False`` computes the scalars only.
        scalars: compute drift, neighbour overlap and separation.
        refit_threshold: refit the 2-D basis when it shows less than this fraction of what
            the current snapshot's own top-2 principal components would show (0 never refits
            after the first step, 1 refits whenever a better basis exists).
        extent: half-width of the fixed square axes, in units of the map's RMS radius.
        label_count: how many rows besides the highlighted ones get a text label (chosen in
            row order, skipping labels that would overlap).
        size: image (width, height) in pixels.
        title: text drawn above the map (``"<title> - step <n>"``).
        font: a font file for all text; default: chosen per map by
            :func:`embedding_projector.fonts.font_path` so that every label is covered.
        trails: draw a line from each highlighted row's previous position.
        max_legend: classes shown in the legend with their own colour; the rest are grey
            ("other").

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
        draw_rows: int | None = None,
        sample: Literal["first", "random"] = "first",
        seed: int = 0,
        neighbors_k: int = 10,
        render: bool = True,
        scalars: bool = True,
        refit_threshold: float = 0.6,
        extent: float = 3.0,
        label_count: int = 25,
        size: tuple[int, int] = (640, 640),
        title: str | None = None,
        font: str | None = None,
        trails: bool = True,
        max_legend: int = 10,
    ) -> None:
        _check_int("max_rows", max_rows, minimum=2)
        if draw_rows is not None:
            _check_int("draw_rows", draw_rows, minimum=1)
        _check_int("neighbors_k", neighbors_k, minimum=1)
        _check_int("label_count", label_count, minimum=0)
        _check_int("max_legend", max_legend, minimum=1)
        if sample not in ("first", "random"):
            raise ValueError(f"sample must be 'first' or 'random'; got {sample!r}.")
        if not 0.0 <= float(refit_threshold) <= 1.0:
            raise ValueError(f"refit_threshold must be in [0, 1]; got {refit_threshold!r}.")
        if not float(extent) > 0.0:
            raise ValueError(f"extent must be positive; got {extent!r}.")
        if len(size) != 2 or min(size) < 64:
            raise ValueError(f"size must be (width, height), each >= 64 pixels; got {size!r}.")
        self.max_rows = max_rows
        self.draw_rows = draw_rows
        self.sample = sample
        self.seed = seed
        self.neighbors_k = neighbors_k
        self.render = render
        self.scalars = scalars
        self.refit_threshold = float(refit_threshold)
        self.extent = float(extent)
        self.label_count = label_count
        self.size = (int(size[0]), int(size[1]))
        self.title = title
        self.font = font
        self.trails = trails
        self.max_legend = max_legend
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
        if self._keys is None or restart:
            sample = self._choose_sample(keys, highlight_keys)
        else:
            known = set(self._keys)
            sample = self._keys + [key for key in highlight_keys if key not in known]
        present = [key for key in sample if key in lookup]
        index = np.asarray([lookup[key] for key in present], dtype=np.int64)
        raw = _finite_rows(array, index)
        if restart:
            logger.info(
                "map rows or dimensions changed (dims %s -> %d); restarting", self._dim, dim
            )
            self.reset()
        self._keys, self._by_label, self._dim = sample, by_label, dim
        shown_labels = [label_list[i] for i in index] if label_list is not None else present
        categories = None if colors is None else [_category(colors[i]) for i in index]
        highlighted = set(highlight_keys)
        mask = np.asarray([key in highlighted for key in present], dtype=bool)

        # Cosine geometry: unit rows, centred; then rotate onto the previous aligned snapshot.
        centred = _unit_rows(raw)
        centred = centred - centred.mean(axis=0) if len(centred) else centred
        prev_index, cur_index = insight.match_rows(self._prev_keys, present)
        aligned = centred
        if self._prev_aligned is not None and len(cur_index) >= 2:
            rotation = insight.orthogonal_procrustes(
                centred[cur_index], self._prev_aligned[prev_index]
            )
            aligned = centred @ rotation

        coords, explained, refit = self._project(aligned, step)
        previous_coords = None
        if self._prev_aligned is not None and self._basis is not None:
            # Where the rows were one step earlier, drawn with this step's basis.
            before = self._prev_aligned @ self._basis
            radius = float(np.sqrt(np.mean(np.sum(before**2, axis=1))))
            previous_coords = np.full_like(coords, np.nan)
            previous_coords[cur_index] = before[prev_index] / (radius if radius > 0 else 1.0)

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
            previous_coords=previous_coords if self.trails else None,
        )
        self._prev_keys, self._prev_raw = present, raw
        self._prev_aligned = aligned
        self._prev_neighbors = neighbors
        if self.render:
            image = render_map(
                frame,
                size=self.size,
                title=self.title,
                font=self.font,
                label_count=self.label_count,
                max_legend=self.max_legend,
                max_points=self.draw_rows,
            )
            frame = _with_image(frame, image)
        return frame

    # -- helpers ---------------------------------------------------------------------------

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
        label_rows: dict[str, int] = {}
        for position, label in enumerate(labels or []):
            label_rows.setdefault(label, position)
        found: list[str] = []
        for item in highlight:
            row: int | None = None
            if isinstance(item, str):
                row = label_rows.get(item)
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

    def _project(self, aligned: _FloatArray, step: int) -> tuple[_FloatArray, float, bool]:
        """2-D coordinates (unit RMS radius), explained variance, whether the basis was refit."""
        rows = aligned.shape[0]
        total = float(np.sum(aligned**2))
        if rows == 0 or total <= 0.0:
            return np.zeros((rows, 2)), 0.0, False
        best_basis, best = _top_two_directions(aligned)
        refit = False
        if self._basis is None:
            self._basis, refit = best_basis, True
        else:
            shown = float(np.sum((aligned @ self._basis) ** 2))
            if shown < self.refit_threshold * best:
                # Turn the new basis to match the old picture as well as a rotation can.
                turn = insight.orthogonal_procrustes(aligned @ best_basis, aligned @ self._basis)
                self._basis, refit = best_basis @ turn, True
        if refit:
            self._basis_steps.append(int(step))
            logger.debug("map basis fitted at step %d", step)
        projected = aligned @ self._basis
        radius = float(np.sqrt(np.mean(np.sum(projected**2, axis=1))))
        coords = projected / radius if radius > 0 else projected
        return coords, float(np.sum(projected**2)) / total, refit


def _top_two_directions(matrix: _FloatArray) -> tuple[_FloatArray, float]:
    """The top-2 right singular vectors of ``matrix`` (dims x 2) and their variance sum.

    From the eigendecomposition of the smaller Gram matrix rather than a full SVD: a third
    of the cost for the map's 500 x 256 samples, and this runs every epoch beside training.
    """
    rows, dim = matrix.shape
    basis = np.zeros((dim, 2))
    if rows >= dim:
        values, vectors = np.linalg.eigh(matrix.T @ matrix)
        order = np.argsort(values)[::-1][:2]
        basis[:, : len(order)] = vectors[:, order]
    else:
        values, vectors = np.linalg.eigh(matrix @ matrix.T)
        order = np.argsort(values)[::-1][:2]
        directions = matrix.T @ vectors[:, order]
        lengths = np.linalg.norm(directions, axis=0)
        basis[:, : len(order)] = directions / np.where(lengths > 0, lengths, 1.0)
    return basis, float(np.sum(np.clip(values[order], 0.0, None)))


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


def log_map(
    writer: Any, frame: MapFrame, tag: str, *, image: bool = True, scalars: bool = True
) -> None:
    """Log a frame to a ``SummaryWriter`` (tensorboardX or ``torch.utils.tensorboard``).

    The image goes to ``<tag>/map`` (IMAGES tab, ``add_image(..., dataformats="HWC")``), the
    scalars as named by :meth:`MapFrame.scalars` (SCALARS tab), all at ``frame.step``. Names
    are cleaned as tensorboardX cleans them (characters other than letters, digits, ``_``,
    ``-``, ``.`` and ``/`` become ``_``: ``"features (hidden)/map"`` is logged as
    ``"features__hidden_/map"``), so both writers give the same names.

    Args:
        writer: anything with ``add_image`` and ``add_scalar`` like a ``SummaryWriter``.
        frame: from :meth:`EvolutionMap.update`.
        tag: prefix of the names, usually the projector tag (``"words"``, ``"features"``).
        image: log the image (when the frame has one).
        scalars: log the scalars.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from tensorboardX import SummaryWriter
        >>> evolution = EvolutionMap(max_rows=20, render=False)
        >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
        ...     for step in range(2):
        ...         frame = evolution.update(np.random.rand(20, 4), step=step)
        ...         log_map(writer, frame, "features")
    """
    if image and frame.image is not None:
        writer.add_image(_summary_tag(f"{tag}/map"), frame.image, frame.step, dataformats="HWC")
    if scalars:
        for name, value in frame.scalars(tag).items():
            writer.add_scalar(_summary_tag(name), value, frame.step)


def _summary_tag(name: str) -> str:
    """``name`` as tensorboardX writes it (torch's writer keeps it as given): same tags for both."""
    return _INVALID_TAG_CHARACTERS.sub("_", name).lstrip("/")


# --------------------------------------------------------------------------- rendering

# Colours: matplotlib's "tab10" and "tab20" palettes (the look users know from plots), points
# without classes in one blue, classes beyond the legend in grey.
_TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_TAB20 = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)  # fmt: skip
_POINT_RGB = (64, 115, 191)
_OTHER_RGB = (153, 153, 153)
_RED = (214, 39, 40)
_GRID_RGB = (235, 235, 235)
_FRAME_RGB = (110, 110, 110)
_FACTS_RGB = (85, 85, 85)
_LABEL_RGB = (51, 51, 51)
#: Point opacity: dense clusters stay readable as clusters.
_POINT_ALPHA = 0.7
#: Font sizes in pixels: title, facts/legend/labels, highlighted labels.
_TITLE_PX = 15
_TEXT_PX = 12
_MARK_PX = 14
#: Radii in pixels of a point, a highlighted point (fill) and its red ring's width.
_POINT_RADIUS = 2.4
_MARK_RADIUS = 4.4
_MARK_EDGE = 2.0
#: Layout in pixels: outer margin, and the band above the plot (title, then the facts line).
_MARGIN = 8
_HEADER = 46
#: Geometry is drawn at this multiple of the final size and box-filtered down: anti-aliasing.
_SUPERSAMPLE = 2
#: Label offsets from their point (x right, y up), in pixels; the text's baseline starts (or,
#: to the left, ends) there. The first four are tried for ordinary labels, all for highlights.
_OFFSETS = (
    (6, 4),
    (6, -17),
    (-8, 6),
    (-8, -18),
    (14, 22),
    (14, -36),
    (-17, 25),
    (-17, -39),
    (31, 42),
    (31, -56),
    (-33, 44),
    (-33, -58),
)
#: Labels this far from their point (either way, pixels) get a leader line.
_LEADER_FROM = 19
#: Padding of a highlighted label's box, pixels.
_BOX_PAD = 3
#: Rows measured and tested together when placing ordinary labels.
_LABEL_BATCH = 64

_Box = tuple[float, float, float, float]


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _plot_area(size: tuple[int, int]) -> tuple[int, int, int]:
    """``(left, top, side)`` in pixels of the square plot area of a ``size`` image.

    Depends on the size only, so one :class:`EvolutionMap` maps the same coordinates to the
    same pixels at every step, whatever the title, labels, legend or font.
    """
    width, height = size
    side = max(16, min(width - 2 * _MARGIN, height - _HEADER - _MARGIN))
    return (width - side) // 2, _HEADER, side


def _scaled(box: _Box, scale: int) -> _Box:
    """A box of whole pixels (ends inclusive) on the supersampled canvas, covering exactly
    those pixels once scaled down."""
    x0, y0, x1, y1 = (round(v) for v in box)
    return x0 * scale, y0 * scale, (x1 + 1) * scale - 1, (y1 + 1) * scale - 1


def _to_pixels(
    coords: _FloatArray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    area: tuple[int, int, int],
) -> _FloatArray:
    """Data coordinates to continuous pixel positions (y down) in the plot area."""
    left, top, side = area
    width, height = (xlim[1] - xlim[0]) or 1.0, (ylim[1] - ylim[0]) or 1.0  # empty limits
    x = left + (coords[:, 0] - xlim[0]) / width * side
    y = top + (ylim[1] - coords[:, 1]) / height * side
    return np.stack([x, y], axis=1)


def _grid_values(low: float, high: float, target: int = 6) -> list[float]:
    """About ``target`` round values (steps of 1, 2 or 5 times a power of ten) in [low, high]."""
    raw = (high - low) / target
    if not raw > 0:
        return []
    magnitude = 10.0 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw * 0.999)
    first = np.ceil(low / step - 1e-9) * step
    return [float(v) for v in np.arange(first, high + step * 1e-6, step)]


def _font(face: FontFace, px: int, text: str) -> ImageFont.FreeTypeFont:
    # Basic layout (about twice as fast) unless the text needs shaping; both are cached.
    return face.pil_font(px, shaping=needs_shaping(text))


@functools.lru_cache(maxsize=4096)
def _ink_box(font: ImageFont.FreeTypeFont, text: str) -> _Box:
    """The text's ink box relative to its left end on the baseline (cached: labels recur)."""
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    return float(left), float(top), float(right), float(bottom)


def _map_face(texts: Sequence[str], font: str | None) -> FontFace:
    """One outline font for all of a map's text (CJK included when the labels need it)."""
    face = load_font(font_path(texts, font))
    if face.bitmap_sizes:
        # A colour-emoji font exists at fixed sizes only; use one that draws the plain text
        # (the emoji become "?").
        face = load_font(font_path([t for t in texts if t.isascii()] or ["step"]))
    return face


@functools.lru_cache(maxsize=2048)
def _text_mask(font: ImageFont.FreeTypeFont, text: str) -> tuple[Image.Image, int, int] | None:
    """The text's anti-aliased coverage as an "L" image, and where its corner sits relative
    to the baseline start; ``None`` for text without ink. Cached: the same labels are drawn at
    every step, and pasting a stored mask costs a tenth of rasterising the text again."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor="ls"))
    if right <= left or bottom <= top:
        return None
    mask = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor="ls")
    return mask, left, top


def _draw_text(
    image: Image.Image,
    origin: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont,
    colour: tuple[int, int, int],
) -> None:
    """``text`` with its baseline starting at ``origin`` (rounded to whole pixels)."""
    drawn = _text_mask(font, text)
    if drawn is not None:
        mask, left, top = drawn
        image.paste(colour, (round(origin[0]) + left, round(origin[1]) + top), mask)


@dataclass(frozen=True)
class _Label:
    row: int
    text: str
    #: where the text's baseline starts (pixels).
    origin: tuple[float, float]
    #: the ink box, padded for highlighted labels (pixels).
    box: _Box
    highlighted: bool
    leader: bool


def render_map(
    frame: MapFrame,
    *,
    size: tuple[int, int] = (640, 640),
    title: str | None = None,
    font: str | None = None,
    label_count: int = 25,
    max_legend: int = 10,
    draw_labels: bool = True,
    max_points: int | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw a frame as an RGB image (Pillow; about 10 ms for 500 points at 640x640).

    The plot is a square with the frame's ``xlim``/``ylim``, at the same pixels for every
    frame of one size. Points are coloured by ``frame.categories`` (with a legend),
    highlighted rows are larger, always labelled and joined to their previous position; up to
    ``label_count`` other rows are labelled, in row order, skipping ones that would overlap.
    Drift, neighbour overlap and separation are printed above the plot.

    Args:
        frame: from :meth:`EvolutionMap.update`.
        size: (width, height) in pixels.
        title: drawn above the map as ``"<title> - step <n>"``.
        font: font file for all text (default: one covering every label, CJK included).
        label_count: labels besides the highlighted rows.
        max_legend: classes with their own colour; the rest are grey ("other").
        draw_labels: draw row labels at all.
        max_points: draw only the frame's first this many rows (and every highlighted row).

    Returns:
        (height, width, 3) ``uint8`` array.

    Example:
        >>> import numpy as np
        >>> frame = EvolutionMap(render=False).update(np.eye(5), list("abcde"), step=0)
        >>> render_map(frame, size=(200, 160)).shape
        (160, 200, 3)
    """
    from PIL import Image, ImageDraw

    if max_points is not None and max_points < len(frame.coords):
        frame = _first_points(frame, max_points)
    width, height = int(size[0]), int(size[1])
    area = _plot_area((width, height))
    count = len(frame.coords)
    coords = np.clip(frame.coords, frame.xlim[0] * 0.98, frame.xlim[1] * 0.98)
    points = _to_pixels(coords, frame.xlim, frame.ylim, area)
    marked = frame.highlight if len(frame.highlight) == count else np.zeros(count, dtype=bool)
    heading = " ".join((f"{title} - step {frame.step}" if title else f"step {frame.step}").split())
    facts = _facts(frame, count)
    legend = _legend(frame.categories, max_legend)
    legend_names = [_short(name) for name in legend]
    candidates = _label_rows(frame.labels, marked, label_count) if draw_labels else []
    face = _map_face([heading, facts, *legend_names, *(t for _, t in candidates)], font)

    def clean(text: str) -> str:
        return _drawable(text, face.codepoints)

    legend_box = _legend_box(face, [clean(n) for n in legend_names], area)
    placed: list[_Label] = []
    if draw_labels:
        placed = _place_labels(
            frame, points, marked, label_count, face, area, legend_box, (width, height)
        )
        chosen_for = {row for row, _ in candidates}
        later = [_short(frame.labels[p.row]) for p in placed if p.row not in chosen_for]
        if font is None and not all(face.covers(text) for text in later):
            # A label beyond the first candidates needs another font: choose again, with it.
            texts = [_short(frame.labels[label.row]) for label in placed]
            face = _map_face([heading, facts, *legend_names, *texts], None)
            legend_box = _legend_box(face, [clean(n) for n in legend_names], area)
            placed = _place_labels(
                frame, points, marked, label_count, face, area, legend_box, (width, height)
            )

    # Geometry at _SUPERSAMPLE times the size, then box-filtered down: anti-aliased dots and
    # lines at a fraction of the cost of drawing each one anti-aliased.
    scale = _SUPERSAMPLE
    canvas = Image.new("RGB", (width * scale, height * scale), (255, 255, 255))
    draw = ImageDraw.Draw(canvas, "RGBA")  # "RGBA": fills with alpha blend into the picture
    _draw_axes(draw, frame, area, scale)
    rgb = _point_colours(frame.categories, legend, max_legend, count)
    alpha = round(255 * _POINT_ALPHA)
    radius = _POINT_RADIUS * scale
    for (x, y), colour in zip(
        (points[~marked] * scale).tolist(), rgb[~marked].tolist(), strict=True
    ):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*colour, alpha))
    if frame.previous_coords is not None and marked.any():
        before = np.clip(frame.previous_coords, frame.xlim[0] * 0.98, frame.xlim[1] * 0.98)
        start = _to_pixels(before, frame.xlim, frame.ylim, area) * scale
        for row in np.flatnonzero(marked & np.isfinite(before).all(axis=1)):
            draw.line(
                (*start[row], *(points[row] * scale)), fill=(*_RED, 128), width=round(1.4 * scale)
            )
    outer = (_MARK_RADIUS + _MARK_EDGE / 2) * scale
    for (x, y), colour in zip((points[marked] * scale).tolist(), rgb[marked].tolist(), strict=True):
        draw.ellipse(
            (x - outer, y - outer, x + outer, y + outer),
            fill=tuple(colour),
            outline=_RED,
            width=round(_MARK_EDGE * scale),
        )
    for label in placed:
        if label.leader:
            x0, y0, x1, y1 = label.box
            px, py = points[label.row]
            end = (min(max(px, x0), x1), min(max(py, y0), y1))
            draw.line((px * scale, py * scale, end[0] * scale, end[1] * scale), fill=_RED, width=2)
        if label.highlighted:
            draw.rounded_rectangle(
                _scaled(label.box, scale),
                radius=3 * scale,
                fill=(255, 255, 255, 217),
                outline=_RED,
                width=scale,
            )
    if legend_box is not None:
        _draw_legend_marks(draw, legend_box, legend, max_legend, scale)

    image = canvas.reduce(scale)
    # Text last, at the final size: FreeType anti-aliases and hints it better than a
    # downscaled picture of bigger text would look.
    heading = clean(heading)
    title_font = _font(face, _TITLE_PX, heading)
    heading_width = _ink_box(title_font, heading)[2]
    ascent = title_font.getmetrics()[0]
    heading_x = (width - heading_width) / 2 if heading_width <= width - 2 * _MARGIN else _MARGIN
    _draw_text(image, (heading_x, 5 + ascent), heading, title_font, (0, 0, 0))
    facts = clean(facts)
    facts_font = _font(face, _TEXT_PX, facts)
    facts_width = _ink_box(facts_font, facts)[2]
    if facts_width > width - 2 * _MARGIN:  # a small picture: tighter, then cut
        facts = facts.replace("   ", "  ")
        if _ink_box(facts_font, facts)[2] > width - 2 * _MARGIN:
            while len(facts) > 1 and _ink_box(facts_font, facts + "…")[2] > width - 2 * _MARGIN:
                facts = facts[:-1]
            facts = clean(facts.rstrip() + "…")
        facts_width = _ink_box(facts_font, facts)[2]
    facts_x = max(_MARGIN, min(area[0], width - _MARGIN - facts_width))
    _draw_text(image, (facts_x, area[1] - 6), facts, facts_font, _FACTS_RGB)
    for label in placed:
        size_px = _MARK_PX if label.highlighted else _TEXT_PX
        colour = (0, 0, 0) if label.highlighted else _LABEL_RGB
        _draw_text(image, label.origin, label.text, _font(face, size_px, label.text), colour)
    if legend_box is not None:
        for name, origin in zip(legend_box.names, legend_box.text_origins, strict=True):
            _draw_text(image, origin, name, _font(face, _TEXT_PX, name), (0, 0, 0))
    return np.array(image, dtype=np.uint8)


def _facts(frame: MapFrame, count: int) -> str:
    facts = []
    if frame.drift is not None:
        facts.append(f"drift {frame.drift:.3g}")
    if frame.neighbor_overlap is not None:
        facts.append(f"overlap@{frame.neighbors_k} {frame.neighbor_overlap:.2f}")
    if frame.separation is not None:
        facts.append(f"separation {frame.separation:.2f}")
    facts.append(f"{count} points, PCA {100 * frame.explained_variance:.0f}%")
    if frame.basis_refit:
        facts.append("new basis")
    return "   ".join(facts)


def _draw_axes(
    draw: ImageDraw.ImageDraw, frame: MapFrame, area: tuple[int, int, int], scale: int
) -> None:
    """Light grid lines at round values and a thin frame (no tick labels: PCA units mean
    nothing to the reader, only the shape does)."""
    left, top, side = area
    for value in _grid_values(*frame.xlim):
        x = round(left + (value - frame.xlim[0]) / (frame.xlim[1] - frame.xlim[0]) * side)
        draw.rectangle(
            (x * scale, top * scale, (x + 1) * scale - 1, (top + side) * scale), _GRID_RGB
        )
    for value in _grid_values(*frame.ylim):
        y = round(top + (frame.ylim[1] - value) / (frame.ylim[1] - frame.ylim[0]) * side)
        draw.rectangle(
            (left * scale, y * scale, (left + side) * scale, (y + 1) * scale - 1), _GRID_RGB
        )
    draw.rectangle(
        (left * scale, top * scale, (left + side + 1) * scale - 1, (top + side + 1) * scale - 1),
        outline=_FRAME_RGB,
        width=scale,
    )


def _point_colours(
    categories: list[str] | None, legend: list[str], max_legend: int, count: int
) -> npt.NDArray[np.int64]:
    """(N, 3) RGB of each point: its class's palette colour, grey for "other"."""
    if categories is None:
        return np.tile(np.asarray([_POINT_RGB]), (count, 1))
    palette = _TAB10 if max_legend <= 10 else _TAB20
    table = [_hex_rgb(palette[i % len(palette)]) for i in range(len(legend))]
    index = {name: i for i, name in enumerate(legend) if name != _OTHER}
    colours = np.asarray([*table, _OTHER_RGB], dtype=np.int64)
    return colours[[index.get(name, len(table)) for name in categories]]


@dataclass(frozen=True)
class _LegendBox:
    box: _Box
    names: list[str]
    #: dot centres and where the names' baselines start, pixels.
    dots: list[tuple[float, float]]
    text_origins: list[tuple[float, float]]


#: Legend layout, pixels: row height, inner padding, dot radius, gap between dot and name.
_LEGEND_ROW = 17
_LEGEND_PAD = 6
_LEGEND_DOT = 4.0
_LEGEND_GAP = 6


def _legend_box(face: FontFace, names: list[str], area: tuple[int, int, int]) -> _LegendBox | None:
    """Where the legend goes: the plot's upper right corner, sized to its names."""
    if not names:
        return None
    left, top, side = area
    text_width = max(_ink_box(_font(face, _TEXT_PX, name), name)[2] for name in names)
    box_width = 2 * _LEGEND_PAD + 2 * _LEGEND_DOT + _LEGEND_GAP + text_width
    box_height = 2 * _LEGEND_PAD + _LEGEND_ROW * len(names) - 4
    x1 = left + side - 6
    x0 = x1 - box_width
    y0 = top + 6
    rows = [y0 + _LEGEND_PAD + _LEGEND_ROW * (i + 0.5) - 2 for i in range(len(names))]
    dot_x = x0 + _LEGEND_PAD + _LEGEND_DOT
    text_x = dot_x + _LEGEND_DOT + _LEGEND_GAP
    # Names centred on their dots: the baseline sits half the line's extent below the middle.
    ascent, descent = _font(face, _TEXT_PX, "").getmetrics()
    below = (ascent - descent) / 2
    return _LegendBox(
        box=(x0, y0, x1, y0 + box_height),
        names=names,
        dots=[(dot_x, y) for y in rows],
        text_origins=[(text_x, y + below) for y in rows],
    )


def _draw_legend_marks(
    draw: ImageDraw.ImageDraw, legend: _LegendBox, names: list[str], max_legend: int, scale: int
) -> None:
    draw.rounded_rectangle(
        _scaled(legend.box, scale),
        radius=3 * scale,
        fill=(255, 255, 255, 217),
        outline=(204, 204, 204),
        width=scale,
    )
    colours = _point_colours(names, names, max_legend, len(names))
    r = _LEGEND_DOT * scale
    for (x, y), colour in zip(legend.dots, colours.tolist(), strict=True):
        draw.ellipse(
            (x * scale - r, y * scale - r, x * scale + r, y * scale + r), fill=tuple(colour)
        )


def _marker_box(point: _FloatArray) -> _Box:
    """The pixels a highlighted point's marker covers (with a little room)."""
    reach = _MARK_RADIUS + _MARK_EDGE
    x, y = float(point[0]), float(point[1])
    return x - reach, y - reach, x + reach, y + reach


def _overlap(a: _Box, b: _Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _shift_into(low: float, high: float, minimum: float, maximum: float) -> int:
    """Whole pixels to move [low, high] by to lie within [minimum, maximum] (or start there)."""
    if low < minimum or high - low > maximum - minimum:
        return math.ceil(minimum - low)
    if high > maximum:
        return math.floor(maximum - high)
    return 0


def _label_rows(
    labels: list[str], marked: npt.NDArray[np.bool_], label_count: int
) -> list[tuple[int, str]]:
    """Rows that may get a label: the highlighted ones, then the first ``label_count`` others
    (most are placed; the font is chosen for these texts before placing them)."""
    rows = [(int(row), _short(labels[row])) for row in np.flatnonzero(marked)]
    others = np.flatnonzero(~marked)[:label_count]
    return rows + [(int(row), _short(labels[row])) for row in others]


@functools.lru_cache(maxsize=8192)
def _label_ink(face: FontFace, px: int, label: str) -> tuple[str, _Box]:
    """A row label as drawn (shortened, characters the font lacks replaced) and its ink box
    relative to its baseline start; cached, since the same labels come back every step."""
    text = _drawable(_short(label), face.codepoints)
    return text, _ink_box(_font(face, px, text), text)


def _place_labels(
    frame: MapFrame,
    points: _FloatArray,
    marked: npt.NDArray[np.bool_],
    label_count: int,
    face: FontFace,
    area: tuple[int, int, int],
    legend: _LegendBox | None,
    image_size: tuple[int, int],
) -> list[_Label]:
    """Which rows get a label, and where (pixels, measured with the font they are drawn in).

    Highlighted rows first (always labelled, at the least crowded of a few offsets, slid into
    the picture if need be), then up to ``label_count`` others in row order, each at the first
    of four offsets where its text box overlaps no label placed before, no highlighted point
    and not the legend, and stays inside the plot; rows with no free offset get none.
    """
    left, top, side = area
    image_width, image_height = image_size
    taken: list[_Box] = [] if legend is None else [legend.box]
    placed: list[_Label] = []

    for row in np.flatnonzero(marked).tolist():
        text, (ink_left, ink_top, ink_right, ink_bottom) = _label_ink(
            face, _MARK_PX, frame.labels[row]
        )
        if not text.strip():
            continue
        own = _marker_box(points[row])
        options = []
        for order, offset in enumerate(_OFFSETS):
            # Whole pixels: the box's edges then fall on pixel edges and stay sharp.
            x = round(points[row, 0] + offset[0])
            y = round(points[row, 1] - offset[1])
            if offset[0] < 0:  # to the left of the point: the text ends there
                x -= round(ink_right)
            # Always drawn: slide it into the picture if it sticks out (a long label near an
            # edge); it gets a leader line then.
            pad = _BOX_PAD
            shift_x = _shift_into(x + ink_left - pad, x + ink_right + pad, 1, image_width - 1)
            shift_y = _shift_into(y + ink_top - pad, y + ink_bottom + pad, top, image_height - 1)
            x, y = x + shift_x, y + shift_y
            box = (x + ink_left - pad, y + ink_top - pad, x + ink_right + pad, y + ink_bottom + pad)
            slid = bool(shift_x or shift_y)
            # Fewest clashes (a slid label must not hide its own point either; the offsets
            # keep the others clear of it); of those, one that needed no sliding, the nearest.
            clashes = sum(_overlap(box, other) for other in taken) + (slid and _overlap(box, own))
            leader = slid or max(abs(offset[0]), abs(offset[1])) >= _LEADER_FROM
            label = _Label(row, text, (x, y), box, highlighted=True, leader=leader)
            options.append((clashes, slid, order, label))
        best = min(options, key=lambda option: option[:3])[3]
        taken.append(best.box)
        placed.append(best)
    # Ordinary labels also keep off the highlighted points themselves.
    taken.extend(_marker_box(point) for point in points[marked])

    # Ordinary labels: greedy in row order, but vectorised: the four candidate boxes of a
    # batch of rows are tested against everything placed at once, and after each placement
    # only against the new box. A crowded map (every row tried) stays a few milliseconds.
    rows = np.flatnonzero(~marked)
    offsets = np.asarray(_OFFSETS[:4], dtype=np.float64)
    others = 0
    for start in range(0, len(rows), _LABEL_BATCH):
        if others >= label_count:
            break
        batch = rows[start : start + _LABEL_BATCH]
        measured = [_label_ink(face, _TEXT_PX, frame.labels[row]) for row in batch.tolist()]
        ink = np.asarray([box for _, box in measured], dtype=np.float64).reshape(-1, 4)
        x = np.rint(points[batch, :1] + offsets[:, 0])  # (rows, offsets)
        y = np.rint(points[batch, 1:] - offsets[:, 1])
        x = x - np.where(offsets[:, 0] < 0, np.rint(ink[:, 2:3]), 0.0)
        boxes = np.stack(
            [x + ink[:, :1], y + ink[:, 1:2], x + ink[:, 2:3], y + ink[:, 3:]], axis=-1
        )  # (rows, offsets, 4)
        free = (
            (boxes[..., 0] >= left)
            & (boxes[..., 2] <= left + side)
            & (boxes[..., 1] >= top)
            & (boxes[..., 3] <= top + side)
        )
        free &= np.asarray([bool(text.strip()) for text, _ in measured])[:, None]
        for other in taken:
            free &= ~_overlaps(boxes, other)
        position = 0
        while others < label_count:
            open_rows = np.flatnonzero(free[position:].any(axis=1))
            if not len(open_rows):
                break
            index = position + int(open_rows[0])
            choice = int(np.argmax(free[index]))
            x0, y0, x1, y1 = (float(v) for v in boxes[index, choice])
            box = (x0, y0, x1, y1)
            placed.append(
                _Label(
                    row=int(batch[index]),
                    text=measured[index][0],
                    origin=(float(x[index, choice]), float(y[index, choice])),
                    box=box,
                    highlighted=False,
                    leader=False,
                )
            )
            taken.append(box)
            others += 1
            position = index + 1
            free[position:] &= ~_overlaps(boxes[position:], box)
    return placed


def _overlaps(boxes: _FloatArray, box: _Box) -> npt.NDArray[np.bool_]:
    """Which of ``boxes`` (..., 4) overlap ``box``."""
    return (
        (boxes[..., 0] < box[2])
        & (box[0] < boxes[..., 2])
        & (boxes[..., 1] < box[3])
        & (box[1] < boxes[..., 3])
    )


def _legend(categories: list[str] | None, max_legend: int) -> list[str]:
    if categories is None:
        return []
    names, counts = np.unique(np.asarray(categories), return_counts=True)
    if len(names) <= max_legend:
        kept = list(names)
    else:
        top = np.argsort(-counts, kind="stable")[: max_legend - 1]
        kept = [names[i] for i in sorted(top)] + [_OTHER]
    return sorted((str(n) for n in kept if n != _OTHER), key=_natural) + (
        [_OTHER] if _OTHER in kept else []
    )


def _natural(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LABEL_CHARS else text[: _MAX_LABEL_CHARS - 1] + "…"


def _drawable(text: str, codepoints: frozenset[int]) -> str:
    """``text`` with characters the font lacks dropped (format) or shown as ``?``.

    The font resolver has already warned about characters no installed font covers; this
    draws a visible ``?`` for them instead of the font's empty .notdef box.
    """
    out = []
    for char in text:
        if ord(char) in codepoints or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Mn", "Me") or "\ufe00" <= char <= "\ufe0f":
            continue
        else:
            out.append("?")
    return "".join(out)


def _first_points(frame: MapFrame, count: int) -> MapFrame:
    """The frame restricted to its first ``count`` rows plus its highlighted rows."""
    from dataclasses import replace

    keep = np.zeros(len(frame.coords), dtype=bool)
    keep[:count] = True
    if len(frame.highlight) == len(keep):
        keep |= frame.highlight
    rows = np.flatnonzero(keep)
    return replace(
        frame,
        coords=frame.coords[rows],
        labels=[frame.labels[i] for i in rows],
        categories=None if frame.categories is None else [frame.categories[i] for i in rows],
        highlight=frame.highlight[rows] if len(frame.highlight) == len(keep) else frame.highlight,
        previous_coords=None if frame.previous_coords is None else frame.previous_coords[rows],
    )


def _with_image(frame: MapFrame, image: npt.NDArray[np.uint8]) -> MapFrame:
    from dataclasses import replace

    return replace(frame, image=image)


# --------------------------------------------------------------------------- small helpers


def _as_matrix(matrix: Any, *, convert: bool = True) -> Any:
    """``matrix`` as a validated 2-D real array: float64 and finite, or unconverted."""
    array = np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidEmbeddingError(
            f"expected a 2-D matrix (rows x dimensions) with at least one row; got shape "
            f"{array.shape}."
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidEmbeddingError(f"expected a real-valued matrix; got dtype {array.dtype}.")
    if not convert:
        return array
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InvalidEmbeddingError("the matrix holds NaN or infinite values.")
    return array


def _finite_rows(array: Any, index: npt.NDArray[np.int64]) -> _FloatArray:
    """A float64 copy of ``array[index]``; never a view of the caller's (reused) buffer."""
    rows: _FloatArray = np.array(array[index], dtype=np.float64)
    if not np.isfinite(rows).all():
        raise InvalidEmbeddingError("the matrix holds NaN or infinite values in the mapped rows.")
    return rows


def _unit_rows(matrix: _FloatArray) -> _FloatArray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def _category(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
