"""Feature inputs: a fixed set of inputs passed through the model at every snapshot
(the rows to follow are "probe rows", :mod:`embedding_projector.sink._followed_rows`)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._torch.buffers import head
from ..sink import SnapshotRequest
from ..sink._labels import label_count
from ._compat import nn, pl, rank_zero_warn, torch
from .modules import find_module

__all__ = ["FeatureInputs", "as_feature_inputs", "compute_features", "feature_request"]


@dataclass(frozen=True)
class FeatureInputs:
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
        >>> probe = FeatureInputs(torch.rand(10, 4), labels=list("0123456789"), layer="hidden")
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
        rows = batch_rows(self.inputs)
        if rows is None:
            raise TypeError(
                "FeatureInputs.inputs must be a tensor, or a tuple/list/dict of tensors with the "
                f"same first dimension; got {type(self.inputs).__name__}."
            )
        if rows < 2:
            raise ValueError(
                f"FeatureInputs.inputs has {rows} row(s); the projector needs at least 2."
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
            count = label_count(self.labels)
            if count is not None and count != rows:
                raise ValueError(
                    f"FeatureInputs has {rows} input rows but {count} labels; they must match "
                    "one-to-one."
                )
        if self.images is not None:
            count = len(self.images)
            if count != rows:
                raise ValueError(
                    f"FeatureInputs has {rows} input rows but {count} images; they must match "
                    "one-to-one."
                )

    @property
    def rows(self) -> int:
        """Number of probe rows."""
        rows = batch_rows(self.inputs)
        return 0 if rows is None else rows

    @property
    def resolved_tag(self) -> str:
        """The tag the projector shows for these features."""
        if self.tag:
            return self.tag
        return f"features ({self.layer})" if self.layer else "features"


def batch_rows(inputs: Any) -> int | None:
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
        batch_rows(value) for value in values if isinstance(value, (torch.Tensor, np.ndarray))
    }
    if len(counts) != 1:
        return None
    return counts.pop()


def slice_rows(inputs: Any, start: int, stop: int, device: torch.device) -> Any:
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(inputs)
    if isinstance(inputs, torch.Tensor):
        return inputs[start:stop].to(device)
    if isinstance(inputs, Mapping):
        return {key: slice_rows(value, start, stop, device) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(slice_rows(value, start, stop, device) for value in inputs)
    return inputs


def first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"the probed output is a {type(output).__name__}, not a tensor (or a tuple starting "
        "with one); probe a layer that returns a tensor with FeatureInputs(layer=...)."
    )


def compute_features(
    trainer: pl.Trainer,
    pl_module: nn.Module,
    probe: FeatureInputs,
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
        layer = find_module(pl_module, probe.layer)

        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            captured.append(first_tensor(output).detach())

        handle = layer.register_forward_hook(hook)
    modes = {module: module.training for module in model.modules()}
    device = getattr(pl_module, "device", torch.device("cpu"))
    outputs: list[torch.Tensor] = []
    forward_context = getattr(trainer.precision_plugin, "forward_context", contextlib.nullcontext)
    try:
        model.eval()
        with torch.no_grad(), forward_context():
            for start in range(0, count, probe.batch_size):
                stop = min(start + probe.batch_size, count)
                batch = slice_rows(probe.inputs, start, stop, device)
                captured.clear()
                if isinstance(batch, Mapping):
                    output = model(**batch)
                elif isinstance(batch, (tuple, list)):
                    output = model(*batch)
                else:
                    output = model(batch)
                result = captured[-1] if probe.layer is not None else first_tensor(output)
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


def feature_request(
    trainer: pl.Trainer,
    pl_module: nn.Module,
    probe: FeatureInputs,
    max_rows: int | None,
    at: tuple[int, str],
    *,
    sharded: bool,
) -> list[SnapshotRequest]:
    """The probe's features at ``at`` = (step, tensor-name suffix), as a request for the sink
    (rank 0; empty elsewhere, and when the probe failed: warned, training goes on)."""
    step, suffix = at
    try:
        features = compute_features(trainer, pl_module, probe, max_rows, sharded)
    except Exception as error:  # never kill training for a visualization
        rank_zero_warn(
            f"EmbeddingProjector skipped {probe.resolved_tag!r} at step {step}: the "
            f"probe failed with {type(error).__name__}: {error}",
            category=RuntimeWarning,
        )
        return []
    if not trainer.is_global_zero or features is None:
        return []
    count = features.shape[0]
    request = SnapshotRequest(
        probe.resolved_tag,
        features,
        labels=head(probe.labels, count),
        header=probe.metadata_header,
        sprites=head(probe.images, count),
        name_suffix=suffix,
        classes=True,  # the same inputs at every step: matched by row, coloured by class
    )
    return [request]


def as_feature_inputs(features: Any) -> FeatureInputs | None:
    if isinstance(features, tuple):
        if not 2 <= len(features) <= 3:
            raise ValueError(
                "features as a tuple must be (inputs, labels) or (inputs, labels, images); "
                f"got {len(features)} items. Use FeatureInputs(...) for more options."
            )
        features = FeatureInputs(*features)
    if features is not None and not isinstance(features, FeatureInputs):
        raise TypeError(f"features must be a FeatureInputs or None; got {type(features).__name__}.")
    return features
