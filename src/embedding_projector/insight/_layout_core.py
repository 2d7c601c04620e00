"""The layouts' building blocks: :class:`ProjectorLayout`, PCA and UMAP of one snapshot.

Public through :mod:`embedding_projector.insight.layouts` (see there);
:mod:`.insight._aligned_layout` builds the run-long frame on these.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from ..errors import InvalidEmbeddingError

__all__ = [
    "FIT_ROWS",
    "LAYOUT_KINDS",
    "UMAP_MAX_ROWS",
    "WARM_EPOCHS",
    "BasisStep",
    "LayoutSpec",
    "ProjectorLayout",
    "as_layout_matrix",
    "check_layout_kind",
    "cosine_geometry",
    "fit_sample",
    "follow_basis",
    "layouts_for",
    "pca_layouts",
    "require_umap",
    "top_directions",
    "umap_layout",
]

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
#: How far a turning basis may move the picture, per unit of data change: a step's picture
#: changes by at most ``max(PICTURE_PER_DATA_CHANGE * data change, change with the basis
#: kept)`` (relative Frobenius changes; see :func:`follow_basis`).
PICTURE_PER_DATA_CHANGE = 2.0
#: Fractions of the way to the better basis that :func:`follow_basis` tries, largest first.
_TURN_FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)
#: A turn (radians) smaller than float32 rounding of the fitted directions.
_NEGLIGIBLE_TURN = 1e-4

_FloatArray = npt.NDArray[np.floating[Any]]
_F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ProjectorLayout:
    """Coordinates for every row of one tensor, shown by the page as one saved state.

    Attributes:
        kind: ``"pca"`` or ``"umap"``: the projection tab the page shows them in.
        coordinates: (rows, 2) or (rows, 3) float32, row ``i`` for tensor row ``i``.
        label: the state's name under BOOKMARKS.
        filtered_points: show only these rows when the state is loaded (default: all).
        color_by: the metadata column the state colours by (default: no colour map).

    Raises:
        ValueError: unknown kind, coordinates not finite (rows, 2 | 3), or a filtered point
            that is not a row.

    Example:
        >>> import numpy as np
        >>> ProjectorLayout("pca", np.zeros((4, 2)), "mine").coordinates.dtype
        dtype('float32')
    """

    kind: str
    coordinates: _F32
    label: str
    filtered_points: tuple[int, ...] | None = None
    color_by: str | None = None

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
        if self.filtered_points is not None:
            points = tuple(int(i) for i in self.filtered_points)
            if points and not 0 <= min(points) <= max(points) < len(coords):
                raise InvalidEmbeddingError(
                    f"layout {self.label!r}: filtered_points must be row numbers in "
                    f"[0, {len(coords)}); got {min(points)}..{max(points)}."
                )
            object.__setattr__(self, "filtered_points", points)

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


def as_layout_matrix(matrix: Any) -> _F32:
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


def cosine_geometry(matrix: _F32) -> _F32:
    """Unit rows (all-zero rows stay zero), centred."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms > 0, norms, 1).astype(np.float32)
    return np.asarray(unit - unit.mean(axis=0, dtype=np.float64).astype(np.float32), np.float32)


def fit_sample(rows: int) -> slice | npt.NDArray[np.int64]:
    if rows <= FIT_ROWS:
        return slice(None)
    return np.linspace(0, rows - 1, FIT_ROWS).astype(np.int64)


def top_directions(
    matrix: _FloatArray, count: int, *, gram: _FloatArray | None = None
) -> tuple[_FloatArray, _FloatArray]:
    """Top ``count`` principal directions (dims x count) and each one's variance (sum of squares).

    From the eigendecomposition of the smaller Gram matrix; directions the data does not span
    are zero columns with zero variance. ``gram``: ``matrix.T @ matrix`` if the caller has it
    (used when rows >= dims).
    """
    rows, dim = matrix.shape
    basis = np.zeros((dim, count))
    if rows >= dim:
        if gram is None:
            data = matrix.astype(np.float64, copy=False)
            gram = data.T @ data
        values, vectors = np.linalg.eigh(gram)
        order = np.argsort(values)[::-1][:count]
        basis[:, : len(order)] = vectors[:, order]
    else:
        data = matrix.astype(np.float64, copy=False)
        values, vectors = np.linalg.eigh(data @ data.T)
        order = np.argsort(values)[::-1][:count]
        directions = data.T @ vectors[:, order]
        lengths = np.linalg.norm(directions, axis=0)
        basis[:, : len(order)] = directions / np.where(lengths > 0, lengths, 1.0)
    variances = np.zeros(count)
    variances[: len(order)] = np.clip(values[order], 0.0, None)
    return basis, variances


