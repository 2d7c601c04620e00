"""Where and how much a Lightning fit writes: the run directory, the logger's writer, the count
of snapshots a fit will take. Plain functions over the trainer, kept out of the hook glue."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._format import URL_LOGDIR
from .._torch.buffers import CopyBuffers, copy_of, head
from ..sink import SnapshotRequest
from ..sink.snapshot_policy import SnapshotPolicy
from ._compat import nn, pl, rank_zero_warn
from .gather import gathered
from .modules import Table, is_tensorboard_logger, overrides

__all__ = [
    "fit_snapshot_count",
    "is_real_fit",
    "logger_writer",
    "run_logdir",
    "table_requests",
    "table_shapes",
    "warn_if_never_validated",
    "warn_on_rank_zero",
]


def run_logdir(trainer: pl.Trainer) -> tuple[Path, bool]:
    """The directory snapshots go to, and whether the logger writes to a remote store.

    The ``TensorBoardLogger``'s ``version_N`` directory (projector and scalars in one run), a
    local directory named in a warning when that logger writes to a URL (TensorBoard's
    projector reads assets as local files), else ``<default_root_dir>/embeddings``.
    """
    root = Path(trainer.default_root_dir)
    if URL_LOGDIR.match(str(trainer.default_root_dir)):
        root = Path.cwd()
    for candidate in trainer.loggers:
        log_dir = candidate.log_dir if is_tensorboard_logger(candidate) else None
        if log_dir and URL_LOGDIR.match(str(log_dir)):
            version = candidate.version
            version = version if isinstance(version, str) else f"version_{version}"
            local = root / "embeddings" / str(candidate.name) / version
            rank_zero_warn(
                f"EmbeddingProjector: the TensorBoardLogger writes to {log_dir}, a remote "
                "store; TensorBoard's projector cannot serve snapshots from one (it reads "
                f"them as local files). Writing the snapshots, maps and insight scalars to "
                f"{local} instead: point tensorboard --logdir there (or sync it to the "
                "store), or pass logdir= to choose the directory.",
                category=UserWarning,
            )
            return local, True
        if log_dir:
            # The logger's own property, not trainer.log_dir: that one is a collective
            # (a broadcast) and hangs when read on rank 0 only.
            return Path(log_dir), False
    return root / "embeddings", False


def logger_writer(trainer: pl.Trainer) -> Any:
    """The ``TensorBoardLogger``'s writer for maps and scalars (rank 0), or ``None``."""
    for candidate in trainer.loggers:
        if is_tensorboard_logger(candidate):
            # torch's SummaryWriter (or tensorboardX's); rank 0 only, like the hooks.
            experiment: Any = getattr(candidate, "experiment", None)
            if experiment is not None:
                return experiment
    return None  # the sink opens a writer of its own in the log dir


def table_shapes(tables: Sequence[Table], max_rows: int | None) -> dict[str, tuple[int, int]]:
    """tag -> (rows, columns) each snapshot of the 2-D tables writes."""
    shapes: dict[str, tuple[int, int]] = {}
    for table in tables:
        shape = tuple(getattr(table.module, table.attribute).shape)
        if len(shape) == 2:
            rows = shape[0] if max_rows is None else min(shape[0], max_rows)
            shapes[table.tag] = (rows, shape[1])
    return shapes


def fit_snapshot_count(policy: SnapshotPolicy, trainer: pl.Trainer, *, start: bool) -> int | None:
    """Snapshots the rest of this fit takes: due epochs, the start (if asked and not resumed)
    and the fit's end (always one); ``None`` when the fit's length is not known."""
    max_epochs = trainer.max_epochs
    if max_epochs is None or max_epochs < 0:
        return None
    epochs = range(trainer.current_epoch, max_epochs)
    due = sum(policy.due(epoch) for epoch in epochs)
    started = start and policy.start_step(trainer.current_epoch, trainer.global_step) is not None
    end = bool(epochs) and not policy.due(max_epochs - 1)
    return due + int(started) + int(end)


def is_real_fit(trainer: pl.Trainer) -> bool:
    """Whether this is a real fit (not the sanity check, ``fast_dev_run`` or validate)."""
    if trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
        return False
    return getattr(getattr(trainer.state, "fn", None), "value", "fit") == "fit"


def warn_if_never_validated(trainer: pl.Trainer, pl_module: nn.Module) -> None:
    """``on="validation_epoch_end"`` under a trainer that runs no validation: say so at setup."""
    if not overrides(pl_module, "validation_step") or trainer.limit_val_batches == 0:
        rank_zero_warn(
            'EmbeddingProjector(on="validation_epoch_end") will never snapshot: this '
            "trainer runs no validation. Add a validation_step and val_dataloaders, or use "
            'on="train_epoch_end".',
            category=UserWarning,
        )


def warn_on_rank_zero(message: str, category: type[Warning]) -> None:
    """The sink's warning channel for Lightning: ``rank_zero_warn``."""
    rank_zero_warn(message, category=category)


def table_requests(
    trainer: pl.Trainer,
    pl_module: nn.Module,
    tables: list[Table],
    buffers: CopyBuffers,
    *,
    max_rows: int | None,
    sprites: Any,
    labels_of: Callable[[str], Any],
    suffix: str,
    probes: Mapping[str, Sequence[int]] | None = None,
) -> list[SnapshotRequest]:
    """Gather (on every rank when sharded) and copy (rank 0) each table once into a request
    for the sink (``probes``: tag -> probe row indices); the copy buffer goes back to
    ``buffers`` once the sink wrote it."""
    requests: list[SnapshotRequest] = []
    with gathered(trainer, pl_module, tables) as fetch:
        for table in tables:
            tensor = fetch(table)
            if not trainer.is_global_zero:
                continue
            matrix = buffers.copy(table.tag, tensor, max_rows)
            images = sprites.get(table.tag) if isinstance(sprites, Mapping) else sprites
            requests.append(
                SnapshotRequest(
                    table.tag,
                    matrix,
                    labels=copy_of(labels_of(table.tag)),
                    sprites=head(images, matrix.shape[0]),
                    name_suffix=suffix,
                    probes=tuple((probes or {}).get(table.tag, ())),
                    on_written=buffers.giver(table.tag, matrix),
                )
            )
    return requests
