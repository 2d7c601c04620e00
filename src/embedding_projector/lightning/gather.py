"""Full tables from sharded models: FSDP's units here, FSDP2 / DTensor and DeepSpeed ZeRO-3
through the shared :mod:`embedding_projector._torch.gather`.

The gathers are collectives: every rank enters them, in the same order, when the model is
sharded; rank 0 alone copies what they return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from .._torch.gather import any_sharded, full_tensors
from ._compat import nn, pl, torch
from .modules import Table, clean_name


def is_sharded(trainer: pl.Trainer, pl_module: nn.Module, tables: list[Table]) -> bool:
    """Same answer on every rank: the model's structure decides."""
    return bool(fsdp_units(trainer, pl_module)) or any_sharded(tables)


def fsdp_units(trainer: pl.Trainer, pl_module: nn.Module) -> list[tuple[str, nn.Module]]:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch without distributed
        return []
    wrapper = getattr(trainer.strategy, "model", None)
    root = wrapper if isinstance(wrapper, nn.Module) else pl_module
    return [
        (clean_name(name), module)
        for name, module in root.named_modules()
        if isinstance(module, FullyShardedDataParallel)
    ]


@contextlib.contextmanager
def gathered(
    trainer: pl.Trainer, pl_module: nn.Module, tables: list[Table]
) -> Iterator[Callable[[Table], torch.Tensor]]:
    """Make each table's full parameter available; a collective under sharded strategies.

    Entered on every rank when the model is sharded (FSDP ``summon_full_params``, DeepSpeed
    ``GatheredParameters`` and DTensor ``full_tensor`` are collectives), on rank 0 only
    otherwise. Yields ``fetch(table) -> full tensor`` (valid inside the block).
    """
    with contextlib.ExitStack() as stack:
        units = fsdp_units(trainer, pl_module)
        if units:
            from torch.distributed.fsdp import FullyShardedDataParallel

            for unit in owning_units(units, tables):
                stack.enter_context(
                    FullyShardedDataParallel.summon_full_params(
                        unit, recurse=False, writeback=False
                    )
                )
        yield stack.enter_context(full_tensors(tables))


def owning_units(units: list[tuple[str, nn.Module]], tables: list[Table]) -> list[nn.Module]:
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