@dataclass(frozen=True)
class BasisStep:
    """What :func:`follow_basis` chose: the new basis and how far it turned.

    Attributes:
        basis: (dims, k) orthonormal projection basis for this step.
        fraction: how far along the way to the better basis it went (0: kept, 1: all the way).
        data_change: the relative change of the shared rows since the previous step.
        picture_change: the relative change of their projection (the picture) it gives.
    """

    basis: _FloatArray
    fraction: float
    data_change: float
    picture_change: float


def follow_basis(
    basis: _FloatArray,
    better: _FloatArray,
    rows: _FloatArray,
    previous_rows: _FloatArray,
    previous_picture: _FloatArray,
    *,
    limit: float = PICTURE_PER_DATA_CHANGE,
) -> BasisStep:
    """Turn a projection basis toward a better one, only as far as the data moved.

    The one rule by which every run-long frame (:class:`~embedding_projector.insight.layouts.
    AlignedLayout`'s 2-D and 3-D states, its trajectories, and the IMAGES maps of
    :class:`~embedding_projector.maps.EvolutionMap`) changes its basis, so that a picture never
    jumps further than the embedding moved:

    * The basis moves along the shortest path (the Grassmann geodesic, through the principal
      angles) from its plane to the better one, with no spin within the plane, so the axes
      keep their sense and no reflection can appear.
    * It goes the largest of 1, 1/2, 1/4 ... 1/32 of the way for which the picture (the
      shared rows projected, against their previous picture) changes by at most
      ``max(limit * d, c0)``: ``d`` is the relative change of the aligned rows themselves and
      ``c0`` the picture's change with the basis kept; otherwise it stays. A plane that a
      refit would swap in whole is thus reached over several steps, each no further than
      the data moved (relative changes are Frobenius norms of the difference over that of
      the previous value).

    Args:
        basis: (dims, k) orthonormal current basis.
        better: (dims, k) orthonormal basis it should move toward (e.g. the top components).
        rows: (n, dims) this step's aligned rows that the previous step shares.
        previous_rows: (n, dims) those rows at the previous step, in the same frame.
        previous_picture: (n, k) the previous step's projection of those rows (unscaled).
        limit: the picture change allowed per unit of data change.

    Returns:
        A :class:`BasisStep`.

    Example:
        >>> import numpy as np
        >>> rows = np.random.default_rng(0).normal(size=(50, 4))
        >>> kept = np.eye(4)[:, :2]
        >>> step = follow_basis(kept, np.eye(4)[:, 2:], rows, rows, rows @ kept)
        >>> step.fraction  # the data did not move: neither does the picture
        0.0
    """
    data = rows.astype(np.float64, copy=False)
    before = previous_rows.astype(np.float64, copy=False)
    target = previous_picture.astype(np.float64, copy=False)
    size = float(np.linalg.norm(before))
    data_change = float(np.linalg.norm(data - before)) / size if size > 0 else 0.0
    cross = basis.T @ better
    left, cosines, right_t = np.linalg.svd(cross)
    angles = np.arccos(np.clip(cosines, -1.0, 1.0))
    start, goal = basis @ left, better @ right_t.T
    sines = np.sin(angles)
    away = np.zeros_like(goal)
    turning = sines > 1e-9
    away[:, turning] = (goal[:, turning] - start[:, turning] * cosines[turning]) / sines[turning]
    projected = data @ np.hstack([start, away])
    count = basis.shape[1]
    along, across = projected[:, :count], projected[:, count:]
    picture_size = float(np.linalg.norm(target))

    def change(fraction: float) -> float:
        picture = (along * np.cos(fraction * angles) + across * np.sin(fraction * angles)) @ left.T
        moved = float(np.linalg.norm(picture - target))
        return moved / picture_size if picture_size > 0 else moved

    kept = change(0.0)
    allowed = max(limit * data_change, kept)
    for fraction in _TURN_FRACTIONS:
        if fraction * float(np.max(angles, initial=0.0)) < _NEGLIGIBLE_TURN:
            break  # the same plane up to float32 rounding: nothing worth moving
        moved = change(fraction)
        if moved <= allowed:
            path = start * np.cos(fraction * angles) + away * np.sin(fraction * angles)
            return BasisStep(path @ left.T, fraction, data_change, moved)
    return BasisStep(basis, 0.0, data_change, kept)


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
    array = as_layout_matrix(matrix)
    data = cosine_geometry(array)
    basis, _ = top_directions(data[fit_sample(len(data))], 3)
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
    array = as_layout_matrix(matrix)
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
