"""The Lightning hook glue of :class:`EmbeddingProjector` (see the package docstring)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from typing_extensions import override

from .._format.logdir import local_logdir, validate_disk_reserve
from .._keywords import suggest_keywords
from .._torch.buffers import CopyBuffers
from .._torch.modules import check_limit
from ..sink import (
    OPTION_FIELDS,
    InsightOptions,
    SinkOptions,
    SinkStats,
    SnapshotSink,
    resolve_options,
    warm_up_imports,
)
from ..sink._followed_rows import ProbeRow, trajectory_without_probes
from ..sink.snapshot_policy import SnapshotPolicy, StepMode
from ..writer import MAX_PROJECTOR_ROWS
from ._compat import nn, pl
from ._labels import (
    check_labels_and_sprites,
    check_labels_type,
    check_probe_rows_arg,
    labels_for,
    resolve_table_probes,
)
from ._run import (
    fit_snapshot_count,
    is_real_fit,
    logger_writer,
    run_logdir,
    table_requests,
    table_shapes,
    warn_if_never_validated,
    warn_on_rank_zero,
)
from .gather import is_sharded
from .modules import (
    Table,
    find_module,
    overrides,
    resolve_tables,
    validate_modules,
)
from .probe import FeatureInputs, as_feature_inputs, feature_request

__all__ = ["EmbeddingProjector"]

logger = logging.getLogger(__name__)

Hook = Literal["train_epoch_end", "validation_epoch_end"]
Labels = Sequence[Any] | Mapping[str, Any] | Callable[[str], Any] | None
ProbeRows = Sequence[ProbeRow] | Mapping[str, Sequence[ProbeRow]] | None


@suggest_keywords(moved=OPTION_FIELDS)
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
        labels: for every table: a list, a 1-D/2-D array or tensor, a mapping column name ->
            values, or a callable ``tag -> labels``; or a mapping tag -> any of these (see the
            package docstring). Tables without labels get their row indices.
        limit: rows written per table (the first ones); the projector loads at most
            100,000. ``None`` writes all.
        sprites: images for the rows of every table ((N, C, H, W) or (N, H, W); floats in
            [0, 1] or uint8), ``"glyphs"`` (each row's label drawn as its image: character
            embeddings), or a mapping tag -> either: they become the sprite sheet.
        features: a :class:`FeatureInputs` (or a tuple ``(inputs, labels[, images])``).
        probe_rows: rows to follow in every table: row indices (ints) or labels (strings,
            looked up in the table's first label column); or a mapping tag -> such a list.
            They are highlighted on the maps, get a nearest-neighbour table (TEXT), and with
            ``InsightOptions(trajectory=True)`` their path across steps is written to
            ``<tag> · trajectory``. Checked at ``setup``.
        logdir: write here instead of the logger's run directory (a local directory: a URL
            raises :class:`~embedding_projector.errors.LogDirError`).
        snapshot_at_start: also snapshot the starting weights at step 0 (not on resume, nor
            with ``step="epoch"``). The end of training is always snapshot, once.
        insight: maps (IMAGES ``<tag>/map``; features coloured by ``color_column``), the
            ``drift`` / ``neighbor_overlap_at_<k>`` / ``separation`` scalars and their time
            budget (:class:`~embedding_projector.sink.InsightOptions`; default
            ``InsightOptions()``: 500 rows, at most 2 % of training time).
        sink: background writing, queue length, retention (``keep=N``: step 0 and the N most
            recent snapshots stay) and the free space kept for the run's checkpoints
            (``disk_reserve``) (:class:`~embedding_projector.sink.SinkOptions`). At ``setup``
            the projected disk use is logged, with a warning if it will not fit.

    Raises:
        ValueError: an argument has an invalid value (the message says which and why); at
            ``setup``: a module name matches nothing, labels do not fit their table, a probe
            row is out of range or not a label of its table, or the log dir cannot be
            written (:class:`~embedding_projector.errors.LogDirError`).
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
        limit: int | None = MAX_PROJECTOR_ROWS,
        sprites: Any = None,
        features: FeatureInputs | tuple[Any, ...] | None = None,
        probe_rows: ProbeRows = None,
        logdir: str | os.PathLike[str] | None = None,
        snapshot_at_start: bool = True,
        insight: InsightOptions | None = None,
        sink: SinkOptions | None = None,
    ) -> None:
        super().__init__()
        self.insight, self.sink = resolve_options("EmbeddingProjector", insight, sink)
        self.modules = validate_modules(modules)
        self._policy = SnapshotPolicy(every_n_epochs, step)
        if on not in get_args(Hook):
            raise ValueError(
                f"on must be one of {', '.join(map(repr, get_args(Hook)))}; got {on!r}."
            )
        check_limit(limit)
        check_labels_type(labels)
        features = as_feature_inputs(features)
        self.probe_rows = check_probe_rows_arg(probe_rows)
        if self.insight.trajectory and not self.probe_rows:
            raise trajectory_without_probes("EmbeddingProjector")
        if self.modules == () and features is None:
            raise ValueError(
                "Nothing to snapshot: modules is empty and no features were given. Use "
                'modules="auto", name the tables, or pass features=FeatureInputs(...).'
            )
        self.every_n_epochs = every_n_epochs
        self.on: Hook = on
        self.step: StepMode = step
        self.labels = labels
        self.limit = limit
        self.features = features
        self.sprites = sprites
        self.logdir = local_logdir(logdir) if logdir is not None else None
        if self.logdir is not None:  # else at setup, once the logger's directory is known
            validate_disk_reserve(self.logdir, self.sink.disk_reserve)
        self.snapshot_at_start = bool(snapshot_at_start)
        self._tables: list[Table] = []
        #: tag -> probe row indices (resolved at setup).
        self._probes: dict[str, tuple[int, ...]] = {}
        #: ``labels`` is a mapping of columns for the model's one table (not tag -> labels).
        self._labels_as_columns = False
        #: The logger writes to a URL: maps and scalars go to the sink's local event file.
        self._remote_logger = False
        #: (epoch, global_step) of the last training epoch end: where a fit that ends lands.
        self._last_epoch_end: tuple[int, int] | None = None
        self._deferred = False
        self._resolved_logdir: Path | None = None
        self._sink: SnapshotSink | None = None
        self._buffers = CopyBuffers()
        self._stats = SinkStats()
        #: Seconds the training thread spent in each snapshot (gather + copy + hand-off).
        self.blocking_seconds: list[float] = []

    @property
    def write_seconds(self) -> list[float]:
        """Seconds the background thread spent writing each snapshot."""
        return self._stats.write_seconds

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
            **self._policy.state_dict(),
            "logdir": str(self._resolved_logdir) if self._resolved_logdir else None,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._policy.load_state_dict(state_dict)

    def __getstate__(self) -> dict[str, Any]:
        # Threads, locks and module references do not pickle; a copy starts fresh.
        state = self.__dict__.copy()
        state.update(_sink=None, _tables=[], _buffers=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._buffers = CopyBuffers()

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # Validate names now when the model already has its layers; models that build them
        # in configure_model are checked again at on_fit_start.
        builds_later = overrides(pl_module, "configure_model")
        try:
            self._tables = self._resolve_tables(pl_module)
        except ValueError:
            if not builds_later:
                raise
            self._tables = []
        else:
            self._check_labels_and_sprites()
            self._resolve_probes()
        self._deferred = builds_later and not self._tables
        if self.on == "validation_epoch_end":
            warn_if_never_validated(trainer, pl_module)
        if trainer.is_global_zero:
            self._resolved_logdir = self._resolve_logdir(trainer)
            self._ensure_sink(trainer).check_logdir()  # a file, not writable: fail now
            warm_up_imports(maps=self.insight.maps)
            self._forecast(trainer)

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Models that build their layers in configure_model: resolve now, after it ran (the
        # strategy may have wrapped and flattened them already, so shapes are not checked).
        if self._deferred:
            self._tables = self._resolve_tables(pl_module, check_shapes=False)
            self._deferred = False
            self._resolve_probes()
        if self.features is not None and self.features.layer is not None:
            find_module(pl_module, self.features.layer)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_epoch_end = None
        start = self._policy.start_step(trainer.current_epoch, trainer.global_step)
        if self.snapshot_at_start and start is not None and is_real_fit(trainer):
            self._snapshot(trainer, pl_module, *start)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_epoch_end = (trainer.current_epoch, trainer.global_step)
        if self.on == "train_epoch_end":
            self._maybe_snapshot(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The trained weights, whether or not the last epoch was due (once: claimed).
        if self._last_epoch_end is not None and is_real_fit(trainer):
            epoch, _ = self._last_epoch_end
            self._snapshot(trainer, pl_module, *self._policy.step(epoch, trainer.global_step))

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.on == "validation_epoch_end":
            self._maybe_snapshot(trainer, pl_module)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._sink is not None:
            self._sink.flush()

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self._sink is not None:
            self._sink.flush()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        self._buffers.clear()

    # -- resolution ---------------------------------------------------------------------------

    def _resolve_tables(self, pl_module: nn.Module, *, check_shapes: bool = True) -> list[Table]:
        given = self.features is not None
        return resolve_tables(
            pl_module, self.modules, features_given=given, check_shapes=check_shapes
        )

    def _check_labels_and_sprites(self) -> None:
        self._labels_as_columns = check_labels_and_sprites(
            self.labels, self.sprites, self._tables, self.limit
        )

    def _resolve_probes(self) -> None:
        self._probes = resolve_table_probes(
            self.probe_rows,
            self._tables,
            self.labels,
            as_columns=self._labels_as_columns,
            max_rows=self.limit,
        )

    def _resolve_logdir(self, trainer: pl.Trainer) -> Path:
        if self.logdir is not None:
            return self.logdir
        logdir, self._remote_logger = run_logdir(trainer)
        return logdir

    def _ensure_sink(self, trainer: pl.Trainer) -> SnapshotSink:
        if self._sink is None:
            self._sink = SnapshotSink(
                self._resolved_logdir or self._resolve_logdir(trainer),
                options=self.sink,
                insight=self.insight,
                warn=warn_on_rank_zero,
                name="EmbeddingProjector",
                stats=self._stats,
            )
        return self._sink

    def _forecast(self, trainer: pl.Trainer) -> None:
        """Tell the sink what this fit will write at most (it logs, and warns if too much)."""
        sink = self._ensure_sink(trainer)  # checks disk_reserve against the file system
        count = fit_snapshot_count(self._policy, trainer, start=self.snapshot_at_start)
        shapes = table_shapes(self._tables, self.limit)
        if count is not None and shapes:
            sink.forecast(shapes, count)

    # -- snapshots ----------------------------------------------------------------------------

    def _maybe_snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not is_real_fit(trainer):
            return
        epoch = trainer.current_epoch
        if self._policy.due(epoch):
            self._snapshot(trainer, pl_module, *self._policy.step(epoch, trainer.global_step))

    def _snapshot(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int, suffix: str
    ) -> None:
        if self._sink is not None:
            self._sink.report()
        started = time.perf_counter()
        # Every rank takes the same decisions here (the state is the same everywhere), so
        # every rank enters the same gathers below.
        claimed = set(self._policy.claim([table.tag for table in self._tables], step))
        tables = [table for table in self._tables if table.tag in claimed]
        probe = self.features
        if probe is not None and not self._policy.claim([probe.resolved_tag], step):
            probe = None
        if not tables and probe is None:
            return
        sharded = is_sharded(trainer, pl_module, tables)
        if not trainer.is_global_zero and not sharded:
            return  # nothing to gather; rank 0 alone copies and writes
        requests = table_requests(
            trainer,
            pl_module,
            tables,
            self._buffers,
            max_rows=self.limit,
            sprites=self.sprites,
            labels_of=lambda tag: labels_for(self.labels, tag, as_columns=self._labels_as_columns),
            suffix=suffix,
            probes=self._probes,
        )
        if probe is not None:
            requests += feature_request(
                trainer, pl_module, probe, self.limit, (step, suffix), sharded=sharded
            )
        if not trainer.is_global_zero or not requests:
            return
        self._ensure_sink(trainer).submit(step, requests, summary=self._summary_writer(trainer))
        self.blocking_seconds.append(time.perf_counter() - started)

    def _summary_writer(self, trainer: pl.Trainer) -> Any:
        """The TensorBoardLogger's writer for maps and scalars (rank 0, training thread)."""
        if not self.insight.enabled or self._remote_logger:
            return None  # the sink's own event file, beside the local snapshots
        return logger_writer(trainer)
