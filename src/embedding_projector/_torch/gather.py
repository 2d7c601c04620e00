"""Full tables from sharded parameters: DTensor (FSDP2, tensor parallel) and DeepSpeed ZeRO-3.

Shared by the Lightning and Hugging Face adapters (Lightning adds FSDP1's
``summon_full_params`` around it). The gathers are collectives: every rank enters them, in
the same order, when a table is sharded; rank 0 alone copies what they return.

Example:
    >>> from torch import nn
    >>> from embedding_projector._torch.modules import Table
    >>> table = Table("tokens", nn.Embedding(3, 2), "weight")
    >>> with full_tensors([table]) as fetch:
    ...     tuple(fetch(table).shape)
    (3, 2)
    >>> any_sharded([table])
    False
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence

import torch

from .modules import Table

__all__ = ["any_sharded", "full_tensors", "is_dtensor"]


def is_dtensor(param: object) -> bool:
    """Whether ``param`` is a ``torch.distributed.tensor.DTensor``."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(param, DTensor)


def any_sharded(tables: Sequence[Table]) -> bool:
    """Whether any table's parameter is a DTensor or a ZeRO-3 parameter (same on every rank)."""
    for table in tables:
        param = getattr(table.module, table.attribute, None)
        if is_dtensor(param) or hasattr(param, "ds_id"):
            return True
    return False


@contextlib.contextmanager
def full_tensors(tables: Sequence[Table]) -> Iterator[Callable[[Table], torch.Tensor]]:
    """Yields ``fetch(table) -> full tensor``, valid inside the block.

    ZeRO-3 parameters are gathered on entry (``GatheredParameters``), a DTensor when fetched
    (``full_tensor``): both are collectives, so every rank fetches the same tables in order.
    """
    zero3 = [
        getattr(table.module, table.attribute)
        for table in tables
        if hasattr(getattr(table.module, table.attribute, None), "ds_id")
    ]
    with contextlib.ExitStack() as stack:
        if zero3:
            deepspeed = importlib.import_module("deepspeed")
            stack.enter_context(deepspeed.zero.GatheredParameters(zero3, modifier_rank=None))

        def fetch(table: Table) -> torch.Tensor:
            tensor = getattr(table.module, table.attribute)
            if is_dtensor(tensor):
                tensor = tensor.full_tensor()  # collective: every rank calls it, same order
            return tensor  # type: ignore[no-any-return]

        yield fetch
