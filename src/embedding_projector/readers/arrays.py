"""NumPy ``.npy`` (memory-mapped) and ``.npz`` arrays, with labels from a text or TSV file.

A ``.npy`` file is memory-mapped: selecting rows reads only those rows (``near`` scans the
file block by block). A ``.npz`` member cannot be mapped (it sits in a zip archive), so the
chosen array is read whole.

Labels (``labels=``) are one per line, or a TSV whose first line is a header: then the first
column names the rows and the others become metadata columns. Without labels, rows are named
by their number.

Example:
    >>> import numpy as np, tempfile, os
    >>> from embedding_projector.readers.selection import RowSelection
    >>> path = os.path.join(tempfile.mkdtemp(), "docs.npy")
    >>> np.save(path, np.eye(5, 3, dtype=np.float32))
    >>> rows = select_from_array_file(path, RowSelection(limit=2))
    >>> rows.key_column, rows.keys
    ('row', ['0', '1'])
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import VectorFileError
from .options import SourceOptions
from .rows import ArrayBlocks, SelectedRows, select_rows
from .selection import RowSelection

__all__ = ["LabelTable", "read_labels_file", "row_labels", "select_from_array_file"]

LabelTable = tuple[str, list[str], dict[str, list[str]]]


def select_from_array_file(
    path: str | os.PathLike[str],
    selection: RowSelection | None = None,
    options: SourceOptions | None = None,
) -> SelectedRows:
    """Select rows of a ``.npy`` (memory-mapped) or ``.npz`` array.

    Args:
        path: the file.
        selection: which rows (default: all).
        options: ``tensor`` (the ``.npz`` member) and ``labels`` (a labels file).

    Raises:
        VectorFileError: not a readable array file, not a 2-D numeric array, a missing
            ``tensor``, or labels that do not match the rows in count.
    """
    selection = selection or RowSelection()
    options = options or SourceOptions()
    file_path = Path(os.fspath(path))
    array = _open_array(file_path, options.tensor)
    check_matrix(array.shape, array.dtype, str(file_path))
    key_column, keys, columns = row_labels(len(array), options.labels, str(file_path))
    rows = select_rows(
        ArrayBlocks(array),
        keys,
        selection,
        columns=columns,
        key_column=key_column,
        unique_keys=options.labels is None,
    )
    rows.source = f"{file_path} ({array.shape[0]:,} x {array.shape[1]} {array.dtype})"
    return rows


def _open_array(path: Path, tensor: str | None) -> npt.NDArray[Any]:
    try:
        if zipfile.is_zipfile(path):
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                name = _pick_member(path, names, tensor)
                return np.asarray(archive[name])
        if tensor is not None:
            raise VectorFileError(
                f"is a .npy file (one array); tensor={tensor!r} applies to .npz archives", str(path)
            )
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except VectorFileError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise VectorFileError(
            f"is not a readable NumPy file: {error} (truncated or corrupt?)", str(path)
        ) from error
    if not isinstance(array, np.ndarray):  # pragma: no cover - np.load of a .npy
        raise VectorFileError("does not hold one array", str(path))
    return array


def _pick_member(path: Path, names: list[str], tensor: str | None) -> str:
    if tensor is not None:
        if tensor not in names:
            raise VectorFileError(
                f"has no array {tensor!r}; it holds: {', '.join(names)}", str(path)
            )
        return tensor
    if len(names) != 1:
        raise VectorFileError(
            f"holds {len(names)} arrays ({', '.join(names)}); pick one with tensor= "
            "(--tensor NAME)",
            str(path),
        )
    return names[0]


def check_matrix(shape: tuple[int, ...], dtype: Any, path: str, what: str = "array") -> None:
    """Refuse what is not a 2-D matrix of numbers.

    Raises:
        VectorFileError: naming the file, the shape or dtype found and what was expected.
    """
    if len(shape) != 2:
        raise VectorFileError(
            f"the {what} has shape {tuple(shape)} ({len(shape)}-D); expected a 2-D matrix "
            "(rows, dims)",
            path,
        )
    kind = np.dtype(dtype).kind if not isinstance(dtype, str) else "f"
    if kind not in "fiub":
        raise VectorFileError(
            f"the {what} holds {np.dtype(dtype)} values; expected numbers (float or int)", path
        )


def row_labels(rows: int, labels: str | None, source: str) -> LabelTable:
    """``(key column, keys, other columns)`` for ``rows`` rows: a labels file, or row numbers.

    Raises:
        VectorFileError: the labels file does not have one label per row.
    """
    if labels is None:
        return "row", [str(i) for i in range(rows)], {}
    key_column, keys, columns = read_labels_file(labels)
    if len(keys) != rows:
        raise VectorFileError(
            f"holds {rows:,} rows but the labels file {labels} has {len(keys):,} labels; pass "
            "a labels file with one label per row (a TSV: one line per row after the header)",
            source,
        )
    return key_column, keys, columns


def read_labels_file(path: str | os.PathLike[str]) -> LabelTable:
    """Read labels: one per line, or a TSV with a header line (first column = the label).

    Raises:
        VectorFileError: missing, unreadable, not UTF-8, or a TSV row with the wrong number of
            fields.
    """
    file_path = Path(os.fspath(path))
    try:
        text = file_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise VectorFileError("labels file: no such file", str(file_path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise VectorFileError(f"labels file cannot be read ({error})", str(file_path)) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines or "\t" not in lines[0]:
        return "label", lines, {}
    header = lines[0].split("\t")
    columns: list[list[str]] = [[] for _ in header]
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise VectorFileError(
                f"labels file line {number} has {len(fields)} tab-separated fields; the header "
                f"has {len(header)}",
                str(file_path),
            )
        for column, value in zip(columns, fields, strict=True):
            column.append(value)
    return header[0], columns[0], dict(zip(header[1:], columns[1:], strict=True))
