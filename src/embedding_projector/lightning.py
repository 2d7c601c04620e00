"""A Lightning callback that snapshots a model's embeddings into TensorBoard's projector.

Add :class:`EmbeddingProjector` to ``Trainer(callbacks=[...])``. At the end of every n-th
training (or validation) epoch it copies each embedding table once to the CPU and hands it to
a background thread that writes it with :class:`~embedding_projector.ProjectorWriter`; the
training loop never waits for the disk (unless the disk falls two snapshots behind).

What it snapshots:

* ``modules="auto"`` (default): every ``nn.Embedding`` / ``nn.EmbeddingBag``, each as its own
  tag named after its module path (``"encoder.tokens"``). Tied tables are written once.
* ``modules=[...]``: module names (``"encoder.tokens"``), glob patterns (``"*.tokens"``) or
  parameter paths (``"decoder.weight"``: the output embedding of a language model).
* ``features=FeatureProbe(inputs, labels, images, layer="hidden")``: a fixed probe set passed
  through the model (or up to a named layer) in eval mode without gradients, so the projector
  shows how the learned feature space separates classes; ``images`` become the sprite sheet.

Where: into the ``TensorBoardLogger``'s run directory when the trainer has one (projector and
scalars in one run), else ``<default_root_dir>/embeddings``; ``logdir=`` overrides both.

Distributed: only global rank 0 copies and writes; other ranks return at once. Sharded
parameters (FSDP, FSDP2/DTensor, DeepSpeed ZeRO-3) are gathered on *all* ranks first, because
those gathers are collectives. Resume: the callback's state (the steps already written) is
saved in checkpoints, and steps already in the run's projector config are never rewritten.

Example:
    >>> import torch, pytorch_lightning as pl
    >>> from embedding_projector.lightning import EmbeddingProjector
    >>> callback = EmbeddingProjector(every_n_epochs=2, labels={"embed": ["a", "b", "c"]})
    >>> trainer = pl.Trainer(callbacks=[callback], max_epochs=4, logger=False)
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from typing_extensions import override

from .background import BackgroundWriter, single_threaded_blas
from .errors import InvalidEmbeddingError
from .maps import EvolutionMap
from .sink import log_map
from .writer import MAX_PROJECTOR_ROWS, PreparedMetadata, ProjectorWriter, prepare_metadata

try:
    import torch
    from torch import nn
except ImportError as _error:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "embedding_projector.lightning needs PyTorch and Lightning: "
        "pip install 'embedding-projector[lightning]'"
    ) from _error

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from pytorch_lightning.utilities import rank_zero_warn
else:  # pragma: no branch
    try:
        import pytorch_lightning as pl
        from pytorch_lightning.utilities import rank_zero_warn
    except ImportError:  # pragma: no cover - only the unified `lightning` package installed
        try:
            import lightning.pytorch as pl
            from lightning.pytorch.utilities import rank_zero_warn
        except ImportError as _error:
            raise ImportError(
                "embedding_projector.lightning needs Lightning: "
                "pip install 'embedding-projector[lightning]'"
            ) from _error

__all__ = ["EmbeddingProjector", "FeatureProbe"]

logger = logging.getLogger(__name__)

Hook = Literal["train_epoch_end", "validation_epoch_end"]
StepMode = Literal["global_step", "epoch"]
LabelSpec = Any  # a sequence, rows of columns, a mapping column -> values, or a callable
Labels = Sequence[Any] | Mapping[str, Any] | Callable[[str], Any] | None

#: Module-path components added by wrappers (FSDP, activation checkpointing, torch.compile).
_WRAPPER_COMPONENTS = frozenset(
    {"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod", "_forward_module"}
)
_CANDIDATES_IN_MESSAGE = 20
#: Modules ProjectorWriter imports on first use (see _warm_up_writer_imports).
_WRITER_LAZY_IMPORTS = (
    "filelock",
    "google.protobuf.text_format",
    "tensorboard.plugins.projector.projector_config_pb2",
    "tensorboardX.event_file_writer",
    "PIL.Image",
)


# --------------------------------------------------------------------------- public helpers


@dataclass(frozen=True)
class FeatureProbe:
    """A fixed set of inputs whose features are snapshot at every epoch.

    Args:
        inputs: what the model is called with: a tensor (``model(x)``), a tuple/list
            (``model(*x)``) or a dict (``model(**x)``); every tensor's first axis is the row.
        labels: one label per row (a list), rows of several columns, or a mapping column
            name -> values.
        images: (N, C, H, W) or (N, H, W) images for the sprite sheet (floats in [0, 1] or
            uint8).
        layer: module name whose output is the feature (read with a forward hook); ``None``
            uses the model's output.
        tag: the projector tag; default ``"features"`` or ``"features (<layer>)"``.
        batch_size: rows per forward pass.
        metadata_header: column names when ``labels`` are rows of several columns.

    Example:
        >>> import torch
        >>> probe = FeatureProbe(torch.rand(10, 4), labels=list("0123456789"), layer="hidden")
        >>> probe.resolved_tag
        'features (hidden)'
    """

    inputs: Any
    labels: Any = None
    images: Any = None
    layer: str | None = None
    tag: str | None = None
    batch_size: int = 256
    metadata_header: Sequence[str] | None = None

    def __post_init__(self) -> None:
        rows = _batch_rows(self.inputs)
        if rows is None:
            raise TypeError(
                "FeatureProbe.inputs must be a tensor, or a tuple/list/dict of tensors with the "
                f"same first dimension; got {type(self.inputs).__name__}."
            )
        if rows < 2:
            raise ValueError(
                f"FeatureProbe.inputs has {rows} row(s); the projector needs at least 2."
            )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise TypeError(f"batch_size must be an int; got {self.batch_size!r}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}.")
        if self.layer is not None and (not isinstance(self.layer, str) or not self.layer):
            raise ValueError(f"layer must be a module name or None; got {self.layer!r}.")
        if self.tag is not None and (not isinstance(self.tag, str) or not self.tag):
            raise ValueError(f"tag must be a non-empty string or None; got {self.tag!r}.")
        if self.labels is not None:
            count = _label_count(self.labels)
            if count is not None and count != rows:
                raise ValueError(
                    f"FeatureProbe has {rows} input rows but {count} labels; they must match "
                    "one-to-one."
                )
        if self.images is not None:
            count = len(self.images)
            if count != rows:
                raise ValueError(
                    f"FeatureProbe has {rows} input rows but {count} images; they must match "
                    "one-to-one."
                )

    @property
    def rows(self) -> int:
        """Number of probe rows."""
        rows = _batch_rows(self.inputs)
        return 0 if rows is None else rows

    @property
    def resolved_tag(self) -> str:
        """The tag the projector shows for these features."""
        if self.tag:
            return self.tag
        return f"features ({self.layer})" if self.layer else "features"


# --------------------------------------------------------------------------- the callback


@dataclass
class _Table:
    """One embedding table: looked up through its module at every snapshot.

    The parameter object itself is not kept: FSDP swaps a module's parameters for views of a
    gathered flat parameter only inside ``summon_full_params``.
    """

    tag: str
    module: nn.Module
    attribute: str


@dataclass
class _Item:
    """One matrix handed to the background thread."""

    tag: str
    matrix: torch.Tensor
    labels: Any
    metadata_header: Sequence[str] | None
    images: Any = None
    #: ``matrix`` is a :class:`_CopyBuffers` buffer, handed back once written.
    pooled: bool = False


class _CopyBuffers:
    """Reusable CPU buffers for the training thread's one copy of each table.

    Copying into a fresh tensor costs about five times the copy itself (a 50 MB allocation is
    page-faulted in, then unmapped again), and that time is spent on the training thread. So
    each tag keeps the buffer of its last written snapshot for the next one. A buffer is
    reused only after the background thread handed it back, so a snapshot still queued is
    never overwritten; at most one idle buffer per tag is kept, and :meth:`clear` drops them.
    """

    def __init__(self) -> None:
        self._idle: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def copy(self, tag: str, tensor: torch.Tensor, rows: int | None) -> torch.Tensor:
        view = tensor.detach()
        if rows is not None:
            view = view[:rows]
        with self._lock:
            buffer = self._idle.pop(tag, None)
        if buffer is None or buffer.shape != view.shape:
            buffer = torch.empty(view.shape, dtype=torch.float32, device="cpu")
        buffer.copy_(view)
        return buffer

    def give_back(self, tag: str, buffer: torch.Tensor) -> None:
        with self._lock:
            self._idle[tag] = buffer

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()


@dataclass
class _Policy:
    """When to snapshot and under which step number (no Lightning objects in here)."""

    every_n_epochs: int
    step_mode: StepMode
    written: dict[str, set[int]] = field(default_factory=dict)

    def due(self, epoch: int) -> bool:
        return (epoch + 1) % self.every_n_epochs == 0

    def step(self, epoch: int, global_step: int) -> tuple[int, str]:
        if self.step_mode == "epoch":
            return epoch, f"step {global_step}"
        return global_step, f"epoch {epoch}"

    def is_written(self, tag: str, step: int) -> bool:
        return step in self.written.get(tag, ())

    def mark(self, tag: str, step: int) -> None:
        self.written.setdefault(tag, set()).add(step)


class EmbeddingProjector(pl.Callback):
    """Snapshot embedding tables (and probe features) into TensorBoard's projector.

    Args:
        modules: ``"auto"`` finds every ``nn.Embedding``/``nn.EmbeddingBag``; or a list of
            module names, glob patterns (``fnmatch``) or parameter paths (``"decoder.weight"``);
            ``None`` or ``[]`` for features only. Each table's tag is its module path (or
            parameter path).
        every_n_epochs: snapshot after every n-th epoch (epochs n-1, 2n-1, ... 0-based).
        on: ``"train_epoch_end"`` or ``"validation_epoch_end"``.
        step: the projector step: ``"global_step"`` (lines up with the scalar charts) or
            ``"epoch"``. Tensor names show the other one too.
        labels: for every table: a list (one label per row), rows of several columns, a
            mapping column name -> values, or a callable ``tag -> labels``; or a mapping
            tag -> any of these. Tables without labels get their row indices.
        metadata_header: column names for labels given as rows of several columns.
        max_rows: rows written per table (the first ones); the projector loads at most
            100,000. ``None`` writes all.
        sprites: images for the rows of every table ((N, C, H, W) or (N, H, W); floats in
            [0, 1] or uint8), ``"glyphs"`` (each row's label drawn as its image: character
            embeddings), or a mapping tag -> either: they become the sprite sheet.
        features: a :class:`FeatureProbe` (or a tuple ``(inputs, labels[, images])``).
        logdir: write here instead of the logger's run directory.
        maps: log an aligned 2-D map of every table and of the features at each snapshot
            (IMAGES tab ``<tag>/map``, drawn with Pillow). Features are
            coloured by their label column (``color_column``).
        stability: log ``<tag>/drift``, ``<tag>/neighbor_overlap_at_<k>`` and, for features
            with labels, ``<tag>/separation`` (SCALARS tab).
        map_rows: rows used by the maps and the stability scalars, per tag (tables: the
            first ones; features: a fixed random sample). Cost grows with its square.
        map_size: (width, height) of the map images in pixels.
        map_budget: the largest share of training time the maps and stability scalars may
            take (default 2 %). A table's map is skipped at a snapshot (and drawn at a later
            one, drift then counting from the last map) while the time its last map took is
            more than this share of the time since then: with epochs of a few seconds and
            every core training, maps are then drawn every few epochs; with longer epochs,
            at every one. ``None``: at every snapshot, whatever it costs.
        color_column: the label column that colours the features map (a header name or a
            column number; default: the first column).
        max_pending: snapshots that may wait for the background writer before training waits.
        synchronous: write in the training thread (debugging, benchmarks).

    Raises:
        ValueError: an argument has an invalid value (the message says which and why).
        TypeError: an argument has the wrong type.

    Example:
        >>> import pytorch_lightning as pl
        >>> callback = EmbeddingProjector(modules=["encoder.tokens", "decoder.weight"])
        >>> trainer = pl.Trainer(callbacks=[callback], max_epochs=1, logger=False)
    """

    def __init__(
        self,
        *,
        modules: str | Sequence[str] | None = "auto",
        every_n_epochs: int = 1,
        on: Hook = "train_epoch_end",
        step: StepMode = "global_step",
        labels: Labels = None,
        metadata_header: Sequence[str] | None = None,
        max_rows: int | None = MAX_PROJECTOR_ROWS,
        sprites: Any = None,
        features: FeatureProbe | tuple[Any, ...] | None = None,
        logdir: str | os.PathLike[str] | None = None,
        maps: bool = True,
        stability: bool = True,
        map_rows: int = 500,
        map_size: tuple[int, int] = (640, 640),
        map_budget: float | None = 0.02,
        color_column: str | int = 0,
        max_pending: int = 2,
        synchronous: bool = False,
    ) -> None:
        super().__init__()
        self.modules = _validate_modules(modules)
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int):
            raise TypeError(f"every_n_epochs must be an int; got {every_n_epochs!r}.")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1; got {every_n_epochs}.")
        if on not in get_args(Hook):
            raise ValueError(
                f"on must be one of {', '.join(map(repr, get_args(Hook)))}; got {on!r}."
            )
        if step not in get_args(StepMode):
            raise ValueError(
                f"step must be one of {', '.join(map(repr, get_args(StepMode)))}; got {step!r}."
            )
        if max_rows is not None:
            if isinstance(max_rows, bool) or not isinstance(max_rows, int):
                raise TypeError(f"max_rows must be an int or None; got {max_rows!r}.")
            if max_rows < 2:
                raise ValueError(
                    f"max_rows must be >= 2 (the projector needs 2 rows); got {max_rows}."
                )
        if isinstance(labels, (str, bytes)) or (
            labels is not None and not (callable(labels) or isinstance(labels, (Sequence, Mapping)))
        ):
            raise TypeError(
                "labels must be a list, a mapping tag -> labels, or a callable tag -> labels; "
                f"got {type(labels).__name__}."
            )
        if isinstance(features, tuple):
            if not 2 <= len(features) <= 3:
                raise ValueError(
                    "features as a tuple must be (inputs, labels) or (inputs, labels, images); "
                    f"got {len(features)} items. Use FeatureProbe(...) for more options."
                )
            features = FeatureProbe(*features)
        if features is not None and not isinstance(features, FeatureProbe):
            raise TypeError(
                f"features must be a FeatureProbe or None; got {type(features).__name__}."
            )
        if self.modules == () and features is None:
            raise ValueError(
                "Nothing to snapshot: modules is empty and no features were given. Use "
                'modules="auto", name the tables, or pass features=FeatureProbe(...).'
            )
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1; got {max_pending!r}.")
        self.every_n_epochs = every_n_epochs
        self.on: Hook = on
        self.step: StepMode = step
        self.labels = labels
        self.metadata_header = list(metadata_header) if metadata_header is not None else None
        self.max_rows = max_rows
        self.features = features
        self.sprites = sprites
        self.logdir = Path(os.fspath(logdir)).expanduser() if logdir is not None else None
        self.max_pending = max_pending
        self.synchronous = synchronous
        if isinstance(map_rows, bool) or not isinstance(map_rows, int) or map_rows < 2:
            raise ValueError(f"map_rows must be an int >= 2; got {map_rows!r}.")
        self.maps = maps
        self.stability = stability
        self.map_rows = map_rows
        self.map_size = (int(map_size[0]), int(map_size[1]))
        if map_budget is not None and (
            isinstance(map_budget, bool)
            or not isinstance(map_budget, (int, float))
            or not 0 < map_budget <= 1
        ):
            raise ValueError(
                f"map_budget must be a fraction in (0, 1] or None; got {map_budget!r}."
            )
        self.map_budget = map_budget
        #: Per tag: when its last map was started and how long it took (background thread).
        self._map_timing: dict[str, tuple[float, float]] = {}
        self.color_column = color_column
        #: Per tag: the aligned map state (background thread only).
        self._maps: dict[str, EvolutionMap] = {}
        #: Per tag: the last labels and their encoded form (background thread only).
        self._prepared: dict[str, tuple[Any, Any, PreparedMetadata]] = {}
        #: A tensorboardX writer of our own when the trainer has no TensorBoardLogger.
        self._own_summary: Any = None
        self._policy = _Policy(every_n_epochs, step)
        self._tables: list[_Table] = []
        self._deferred = False
        self._resolved_logdir: Path | None = None
        self._background: BackgroundWriter | None = None
        self._buffers = _CopyBuffers()
        self._messages: list[str] = []
        self._messages_lock = threading.Lock()
        #: Seconds the training thread spent in each snapshot (gather + copy + hand-off).
        self.blocking_seconds: list[float] = []
        #: Seconds the background thread spent writing each snapshot.
        self.write_seconds: list[float] = []

    # -- Lightning protocol -------------------------------------------------------------------

    @property
    @override
    def state_key(self) -> str:
        modules = self.modules if isinstance(self.modules, str) else list(self.modules)
        feature_tag = self.features.resolved_tag if self.features is not None else None
        return self._generate_state_key(
            modules=modules, on=self.on, step=self.step, features=feature_tag
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "written": {tag: sorted(steps) for tag, steps in self._policy.written.items()},
            "logdir": str(self._resolved_logdir) if self._resolved_logdir else None,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        written = state_dict.get("written", {})
        for tag, steps in written.items():
            for step in steps:
                self._policy.mark(str(tag), int(step))

    def __getstate__(self) -> dict[str, Any]:
        # Threads, locks and module references do not pickle; a copy starts fresh.
        state = self.__dict__.copy()
        state["_background"] = None
        state["_messages_lock"] = None
        state["_tables"] = []
        state["_maps"] = {}
        state["_prepared"] = {}
        state["_map_timing"] = {}
        state["_own_summary"] = None
        state["_buffers"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._messages_lock = threading.Lock()
        self._buffers = _CopyBuffers()

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # Validate names now when the model already has its layers; models that build them
        # in configure_model are checked again at on_fit_start.
        builds_later = _overrides(pl_module, "configure_model")
        try:
            self._tables = self._resolve_tables(pl_module)
        except ValueError:
            if not builds_later:
                raise
            self._tables = []
        else:
            self._check_labels_against_tables()
        self._deferred = builds_later and not self._tables
        if self.on == "validation_epoch_end" and (
            not _overrides(pl_module, "validation_step") or trainer.limit_val_batches == 0
        ):
            rank_zero_warn(
                'EmbeddingProjector(on="validation_epoch_end") will never snapshot: this '
                "trainer runs no validation. Add a validation_step and val_dataloaders, or use "
                'on="train_epoch_end".',
                category=UserWarning,
            )
        if trainer.is_global_zero:
            self._resolved_logdir = self._resolve_logdir(trainer)
            _warm_up_writer_imports(maps=self.maps)

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Models that build their layers in configure_model: resolve now, after it ran (the
        # strategy may have wrapped and flattened them already, so shapes are not checked).
        if self._deferred:
            self._tables = self._resolve_tables(pl_module, check_shapes=False)
            self._deferred = False
        if self.features is not None and self.features.layer is not None:
            _find_module(pl_module, self.features.layer)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.on == "train_epoch_end":
            self._maybe_snapshot(trainer, pl_module)

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.on == "validation_epoch_end":
            self._maybe_snapshot(trainer, pl_module)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._flush()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._background is not None:
            self._background.close()
            self._background = None
        if self._own_summary is not None:
            self._own_summary.close()
            self._own_summary = None
        self._buffers.clear()
        self._surface_messages()

    # -- resolution ---------------------------------------------------------------------------

    def _resolve_tables(self, pl_module: nn.Module, *, check_shapes: bool = True) -> list[_Table]:
        modules = _clean_named_modules(pl_module)
        tables: list[_Table] = []
        seen: dict[int, str] = {}

        def add(tag: str, module: nn.Module, attribute: str) -> None:
            param = getattr(module, attribute, None)
            key = id(param)
            if key in seen:
                logger.info("%r is the same tensor as %r (tied); snapshot once", tag, seen[key])
                return
            seen[key] = tag
            tables.append(_Table(tag, module, attribute))

        if self.modules == "auto":
            for name, module in modules.items():
                if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                    add(name or type(module).__name__, module, "weight")
            if not tables and self.features is None:
                raise ValueError(
                    f"{type(pl_module).__name__} has no nn.Embedding or nn.EmbeddingBag; name "
                    "the tables to snapshot with modules=[...] (2-D parameters: "
                    f"{_candidate_text(_two_d_parameters(modules))})."
                )
            return tables
        for request in self.modules:
            matches = _match(request, modules, check_shapes)
            if not matches:
                raise ValueError(
                    f"modules entry {request!r} matches no module or 2-D parameter of "
                    f"{type(pl_module).__name__}. Candidates: "
                    f"{_candidate_text(_candidates(modules))}."
                )
            for tag, module, attribute in matches:
                add(tag, module, attribute)
        return tables

    def _check_labels_against_tables(self) -> None:
        for what, given in (("labels", self.labels), ("sprites", self.sprites)):
            self._check_per_row(what, given)

    def _check_per_row(self, what: str, given: Any) -> None:
        tags = {table.tag for table in self._tables}
        if isinstance(given, Mapping) and tags:
            unknown = sorted(str(key) for key in given if key not in tags)
            if unknown:
                raise ValueError(
                    f"{what} names {', '.join(map(repr, unknown))}, but the tables are "
                    f"{', '.join(map(repr, sorted(tags)))}."
                )
        for table in self._tables:
            spec = given.get(table.tag) if isinstance(given, Mapping) else given
            param = getattr(table.module, table.attribute, None)
            if (
                spec is None
                or callable(spec)
                or isinstance(spec, str)  # sprites="glyphs": drawn from the labels
                or not isinstance(param, torch.Tensor)
            ):
                continue
            count = _label_count(spec) if what == "labels" else len(spec)
            rows = int(param.shape[0]) if param.dim() == 2 else None
            if count is None or rows is None:
                continue
            needed = rows if self.max_rows is None else min(rows, self.max_rows)
            if not needed <= count <= rows:
                raise ValueError(
                    f"{what} for {table.tag!r} have {count} entries but the table has {rows} "
                    f"rows ({needed} written); give one per row."
                )

    def _resolve_logdir(self, trainer: pl.Trainer) -> Path:
        if self.logdir is not None:
            return self.logdir
        for candidate in trainer.loggers:
            log_dir = candidate.log_dir if _is_tensorboard_logger(candidate) else None
            if log_dir:
                # The logger's own property, not trainer.log_dir: that one is a collective
                # (a broadcast) and hangs when read on rank 0 only.
                return Path(log_dir)
        return Path(trainer.default_root_dir) / "embeddings"

    # -- snapshots ----------------------------------------------------------------------------

    def _maybe_snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        if getattr(getattr(trainer.state, "fn", None), "value", "fit") != "fit":
            return
        epoch = trainer.current_epoch
        if not self._policy.due(epoch):
            return
        step, suffix = self._policy.step(epoch, trainer.global_step)
        self._surface_messages()
        started = time.perf_counter()
        # Every rank takes the same decisions here (the state is the same everywhere), so
        # every rank enters the same gathers below.
        tables = [table for table in self._tables if not self._policy.is_written(table.tag, step)]
        probe = self.features
        if probe is not None and self._policy.is_written(probe.resolved_tag, step):
            probe = None
        for table in tables:
            self._policy.mark(table.tag, step)
        if probe is not None:
            self._policy.mark(probe.resolved_tag, step)
        if not tables and probe is None:
            return
        sharded = _is_sharded(trainer, pl_module, tables)
        if not trainer.is_global_zero and not sharded:
            return  # nothing to gather; rank 0 alone copies and writes
        items: list[_Item] = []
        rows = self.max_rows
        with _gathered(trainer, pl_module, tables) as fetch:
            for table in tables:
                tensor = fetch(table)
                if trainer.is_global_zero:
                    matrix = self._buffers.copy(table.tag, tensor, rows)
                    sprites = self.sprites
                    if isinstance(sprites, Mapping):
                        sprites = sprites.get(table.tag)
                    items.append(
                        _Item(
                            table.tag,
                            matrix,
                            _copy_of(self._labels_for(table.tag)),
                            self.metadata_header,
                            _head(sprites, matrix.shape[0]),
                            pooled=True,
                        )
                    )
        if probe is not None:
            try:
                features = _probe_features(trainer, pl_module, probe, rows, sharded)
            except Exception as error:  # never kill training for a visualization
                rank_zero_warn(
                    f"EmbeddingProjector skipped {probe.resolved_tag!r} at step {step}: the "
                    f"probe failed with {type(error).__name__}: {error}",
                    category=RuntimeWarning,
                )
                features = None
            if trainer.is_global_zero and features is not None:
                count = features.shape[0]
                items.append(
                    _Item(
                        probe.resolved_tag,
                        features,
                        _head(probe.labels, count),
                        probe.metadata_header,
                        _head(probe.images, count),
                    )
                )
        if not trainer.is_global_zero or not items:
            return
        background = self._ensure_background()
        logdir = self._resolved_logdir or self._resolve_logdir(trainer)
        summary = self._summary_writer(trainer)
        background.submit(self._write, logdir, items, step, suffix, summary)
        self.blocking_seconds.append(time.perf_counter() - started)

    def _labels_for(self, tag: str) -> Any:
        spec: Any = self.labels
        if isinstance(spec, Mapping):
            spec = spec.get(tag)
        if callable(spec):
            try:
                spec = spec(tag)
            except Exception as error:  # a labelling bug must not stop training
                rank_zero_warn(
                    f"EmbeddingProjector: the labels callable failed for {tag!r} "
                    f"({type(error).__name__}: {error}); writing row indices instead.",
                    category=RuntimeWarning,
                )
                spec = None
        return spec

    def _ensure_background(self) -> BackgroundWriter:
        if self._background is None:
            self._background = BackgroundWriter(
                self.max_pending, name="embedding-projector-lightning", synchronous=self.synchronous
            )
        return self._background

    def _summary_writer(self, trainer: pl.Trainer) -> Any:
        """The TensorBoardLogger's writer for maps and scalars (rank 0, training thread)."""
        if not (self.maps or self.stability):
            return None
        for candidate in trainer.loggers:
            if _is_tensorboard_logger(candidate):
                # torch's SummaryWriter (or tensorboardX's); rank 0 only, like this hook.
                experiment: Any = getattr(candidate, "experiment", None)
                if experiment is not None:
                    return experiment
        return None  # the background job opens a writer of its own in the log dir

    def _own_writer(self, logdir: Path) -> Any:
        """Background thread: a tensorboardX writer in ``logdir`` (errors become messages)."""
        if self._own_summary is None:
            from tensorboardX import SummaryWriter

            self._own_summary = SummaryWriter(
                str(logdir), filename_suffix=f".{time.time_ns()}.{os.getpid()}.maps"
            )
        return self._own_summary

    def _write(
        self, logdir: Path, items: list[_Item], step: int, suffix: str, summary: Any = None
    ) -> None:
        """Runs on the background thread: never raises, never warns (messages are queued)."""
        started = time.perf_counter()
        writer = ProjectorWriter(logdir, direct_io=True)  # CPU is what training would miss
        for item in items:
            try:
                with single_threaded_blas():
                    self._write_item(writer, item, step, suffix, summary)
            except InvalidEmbeddingError as error:
                hint = " Training may have diverged." if "NaN or Inf" in str(error) else ""
                self._queue_message(
                    f"EmbeddingProjector skipped {item.tag!r} at step {step}: {error}{hint}"
                )
            except Exception as error:  # a visualization problem must never kill training
                logger.debug("snapshot %r at step %d failed", item.tag, step, exc_info=True)
                self._queue_message(
                    f"EmbeddingProjector skipped {item.tag!r} at step {step}: "
                    f"{type(error).__name__}: {error}"
                )
            finally:
                if item.pooled:
                    self._buffers.give_back(item.tag, item.matrix)
        self.write_seconds.append(time.perf_counter() - started)

    def _write_item(
        self, writer: ProjectorWriter, item: _Item, step: int, suffix: str, summary: Any = None
    ) -> None:
        matrix = item.matrix.numpy()  # NaN/Inf rows: the writer refuses them, nothing written
        if step in writer.steps(item.tag):
            logger.info("%r step %d is already in %s; not rewritten", item.tag, step, writer.logdir)
            return
        rows = matrix.shape[0]
        labels, header = _label_rows(item.labels, rows, item.metadata_header)
        if labels is None:
            labels, header = _row_numbers(rows), None
        writer.add_embedding(
            matrix,
            metadata=self._prepared_labels(item.tag, labels, header),
            label_img=item.images,
            global_step=step,
            tag=item.tag,
            name_suffix=suffix,
        )
        if (self.maps or self.stability) and self._map_due(item.tag, step):
            started = time.perf_counter()
            try:
                summary = summary if summary is not None else self._own_writer(writer.logdir)
                self._log_map(summary, item.tag, matrix, labels, header, step)
            except Exception as error:  # the snapshot is written; only its map is lost
                self._queue_message(
                    f"EmbeddingProjector wrote {item.tag!r} at step {step} but skipped its map "
                    f"and stability scalars: {type(error).__name__}: {error}"
                )
            self._map_timing[item.tag] = (started, time.perf_counter() - started)

    def _map_due(self, tag: str, step: int) -> bool:
        """Whether ``tag``'s map fits in ``map_budget`` now (background thread)."""
        last = self._map_timing.get(tag)
        if self.map_budget is None or last is None:
            return True
        started, took = last
        if took <= self.map_budget * (time.perf_counter() - started):
            return True
        logger.info(
            "map of %r skipped at step %d: it took %.0f ms, more than %.0f%% of the time since",
            tag,
            step,
            took * 1000,
            self.map_budget * 100,
        )
        return False

    def _prepared_labels(
        self, tag: str, labels: Sequence[Any], header: Sequence[str] | None
    ) -> PreparedMetadata:
        """The writer's encoded labels for ``tag``, reused while the labels stay equal.

        Comparing with last snapshot's labels is a C loop; escaping and encoding them again
        is Python per row, on the thread that shares the GIL with training.
        """
        cached = self._prepared.get(tag)
        if cached is not None and cached[0] == labels and cached[1] == header:
            return cached[2]
        prepared = prepare_metadata(labels, header)
        self._prepared[tag] = (labels, header, prepared)
        return prepared

    def _log_map(
        self,
        summary: Any,
        tag: str,
        matrix: np.ndarray,
        labels: Any,
        header: Sequence[str] | None,
        step: int,
    ) -> None:
        """Background thread: align, project and draw ``tag``'s snapshot; log image + scalars."""
        is_features = self.features is not None and tag == self.features.resolved_tag
        column = _label_column(labels, header, self.color_column)
        evolution = self._maps.get(tag)
        if evolution is None:
            evolution = self._maps[tag] = EvolutionMap(
                max_rows=self.map_rows,
                sample="random" if is_features else "first",
                render=self.maps,
                scalars=self.stability,
                title=tag,
                size=self.map_size,
                label_count=0 if is_features else 25,
            )
        if is_features:
            # Probe rows are the same inputs in the same order at every step: match by index,
            # colour by class.
            frame = evolution.update(matrix, None, step=step, colors=column)
        else:
            frame = evolution.update(matrix, column, step=step)
        log_map(summary, frame, tag, image=self.maps, scalars=self.stability)
        summary.flush()

    def _queue_message(self, message: str) -> None:
        with self._messages_lock:
            self._messages.append(message)

    def _surface_messages(self) -> None:
        with self._messages_lock:
            messages, self._messages = self._messages, []
        for message in messages:
            rank_zero_warn(message, category=RuntimeWarning)

    def _flush(self) -> None:
        if self._background is not None:
            self._background.flush()
        self._surface_messages()


