"""Projector layouts computed here and shipped as the page's saved states (bookmarks).

The projector page recomputes PCA for every tensor it opens (on a sample, with free signs and
rotation), runs t-SNE on at most 10,000 and UMAP on at most 5,000 sampled points. A layout
computed here is written beside the tensor as a saved state (see the writer's ``layout=``);
clicking it under BOOKMARKS shows exactly these coordinates for every row.

* :func:`pca_layouts` — the snapshot's own top principal components, 2-D and 3-D.
* :func:`umap_layout` — UMAP (umap-learn, the ``layouts`` extra) of every row, up to the
  page's 100,000.
* :class:`AlignedLayout` — one frame per training run: each snapshot is rotated onto the
  previous one (orthogonal Procrustes on the rows both share, by key), projected on a basis
  fixed for the run (refitted only when it shows less than ``refit_threshold`` of what the
  snapshot's own top components would) with one scale for every step, so stepping through the
  snapshots a converged embedding stays put and a moving one moves by what moved. The UMAP
  variant starts each step from the previous step's coordinates.

Geometry is cosine: rows are scaled to unit length and centred before PCA (as the aligned maps
in :mod:`embedding_projector.maps` do); UMAP uses the cosine metric.

t-SNE is not offered: a saved ``"tsne"`` state makes the page start a new t-SNE run on load
instead of showing the saved coordinates.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> words = rng.normal(size=(200, 16))
    >>> flat, solid = pca_layouts(words)
    >>> flat.kind, flat.coordinates.shape, solid.coordinates.shape
    ('pca', (200, 2), (200, 3))
    >>> aligned = AlignedLayout()
    >>> first = aligned.update(None, words, step=1)
    >>> rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    >>> second = aligned.update(None, words @ rotation, step=2)   # same embedding, rotated
    >>> bool(np.allclose(first[0].coordinates, second[0].coordinates, atol=1e-4))
    True
    >>> second[0].label
    'step 2 · aligned PCA'
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt

from . import insight
from .errors import InvalidEmbeddingError

__all__ = [
    "LAYOUT_KINDS",
    "UMAP_MAX_ROWS",
    "AlignedLayout",
    "LayoutSpec",
    "ProjectorLayout",
    "check_layout_kind",
    "layouts_for",
    "pca_layouts",
    "require_umap",
    "umap_layout",
]

logger = logging.getLogger(__name__)

#: Layouts this package computes and the page shows as written.
LAYOUT_KINDS = ("pca", "umap")
#: The page never shows more rows than this; UMAP is refused above it.
UMAP_MAX_ROWS = 100_000
#: Rows used to fit a rotation or a basis (evenly spread over the snapshot): a 300-D rotation
#: is well determined by far fewer; every row is still rotated and projected.
FIT_ROWS = 20_000
#: Epochs of a UMAP step started from the previous step's layout (a cold fit uses
#: umap-learn's default, 200 above 10,000 rows and 500 below).
WARM_EPOCHS = 50

_FloatArray = npt.NDArray[np.floating[Any]]
_F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ProjectorLayout:
    """Coordinates for every row of one tensor, shown by the page as one saved state.

    Attributes:
        kind: ``"pca"`` or ``"umap"``: the projection tab the page shows them in.
        coordinates: (rows, 2) or (rows, 3) float32, row ``i`` for tensor row ``i``.
        label: the state's name under BOOKMARKS.

    Raises:
        ValueError: unknown kind, or coordinates not finite (rows, 2 | 3).

    Example:
        >>> import numpy as np
        >>> ProjectorLayout("pca", np.zeros((4, 2)), "mine").coordinates.dtype
        dtype('float32')
    """

    kind: str
    coordinates: _F32
    label: str

    def __post_init__(self) -> None:
        check_layout_kind(self.kind)
        coords = np.asarray(self.coordinates, dtype=np.float32)
        if coords.ndim != 2 or coords.shape[1] not in (2, 3):
            raise InvalidEmbeddingError(
                f"layout {self.label!r}: coordinates must be (rows, 2) or (rows, 3); "
                f"got shape {coords.shape}."
            )
        if not np.isfinite(coords).all():
            raise InvalidEmbeddingError(
                f"layout {self.label!r}: coordinates must be finite; found NaN or Inf."
            )
        coords.flags.writeable = False
        object.__setattr__(self, "coordinates", coords)
        object.__setattr__(self, "label", str(self.label))

    @property
    def rows(self) -> int:
        """Number of rows (tensor rows) the layout places."""
        return int(self.coordinates.shape[0])


#: What the writer's ``layout=`` takes: a name computed there, or layouts computed by the caller.
LayoutSpec = Union[str, ProjectorLayout, Sequence[ProjectorLayout]]  # noqa: UP007 (runtime alias, py3.9-safe)


def check_layout_kind(kind: Any) -> str:
    """Return ``kind`` if it names a layout this package computes.

    Anything else raises an :class:`~.errors.InvalidEmbeddingError` (a ``ValueError``) that
    lists the choices, and for t-SNE says why it is not one.

    Example:
        >>> check_layout_kind("umap")
        'umap'
    """
    if isinstance(kind, str) and kind in LAYOUT_KINDS:
        return kind
    why = ""
    if isinstance(kind, str) and kind.lower().replace("-", "") == "tsne":
        why = (
            " t-SNE is not offered: a saved t-SNE state makes the projector page start a new "
            "t-SNE run on load instead of showing saved coordinates (the page's own t-SNE tab "
            "runs it on up to 10,000 points)."
        )
    raise InvalidEmbeddingError(
        f"layout must be one of {', '.join(map(repr, LAYOUT_KINDS))}; got {kind!r}.{why}"
    )


def require_umap() -> Any:
    """The ``umap`` module, or an ``ImportError`` saying which extra installs it."""
    try:
        with warnings.catch_warnings():
            # umap-learn warns at import that ParametricUMAP needs TensorFlow; we never use it.
            warnings.filterwarnings("ignore", message=".*ParametricUMAP", category=ImportWarning)
            import umap
    except ImportError as error:
        raise ImportError(
            "layout='umap' needs umap-learn: pip install 'embedding-projector[layouts]' "
            f"(or pip install umap-learn); importing it failed: {error}"
        ) from error
    return umap


# -- the maths ---------------------------------------------------------------------------------


def _matrix(matrix: Any) -> _F32:
    array = np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidEmbeddingError(
            f"a layout needs a 2-D matrix with at least one row; got shape {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidEmbeddingError(f"a layout needs a real-valued matrix; got {array.dtype}.")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise InvalidEmbeddingError("the matrix has NaN or Inf values; a layout needs finite ones.")
    return array


def _cosine_geometry(matrix: _F32) -> _F32:
    """Unit rows (all-zero rows stay zero), centred."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms > 0, norms, 1).astype(np.float32)
    return np.asarray(unit - unit.mean(axis=0, dtype=np.float64).astype(np.float32), np.float32)


