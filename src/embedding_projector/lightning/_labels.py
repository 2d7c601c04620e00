"""The Lightning callback's ``labels`` argument: its accepted forms, the setup-time checks
against the tables, and the labels of one table at a snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..sink import check_labels
from ..sink._followed_rows import ProbeRow, check_probe_rows, resolve_probe_rows
from ..sink._labels import label_column, label_rows
from ._compat import rank_zero_warn
from .modules import Table, check_per_row, labels_are_columns, table_rows

__all__ = [
    "check_labels_and_sprites",
    "check_labels_type",
    "check_probe_rows_arg",
    "labels_for",
    "resolve_table_probes",
]


def check_labels_type(labels: Any) -> None:
    """A list, a 1-D/2-D array or tensor, a mapping or a callable (or ``None``).

    Raises:
        TypeError: anything else (a plain string included).
    """
    if isinstance(labels, (str, bytes)) or (
        labels is not None
        and not (callable(labels) or isinstance(labels, (Sequence, Mapping)))
        and getattr(labels, "ndim", None) not in (1, 2)
    ):
        raise TypeError(
            "labels must be a list, a 1-D or 2-D array or tensor, a mapping tag -> labels, "
            f"or a callable tag -> labels; got {type(labels).__name__}."
        )


def check_labels_and_sprites(
    labels: Any,
    sprites: Any,
    tables: list[Table],
    max_rows: int | None,
) -> bool:
    """Labels and sprites fit the tables (count, columns): checked at setup.

    Returns:
        Whether ``labels`` is a mapping of columns for the model's one table (rather than a
        mapping tag -> labels).

    Raises:
        ValueError: the message names the table and what does not fit.
    """
    as_columns = labels_are_columns(labels, tables, max_rows)
    for what, given in (("labels", labels), ("sprites", sprites)):
        if what == "labels" and as_columns:
            given = {tables[0].tag: given}
        check_per_row(what, given, tables, max_rows)
    for table in tables:
        spec = labels_for(labels, table.tag, as_columns=as_columns, call=False)
        rows = table_rows(table, max_rows)
        if spec is not None and not callable(spec) and rows is not None:
            check_labels(table.tag, spec, None, rows)
    return as_columns


def labels_for(labels: Any, tag: str, *, as_columns: bool, call: bool = True) -> Any:
    """The labels of table ``tag``; a callable is called (a failure: a warning and ``None``,
    so the table gets its row numbers and training goes on)."""
    spec: Any = labels
    if isinstance(spec, Mapping) and not as_columns:
        spec = spec.get(tag)
    if callable(spec) and call:
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


def check_probe_rows_arg(
    value: Any,
) -> tuple[ProbeRow, ...] | dict[str, tuple[ProbeRow, ...]] | None:
    """``probe_rows``: a list of row indices / labels for every table, or a mapping tag -> list.

    Raises:
        TypeError: anything else (the message says what an entry must be).
    """
    if isinstance(value, Mapping):
        found: dict[str, tuple[ProbeRow, ...]] = {}
        for tag, rows in value.items():
            if not isinstance(tag, str):
                raise TypeError(f"probe_rows keys must be table tags (str); got {tag!r}.")
            found[tag] = check_probe_rows(rows, f"probe_rows[{tag!r}]") or ()
        return found
    return check_probe_rows(value)


def resolve_table_probes(
    probe_rows: tuple[ProbeRow, ...] | Mapping[str, tuple[ProbeRow, ...]] | None,
    tables: list[Table],
    labels: Any,
    *,
    as_columns: bool,
    max_rows: int | None,
) -> dict[str, tuple[int, ...]]:
    """tag -> the row indices each snapshot of that table marks as probes (checked at setup:
    labels are looked up in the table's first label column, the keys the layouts align by).

    Raises:
        ValueError: a tag that names no table, an index out of range, an unknown label.
    """
    if not probe_rows:
        return {}
    tags = [table.tag for table in tables]
    if isinstance(probe_rows, Mapping):
        unknown = sorted(tag for tag in probe_rows if tag not in tags)
        if unknown:
            raise ValueError(
                f"probe_rows names {', '.join(map(repr, unknown))}, but the tables are "
                f"{', '.join(map(repr, sorted(tags)))}."
            )
    found: dict[str, tuple[int, ...]] = {}
    for table in tables:
        rows = probe_rows.get(table.tag) if isinstance(probe_rows, Mapping) else probe_rows
        written = table_rows(table, max_rows)
        if not rows or written is None:
            continue
        column = None
        if any(isinstance(row, str) for row in rows):
            spec = labels_for(labels, table.tag, as_columns=as_columns)
            column = label_column(*label_rows(spec, written, None), 0)
        found[table.tag] = resolve_probe_rows(table.tag, rows, written, column)
    return found