def _warm_up_writer_imports(*, maps: bool) -> None:
    """Import what the writer imports lazily, now rather than on the writer thread.

    A first import on the background thread holds the GIL for up to seconds
    (``tensorboardX`` alone takes ~2.4 s on a busy 2-core machine) and stalls the epoch after
    the first snapshot. Finding the installed fonts for the maps (~0.2 s) is done now too.
    """
    import importlib

    for name in _WRITER_LAZY_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:  # the writer reports what is missing when it needs it
            logger.debug("could not pre-import %s", name)
    if maps:
        from .fonts import font_path

        try:
            font_path("step 0123456789")
        except OSError:  # no font at all: the map reports it when it draws
            logger.debug("no font found while warming up", exc_info=True)


# --------------------------------------------------------------------------- module lookup


def _validate_modules(modules: Any) -> str | tuple[str, ...]:
    if modules is None:
        return ()
    if isinstance(modules, str):
        if modules == "auto":
            return "auto"
        modules = [modules]
    if not isinstance(modules, Sequence):
        raise TypeError(
            f'modules must be "auto", a list of module names/patterns, or None; got '
            f"{type(modules).__name__}."
        )
    names = tuple(modules)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"modules entries must be non-empty strings; got {name!r}.")
    return names


def _clean_name(name: str) -> str:
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_COMPONENTS)


