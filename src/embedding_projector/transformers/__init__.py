"""A Hugging Face ``Trainer`` callback that snapshots a model's embeddings into the projector.

Add :class:`EmbeddingProjectorCallback` to ``Trainer(callbacks=[...])``. It snapshots the input
embeddings (``model.get_input_embeddings()``), optionally an untied output embedding and any
named tables, with the tokenizer's tokens as labels, at ``global_step``: once before training
(the starting weights), at every epoch end or every ``every_n_steps``, and at the end of
training if that step was not written yet. The training thread only copies the rows; the
shared :class:`~embedding_projector.sink.SnapshotSink` writes them, their maps and insight
scalars on a background thread. A visualization problem is warned about once and never stops
training.

Where: into the run directory transformers' own ``TensorBoardCallback`` writes its scalars to,
so the projector and the loss curves sit in one run:

1. ``logdir=`` when given;
2. else the ``TENSORBOARD_LOGGING_DIR`` environment variable (transformers 5.x);
3. else ``args.logging_dir`` when ``TrainingArguments`` has it and it is set (4.x);
4. else the newest directory under ``<output_dir>/runs/`` holding an event file written since
   the trainer was created (the ``TensorBoardCallback`` made it just before: reporting
   callbacks run first);
5. else ``<output_dir>/runs/<Mon DD_HH-MM-SS>_<host>``, transformers' own naming.

A remote log dir (``s3://...``) cannot be served by TensorBoard's projector: the callback
warns once and writes to ``<output_dir>/projector`` instead.

Distributed: only the world process zero copies and writes. Sharded tables (DTensor, DeepSpeed
ZeRO-3) are gathered on every rank first, as those gathers are collectives.

Example:
    >>> from embedding_projector.transformers import EmbeddingProjectorCallback
    >>> callback = EmbeddingProjectorCallback(every_n_steps=100, output_embeddings=True)
    >>> # Trainer(model, args, train_dataset=..., processing_class=tokenizer, callbacks=[callback])
"""

from __future__ import annotations

import importlib
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import torch
    from torch import nn
    from transformers import TrainerCallback
except ImportError as _error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "embedding_projector.transformers needs transformers and PyTorch: "
        "pip install 'embedding-projector[transformers]'"
    ) from _error

from .._keywords import suggest_keywords
from .._torch.buffers import CopyBuffers
from .._torch.gather import any_sharded, full_tensors
from .._torch.modules import (
    Table,
    check_limit,
    clean_named_modules,
    resolve_tables,
    validate_modules,
)
from ..sink import (
    OPTION_FIELDS,
    InsightOptions,
    SinkOptions,
    SnapshotRequest,
    SnapshotSink,
    resolve_options,
    warm_up_imports,
)
from ..sink._followed_rows import (
    ProbeRow,
    check_probe_rows,
    resolve_probe_rows,
    trajectory_without_probes,
)
from ..sink._labels import label_column, label_rows, vocabulary_labels
from ..sink.snapshot_policy import SnapshotPolicy
from ..writer import MAX_PROJECTOR_ROWS

__all__ = ["EmbeddingProjectorCallback", "trainer_logdir"]

_NAME = "EmbeddingProjectorCallback"