def _fit_sample(rows: int) -> slice | npt.NDArray[np.int64]:
    if rows <= FIT_ROWS:
        return slice(None)
    return np.linspace(0, rows - 1, FIT_ROWS).astype(np.int64)


def _top_directions(matrix: _FloatArray, count: int) -> tuple[_FloatArray, _FloatArray]:
    """Top ``count`` principal directions (dims x count) and each one's variance (sum of squares).

    From the eigendecomposition of the smaller Gram matrix; directions the data does not span
    are zero columns with zero variance.
    """
    rows, dim = matrix.shape
    data = matrix.astype(np.float64, copy=False)
    basis = np.zeros((dim, count))
    if rows >= dim:
        values, vectors = np.linalg.eigh(data.T @ data)
        order = np.argsort(values)[::-1][:count]
        basis[:, : len(order)] = vectors[:, order]
    else:
        values, vectors = np.linalg.eigh(data @ data.T)
        order = np.argsort(values)[::-1][:count]
        directions = data.T @ vectors[:, order]
        lengths = np.linalg.norm(directions, axis=0)
        basis[:, : len(order)] = directions / np.where(lengths > 0, lengths, 1.0)
    variances = np.zeros(count)
    variances[: len(order)] = np.clip(values[order], 0.0, None)
    return basis, variances


def _fix_signs(coords: _FloatArray) -> _FloatArray:
    """Make each axis's largest absolute coordinate positive (PCA's signs are arbitrary)."""
    if len(coords) == 0:
        return coords
    extreme = coords[np.argmax(np.abs(coords), axis=0), np.arange(coords.shape[1])]
    return coords * np.where(extreme < 0, -1.0, 1.0)


def pca_layouts(matrix: Any, *, label: str | None = None) -> list[ProjectorLayout]:
    """2-D and 3-D PCA of one snapshot, every row (cosine geometry: unit rows, centred).

    Args:
        matrix: (rows, dims) embedding.
        label: state label prefix (default ``"PCA of all <rows> rows"``).

    Returns:
        ``[2-D layout, 3-D layout]``; axes scaled so the 2-D picture has unit RMS radius.

    Raises:
        InvalidEmbeddingError: not a finite 2-D matrix with at least one row.

    Example:
        >>> import numpy as np
        >>> [layout.label for layout in pca_layouts(np.eye(4), label="toy")]
        ['toy · 2-D', 'toy · 3-D']
    """
    array = _matrix(matrix)
    data = _cosine_geometry(array)
    basis, _ = _top_directions(data[_fit_sample(len(data))], 3)
    coords = _fix_signs(data @ basis.astype(np.float32))
    radius = float(np.sqrt(np.mean(np.sum(coords[:, :2].astype(np.float64) ** 2, axis=1))))
    coords = coords / (radius if radius > 0 else 1.0)
    prefix = label if label is not None else f"PCA of all {len(array)} rows"
    return [
        ProjectorLayout("pca", coords[:, :2], f"{prefix} · 2-D"),
        ProjectorLayout("pca", coords, f"{prefix} · 3-D"),
    ]