def _clean_named_modules(root: nn.Module) -> dict[str, nn.Module]:
    """Module path (without wrapper components) -> innermost module of that path."""
    found: dict[str, nn.Module] = {}
    for name, module in root.named_modules(remove_duplicate=False):
        found[_clean_name(name)] = module  # parents come first; the wrapped module wins
    return found


def _own_two_d(module: nn.Module) -> list[str]:
    return [
        name
        for name, param in module.named_parameters(recurse=False, remove_duplicate=False)
        if param.dim() == 2
    ]


def _two_d_parameters(modules: dict[str, nn.Module]) -> list[str]:
    return [
        f"{name}.{attribute}" if name else attribute
        for name, module in modules.items()
        for attribute in _own_two_d(module)
    ]


def _candidates(modules: dict[str, nn.Module]) -> list[str]:
    embeddings = [
        name
        for name, module in modules.items()
        if name and isinstance(module, (nn.Embedding, nn.EmbeddingBag))
    ]
    return embeddings + [name for name in _two_d_parameters(modules) if name not in embeddings]


def _candidate_text(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(map(repr, names[:_CANDIDATES_IN_MESSAGE]))
    more = len(names) - _CANDIDATES_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def _match(
    request: str, modules: dict[str, nn.Module], check_shapes: bool = True
) -> list[tuple[str, nn.Module, str]]:
    """Resolve one ``modules`` entry to (tag, module, attribute) triples."""
    if request in modules and request:
        module = modules[request]
        if _has_table(module, "weight", check_shapes):
            return [(request, module, "weight")]
        owned = _own_two_d(module)
        if len(owned) == 1:
            return [(request, module, owned[0])]
        raise ValueError(
            f"modules entry {request!r} is a {type(module).__name__} without a single 2-D "
            f"weight to show (2-D parameters: {_candidate_text(owned)}); name a parameter "
            f'path such as "{request}.weight".'
        )
    parent, _, attribute = request.rpartition(".")
    if parent in modules and attribute:
        module = modules[parent]
        param = getattr(module, attribute, None)
        if isinstance(param, torch.Tensor):
            if check_shapes and param.dim() != 2:
                raise ValueError(
                    f"{request!r} has shape {tuple(param.shape)}; only 2-D tables (rows = "
                    "points) can be shown in the projector."
                )
            return [(request, module, attribute)]
    if not any(char in request for char in "*?["):
        return []
    matches: list[tuple[str, nn.Module, str]] = []
    for name, module in modules.items():
        if (
            name
            and fnmatch.fnmatchcase(name, request)
            and _has_table(module, "weight", check_shapes)
        ):
            matches.append((name, module, "weight"))
    for name, module in modules.items():
        for attribute in _own_two_d(module):
            path = f"{name}.{attribute}" if name else attribute
            if fnmatch.fnmatchcase(path, request):
                matches.append((path, module, attribute))
    return matches


def _has_table(module: nn.Module, attribute: str, check_shapes: bool = True) -> bool:
    param = getattr(module, attribute, None)
    return isinstance(param, torch.Tensor) and (param.dim() == 2 or not check_shapes)


def _find_module(root: nn.Module, name: str) -> nn.Module:
    modules = _clean_named_modules(root)
    if name in modules:
        return modules[name]
    raise ValueError(
        f"FeatureProbe.layer {name!r} is not a module of {type(root).__name__}. Candidates: "
        f"{_candidate_text([n for n in modules if n])}."
    )


def _overrides(pl_module: nn.Module, method: str) -> bool:
    own = getattr(type(pl_module), method, None)
    for base in type(pl_module).__mro__:
        if base.__module__.split(".")[0] in ("pytorch_lightning", "lightning"):
            return own is not getattr(base, method, None)
    return own is not None


def _is_tensorboard_logger(candidate: object) -> bool:
    # Both namespaces (pytorch_lightning, lightning.pytorch) define their own class.
    return any(cls.__name__ == "TensorBoardLogger" for cls in type(candidate).__mro__)


# --------------------------------------------------------------------------- gathering


def _is_sharded(trainer: pl.Trainer, pl_module: nn.Module, tables: list[_Table]) -> bool:
    """Same answer on every rank: the model's structure decides."""
    if _fsdp_units(trainer, pl_module):
        return True
    for table in tables:
        param = getattr(table.module, table.attribute, None)
        if _is_dtensor(param) or hasattr(param, "ds_id"):
            return True
    return False


def _fsdp_units(trainer: pl.Trainer, pl_module: nn.Module) -> list[tuple[str, nn.Module]]:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch without distributed
        return []
    wrapper = getattr(trainer.strategy, "model", None)
    root = wrapper if isinstance(wrapper, nn.Module) else pl_module
    return [
        (_clean_name(name), module)
        for name, module in root.named_modules()
        if isinstance(module, FullyShardedDataParallel)
    ]


def _is_dtensor(param: object) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover
        return False
    return isinstance(param, DTensor)


@contextlib.contextmanager
def _gathered(
    trainer: pl.Trainer, pl_module: nn.Module, tables: list[_Table]
) -> Iterator[Callable[[_Table], torch.Tensor]]:
    """Make each table's full parameter available; a collective under sharded strategies.

    Entered on every rank when the model is sharded (FSDP ``summon_full_params``, DeepSpeed
    ``GatheredParameters`` and DTensor ``full_tensor`` are collectives), on rank 0 only
    otherwise. Yields ``fetch(table) -> full tensor`` (valid inside the block).
    """
    with contextlib.ExitStack() as stack:
        units = _fsdp_units(trainer, pl_module)
        if units:
            from torch.distributed.fsdp import FullyShardedDataParallel

            for unit in _owning_units(units, tables):
                stack.enter_context(
                    FullyShardedDataParallel.summon_full_params(
                        unit, recurse=False, writeback=False
                    )
                )
        deepspeed_params = [
            getattr(table.module, table.attribute)
            for table in tables
            if hasattr(getattr(table.module, table.attribute, None), "ds_id")
        ]
        if deepspeed_params:
            import importlib

            deepspeed = importlib.import_module("deepspeed")
            stack.enter_context(
                deepspeed.zero.GatheredParameters(deepspeed_params, modifier_rank=None)
            )

        def fetch(table: _Table) -> torch.Tensor:
            tensor = getattr(table.module, table.attribute)
            if _is_dtensor(tensor):
                tensor = tensor.full_tensor()  # collective: every rank calls it, same order
            return tensor  # type: ignore[no-any-return]

        yield fetch


def _owning_units(units: list[tuple[str, nn.Module]], tables: list[_Table]) -> list[nn.Module]:
    """The innermost FSDP unit holding each table, in the same order on every rank."""
    deepest_first = sorted(
        enumerate(units), key=lambda pair: (-len(pair[1][0].split(".")), pair[0])
    )
    owners: list[nn.Module] = []
    for table in tables:
        for _, (_, unit) in deepest_first:
            if any(module is table.module for module in unit.modules()):
                if not any(owner is unit for owner in owners):
                    owners.append(unit)
                break
    return owners


# --------------------------------------------------------------------------- features


def _batch_rows(inputs: Any) -> int | None:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() > 0 else None
    if isinstance(inputs, np.ndarray):
        return int(inputs.shape[0]) if inputs.ndim > 0 else None
    values: list[Any]
    if isinstance(inputs, Mapping):
        values = list(inputs.values())
    elif isinstance(inputs, (tuple, list)):
        values = list(inputs)
    else:
        return None
    counts = {
        _batch_rows(value) for value in values if isinstance(value, (torch.Tensor, np.ndarray))
    }
    if len(counts) != 1:
        return None
    return counts.pop()


def _slice(inputs: Any, start: int, stop: int, device: torch.device) -> Any:
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(inputs)
    if isinstance(inputs, torch.Tensor):
        return inputs[start:stop].to(device)
    if isinstance(inputs, Mapping):
        return {key: _slice(value, start, stop, device) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_slice(value, start, stop, device) for value in inputs)
    return inputs


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"the probed output is a {type(output).__name__}, not a tensor (or a tuple starting "
        "with one); probe a layer that returns a tensor with FeatureProbe(layer=...)."
    )


