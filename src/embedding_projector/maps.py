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

Rendering needs matplotlib (the ``plots`` extra, Agg backend, no display, no pyplot state);
without it :class:`EvolutionMap` warns once and returns frames without an image, scalars
included. Text goes through :func:`embedding_projector.fonts.font_path`, so Japanese, Chinese
and Korean labels are drawn as text. :func:`log_map` logs a frame to a tensorboardX or
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

import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import insight
from .errors import InvalidEmbeddingError

__all__ = [
    "DEFAULT_MAP_ROWS",
    "PLOTS_INSTALL_HINT",
    "EvolutionMap",
    "MapFrame",
    "log_map",
    "render_map",
    "silhouette",
]

logger = logging.getLogger(__name__)

#: Rows drawn and used for the scalars unless told otherwise (rendering ~0.1-0.3 s).
DEFAULT_MAP_ROWS = 500
#: What to install for rendering.
PLOTS_INSTALL_HINT = 'pip install "embedding-projector[plots]"'

_FloatArray = npt.NDArray[np.float64]
_OTHER = "other"
_MAX_LABEL_CHARS = 24
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")
_NO_MATPLOTLIB_WARNED = False
_WARN_LOCK = threading.Lock()


@dataclass(frozen=True)
class MapFrame:
    """One step of an :class:`EvolutionMap`: aligned 2-D coordinates, scalars, image.

    Attributes:
        step: the step given to :meth:`EvolutionMap.update`.
        coords: (N, 2) aligned, projected coordinates of the map's rows (unit RMS radius).
        labels: the N rows' labels (row numbers as text when none were given).
        xlim: x-axis limits of the map; the same at every step of one :class:`EvolutionMap`.
        ylim: y-axis limits of the map; the same at every step.
        image: the rendered map, (H, W, 3) RGB ``uint8``, or ``None`` (no matplotlib, or
            ``render=False``).
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
        render: draw images (needs matplotlib); ``False`` computes the scalars only.
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
        label_list = None if labels is None else [str(label) for label in labels]
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
        if self.scalars:
            if self._prev_raw is not None and len(cur_index) >= 2:
                before, after = self._prev_raw[prev_index], raw[cur_index]
                drift = insight.drift(before, after, max_rows=None)
                overlap = insight.neighbor_overlap(before, after, self.neighbors_k, max_rows=None)
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
            if image is not None:
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


def _matplotlib() -> dict[str, Any] | None:
    """The matplotlib pieces used for rendering, or ``None`` (warned once) without it."""
    global _NO_MATPLOTLIB_WARNED
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.font_manager import FontProperties
        from matplotlib.lines import Line2D
    except ImportError as error:
        with _WARN_LOCK:
            first = not _NO_MATPLOTLIB_WARNED
            _NO_MATPLOTLIB_WARNED = True
        if first:
            warnings.warn(
                f"matplotlib is not installed ({error}), so no evolution maps are drawn; drift, "
                f"neighbour overlap and separation are still logged. To get the maps: "
                f"{PLOTS_INSTALL_HINT}",
                UserWarning,
                stacklevel=4,
            )
        return None
    return {
        "colormaps": colormaps,
        "FigureCanvasAgg": FigureCanvasAgg,
        "Figure": Figure,
        "FontProperties": FontProperties,
        "Line2D": Line2D,
    }


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
) -> npt.NDArray[np.uint8] | None:
    """Draw a frame as an RGB image (matplotlib Agg; no display, no pyplot state).

    Points are coloured by ``frame.categories`` (with a legend), highlighted rows are larger,
    always labelled and joined to their previous position; up to ``label_count`` other rows
    are labelled, in row order, skipping ones that would overlap. Drift, neighbour overlap and
    separation are printed in a corner.

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
        (height, width, 3) ``uint8`` array, or ``None`` without matplotlib (warned once).

    Example:
        >>> import numpy as np
        >>> frame = EvolutionMap(render=False).update(np.eye(5), list("abcde"), step=0)
        >>> render_map(frame, size=(200, 160)).shape
        (160, 200, 3)
    """
    mpl = _matplotlib()
    if mpl is None:
        return None
    from .fonts import font_path, load_font

    if max_points is not None and max_points < len(frame.coords):
        frame = _first_points(frame, max_points)
    coords = np.clip(frame.coords, frame.xlim[0] * 0.98, frame.xlim[1] * 0.98)
    heading = f"{title} - step {frame.step}" if title else f"step {frame.step}"
    placed = _place_labels(frame, coords, label_count, size) if draw_labels else []
    texts = [text for _, text, _ in placed]
    legend = _legend(frame.categories, max_legend)
    path = font_path([heading, *texts, *legend], font)
    codepoints = load_font(path).codepoints

    def clean(text: str) -> str:
        return _drawable(text, codepoints)

    text_font = mpl["FontProperties"](fname=path, size=9)
    big_font = mpl["FontProperties"](fname=path, size=11)

    width, height = size
    dpi = 100
    figure = mpl["Figure"](figsize=(width / dpi, height / dpi), dpi=dpi)
    mpl["FigureCanvasAgg"](figure)
    axes = figure.add_axes((0.07, 0.05, 0.9, 0.85))
    axes.set_xlim(*frame.xlim)
    axes.set_ylim(*frame.ylim)
    axes.set_aspect("auto")
    axes.tick_params(labelsize=7, colors="#555555")
    axes.grid(True, color="#eeeeee", linewidth=0.6)
    axes.set_axisbelow(True)
    figure.text(
        0.5, 0.985, clean(heading), ha="center", va="top", fontproperties=big_font, parse_math=False
    )

    colors = np.tile(np.asarray([[0.25, 0.45, 0.75, 1.0]]), (len(coords), 1))
    if frame.categories is not None:
        palette = mpl["colormaps"]["tab10" if max_legend <= 10 else "tab20"]
        shown = {name: palette(i % palette.N) for i, name in enumerate(legend) if name != _OTHER}
        grey = (0.6, 0.6, 0.6, 1.0)
        colors = np.asarray([shown.get(c, grey) for c in frame.categories])
        handles = [
            mpl["Line2D"](
                [], [], marker="o", linestyle="", color=shown.get(name, grey), label=clean(name)
            )
            for name in legend
        ]
        axes.legend(
            handles=handles,
            labels=[clean(name).replace("$", r"\$") for name in legend],
            prop=text_font,
            loc="upper right",
            framealpha=0.85,
            fontsize=8,
        )
    plain = ~frame.highlight if len(frame.highlight) == len(coords) else np.ones(len(coords), bool)
    axes.scatter(coords[plain, 0], coords[plain, 1], s=12, c=colors[plain], alpha=0.7, linewidths=0)
    marked = ~plain
    if frame.previous_coords is not None and marked.any():
        before = np.clip(frame.previous_coords, frame.xlim[0] * 0.98, frame.xlim[1] * 0.98)
        for moved in np.flatnonzero(marked & np.isfinite(before).all(axis=1)):
            axes.plot(
                [before[moved, 0], coords[moved, 0]],
                [before[moved, 1], coords[moved, 1]],
                color="#d62728",
                alpha=0.5,
                linewidth=1.0,
            )
    if marked.any():
        axes.scatter(
            coords[marked, 0],
            coords[marked, 1],
            s=40,
            c=colors[marked],
            edgecolors="#d62728",
            linewidths=1.5,
            zorder=3,
        )
    for row, text, offset in placed:
        is_marked = bool(marked[row])
        axes.annotate(
            clean(text),
            (coords[row, 0], coords[row, 1]),
            xytext=offset,
            ha="right" if offset[0] < 0 else "left",
            arrowprops=(
                {"arrowstyle": "-", "color": "#d62728", "linewidth": 0.8, "shrinkA": 0}
                if max(abs(offset[0]), abs(offset[1])) > 14
                else None
            ),
            textcoords="offset points",
            fontproperties=big_font if is_marked else text_font,
            color="#000000" if is_marked else "#333333",
            parse_math=False,
            zorder=4,
            bbox=(
                {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "#d62728", "alpha": 0.85}
                if is_marked
                else None
            ),
        )
    facts = []
    if frame.drift is not None:
        facts.append(f"drift {frame.drift:.3g}")
    if frame.neighbor_overlap is not None:
        facts.append(f"overlap@{frame.neighbors_k} {frame.neighbor_overlap:.2f}")
    if frame.separation is not None:
        facts.append(f"separation {frame.separation:.2f}")
    facts.append(f"{len(coords)} points, PCA {100 * frame.explained_variance:.0f}%")
    if frame.basis_refit:
        facts.append("new basis")
    axes.text(
        0.0,
        1.01,
        "   ".join(facts),
        transform=axes.transAxes,
        fontproperties=text_font,
        color="#555555",
        parse_math=False,
        va="bottom",
    )
    canvas = figure.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3], dtype=np.uint8)


_OFFSETS = (
    (4, 3),
    (4, -12),
    (-6, 4),
    (-6, -13),
    (10, 16),
    (10, -26),
    (-12, 18),
    (-12, -28),
    (22, 30),
    (22, -40),
    (-24, 32),
    (-24, -42),
)


def _place_labels(
    frame: MapFrame, coords: _FloatArray, label_count: int, size: tuple[int, int]
) -> list[tuple[int, str, tuple[int, int]]]:
    """Which rows get a label, and where: ``(row, text, offset in points)``.

    Highlighted rows first (always labelled, at the least crowded of a few offsets), then up to
    ``label_count`` others in row order, each at the first offset where its (estimated) text
    box overlaps no label placed before; rows with no free offset get none.
    """
    width, height = size
    # Axes pixel size (see render_map's add_axes) and pixels per data unit.
    scale_x = 0.9 * width / (frame.xlim[1] - frame.xlim[0])
    scale_y = 0.85 * height / (frame.ylim[1] - frame.ylim[0])
    boxes: list[tuple[float, float, float, float]] = []
    placed: list[tuple[int, str, tuple[int, int]]] = []
    marked = frame.highlight if len(frame.highlight) == len(coords) else np.zeros(len(coords), bool)

    def box(
        row: int, text: str, offset: tuple[int, int], size_pt: float
    ) -> tuple[float, float, float, float]:
        x = (coords[row, 0] - frame.xlim[0]) * scale_x + offset[0] * 100 / 72
        y = (coords[row, 1] - frame.ylim[0]) * scale_y + offset[1] * 100 / 72
        wide = sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)
        pad = 3.0 if size_pt > 10 else 0.0
        if offset[0] < 0:  # drawn to the left of the point (right-aligned)
            x -= wide * size_pt * 100 / 72
        return (
            x - pad,
            y - pad,
            x + wide * size_pt * 100 / 72 + pad,
            y + 1.25 * size_pt * 100 / 72 + pad,
        )

    def clashes(candidate: tuple[float, float, float, float]) -> int:
        return sum(
            candidate[0] < other[2]
            and other[0] < candidate[2]
            and candidate[1] < other[3]
            and other[1] < candidate[3]
            for other in boxes
        )

    for found in np.flatnonzero(marked):
        text = _short(frame.labels[found])
        options = [(clashes(box(int(found), text, o, 11)), i) for i, o in enumerate(_OFFSETS)]
        offset = _OFFSETS[min(options)[1]]
        boxes.append(box(int(found), text, offset, 11))
        placed.append((int(found), text, offset))
    others = 0
    for row in range(len(coords)):
        if others >= label_count:
            break
        if marked[row]:
            continue
        text = _short(frame.labels[row])
        for offset in _OFFSETS[:4]:
            candidate = box(row, text, offset, 9)
            if not clashes(candidate) and candidate[0] >= 0 and candidate[2] <= 0.9 * width:
                boxes.append(candidate)
                placed.append((row, text, offset))
                others += 1
                break
    return placed


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
    keeps matplotlib from warning again for each of them at every step.
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