def umap_layout(
    matrix: Any,
    *,
    dims: int = 2,
    init: Any = None,
    progress: bool = False,
    seed: int | None = None,
    n_epochs: int | None = None,
    label: str | None = None,
) -> ProjectorLayout:
    """UMAP (umap-learn, cosine metric, its default parameters) of every row.

    Args:
        matrix: (rows, dims) embedding, at most 100,000 rows (all the page shows).
        dims: 2 or 3 output dimensions.
        init: (rows, dims) starting coordinates (e.g. the previous step's layout); default
            umap-learn's spectral initialisation.
        progress: show a tqdm bar over the optimisation epochs.
        seed: random seed: reproducible, but umap-learn then runs on one thread.
        n_epochs: optimisation epochs (default umap-learn's choice).
        label: the state's label (default says it was computed here on all rows).

    Returns:
        The layout.

    Raises:
        ImportError: umap-learn is not installed (the ``layouts`` extra).
        InvalidEmbeddingError: bad matrix, more than 100,000 rows, fewer than 3, or ``init`` of
            the wrong shape.

    Example:
        >>> import numpy as np
        >>> layout = umap_layout(np.random.default_rng(0).normal(size=(60, 5)))  # doctest: +SKIP
        >>> layout.kind, layout.coordinates.shape  # doctest: +SKIP
        ('umap', (60, 2))
    """
    umap = require_umap()
    array = _matrix(matrix)
    rows = len(array)
    if dims not in (2, 3):
        raise InvalidEmbeddingError(f"dims must be 2 or 3; got {dims!r}.")
    if rows > UMAP_MAX_ROWS:
        raise InvalidEmbeddingError(
            f"UMAP of {rows} rows: the projector shows at most {UMAP_MAX_ROWS}; pass the "
            "rows it will show (the first ones)."
        )
    if rows < 3:
        raise InvalidEmbeddingError(f"UMAP needs at least 3 rows; got {rows}.")
    start: Any = "spectral" if rows > 16 else "random"
    if init is not None:
        start = np.asarray(init, dtype=np.float64)
        if start.shape != (rows, dims) or not np.isfinite(start).all():
            raise InvalidEmbeddingError(
                f"init must be finite coordinates of shape ({rows}, {dims}); got {start.shape}."
            )
    model = umap.UMAP(
        n_components=dims,
        n_neighbors=min(15, rows - 1),
        metric="cosine",
        init=start,
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=-1 if seed is None else 1,  # umap-learn warns when a seed overrides n_jobs
        tqdm_kwds={"disable": not progress, "desc": f"UMAP of {rows} rows", "unit": "epoch"},
    )
    coords = np.asarray(model.fit_transform(array), dtype=np.float32)
    text = (
        label
        if label is not None
        else (f"UMAP of all {rows} rows (computed here; the page alone samples 5,000)")
    )
    return ProjectorLayout("umap", coords, text)


def layouts_for(
    layout: str | ProjectorLayout | Sequence[ProjectorLayout],
    matrix: Any,
    *,
    progress: bool = False,
    max_rows: int = UMAP_MAX_ROWS,
) -> list[ProjectorLayout]:
    """The layouts a ``layout=`` argument asks for, checked against ``matrix``'s row count.

    Args:
        layout: ``"pca"`` / ``"umap"`` (computed here from ``matrix``), one
            :class:`ProjectorLayout` or a sequence of them.
        matrix: the (rows, dims) tensor the layouts are for.
        progress: show UMAP's progress bar.
        max_rows: the rows the page loads (its first 100,000): names are computed on these
            rows only, and given layouts may place either all rows or just these.

    Returns:
        At least one layout, each with one coordinate row per (loaded) matrix row.

    Raises:
        ValueError: unknown or t-SNE layout name; a layout with the wrong row count; an empty
            sequence. ImportError: ``"umap"`` without umap-learn.
    """
    rows = int(np.shape(matrix)[0])
    shown = min(rows, max_rows)
    if isinstance(layout, str):
        kind = check_layout_kind(layout)
        if kind == "umap":
            require_umap()
            return [umap_layout(matrix[:shown], progress=progress)]
        return pca_layouts(matrix[:shown])
    found = [layout] if isinstance(layout, ProjectorLayout) else list(layout)
    if not found:
        raise InvalidEmbeddingError("layout is an empty sequence; pass None for no saved states.")
    for item in found:
        if not isinstance(item, ProjectorLayout):
            raise InvalidEmbeddingError(
                f"layout must be 'pca', 'umap', a ProjectorLayout or a sequence of them; "
                f"got an item of type {type(item).__name__}."
            )
        if item.rows not in (rows, shown):
            raise InvalidEmbeddingError(
                f"layout {item.label!r} has {item.rows} rows of coordinates but the tensor has "
                f"{rows} rows; they must match one-to-one."
            )
    return found


