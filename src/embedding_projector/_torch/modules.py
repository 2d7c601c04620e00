"""Which embedding tables of a torch model an adapter shows: module lookup (torch only).

Shared by the Lightning and Hugging Face adapters.

Names, glob patterns and parameter paths resolve against the model's modules with wrapper
components (FSDP, activation checkpointing, ``torch.compile``) removed from their paths.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    >>> [(tag, attribute) for tag, _, attribute in match("0", clean_named_modules(model))]
    [('0', 'weight')]
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..sink._labels import label_count

logger = logging.getLogger(__name__)

#: Module-path components added by wrappers (FSDP, activation checkpointing, torch.compile).
_WRAPPER_COMPONENTS = frozenset(
    {"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod", "_forward_module"}
)
_CANDIDATES_IN_MESSAGE = 20


@dataclass
class Table:
    """One embedding table: looked up through its module at every snapshot.

    The parameter object itself is not kept: FSDP swaps a module's parameters for views of a
    gathered flat parameter only inside ``summon_full_params``.
    """

    tag: str
    module: nn.Module
    attribute: str


def check_limit(limit: Any) -> None:
    """A callback's ``limit=`` (rows written per table): ``None`` or an integer >= 2."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int or None; got {limit!r}.")
    if limit < 2:
        raise ValueError(f"limit must be >= 2 (the projector needs 2 rows); got {limit}.")


def validate_modules(modules: Any) -> str | tuple[str, ...]:
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


def clean_name(name: str) -> str:
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_COMPONENTS)


def clean_named_modules(root: nn.Module) -> dict[str, nn.Module]:
    """Module path (without wrapper components) -> innermost module of that path."""
    found: dict[str, nn.Module] = {}
    for name, module in root.named_modules(remove_duplicate=False):
        found[clean_name(name)] = module  # parents come first; the wrapped module wins
    return found


def own_two_d(module: nn.Module) -> list[str]:
    return [
        name
        for name, param in module.named_parameters(recurse=False, remove_duplicate=False)
        if param.dim() == 2
    ]


def two_d_parameters(modules: dict[str, nn.Module]) -> list[str]:
    return [
        f"{name}.{attribute}" if name else attribute
        for name, module in modules.items()
        for attribute in own_two_d(module)
    ]


def candidates(modules: dict[str, nn.Module]) -> list[str]:
    embeddings = [
        name
        for name, module in modules.items()
        if name and isinstance(module, (nn.Embedding, nn.EmbeddingBag))
    ]
    return embeddings + [name for name in two_d_parameters(modules) if name not in embeddings]


