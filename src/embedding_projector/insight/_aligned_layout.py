"""One frame for a whole run: :class:`AlignedLayout` (public through :mod:`.insight.layouts`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .. import insight
from ..errors import InvalidEmbeddingError
from ._alignment import nearest_orthogonal
from ._layout_core import (
    WARM_EPOCHS,
    ProjectorLayout,
    as_layout_matrix,
    check_layout_kind,
    cosine_geometry,
    fit_sample,
    follow_basis,
    require_umap,
    top_directions,
    umap_layout,
)

__all__ = ["AlignedLayout"]

logger = logging.getLogger(__name__)

_FloatArray = npt.NDArray[np.floating[Any]]
_F32 = npt.NDArray[np.float32]


class AlignedLayout:
    """Layouts of successive snapshots of one embedding, all in one frame for the run.

    Stateful: call :meth:`update` once per snapshot, in step order, from one thread (the
    callbacks call it from their writer thread). One object per tag.

    * **Alignment.** Rows are matched to the previous snapshot's by key; the snapshot (unit
      rows, centred) is rotated onto the previous aligned snapshot by orthogonal Procrustes
      (:func:`insight.orthogonal_procrustes`) fitted on the shared rows.
    * **Basis (PCA).** Fitted at the first step. When it shows less than ``refit_threshold``
      of the variance the snapshot's own top components would, it turns toward them, but
      only as far as the data moved: the picture of the shared rows changes by at most
      twice the relative change of the aligned rows (or by what it changes with the basis
      kept), so a better plane is reached over several steps rather than in one jump
      (:func:`~embedding_projector.insight._layout_core.follow_basis`, the rule of
      :class:`~embedding_projector.maps.EvolutionMap` too). The 2-D and 3-D states have a
      basis each; earlier states are never rewritten.
    * **Scale.** One for every step: the first step's 2-D picture has unit RMS radius.
    * **UMAP** (``kind="umap"``): the first step is a cold fit; later steps start from the
      previous step's coordinates (new rows from their nearest shared row's), run
      ``warm_epochs`` epochs, and are then turned, scaled and shifted onto the previous
      coordinates of the shared rows (umap-learn rescales its start to a 10 x 10 box).

    Args:
        kind: ``"pca"`` (2-D and 3-D states) or ``"umap"`` (one state of ``umap_dims``).
        refit_threshold: see Basis; 0 never turns the basis, 1 (the default) turns it
            whenever a better one exists.
        umap_dims: 2 or 3.
        warm_epochs: epochs of a UMAP step started from the previous layout.
        seed: UMAP's random seed (reproducible but single-threaded); default none.

    Attributes:
        basis_steps: steps at which a basis was fitted (the first) or turned.

    Example:
        >>> import numpy as np
        >>> frame = AlignedLayout()
        >>> states = frame.update(["a", "b", "c", "d"], np.eye(4), step=12)
        >>> [state.label for state in states]
        ['step 12 · aligned PCA', 'step 12 · aligned PCA 3-D']
    """

    def __init__(
        self,
        kind: Literal["pca", "umap"] = "pca",
        *,
        refit_threshold: float = 1.0,
        umap_dims: int = 2,
        warm_epochs: int = WARM_EPOCHS,
        seed: int | None = None,
    ) -> None:
        self.kind = check_layout_kind(kind)
        if not 0.0 <= float(refit_threshold) <= 1.0:
            raise ValueError(f"refit_threshold must be in [0, 1]; got {refit_threshold!r}.")
        if umap_dims not in (2, 3):
            raise ValueError(f"umap_dims must be 2 or 3; got {umap_dims!r}.")
        if isinstance(warm_epochs, bool) or int(warm_epochs) < 1:
            raise ValueError(f"warm_epochs must be a positive integer; got {warm_epochs!r}.")
        if kind == "umap":
            require_umap()
        self.refit_threshold = float(refit_threshold)
        self.umap_dims = int(umap_dims)
        self.warm_epochs = int(warm_epochs)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget every earlier snapshot: the next update starts a new frame."""
        self._keys: list[str] = []
        self._dim: int | None = None
        self._aligned: _F32 | None = None
        self._rotation: _FloatArray | None = None
        self._bases: dict[int, _FloatArray] = {}
        self._scale: float | None = None
        self._coords: _F32 | None = None
        self._last_step: int | None = None
        self.basis_steps: list[int] = []

    # -- what EvolutionMap (or anyone) can reuse ----------------------------------------------

    @property
    def aligned_matrix(self) -> _F32 | None:
        """The last snapshot in the run's frame: unit rows, centred, rotated (rows x dims)."""
        return self._aligned

    @property
    def rotation(self) -> _FloatArray | None:
        """The last snapshot's rotation onto the previous one (dims x dims)."""
        return self._rotation

    @property
    def basis(self) -> _FloatArray | None:
        """The run's 3-D projection basis (dims x 3; the 2-D states use their own)."""
        return self._bases.get(3)

    @property
    def scale(self) -> float | None:
        """The divisor applied to every step's projected coordinates."""
        return self._scale

    @property
    def keys(self) -> list[str]:
        """Row keys of the last snapshot."""
        return list(self._keys)

    # -- update --------------------------------------------------------------------------------

    def update(self, keys: Sequence[Any] | None, matrix: Any, step: int) -> list[ProjectorLayout]:
        """Place one snapshot in the run's frame.

        Args:
            keys: one identity per row (e.g. words); rows are matched to the previous
                snapshot's by key. ``None`` (or repeated keys): row ``i`` is the same item at
                every step.
            matrix: (rows, dims) snapshot.
            step: the snapshot's step (used in the labels).

        Returns:
            PCA: ``[2-D, 3-D]`` layouts labelled ``step <n> · aligned PCA`` (and ``... 3-D``);
            UMAP: one layout labelled ``step <n> · aligned UMAP of all <rows> rows``.

        Raises:
            InvalidEmbeddingError: not a finite 2-D matrix, or ``keys`` of the wrong length.
        """
        array = as_layout_matrix(matrix)
        rows, dim = array.shape
        row_keys = self._row_keys(keys, rows)
        if self._dim is not None and dim != self._dim:
            logger.info(
                "layout dimensions changed (%s -> %d); starting a new frame", self._dim, dim
            )
            self.reset()
        prev_index, cur_index = self._match(row_keys)
        if self.kind == "umap":
            return [self._umap_step(array, row_keys, prev_index, cur_index, step)]
        centred = cosine_geometry(array)
        rotation: _FloatArray = np.eye(dim)
        if self._aligned is not None and len(cur_index) >= 2:
            rotation = _rotation_onto(centred, self._aligned, prev_index, cur_index)
        aligned = centred @ rotation.astype(np.float32)
        coords = self._project(aligned, int(step), prev_index, cur_index)
        self._keys, self._dim, self._aligned, self._rotation = row_keys, dim, aligned, rotation
        self._coords, self._last_step = coords, int(step)
        return self._layouts(coords, f"step {step} · aligned PCA")

    def carry_over(
        self, keys: Sequence[Any] | None, rows: int, step: int, reason: str = "skipped"
    ) -> list[ProjectorLayout]:
        """The last computed layout, for a step whose own was not computed (e.g. time budget).

        Rows are matched by key; nothing changes in the frame. The labels say so, e.g.
        ``step 12 · aligned PCA skipped (time budget): positions of step 10``.

        Args:
            keys: the step's row keys (as for :meth:`update`).
            rows: the step's row count.
            step: the step.
            reason: why it was not computed (goes into the label).

        Returns:
            The layouts (as :meth:`update` would), or ``[]`` when nothing was computed yet or a
            row has no earlier position (nothing honest to show).
        """
        if self._coords is None:
            return []
        prev_index, cur_index = self._match(self._row_keys(keys, rows))
        if len(cur_index) != rows:
            return []
        coords = np.empty((rows, self._coords.shape[1]), dtype=np.float32)
        coords[cur_index] = self._coords[prev_index]
        name = "aligned PCA" if self.kind == "pca" else f"aligned UMAP of all {rows} rows"
        label = f"step {step} · {name} {reason}: positions of step {self._last_step}"
        return self._layouts(coords, label)

    def _layouts(self, coords: _F32, label: str) -> list[ProjectorLayout]:
        if self.kind == "umap":
            return [ProjectorLayout("umap", coords, label)]
        return [
            ProjectorLayout("pca", coords[:, :2], label),
            ProjectorLayout("pca", coords[:, 2:], f"{label} 3-D"),
        ]

    def _row_keys(self, keys: Sequence[Any] | None, rows: int) -> list[str]:
        if keys is None:
            return [str(i) for i in range(rows)]
        found = list(map(str, keys))  # C loop: 100,000 keys a step
        if len(found) != rows:
            raise InvalidEmbeddingError(f"keys has {len(found)} entries for {rows} rows.")
        if len(set(found)) != rows:
            return [str(i) for i in range(rows)]
        return found

    def _match(self, keys: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if keys == self._keys:
            index = np.arange(len(keys), dtype=np.int64)
            return index, index
        return insight.match_rows(self._keys, keys)

    def _project(
        self,
        aligned: _F32,
        step: int,
        prev_index: npt.NDArray[np.int64],
        cur_index: npt.NDArray[np.int64],
    ) -> _F32:
        """(rows, 5) float32: the 2-D coordinates, then the 3-D ones, in the run's scale."""
        sample = aligned[fit_sample(len(aligned))]
        # One Gram matrix for the fit and for what the kept bases show (float32 BLAS, summed
        # over at most FIT_ROWS rows; then float64).
        gram = (sample.T @ sample).astype(np.float64) if len(sample) >= sample.shape[1] else None
        best, variances = top_directions(sample, 3, gram=gram)
        moved = False
        shared: tuple[_F32, _F32, _F32] | None = None
        for count, columns in ((2, slice(0, 2)), (3, slice(2, 5))):
            current = self._bases.get(count)
            if current is None:
                self._bases[count] = best[:, :count]
                moved = True
                continue
            if gram is not None:
                shown = float(np.sum(current * (gram @ current)))
            else:
                shown = float(np.sum((sample @ current) ** 2))
            if shown >= self.refit_threshold * float(np.sum(variances[:count])):
                continue
            if self._aligned is None or self._coords is None or len(cur_index) < 2:
                self._bases[count] = best[:, :count]  # nothing shared to move from: a new frame
                moved = True
                continue
            if shared is None:
                fit = fit_sample(len(cur_index))
                picked_now, picked_before = cur_index[fit], prev_index[fit]
                shared = (
                    aligned[picked_now],
                    self._aligned[picked_before],
                    self._coords[picked_before] * np.float32(self._scale or 1.0),
                )
            rows, before, picture = shared
            turn = follow_basis(current, best[:, :count], rows, before, picture[:, columns])
            if turn.fraction > 0:
                self._bases[count] = turn.basis
                moved = True
        if moved:
            self.basis_steps.append(step)
        both = aligned @ np.hstack([self._bases[2], self._bases[3]]).astype(np.float32)
        if self._scale is None:
            radius = float(np.sqrt(np.mean(np.sum(both[:, :2].astype(np.float64) ** 2, axis=1))))
            self._scale = radius if radius > 0 else 1.0
        return np.asarray(both / np.float32(self._scale), dtype=np.float32)

    def _umap_step(
        self,
        array: _F32,
        keys: list[str],
        prev_index: npt.NDArray[np.int64],
        cur_index: npt.NDArray[np.int64],
        step: int,
    ) -> ProjectorLayout:
        rows = len(array)
        label = f"step {step} · aligned UMAP of all {rows} rows"
        previous = self._coords
        if previous is None or len(cur_index) < 3:
            layout = umap_layout(array, dims=self.umap_dims, seed=self.seed, label=label)
            coords = layout.coordinates
        else:
            init = _warm_start(array, previous, prev_index, cur_index)
            fitted = umap_layout(
                array,
                dims=self.umap_dims,
                init=init,
                seed=self.seed,
                n_epochs=self.warm_epochs,
                label=label,
            ).coordinates
            coords = _similarity_onto(fitted, cur_index, previous[prev_index])
        self._keys, self._dim, self._last_step = keys, array.shape[1], int(step)
        self._coords = np.asarray(coords, dtype=np.float32)
        return ProjectorLayout("umap", self._coords, label)


def _rotation_onto(
    centred: _F32,
    previous: _F32,
    prev_index: npt.NDArray[np.int64],
    cur_index: npt.NDArray[np.int64],
) -> _FloatArray:
    """The Procrustes rotation of the shared rows (at most ``FIT_ROWS`` of them) onto their
    previous aligned positions.

    The cross-product matrix is summed by float32 BLAS (about 1e-6 relative: nothing a layout
    shows) and decomposed in float64; float64 copies of both matrices cost 5x as much. When
    every row is shared in the same order (``_match``'s usual case), no row is copied.
    """
    fit = fit_sample(len(cur_index))
    if prev_index is cur_index and len(cur_index) == len(centred) == len(previous):
        source, target = centred[fit], previous[fit]
    else:
        source, target = centred[cur_index[fit]], previous[prev_index[fit]]
    return nearest_orthogonal((source.T @ target).astype(np.float64))


def _warm_start(
    array: _F32,
    previous: _F32,
    prev_index: npt.NDArray[np.int64],
    cur_index: npt.NDArray[np.int64],
) -> _FloatArray:
    """Previous coordinates for shared rows; new rows start at their nearest shared row's.

    The nearest row is searched among at most 2,000 shared rows (cosine), with a little jitter
    so that new rows never coincide exactly.
    """
    rows = len(array)
    init = np.zeros((rows, previous.shape[1]))
    init[cur_index] = previous[prev_index]
    new = np.setdiff1d(np.arange(rows), cur_index)
    if len(new):
        pick = np.linspace(0, len(cur_index) - 1, min(len(cur_index), 2000)).astype(np.int64)
        anchors = cur_index[pick]
        unit = cosine_geometry(array)
        for start in range(0, len(new), 4096):
            block = new[start : start + 4096]
            nearest = np.argmax(unit[block] @ unit[anchors].T, axis=1)
            init[block] = init[anchors[nearest]]
        spread = float(np.std(previous)) or 1.0
        jitter = np.random.default_rng(0).normal(
            scale=1e-3 * spread, size=(len(new), init.shape[1])
        )
        init[new] += jitter
    return init


def _similarity_onto(coords: _F32, cur_index: npt.NDArray[np.int64], target: _F32) -> _FloatArray:
    """``coords`` turned, uniformly scaled and shifted to best match ``target`` on shared rows."""
    source = coords[cur_index].astype(np.float64)
    goal = target.astype(np.float64)
    source_mean, goal_mean = source.mean(axis=0), goal.mean(axis=0)
    source_c, goal_c = source - source_mean, goal - goal_mean
    rotation = insight.orthogonal_procrustes(source_c, goal_c)
    spread = float(np.sum(source_c**2))
    scale = float(np.sum((source_c @ rotation) * goal_c)) / spread if spread > 0 else 1.0
    moved = ((coords.astype(np.float64) - source_mean) @ rotation) * scale + goal_mean
    return np.asarray(moved, dtype=np.float64)