def _probe_features(
    trainer: pl.Trainer,
    pl_module: nn.Module,
    probe: FeatureProbe,
    rows: int | None,
    sharded: bool = False,
) -> torch.Tensor | None:
    """Run the probe in eval mode without gradients; returns (N, D) float32 CPU features.

    Unsharded models run on rank 0 only, through the LightningModule itself (not the DDP
    wrapper, whose forward would start collectives). Sharded models run on every rank through
    the strategy's wrapper (FSDP, DeepSpeed), which gathers the parameters of each layer.
    """
    wrapper = getattr(trainer.strategy, "model", None)
    model: nn.Module = wrapper if sharded and isinstance(wrapper, nn.Module) else pl_module
    count = probe.rows if rows is None else min(probe.rows, rows)
    captured: list[torch.Tensor] = []
    handle = None
    if probe.layer is not None:
        layer = _find_module(pl_module, probe.layer)

        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            captured.append(_first_tensor(output).detach())

        handle = layer.register_forward_hook(hook)
    modes = {module: module.training for module in model.modules()}
    device = getattr(pl_module, "device", torch.device("cpu"))
    outputs: list[torch.Tensor] = []
    forward_context = getattr(trainer.precision_plugin, "forward_context", contextlib.nullcontext)
    try:
        model.eval()
        with torch.no_grad(), forward_context():
            for start in range(0, count, probe.batch_size):
                batch = _slice(probe.inputs, start, min(start + probe.batch_size, count), device)
                captured.clear()
                if isinstance(batch, Mapping):
                    output = model(**batch)
                elif isinstance(batch, (tuple, list)):
                    output = model(*batch)
                else:
                    output = model(batch)
                result = captured[-1] if probe.layer is not None else _first_tensor(output)
                if trainer.is_global_zero:
                    outputs.append(
                        result.reshape(result.shape[0], -1).to(
                            device="cpu", dtype=torch.float32, copy=True
                        )
                    )
    finally:
        if handle is not None:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    if not outputs:
        return None
    return torch.cat(outputs)