def candidate_text(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(map(repr, names[:_CANDIDATES_IN_MESSAGE]))
    more = len(names) - _CANDIDATES_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def match(
    request: str, modules: dict[str, nn.Module], check_shapes: bool = True
) -> list[tuple[str, nn.Module, str]]:
    """Resolve one ``modules`` entry to (tag, module, attribute) triples."""
    if request in modules and request:
        module = modules[request]
        if has_table(module, "weight", check_shapes):
            return [(request, module, "weight")]
        owned = own_two_d(module)
        if len(owned) == 1:
            return [(request, module, owned[0])]
        raise ValueError(
            f"modules entry {request!r} is a {type(module).__name__} without a single 2-D "
            f"weight to show (2-D parameters: {candidate_text(owned)}); name a parameter "
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
            and has_table(module, "weight", check_shapes)
        ):
            matches.append((name, module, "weight"))
    for name, module in modules.items():
        for attribute in own_two_d(module):
            path = f"{name}.{attribute}" if name else attribute
            if fnmatch.fnmatchcase(path, request):
                matches.append((path, module, attribute))
    return matches


def has_table(module: nn.Module, attribute: str, check_shapes: bool = True) -> bool:
    param = getattr(module, attribute, None)
    return isinstance(param, torch.Tensor) and (param.dim() == 2 or not check_shapes)


def resolve_tables(
    pl_module: nn.Module,
    requests: str | tuple[str, ...],
    *,
    features_given: bool,
    check_shapes: bool = True,
) -> list[Table]:
    """The tables ``requests`` (``"auto"`` or names/patterns/paths) name; tied ones once.

    Raises:
        ValueError: a request matches nothing (the message lists candidates).
    """
    modules = clean_named_modules(pl_module)
    tables: list[Table] = []
    seen: dict[int, str] = {}

    def add(tag: str, module: nn.Module, attribute: str) -> None:
        key = id(getattr(module, attribute, None))
        if key in seen:
            logger.info("%r is the same tensor as %r (tied); snapshot once", tag, seen[key])
            return
        seen[key] = tag
        tables.append(Table(tag, module, attribute))

    if requests == "auto":
        for name, module in modules.items():
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                add(name or type(module).__name__, module, "weight")
        if not tables and not features_given:
            raise ValueError(
                f"{type(pl_module).__name__} has no nn.Embedding or nn.EmbeddingBag; name "
                "the tables to snapshot with modules=[...] (2-D parameters: "
                f"{candidate_text(two_d_parameters(modules))})."
            )
        return tables
    for request in requests:
        matches = match(request, modules, check_shapes)
        if not matches:
            raise ValueError(
                f"modules entry {request!r} matches no module or 2-D parameter of "
                f"{type(pl_module).__name__}. Candidates: "
                f"{candidate_text(candidates(modules))}."
            )
        for tag, module, attribute in matches:
            add(tag, module, attribute)
    return tables


def table_rows(table: Table, max_rows: int | None) -> int | None:
    """Rows of ``table`` a snapshot writes (``None``: not a 2-D tensor yet)."""
    param = getattr(table.module, table.attribute, None)
    if not isinstance(param, torch.Tensor) or param.dim() != 2:
        return None
    rows = int(param.shape[0])
    return rows if max_rows is None else min(rows, max_rows)


def labels_are_columns(labels: Any, tables: list[Table], max_rows: int | None) -> bool:
    """Whether a ``labels`` mapping is the columns of a model's only table rather than a
    mapping tag -> labels: no key names a table, and every value has one label per written
    row of that table (``{"word": [...], "count": [...]}``). With several tables a mapping
    is always tag -> labels (:func:`check_per_row` says how to nest columns)."""
    if not isinstance(labels, Mapping) or len(tables) != 1 or tables[0].tag in labels:
        return False
    length = _column_lengths(labels)
    table = tables[0]
    param = getattr(table.module, table.attribute, None)
    needed = table_rows(table, max_rows)
    if length is None or needed is None or not isinstance(param, torch.Tensor):
        return False
    if needed <= length <= int(param.shape[0]):
        logger.info("labels %s read as the columns of %r", sorted(map(str, labels)), table.tag)
        return True
    return False


def _column_lengths(labels: Mapping[Any, Any]) -> int | None:
    """The common length when every value looks like a column (a sized, non-text sequence)."""
    lengths = set()
    for value in labels.values():
        if isinstance(value, (str, bytes, Mapping)) or callable(value):
            return None
        try:
            lengths.add(len(value))
        except TypeError:
            return None
    return lengths.pop() if len(lengths) == 1 else None


def check_per_row(what: str, given: Any, tables: list[Table], max_rows: int | None) -> None:
    """``labels``/``sprites`` name only known tags and have one entry per written row.

    Raises:
        ValueError: an unknown tag, or a count that does not fit the table.
    """
    tags = {table.tag for table in tables}
    if isinstance(given, Mapping) and tags:
        unknown = sorted(str(key) for key in given if key not in tags)
        if unknown:
            hint = ""
            if what == "labels" and _column_lengths(given) is not None:
                first = sorted(tags)[0]
                hint = (
                    " If these are label columns, nest them under their table: "
                    f"labels={{{first!r}: {{{', '.join(f'{key!r}: ...' for key in unknown)}}}}}."
                )
            raise ValueError(
                f"{what} names {', '.join(map(repr, unknown))}, but the tables are "
                f"{', '.join(map(repr, sorted(tags)))}.{hint}"
            )
    for table in tables:
        spec = given.get(table.tag) if isinstance(given, Mapping) else given
        param = getattr(table.module, table.attribute, None)
        if (
            spec is None
            or callable(spec)
            or isinstance(spec, str)  # sprites="glyphs": drawn from the labels
            or not isinstance(param, torch.Tensor)
        ):
            continue
        count = label_count(spec) if what == "labels" else len(spec)
        rows = int(param.shape[0]) if param.dim() == 2 else None
        if count is None or rows is None:
            continue
        needed = rows if max_rows is None else min(rows, max_rows)
        if not needed <= count <= rows:
            raise ValueError(
                f"{what} for {table.tag!r} have {count} entries but the table has {rows} "
                f"rows ({needed} written); give one per row."
            )
