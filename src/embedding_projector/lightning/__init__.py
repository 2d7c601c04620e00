"""A Lightning callback that snapshots a model's embeddings into TensorBoard's projector.

Add :class:`EmbeddingProjector` to ``Trainer(callbacks=[...])``. At the start of training (the
random weights, step 0), at the end of every n-th training (or validation) epoch, and at the
end of training (the trained weights, once) it copies each embedding table once to the CPU and
hands it to the shared :class:`~embedding_projector.sink.SnapshotSink`, whose background thread
writes it; the training loop never waits for the disk (unless the disk falls two snapshots
behind).

What it snapshots:

* ``modules="auto"`` (default): every ``nn.Embedding`` / ``nn.EmbeddingBag``, each as its own
  tag named after its module path (``"encoder.tokens"``). Tied tables are written once.
* ``modules=[...]``: module names (``"encoder.tokens"``), glob patterns (``"*.tokens"``) or
  parameter paths (``"decoder.weight"``: the output embedding of a language model).
* ``features=FeatureInputs(inputs, labels, images, layer="hidden")``: a fixed set of inputs passed
  through the model (or up to a named layer) in eval mode without gradients, so the projector
  shows how the learned feature space separates classes; ``images`` become the sprite sheet.

Labels, per table: a list, a numpy array or a tensor (one label per row; 2-D: one column each,
named ``column 1``, ...), a mapping column name -> values, or a callable ``tag -> labels``; or a
mapping tag -> any of these. A mapping whose keys name no table is read as the columns of the
one table a model has (when every value has one label per row); with several tables, nest it:
``labels={"embed": {"word": ..., "count": ...}}``. They are checked against the tables at
``setup``, before training starts.

Where: into the ``TensorBoardLogger``'s run directory when the trainer has one (projector and
scalars in one run), else ``<default_root_dir>/embeddings``; ``logdir=`` overrides both. Under a
``TensorBoardLogger`` writing to a URL (``s3://``, ``memory://``), the snapshots, maps and
insight scalars go to ``<default_root_dir>/embeddings/<name>/version_<n>`` with a warning:
TensorBoard's projector cannot serve remote files. A log dir that cannot be written fails at
``setup``.

Distributed: only global rank 0 copies and writes; other ranks return at once. Sharded
parameters (FSDP, FSDP2/DTensor, DeepSpeed ZeRO-3) are gathered on *all* ranks first, because
those gathers are collectives. Resume: the callback's state (the steps already written) is
saved in checkpoints, and steps already in the run's projector config are never rewritten.

The parts: :mod:`.callback` (hook glue and state), :mod:`embedding_projector.sink.snapshot_policy`
(when, which step, already written; no Lightning), :mod:`.modules` (module lookup),
:mod:`.gather` (sharded gathering), :mod:`.probe` (the feature inputs).

Example:
    >>> import torch, pytorch_lightning as pl
    >>> from embedding_projector.lightning import EmbeddingProjector
    >>> callback = EmbeddingProjector(every_n_epochs=2, labels={"embed": ["a", "b", "c"]})
    >>> trainer = pl.Trainer(callbacks=[callback], max_epochs=4, logger=False)
"""

from __future__ import annotations

from .callback import EmbeddingProjector
from .probe import FeatureInputs

__all__ = ["EmbeddingProjector", "FeatureInputs"]