@suggest_keywords(moved=OPTION_FIELDS)
class EmbeddingProjectorCallback(TrainerCallback):
    """Snapshot a transformer's embedding tables into TensorBoard's projector.

    Args:
        labels: a tokenizer (its tokens label the rows: column ``token``, and a ``special``
            column marking ``all_special_ids``; rows beyond the vocabulary are labelled
            ``<row N: beyond the vocabulary>``), a list of labels, or ``None``: the trainer's
            ``processing_class`` when it is a tokenizer, else row numbers. Labels go to every
            table with as many rows as the input embedding; other tables get row numbers.
        output_embeddings: also snapshot ``model.get_output_embeddings()`` when it is not tied
            to the input embedding (a tied one is the same tensor: written once).
        modules: more tables: module names, glob patterns or parameter paths (as the
            Lightning callback's ``modules=``); ``"auto"``: every ``nn.Embedding``.
        every_n_steps: snapshot every n optimizer steps instead of at epoch ends.
        every_n_epochs: snapshot after every n-th epoch (without ``every_n_steps``).
        snapshot_at_start: snapshot the starting weights at train begin (step
            ``global_step``, 0 for a fresh run).
        limit: rows written per table (the first ones); ``None`` writes all.
        probe_rows: tokens (strings, looked up in the label column: the tokenizer's tokens as
            it writes them, e.g. ``"Ġhouse"`` for a byte-level BPE) or token ids (ints) to
            follow in the tables the labels label (input and output embeddings). They are
            highlighted on the maps, get a nearest-neighbour table (TEXT), and with
            ``InsightOptions(trajectory=True)`` their path across steps is written to
            ``<tag> · trajectory``. Checked at train begin, before the first snapshot.
        logdir: write here instead of transformers' TensorBoard run (see the module docstring).
        insight: maps and insight scalars (:class:`~embedding_projector.sink.InsightOptions`).
        sink: background writing (:class:`~embedding_projector.sink.SinkOptions`).

    Raises:
        ValueError: an argument has an invalid value (the message says which); at train
            begin: labels do not fit, or a probe row is out of range or not a token.
        TypeError: an argument has the wrong type.

    Example:
        >>> callback = EmbeddingProjectorCallback(modules=["*.position_embeddings"])
        >>> callback.every_n_steps is None
        True
    """

    def __init__(
        self,
        *,
        labels: Any = None,
        output_embeddings: bool = False,
        modules: str | Sequence[str] | None = None,
        every_n_steps: int | None = None,
        every_n_epochs: int = 1,
        snapshot_at_start: bool = True,
        limit: int | None = MAX_PROJECTOR_ROWS,
        probe_rows: Sequence[ProbeRow] | None = None,
        logdir: str | os.PathLike[str] | None = None,
        insight: InsightOptions | None = None,
        sink: SinkOptions | None = None,
    ) -> None:
        if (
            labels is not None
            and not _is_tokenizer(labels)
            and (isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence))
        ):
            raise TypeError(
                f"labels must be a tokenizer, a list of labels or None; got {type(labels)}."
            )
        check_limit(limit)
        self.insight, self.sink = resolve_options(_NAME, insight, sink)
        self._policy = SnapshotPolicy(every_n_epochs, every_n_steps=every_n_steps)
        self.labels = labels
        self.output_embeddings = bool(output_embeddings)
        self.modules = validate_modules(modules)
        self.every_n_steps = every_n_steps
        self.snapshot_at_start = bool(snapshot_at_start)
        self.limit = limit
        self.logdir = Path(os.fspath(logdir)).expanduser() if logdir is not None else None
        self.probe_rows = check_probe_rows(probe_rows)
        if self.insight.trajectory and not self.probe_rows:
            raise trajectory_without_probes(_NAME)
        self._probes: tuple[int, ...] = ()
        self._created = time.time()
        self._tables: list[Table] = []
        self._tied: str | None = None
        self._labels: Mapping[str, Sequence[str]] | Sequence[Any] | None = None
        self._vocab_rows = 0
        self._sink: SnapshotSink | None = None
        self._buffers = CopyBuffers()
        #: The run directory written to (world process zero, from train begin on).
        self.resolved_logdir: Path | None = None

    # -- transformers protocol ----------------------------------------------------------------

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._created = time.time()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs["model"]
        self._tied = None
        self._tables = self._resolve_tables(model)
        self._labels, self._vocab_rows = self._resolve_labels(model, kwargs)
        self._probes = self._resolve_probes()
        if state.is_world_process_zero:
            self.resolved_logdir = trainer_logdir(args, self.logdir, since=self._created - 2)
            warm_up_imports(maps=self.insight.maps)
            self._sink = SnapshotSink(
                self.resolved_logdir, options=self.sink, insight=self.insight, name=_NAME
            )
            if self._tied is not None:
                self._sink.warn("", "tied output embeddings", self._tied, UserWarning)
        if self.snapshot_at_start:
            self._snapshot(state, "start of training")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._policy.due_at_step(state.global_step):
            self._snapshot(state, f"epoch {state.epoch or 0:.2f}")

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        epoch = max(round(state.epoch or 0) - 1, 0)
        if self._policy.due(epoch):
            self._snapshot(state, self._policy.step(epoch, state.global_step)[1])

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._snapshot(state, "end of training")  # only tags not yet written at this step
        if self._sink is not None:
            self._sink.close()  # waits for the writes; removes the writer's refresh run
            self._sink = None
        self._buffers.clear()

    # -- resolution ---------------------------------------------------------------------------

    def _resolve_tables(self, model: nn.Module) -> list[Table]:
        """Input embedding, untied output embedding, named tables: each tensor once."""
        names = {id(module): name for name, module in clean_named_modules(model).items()}
        found: list[Table] = []
        for which in ("input", "output") if self.output_embeddings else ("input",):
            module = getattr(model, f"get_{which}_embeddings", lambda: None)()
            if not isinstance(module, nn.Module) or not isinstance(
                getattr(module, "weight", None), torch.Tensor
            ):
                raise ValueError(
                    f"{type(model).__name__}.get_{which}_embeddings() returned "
                    f"{type(module).__name__}, not a module with a weight; name the tables "
                    "with modules=[...]."
                )
            found.append(Table(names.get(id(module)) or f"{which}_embeddings", module, "weight"))
        output = found[1] if len(found) > 1 else None
        if self.modules:
            found += resolve_tables(model, self.modules, features_given=True)
        tables: list[Table] = []
        seen: dict[int, str] = {}
        for table in found:
            key = id(getattr(table.module, table.attribute))
            if key not in seen:
                seen[key] = table.tag
                tables.append(table)
            elif table is output:  # told by process zero, through the sink (once per problem)
                self._tied = (
                    f"{_NAME}: the output embeddings {table.tag!r} are tied to the input "
                    f"embeddings {seen[key]!r} (the same tensor); they are written once, as "
                    f"{seen[key]!r}. Pass output_embeddings=False to silence this."
                )
        return tables

    def _resolve_labels(
        self, model: nn.Module, kwargs: Mapping[str, Any]
    ) -> tuple[Mapping[str, Sequence[str]] | Sequence[Any] | None, int]:
        first = self._tables[0]
        rows = int(getattr(first.module, first.attribute).shape[0])
        written = rows if self.limit is None else min(rows, self.limit)
        labels = self.labels
        if labels is None and _is_tokenizer(kwargs.get("processing_class")):
            labels = kwargs["processing_class"]
        if labels is None:
            return None, rows
        if _is_tokenizer(labels):
            return vocabulary_labels(labels, written), rows
        if len(labels) < written:
            raise ValueError(
                f"labels has {len(labels)} entries but {first.tag!r} has {rows} rows "
                f"({written} written); give one label per row, or pass the tokenizer."
            )
        return list(labels)[:written], rows

    def _resolve_probes(self) -> tuple[int, ...]:
        """The probe rows' indices in the vocabulary tables (checked before any snapshot)."""
        if not self.probe_rows:
            return ()
        first = self._tables[0]
        rows = self._vocab_rows
        written = rows if self.limit is None else min(rows, self.limit)
        column = None
        if self._labels is not None:
            labels, header = label_rows(self._labels, written, None)
            column = label_column(labels, header, 0)
        return resolve_probe_rows(first.tag, self.probe_rows, written, column)

    # -- snapshots ----------------------------------------------------------------------------

    def _snapshot(self, state: Any, suffix: str) -> None:
        # Every rank claims the same tags (same state), so every rank enters the same gathers.
        step = int(state.global_step)
        claimed = set(self._policy.claim([table.tag for table in self._tables], step))
        tables = [table for table in self._tables if table.tag in claimed]
        zero = bool(state.is_world_process_zero)
        if not tables or not (zero or any_sharded(tables)):
            return
        try:
            requests = self._requests(tables, zero, suffix)
            if zero and self._sink is not None:
                last = int(getattr(state, "max_steps", 0) or 0)
                final = suffix == "end of training" or 0 < last <= step
                self._sink.submit(step, requests, final=final)
        except Exception as error:  # a visualization problem must never stop training
            if self._sink is not None:
                self._sink.warn(
                    "",
                    type(error).__name__,
                    f"{_NAME} skipped the snapshot at step {step}: {type(error).__name__}: {error}",
                    RuntimeWarning,
                )

    def _requests(self, tables: list[Table], zero: bool, suffix: str) -> list[SnapshotRequest]:
        requests: list[SnapshotRequest] = []
        with full_tensors(tables) as fetch:
            for table in tables:
                tensor = fetch(table)
                if not zero:
                    continue
                matrix = self._buffers.copy(table.tag, tensor, self.limit)
                vocabulary = int(tensor.shape[0]) == self._vocab_rows
                requests.append(
                    SnapshotRequest(
                        table.tag,
                        matrix,
                        labels=self._labels if vocabulary else None,
                        name_suffix=suffix,
                        row_noun="tokens" if vocabulary else "rows",
                        probes=self._probes if vocabulary else (),
                        on_written=self._buffers.giver(table.tag, matrix),
                    )
                )
        return requests