# --------------------------------------------------------------------------- labels


def _label_count(labels: Any) -> int | None:
    if isinstance(labels, Mapping):
        lengths = {len(values) for values in labels.values()}
        return lengths.pop() if len(lengths) == 1 else None
    try:
        return len(labels)
    except TypeError:
        return None


def _copy_of(labels: Any) -> Any:
    """A shallow copy taken on the training thread: the writer thread reads the labels later,
    after the next epoch may have edited the caller's list in place."""
    if isinstance(labels, torch.Tensor):
        return labels.detach().clone()
    if isinstance(labels, np.ndarray):
        return labels.copy()
    if isinstance(labels, Mapping):
        return {key: _copy_of(column) for key, column in labels.items()}
    if isinstance(labels, (list, tuple)):
        return list(labels)
    return labels


def _head(values: Any, count: int) -> Any:
    if values is None or isinstance(values, str):  # "glyphs" is drawn by the writer
        return values
    if isinstance(values, Mapping):
        return {key: column[:count] for key, column in values.items()}
    return values[:count]


def _label_rows(
    labels: Any, rows: int, header: Sequence[str] | None
) -> tuple[Any, Sequence[str] | None]:
    """Labels for the first ``rows`` rows, as the writer takes them (list or rows + header)."""
    if labels is None:
        return None, None
    if isinstance(labels, Mapping):
        columns = [list(column)[:rows] for column in labels.values()]
        header = [str(key) for key in labels]
        if len(columns) == 1:
            return columns[0], None
        return [list(row) for row in zip(*columns, strict=True)], header
    if isinstance(labels, (torch.Tensor, np.ndarray)):
        labels = labels.tolist()
    items = list(labels)
    if len(items) < rows:
        raise ValueError(
            f"{len(items)} labels for a table of {rows} rows; give one label per row (the "
            "first max_rows are used)."
        )
    return items[:rows], header


@functools.lru_cache(maxsize=8)
def _row_numbers(rows: int) -> tuple[str, ...]:
    """``"0" ... "rows - 1"``: the labels of an unlabelled table (the same at every snapshot)."""
    return tuple(str(index) for index in range(rows))


def _label_column(labels: Any, header: Sequence[str] | None, column: str | int) -> list[str] | None:
    """One label per row from the writer's labels (a list, or rows of several columns)."""
    if labels is None:
        return None
    if header is None:  # one column
        return list(map(str, labels))  # C loop: 50,000 labels per epoch
    if isinstance(column, str):
        if column not in header:
            raise ValueError(f"color_column {column!r} is not one of the label columns {header}.")
        column = list(header).index(column)
    return [str(row[column]) for row in labels]