# -- one frame per run -------------------------------------------------------------------------


class AlignedLayout:
    """Layouts of successive snapshots of one embedding, all in one frame for the run.

    Stateful: call :meth:`update` once per snapshot, in step order, from one thread (the
    callbacks call it from their writer thread). One object per tag.

    * **Alignment.** Rows are matched to the previous snapshot's by key; the snapshot (unit
      rows, centred) is rotated onto the previous aligned snapshot by orthogonal Procrustes
      (:func:`insight.orthogonal_procrustes`) fitted on the shared rows.
    * **Basis (PCA).** Fixed for the run: fitted at the first step, refitted only when it shows
      less than ``refit_threshold`` of the variance the snapshot's own top components would
      (the rule of :class:`~embedding_projector.maps.EvolutionMap`); a refitted basis is
      turned to match the old picture as well as a rotation can. The 2-D and 3-D states have
      a basis each.
    * **Scale.** One for every step: the first step's 2-D picture has unit RMS radius.
    * **UMAP** (``kind="umap"``): the first step is a cold fit; later steps start from the
      previous step's coordinates (new rows from their nearest shared row's), run
      ``warm_epochs`` epochs, and are then turned, scaled and shifted onto the previous
      coordinates of the shared rows (umap-learn rescales its start to a 10 x 10 box).

    Args:
        kind: ``"pca"`` (2-D and 3-D states) or ``"umap"`` (one state of ``umap_dims``).
        refit_threshold: see Basis; 0 never refits, 1 refits whenever a better basis exists.
        umap_dims: 2 or 3.
        warm_epochs: epochs of a UMAP step started from the previous layout.
        seed: UMAP's random seed (reproducible but single-threaded); default none.

    Attributes:
        basis_steps: steps at which the 2-D basis was fitted.

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
        refit_threshold: float = 0.6,
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
        array = _matrix(matrix)
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
        centred = _cosine_geometry(array)
        rotation = np.eye(dim)
        if self._aligned is not None and len(cur_index) >= 2:
            fit = _fit_sample(len(cur_index))
            rotation = insight.orthogonal_procrustes(
                centred[cur_index[fit]], self._aligned[prev_index[fit]]
            )
        aligned = centred @ rotation.astype(np.float32)
        coords = self._project(aligned, int(step))
        self._keys, self._dim, self._aligned, self._rotation = row_keys, dim, aligned, rotation
        self._coords = coords
        return [
            ProjectorLayout("pca", coords[:, :2], f"step {step} · aligned PCA"),
            ProjectorLayout("pca", coords[:, 2:], f"step {step} · aligned PCA 3-D"),
        ]

    def _row_keys(self, keys: Sequence[Any] | None, rows: int) -> list[str]:
        if keys is None:
            return [str(i) for i in range(rows)]
        found = [str(key) for key in keys]
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

    def _project(self, aligned: _F32, step: int) -> _F32:
        """(rows, 5) float32: the 2-D coordinates, then the 3-D ones, in the run's scale."""
        sample = aligned[_fit_sample(len(aligned))]
        best, variances = _top_directions(sample, 3)
        refit = False
        for count in (2, 3):
            current = self._bases.get(count)
            candidate = best[:, :count]
            if current is None:
                self._bases[count] = candidate
                refit = True
                continue
            shown = float(np.sum((sample @ current) ** 2))
            if shown < self.refit_threshold * float(np.sum(variances[:count])):
                turn = insight.orthogonal_procrustes(sample @ candidate, sample @ current)
                self._bases[count] = candidate @ turn
                refit = True
        if refit:
            self.basis_steps.append(step)
        flat = aligned @ self._bases[2].astype(np.float32)
        solid = aligned @ self._bases[3].astype(np.float32)
        if self._scale is None:
            radius = float(np.sqrt(np.mean(np.sum(flat.astype(np.float64) ** 2, axis=1))))
            self._scale = radius if radius > 0 else 1.0
        return np.asarray(np.hstack([flat, solid]) / np.float32(self._scale), dtype=np.float32)

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
        self._keys, self._dim = keys, array.shape[1]
        self._coords = np.asarray(coords, dtype=np.float32)
        return ProjectorLayout("umap", self._coords, label)


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
        unit = _cosine_geometry(array)
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
