"""Probe rows: the rows of a table a training adapter follows.

The Lightning and Hugging Face callbacks take ``probe_rows=``: row indices (ints) or labels
(strings, matched against the table's first label column: the same keys the sink aligns
layouts by). They become :attr:`SnapshotRequest.probes
<embedding_projector.sink.SnapshotRequest>`: highlighted on the maps, tabulated with their
nearest neighbours, and followed across steps in ``<tag> · trajectory`` with
``InsightOptions(trajectory=True)``. Checked at construction (types) and before training
(ranges, labels), so a typo fails before the first epoch.

Example:
    >>> rows = check_probe_rows(["cat", 3])
    >>> resolve_probe_rows("words", rows, 5, ["dog", "cat", "cow", "hen", "pig"])
    (1, 3)
    >>> try:
    ...     resolve_probe_rows("words", ("cta",), 5, ["dog", "cat", "cow", "hen", "pig"])
    ... except ValueError as error:
    ...     print(str(error).split(".")[-2])
     Close labels: 'cat'
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ProbeRow", "check_probe_rows", "resolve_probe_rows", "trajectory_without_probes"]

#: One probe row: a row index or a label.
ProbeRow = int | str


def check_probe_rows(value: Any, what: str = "probe_rows") -> tuple[ProbeRow, ...] | None:
    """``value`` as a tuple of row indices and labels (``None`` stays ``None``).

    Raises:
        TypeError: not a list of ints and strings (a plain string, a bool, a float ...).

    Example:
        >>> check_probe_rows(("king", 7))
        ('king', 7)
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        hint = " (wrap one label in a list)" if isinstance(value, str) else ""
        raise TypeError(
            f"{what} must be a list of row indices (int) or labels (str); got "
            f"{type(value).__name__}{hint}."
        )
    rows: list[ProbeRow] = []
    for item in value:
        if isinstance(item, str):
            rows.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            rows.append(int(item))
        else:
            raise TypeError(
                f"{what} entries must be row indices (int) or labels (str); got {item!r}."
            )
    return tuple(rows)


def resolve_probe_rows(
    tag: str, rows: Sequence[ProbeRow], written: int, column: Sequence[Any] | None
) -> tuple[int, ...]:
    """Row indices of ``rows`` in table ``tag`` (first occurrence of a label; duplicates once).

    Args:
        tag: the table (named in errors).
        rows: indices and labels from :func:`check_probe_rows`.
        written: rows each snapshot of the table writes (``max_rows`` applied).
        column: the table's first label column (``None``: no labels).

    Raises:
        ValueError: an index outside ``0 .. written - 1``, a label the table does not have
            (close labels suggested), or a label for a table without labels.
    """
    found: list[int] = []
    index: dict[str, int] | None = None
    for row in rows:
        if isinstance(row, int):
            if not 0 <= row < written:
                raise ValueError(
                    f"probe_rows for {tag!r}: row {row} is out of range; each snapshot writes "
                    f"rows 0 to {written - 1} (raise max_rows to follow later rows)."
                )
            found.append(row)
            continue
        if column is None:
            raise ValueError(
                f"probe_rows for {tag!r}: {row!r} is a label, but {tag!r} has no labels; give "
                "row indices, or labels for the table."
            )
        if index is None:
            index = {}
            for position, label in enumerate(column[:written]):
                index.setdefault(str(label), position)
        if row not in index:
            close = difflib.get_close_matches(row, list(index), n=3)
            hint = f" Close labels: {', '.join(map(repr, close))}." if close else ""
            for form in ("NFC", "NFD", "NFKC"):  # labels match byte-exact; say when a form would
                variant = unicodedata.normalize(form, row)
                if variant != row and variant in index:
                    hint = f" The table has {variant!r}: the same text in Unicode {form}."
                    break
            raise ValueError(
                f"probe_rows for {tag!r}: {row!r} is not a label of its {written} written rows "
                f"(first label column).{hint}"
            )
        found.append(index[row])
    return tuple(dict.fromkeys(found))


def trajectory_without_probes(owner: str) -> ValueError:
    """The error for ``InsightOptions(trajectory=True)`` with no ``probe_rows``.

    Example:
        >>> str(trajectory_without_probes("X")).startswith("X: InsightOptions(trajectory=True)")
        True
    """
    return ValueError(
        f"{owner}: InsightOptions(trajectory=True) follows the probe rows, but probe_rows is "
        "empty; name the rows to follow, e.g. probe_rows=['king', 'queen'] (labels) or "
        "probe_rows=[0, 42] (row indices)."
    )
