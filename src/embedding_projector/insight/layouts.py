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
  that turns toward the snapshot's own top components only as far as the data moved (the
  picture changes by at most twice the aligned rows' relative change), with one scale for
  every step, so stepping through the snapshots a converged embedding stays put and a moving
  one moves by what moved, never more. The UMAP variant starts each step from the previous
  step's coordinates.

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

from ._aligned_layout import AlignedLayout
from ._layout_core import (
    LAYOUT_KINDS,
    UMAP_MAX_ROWS,
    LayoutSpec,
    ProjectorLayout,
    check_layout_kind,
    layouts_for,
    pca_layouts,
    require_umap,
    umap_layout,
)

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
