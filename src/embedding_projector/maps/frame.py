"""One step of an aligned evolution map: :class:`MapFrame` (made by
:class:`embedding_projector.maps.EvolutionMap`, drawn by :mod:`embedding_projector.maps.drawing`).

Example:
    >>> import numpy as np
    >>> from embedding_projector.maps import EvolutionMap
    >>> frame = EvolutionMap(render=False).update(np.eye(4), step=3)
    >>> frame.step, frame.coords.shape
    (3, (4, 2))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["MapFrame"]

_FloatArray = npt.NDArray[np.float64]


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
        basis_refit: the 2-D basis was fitted (always at the first step) or turned at this
            step.
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
