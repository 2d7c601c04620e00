"""Parquet, Arrow IPC and Feather tables (a file or a directory of files), read with pyarrow.

The vectors are a list column (fixed-size or variable-size lists of floats, one list per row);
the labels are one or more scalar columns. Reading goes in record batches: the first pass
reads only the label column (to find ``words`` and ``near`` rows), the rows' vectors are read
batch by batch, and the other columns only for the selected rows, so memory follows the
selection.

Example:
    >>> import pyarrow as pa, pyarrow.parquet as pq, tempfile, os  # doctest: +SKIP
    >>> from embedding_projector.readers.selection import RowSelection  # doctest: +SKIP
    >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")  # doctest: +SKIP
    >>> pq.write_table(pa.table({"emb": [[0.0, 1.0], [1.0, 0.0]], "name": ["a", "b"]}), path)
    ... # doctest: +SKIP
    >>> options = SourceOptions(label_columns=["name"])  # doctest: +SKIP
    >>> select_from_table(path, RowSelection(), options).keys  # doctest: +SKIP
    ['a', 'b']
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import VectorFileError
from .options import SourceOptions
from .rows import SelectedRows, select_rows
from .selection import RowSelection

__all__ = ["TableBlocks", "select_from_table"]

#: Bytes of vectors per record batch (bounds memory while scanning).
BATCH_BYTES = 32 * 1024 * 1024
_TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".arrow": "ipc", ".feather": "ipc"}
_TABLE_SUFFIXES[".ipc"] = "ipc"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading Parquet/Arrow files needs pyarrow: pip install 'embedding-projector[arrow]'"
        ) from error
    return pa, pq


def select_from_table(
    path: str | os.PathLike[str],
    selection: RowSelection | None = None,
    options: SourceOptions | None = None,
) -> SelectedRows:
    """Select rows of a Parquet/Arrow/Feather file or directory.

    Args:
        path: a file, or a directory of files of one format.
        selection: which rows (default: all).
        options: ``vector_column`` (default: the only list column), ``label_columns`` (the
            first one names the rows; default: row numbers), ``metadata_columns`` (True: every
            other scalar column; or a list), ``format`` (``"parquet"`` or ``"arrow"``).

    Raises:
        VectorFileError: unreadable or truncated, a missing column, no (or several) list
            columns, ragged or null vectors.
    """
    selection = selection or RowSelection()
    options = options or SourceOptions()
    table = TableBlocks(Path(os.fspath(path)), options)
    if table.label_columns:
        keys = table.read_key_column()
        key_column = table.label_columns[0]
    else:
        keys, key_column = [str(i) for i in range(len(table))], "row"
    rows = select_rows(
        table, keys, selection, key_column=key_column, unique_keys=not table.label_columns
    )
    if table.extra_columns:
        rows.columns = table.take_columns(np.asarray(rows.ranks, dtype=np.int64))
    rows.source = f"{table.path} ({len(table):,} rows, column {table.vector_column!r})"
    return rows


class TableBlocks:
    """A table's vector column read in record batches (a :class:`~..selection.RowBlocks`)."""

    def __init__(self, path: Path, options: SourceOptions) -> None:
        self.pa, self.pq = _pyarrow()
        self.path = path
        self.format = self._format(path, options.format)
        self.files = self._files(path)
        try:
            self.schema = self._schema(self.files[0])
            self.rows = sum(self._rows(file) for file in self.files)
        except (self.pa.ArrowException, OSError, ValueError) as error:
            raise VectorFileError(
                f"is not a readable {self.format} table ({error}); truncated or corrupt?",
                str(path),
            ) from error
        self.vector_column = self._vector_column(options.vector_column)
        names = self.schema.names
        for name in options.label_columns:
            if name not in names:
                raise self.error(f"has no column {name!r} (label column); columns: {names}")
        self.label_columns = list(options.label_columns)
        self.extra_columns = self.label_columns[1:] + self._metadata_columns(options)
        self.dims = 0
        self.dims = self._dims()
        self.batch_rows = max(256, BATCH_BYTES // (4 * max(self.dims, 1)))

    def error(self, message: str) -> VectorFileError:
        return VectorFileError(message, str(self.path))

    @staticmethod
    def _format(path: Path, requested: str) -> str:
        if requested in ("parquet", "arrow"):
            return "parquet" if requested == "parquet" else "ipc"
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix.lower() in _TABLE_SUFFIXES:
                return _TABLE_SUFFIXES[file.suffix.lower()]
        with open(files[0], "rb") as handle:
            return "parquet" if handle.read(4) == b"PAR1" else "ipc"

    def _files(self, path: Path) -> list[Path]:
        """The table's files in order (a directory: its files of this format, by path)."""
        if not path.is_dir():
            return [path]
        files = [
            file
            for file in sorted(path.rglob("*"))
            if file.is_file()
            and not file.name.startswith((".", "_"))
            and _TABLE_SUFFIXES.get(file.suffix.lower(), self.format) == self.format
        ]
        if not files:
            raise self.error(f"holds no {self.format} files")
        return files

    def _parquet(self, file: Path) -> Any:
        # A buffered stream reads a row group's pages as they are decoded, not all at once.
        return self.pq.ParquetFile(str(file), buffer_size=8 << 20, pre_buffer=False)

    def _ipc(self, file: Path) -> Any:
        source = self.pa.memory_map(str(file))
        try:
            return self.pa.ipc.open_file(source)
        except self.pa.ArrowInvalid:
            return self.pa.ipc.open_stream(self.pa.memory_map(str(file)))

    def _schema(self, file: Path) -> Any:
        return (
            self._parquet(file).schema_arrow if self.format == "parquet" else self._ipc(file).schema
        )

    def _rows(self, file: Path) -> int:
        if self.format == "parquet":
            return int(self._parquet(file).metadata.num_rows)
        reader = self._ipc(file)
        if hasattr(reader, "num_record_batches"):
            return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        return sum(batch.num_rows for batch in reader)

    def _file_batches(self, file: Path, columns: list[str], batch_rows: int) -> Iterator[Any]:
        if self.format == "parquet":
            yield from self._parquet(file).iter_batches(
                batch_size=batch_rows, columns=columns, use_threads=False
            )
            return
        reader = self._ipc(file)
        batches = (
            (reader.get_batch(i) for i in range(reader.num_record_batches))
            if hasattr(reader, "num_record_batches")
            else iter(reader)
        )
        for batch in batches:
            selected = batch.select(columns)
            for start in range(0, batch.num_rows, batch_rows):
                yield selected.slice(start, batch_rows)

    def _is_vector_type(self, kind: Any) -> bool:
        types = self.pa.types
        if not (types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind)):
            return False
        value = kind.value_type
        return bool(types.is_floating(value) or types.is_integer(value))

    def _vector_column(self, requested: str | None) -> str:
        names = self.schema.names
        if requested is not None:
            if requested not in names:
                raise self.error(f"has no column {requested!r} (vector column); columns: {names}")
            if not self._is_vector_type(self.schema.field(requested).type):
                raise self.error(
                    f"column {requested!r} is {self.schema.field(requested).type}; the vector "
                    "column must hold lists of numbers (one per row)"
                )
            return requested
        found = [str(f.name) for f in self.schema if self._is_vector_type(f.type)]
        if len(found) != 1:
            raise self.error(
                f"has {len(found)} columns of number lists ({', '.join(found) or 'none'}); "
                f"name the vectors with vector_column= (--vector-column); columns: {names}"
            )
        return found[0]

    def _metadata_columns(self, options: SourceOptions) -> list[str]:
        used = {self.vector_column, *self.label_columns}
        if options.metadata_columns is True:
            return [
                f.name
                for f in self.schema
                if f.name not in used and not self.pa.types.is_nested(f.type)
            ]
        if options.metadata_columns is False:
            return []
        for name in options.metadata_columns:
            if name not in self.schema.names:
                raise self.error(
                    f"has no column {name!r} (metadata column); columns: {self.schema.names}"
                )
        return [name for name in options.metadata_columns if name not in used]

    def _dims(self) -> int:
        kind = self.schema.field(self.vector_column).type
        if self.pa.types.is_fixed_size_list(kind):
            return int(kind.list_size)
        if self.rows == 0:
            raise self.error("holds no rows")
        for _, block in self._batches([self.vector_column], batch_rows=64):
            return int(self._matrix(block.column(0), 0).shape[1])
        return 0

    def __len__(self) -> int:
        return self.rows

    def _batches(self, columns: list[str], batch_rows: int | None = None) -> Iterator[Any]:
        """``(first row, record batch)`` in table order."""
        start = 0
        file = self.files[0]
        try:
            for file in self.files:
                for batch in self._file_batches(file, columns, batch_rows or self.batch_rows):
                    yield start, batch
                    start += batch.num_rows
        except (self.pa.ArrowException, OSError, ValueError) as error:
            raise VectorFileError(
                f"cannot be read past row {start} ({error}); truncated or corrupt?", str(file)
            ) from error

    def _matrix(self, column: Any, first_row: int) -> npt.NDArray[np.float32]:
        """A batch's list column as an (N, D) float32 matrix; refuses nulls and ragged rows."""
        pa = self.pa
        if column.null_count:
            bad = first_row + int(np.flatnonzero(column.is_null().to_numpy(False))[0])
            raise VectorFileError(
                f"vector column {self.vector_column!r} is null in row {bad}; every row needs a "
                "vector",
                str(self.path),
                row=bad,
            )
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
        else:
            lengths = np.diff(np.asarray(column.offsets))
            width = self.dims or (int(lengths[0]) if len(lengths) else 0)
            uneven = np.flatnonzero(lengths != width)
            if uneven.size:
                bad = int(uneven[0])
                raise VectorFileError(
                    f"vector column {self.vector_column!r} is ragged: row {first_row + bad} has "
                    f"{int(lengths[bad])} values, expected {width}",
                    str(self.path),
                    row=first_row + bad,
                )
        values = column.flatten()
        if values.null_count:
            raise self.error(
                f"vector column {self.vector_column!r} holds null values near row {first_row}"
            )
        flat = values.to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(column), width)

    def blocks(self) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        for start, batch in self._batches([self.vector_column]):
            yield start, self._matrix(batch.column(0), start)

    def take(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out = np.empty((len(indices), self.dims), dtype=np.float32)
        for positions, rows, block in self._gather(indices, [self.vector_column]):
            out[positions] = self._matrix(block.column(0).take(rows), 0)
        return out

    def take_columns(self, indices: npt.NDArray[np.int64]) -> dict[str, list[str]]:
        """The extra label and metadata columns of ``indices``, as text."""
        columns: dict[str, list[str]] = {name: [""] * len(indices) for name in self.extra_columns}
        for positions, rows, block in self._gather(indices, self.extra_columns):
            for name, values in zip(self.extra_columns, block.columns, strict=True):
                texts = ["" if v is None else str(v) for v in values.take(rows).to_pylist()]
                for position, text in zip(positions.tolist(), texts, strict=True):
                    columns[name][position] = text
        return columns

    def _gather(
        self, indices: npt.NDArray[np.int64], columns: list[str]
    ) -> Iterator[tuple[npt.NDArray[np.int64], Any, Any]]:
        """``(positions in indices, row numbers in the batch, batch)`` up to the last index."""
        if not len(indices):
            return
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        last = int(ordered[-1])
        for start, batch in self._batches(columns):
            end = start + batch.num_rows
            low, high = np.searchsorted(ordered, [start, end])
            if high > low:
                rows = self.pa.array(ordered[low:high] - start)
                yield order[low:high], rows, batch
            if end > last:
                break

    def read_key_column(self) -> list[str]:
        """The first label column of every row, as text."""
        keys: list[str] = []
        for _, batch in self._batches(self.label_columns[:1], batch_rows=1 << 16):
            keys.extend("" if v is None else str(v) for v in batch.column(0).to_pylist())
        return keys
