"""Labels as the training adapters hand them over, turned into what the writer takes.

Adapters pass labels in whatever shape their users give them (a list, rows of several
columns with a header, a mapping column name -> values, a tensor or array); the sink turns them
into the writer's form on its own thread, so the training thread only copies references.

Example:
    >>> label_rows({"word": ["a", "b"], "count": [3, 1]}, 2, None)
    ([['a', 3], ['b', 1]], ['word', 'count'])
    >>> label_column([["a", 3], ["b", 1]], ["word", "count"], "count")
    ['3', '1']
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from .._format.metadata import prepare_metadata

__all__ = [
    "LabelColumns",
    "check_labels",
    "label_column",
    "label_count",
    "label_rows",
    "row_numbers",
    "vocabulary_labels",
]


def label_rows(
    labels: Any, rows: int, header: Sequence[str] | None
) -> tuple[Any, Sequence[str] | None]:
    """Labels for the first ``rows`` rows, as the writer takes them (list or rows + header).

    Raises:
        ValueError: fewer labels than rows.
    """
    if labels is None:
        return None, None
    if isinstance(labels, Mapping):
        columns = [list(column)[:rows] for column in labels.values()]
        header = [str(key) for key in labels]
        if len(columns) == 1:
            return columns[0], None
        return [list(row) for row in zip(*columns, strict=True)], header
    if callable(getattr(labels, "tolist", None)):  # a tensor or an array
        labels = labels.tolist()
    items = list(labels)
    if len(items) < rows:
        raise ValueError(
            f"{len(items)} labels for a table of {rows} rows; give one label per row (the "
            "first max_rows are used)."
        )
    return items[:rows], header


@functools.lru_cache(maxsize=8)
def row_numbers(rows: int) -> tuple[str, ...]:
    """``"0" ... "rows - 1"``: the labels of an unlabelled table (the same at every snapshot)."""
    return tuple(str(index) for index in range(rows))


def label_column(labels: Any, header: Sequence[str] | None, column: str | int) -> list[str] | None:
    """One label per row from the writer's labels (a list, or rows of several columns).

    Raises:
        ValueError: ``column`` names no column of ``header``.
    """
    if labels is None:
        return None
    if header is None:  # one column
        return list(map(str, labels))  # C loop: 50,000 labels per epoch
    if isinstance(column, str):
        if column not in header:
            raise ValueError(f"color_column {column!r} is not one of the label columns {header}.")
        column = list(header).index(column)
    return [str(row[column]) for row in labels]


class LabelColumns:
    """:func:`label_column` of each tag's last snapshot, reused while its labels stay equal:
    the sink needs a column for the layout keys and the map every snapshot, and comparing the
    labels is a C loop where building the column is Python per row (one thread only).

    Example:
        >>> columns = LabelColumns()
        >>> rows, header = [["a", 3], ["b", 1]], ["word", "count"]
        >>> columns.get("t", rows, header, 0) is columns.get("t", list(rows), header, 0)
        True
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str | int], tuple[Any, Any, list[str] | None]] = {}

    def get(
        self, tag: str, labels: Any, header: Sequence[str] | None, column: str | int
    ) -> list[str] | None:
        """``label_column(labels, header, column)``, from the cache when nothing changed."""
        cached = self._last.get((tag, column))
        if cached is not None and cached[0] == labels and cached[1] == header:
            return cached[2]
        found = label_column(labels, header, column)
        self._last[(tag, column)] = (labels, None if header is None else list(header), found)
        return found


def label_count(labels: Any) -> int | None:
    """How many rows ``labels`` label (columns of equal length count once); None: unknown."""
    if isinstance(labels, Mapping):
        lengths = {len(values) for values in labels.values()}
        return lengths.pop() if len(lengths) == 1 else None
    try:
        return len(labels)
    except TypeError:
        return None


def check_labels(tag: str, labels: Any, header: Sequence[str] | None, rows: int) -> None:
    """Check at setup, as the writer would at every snapshot, that ``labels`` (in any form a
    :class:`SnapshotRequest` takes) label the first ``rows`` rows of ``tag``.

    Raises:
        ValueError: too few labels, or a header that does not match the columns; the message
            names the table.

    Example:
        >>> check_labels("words", [("a", 1), ("b", 2)], ["word"], 2)
        Traceback (most recent call last):
        ...
        ValueError: labels for 'words': metadata row 0 has 2 columns but the header has 1: ['word'].
    """
    try:
        rows_labels, rows_header = label_rows(labels, rows, header)
        if rows_labels is not None:
            prepare_metadata(rows_labels, rows_header)
    except ValueError as error:
        raise ValueError(f"labels for {tag!r}: {error}") from error


def vocabulary_labels(tokenizer: Any, rows: int) -> dict[str, list[str]]:
    """The first ``rows`` row labels of a tokenizer's embedding: ``token`` and ``special``.

    Example:
        >>> class Tiny:
        ...     all_special_ids = [0]
        ...     def __len__(self): return 2
        ...     def convert_ids_to_tokens(self, ids): return [["[PAD]", "cat"][i] for i in ids]
        >>> vocabulary_labels(Tiny(), 3)["token"]
        ['[PAD]', 'cat', '<row 2: beyond the vocabulary>']
    """
    known = min(len(tokenizer), rows)
    tokens = list(tokenizer.convert_ids_to_tokens(list(range(known))))
    tokens = [
        str(token) if token is not None else f"<row {index}: no token>"
        for index, token in enumerate(tokens)
    ]
    tokens += [f"<row {index}: beyond the vocabulary>" for index in range(known, rows)]
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    return {"token": tokens, "special": ["yes" if i in special else "no" for i in range(rows)]}
