"""Embedding Evolution: a TensorBoard dashboard showing an embedding move across steps.

Installed with this package and found by TensorBoard through the ``tensorboard_plugins``
entry point: ``tensorboard --logdir runs`` shows an "Embedding Evolution" tab beside the
PROJECTOR. It reads what the writer wrote (through its read-back) and draws every row of a
tag's steps with one bundled WebGL page (``static/index.js``, built from ``frontend/``).

Test hook, in the dashboard's iframe: ``window.embeddingEvolution.state()`` returns
``{run, tag, step, count}`` and ``window.embeddingEvolution.positions()`` the drawn
positions, flat ``[x0, y0, x1, y1, ...]`` in layout coordinates, once transitions finish.

Example:
    >>> from embedding_projector.dashboard import PLUGIN_NAME
    >>> PLUGIN_NAME
    'embedding_evolution'
"""

from __future__ import annotations

from ._data import BadRequest, EvolutionData
from ._plugin import PLUGIN_NAME, EvolutionPlugin

__all__ = ["PLUGIN_NAME", "BadRequest", "EvolutionData", "EvolutionPlugin"]