def trainer_logdir(args: Any, explicit: Path | None = None, *, since: float = 0.0) -> Path:
    """The run directory to write to (the order is in the module docstring).

    Args:
        args: the ``TrainingArguments`` (``output_dir``, and ``logging_dir`` in 4.x).
        explicit: the callback's ``logdir=``.
        since: event files older than this (``time.time()``) are not the current run's.

    Example:
        >>> import tempfile, types
        >>> args = types.SimpleNamespace(output_dir=tempfile.mkdtemp(), logging_dir="tb")
        >>> trainer_logdir(args)
        PosixPath('tb')
    """
    output_dir = Path(os.fspath(args.output_dir or "."))
    chosen: str | os.PathLike[str] | None = explicit
    chosen = chosen or os.environ.get("TENSORBOARD_LOGGING_DIR") or None
    chosen = chosen or getattr(args, "logging_dir", None) or _newest_run(output_dir / "runs", since)
    if chosen is None:
        chosen = output_dir / _default_run_name()
    text = os.fspath(chosen)
    if "://" in text:
        local = (output_dir if "://" not in str(output_dir) else Path.cwd()) / "projector"
        warnings.warn(
            f"{_NAME}: TensorBoard's projector cannot serve files from the remote log dir "
            f"{text!r}; the snapshots go to {str(local)!r} instead (point a TensorBoard there).",
            UserWarning,
            stacklevel=3,
        )
        return local
    return Path(text).expanduser()


def _newest_run(runs: Path, since: float) -> Path | None:
    """The newest directory under ``runs`` with an event file modified at or after ``since``."""
    newest: tuple[float, Path] | None = None
    for event_file in runs.glob("*/events.out.tfevents.*") if runs.is_dir() else ():
        modified = event_file.stat().st_mtime
        if modified >= since and (newest is None or modified > newest[0]):
            newest = (modified, event_file.parent)
    return newest[1] if newest is not None else None


def _default_run_name() -> str:
    try:  # transformers' own naming: runs/<Mon DD_HH-MM-SS>_<host>
        integration = importlib.import_module("transformers.integrations.integration_utils")
        return str(integration.default_logdir())
    except (ImportError, AttributeError):  # pragma: no cover - moved in a later release
        import socket

        return os.path.join("runs", time.strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname())


def _is_tokenizer(value: Any) -> bool:
    return callable(getattr(value, "convert_ids_to_tokens", None))
