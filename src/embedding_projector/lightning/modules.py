"""Which embedding tables of a model the Lightning callback shows: module lookup.

The lookup itself is torch-only and lives in :mod:`embedding_projector._torch.modules` (the
Hugging Face adapter uses it too); this module adds the Lightning-specific checks.
"""

from __future__ import annotations

from .._torch.modules import (
    Table,
    candidate_text,
    candidates,
    check_per_row,
    clean_name,
    clean_named_modules,
    has_table,
    labels_are_columns,
    match,
    own_two_d,
    resolve_tables,
    table_rows,
    two_d_parameters,
    validate_modules,
)
from ._compat import nn

__all__ = [
    "Table",
    "candidate_text",
    "candidates",
    "check_per_row",
    "clean_name",
    "clean_named_modules",
    "find_module",
    "has_table",
    "is_tensorboard_logger",
    "labels_are_columns",
    "match",
    "overrides",
    "own_two_d",
    "resolve_tables",
    "table_rows",
    "two_d_parameters",
    "validate_modules",
]


def find_module(root: nn.Module, name: str) -> nn.Module:
    modules = clean_named_modules(root)
    if name in modules:
        return modules[name]
    raise ValueError(
        f"FeatureInputs.layer {name!r} is not a module of {type(root).__name__}. Candidates: "
        f"{candidate_text([n for n in modules if n])}."
    )


def overrides(pl_module: nn.Module, method: str) -> bool:
    own = getattr(type(pl_module), method, None)
    for base in type(pl_module).__mro__:
        if base.__module__.split(".")[0] in ("pytorch_lightning", "lightning"):
            return own is not getattr(base, method, None)
    return own is not None


def is_tensorboard_logger(candidate: object) -> bool:
    # Both namespaces (pytorch_lightning, lightning.pytorch) define their own class.
    return any(cls.__name__ == "TensorBoardLogger" for cls in type(candidate).__mro__)
