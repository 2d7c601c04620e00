"""Streaming word2vec (binary or text) and GloVe rows in blocks.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.vec")
    >>> with open(path, "w") as f:
    ...     _ = f.write("2 2\\nthe 0.1 0.2\\nof 0.3 0.4\\n")
    >>> [block.words for block in VectorFileReader(path).blocks()]
    [['the', 'of']]
"""

from __future__ import annotations

import codecs
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..errors import VectorFileError
from ._files import (
    DEFAULT_BUFFER_SIZE,
    MAX_WORD_BYTES,
    _Stream,
    inspect_vector_file,
)

__all__ = ["ProgressCallback", "RowBlock", "VectorFileReader"]

logger = logging.getLogger(__name__)

#: Text rows parsed per block.
TEXT_BLOCK_ROWS = 4096

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass
class RowBlock:
    """Consecutive rows of a vector file, parsed lazily: words now, vectors on request.

    Attributes:
        first_row: 0-based row number of the first row in the file (duplicates counted).
        words: the decoded words.
        offsets: byte offset of each row in the (uncompressed) file.
    """

    first_row: int
    words: list[str]
    offsets: list[int]
    dims: int
    path: str
    _buffer: bytes = b""
    _vector_starts: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    _text_values: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)

    def matrix(
        self,
        rows: Sequence[int] | None = None,
        out: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """The vectors of ``rows`` (positions in this block; all rows when None), float32.

        Args:
            rows: positions in this block (all rows when None).
            out: a C-contiguous ``(len(rows), dims)`` float32 array to fill and return (the
                rows then go straight to their final place: no second copy).

        Raises:
            VectorFileError: a text row with a value that is not a number, or NaN/Inf.
        """
        positions = range(len(self.words)) if rows is None else rows
        if not positions:
            return np.zeros((0, self.dims), dtype=np.float32) if out is None else out
        if self._text_values:
            matrix = self._text_matrix(positions)
            if out is not None:
                out[...] = matrix
                matrix = out
        else:
            matrix = self._binary_matrix(positions, out)
        if not (np.isfinite(matrix.min()) and np.isfinite(matrix.max())):  # NaN/Inf show there
            finite = np.isfinite(matrix).all(axis=1)
            bad = list(positions)[int(np.flatnonzero(~finite)[0])]
            raise VectorFileError(
                f"the vector of {self.words[bad]!r} contains NaN or Inf",
                self.path,
                row=self.first_row + bad,
                offset=self.offsets[bad],
            )
        return matrix

    def _binary_matrix(
        self, positions: Sequence[int], out: npt.NDArray[np.float32] | None
    ) -> npt.NDArray[np.float32]:
        """Gather vectors at arbitrary byte offsets in one C-level call.

        The buffer is viewed as overlapping windows of ``4 * dims`` bytes (a strided view, no
        copy); picking the windows that start at the rows' vectors copies exactly those bytes,
        which are then viewed as little-endian float32.
        """
        starts = self._vector_starts
        if positions != range(len(starts)):
            starts = starts[np.asarray(positions, dtype=np.int64)]
        data = np.frombuffer(self._buffer, dtype=np.uint8)
        windows = np.lib.stride_tricks.sliding_window_view(data, 4 * self.dims)
        matrix = windows[starts].view("<f4")
        matrix = matrix if matrix.dtype == np.float32 else matrix.astype(np.float32)
        if out is not None:
            out[...] = matrix
            return out
        return matrix

    def _text_matrix(self, positions: Iterable[int]) -> npt.NDArray[np.float32]:
        chosen = list(positions)
        try:
            values = np.array(b" ".join([self._text_values[p] for p in chosen]).split())
            return values.astype(np.float32).reshape(len(chosen), self.dims)
        except ValueError:
            pass
        for position in chosen:  # find the culprit
            try:
                np.array(self._text_values[position].split()).astype(np.float32)
            except ValueError as error:
                raise VectorFileError(
                    f"row of {self.words[position]!r} has a value that is not a number ({error})",
                    self.path,
                    row=self.first_row + position,
                    offset=self.offsets[position],
                ) from None
        raise AssertionError("unreachable: a row failed to parse but none does alone")


def _all_numbers(fields: Sequence[bytes]) -> bool:
    """True if every field reads as a number (then extra fields are values, not a word)."""
    try:
        for value in fields:
            float(value)
    except ValueError:
        return False
    return True


def _binary_row_bounds(
    buffer: bytes, width: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Where the complete binary rows of ``buffer`` start and where their words end.

    Returns ``(word starts, word-ending spaces, end of the last complete row)``. A row is
    ``word SPACE <width bytes>``, optionally preceded by newlines (word2vec.c writes one after
    each vector); those are skipped afterwards, all rows at once. A word that is empty after
    that shows up as ``start >= space``.
    """
    find = buffer.find
    size = len(buffer)
    word_starts: list[int] = []
    spaces: list[int] = []
    add_start, add_space = word_starts.append, spaces.append
    position = 0
    while True:
        space = find(b" ", position)
        if space < 0 or space + 1 + width > size:
            break
        add_start(position)
        add_space(space)
        position = space + 1 + width
    starts = np.asarray(word_starts, dtype=np.int64)
    ends = np.asarray(spaces, dtype=np.int64)
    if starts.size:
        data = np.frombuffer(buffer, dtype=np.uint8)
        newline = (data[np.minimum(starts, size - 1)] == 10) & (starts < ends)
        while newline.any():
            starts[newline] += 1
            newline = (data[np.minimum(starts, size - 1)] == 10) & (starts < ends)
    return starts, ends, position


class VectorFileReader:
    """Streams the rows of a word2vec (binary/text) or GloVe file in blocks.

    Args:
        path: the file (``.gz``/``.bz2`` are decompressed on the fly, found by magic bytes).
        format: ``"auto"``, ``"word2vec"`` or ``"glove"``.
        binary: word2vec binary rows; None sniffs them.
        encoding: the words' encoding.
        unicode_errors: what to do with undecodable bytes in words (``"strict"``,
            ``"replace"``, ``"ignore"``, like gensim).
        buffer_size: bytes per read.
        progress: called with (bytes of the file read so far, file size) after each block.

    Example:
        >>> reader = VectorFileReader("vectors.bin")  # doctest: +SKIP
        >>> for block in reader.blocks():  # doctest: +SKIP
        ...     print(block.first_row, block.words[:3], block.matrix().shape)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: Literal["auto", "word2vec", "glove"] = "auto",
        binary: bool | None = None,
        encoding: str = "utf-8",
        unicode_errors: str = "strict",
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        progress: ProgressCallback | None = None,
    ) -> None:
        try:
            codecs.lookup(encoding)
            codecs.lookup_error(unicode_errors)
        except LookupError as error:
            raise ValueError(f"unknown encoding or error handler: {error}") from None
        self.info = inspect_vector_file(path, format=format, binary=binary)
        # Strict UTF-8 words can be decoded a block at a time (and split on "\n" again).
        self._batch_decode = codecs.lookup(encoding).name == "utf-8" and unicode_errors == "strict"
        self.path = str(self.info.path)
        self.encoding = encoding
        self.unicode_errors = unicode_errors
        self.buffer_size = max(1, int(buffer_size))
        self.progress = progress
        #: Rows read in the last complete pass (None until a pass reached the end).
        self.rows_in_file: int | None = None
        #: Things worth telling the user (header disagreeing with the body, ...).
        self.notes: list[str] = []
        self._progress_base = 0
        self._spaced_words = 0

    def blocks(self) -> Iterator[RowBlock]:
        """One pass over the rows; stop iterating early to read less of the file."""
        with _Stream(self.info.path, self.info.compression) as stream:
            if self.info.data_offset:
                stream.readline()
            if self.info.binary:
                yield from self._binary_blocks(stream)
            else:
                yield from self._text_blocks(stream)

    def _report(self, stream: _Stream) -> None:
        if self.progress is not None:
            self.progress(self._progress_base + stream.raw_position(), self.info.size)

    def _decode(self, raw: bytes, row: int, offset: int) -> str:
        try:
            return raw.decode(self.encoding, self.unicode_errors)
        except UnicodeDecodeError as error:
            raise VectorFileError(
                f"word {raw[:40]!r} is not valid {self.encoding} ({error.reason}); pass "
                "unicode_errors='replace' or 'ignore' to read it anyway, or check that the "
                "header's dimension count is right",
                self.path,
                row=row,
                offset=offset,
            ) from None

    def _decode_words(self, raws: list[bytes], first_row: int, offsets: list[int]) -> list[str]:
        """Decode a block's words: all at once when that is safe, one by one otherwise."""
        if self._batch_decode and raws:
            try:
                words = b"\n".join(raws).decode(self.encoding).split("\n")
            except UnicodeDecodeError:
                pass
            else:
                if len(words) == len(raws):
                    return words
        return [self._decode(raw, first_row + i, offsets[i]) for i, raw in enumerate(raws)]

    def _note_spaced_word(self, raw: bytes) -> None:
        """Tell the user (once per file) that words with spaces were read as such."""
        self._spaced_words += 1
        if self._spaced_words == 1:
            note = (
                f"{self.info.path.name}: some words contain spaces (e.g. {raw[:40]!r}); read "
                f"as the text before the last {self.info.dims} values of their row"
            )
            self.notes.append(note)
            logger.info("%s", note)

    def _finish(self, rows: int) -> None:
        self.rows_in_file = rows
        header = self.info.header_rows
        if rows == 0:
            raise VectorFileError("holds no vectors", self.path, offset=self.info.data_offset)
        if header is not None and header != rows:
            note = f"{self.info.path.name}: header announces {header} rows, the file holds {rows}"
            if note not in self.notes:
                self.notes.append(note)
                logger.warning("%s; using the %d rows found", note, rows)

    def _binary_blocks(self, stream: _Stream) -> Iterator[RowBlock]:
        dims = self.info.dims
        width = 4 * dims
        header_rows = self.info.header_rows or 0
        buffer = b""
        base = stream.offset  # file offset of buffer[0]
        row = 0
        at_end = False
        while not at_end:
            chunk = stream.read(self.buffer_size)
            at_end = not chunk
            buffer += chunk
            word_starts, spaces, position = _binary_row_bounds(buffer, width)
            empty = np.flatnonzero(word_starts >= spaces)
            if empty.size:
                raise VectorFileError(
                    "empty word (misaligned rows: is the header's dimension count right?)",
                    self.path,
                    row=row + int(empty[0]),
                    offset=base + int(word_starts[empty[0]]),
                )
            raws = [buffer[a:b] for a, b in zip(word_starts.tolist(), spaces.tolist(), strict=True)]
            starts = spaces + 1
            offsets = (word_starts + base).tolist()
            words = self._decode_words(raws, row, offsets)
            row += len(raws)
            self._report(stream)
            if words:
                yield RowBlock(row - len(words), words, offsets, dims, self.path, buffer, starts)
            if len(buffer) - position > MAX_WORD_BYTES + width and buffer.find(b" ", position) < 0:
                raise VectorFileError(
                    f"no word separator in {len(buffer) - position} bytes: not word2vec binary "
                    "rows, or the header is wrong",
                    self.path,
                    row=row,
                    offset=base + position,
                )
            base += position
            buffer = buffer[position:]
        tail = buffer.strip(b"\r\n\t ")
        if tail:
            if header_rows and row >= header_rows:
                note = (
                    f"{self.info.path.name}: ignored {len(buffer)} bytes after the "
                    f"{header_rows} rows the header announces (not a complete row)"
                )
                self.notes.append(note)
                logger.warning("%s", note)
            else:
                raise VectorFileError(
                    f"file ends in the middle of a row: {len(buffer)} bytes left where a word, "
                    f"a space and {width} bytes of {dims} float32 values were expected "
                    "(truncated file?)",
                    self.path,
                    row=row,
                    offset=base,
                )
        self._finish(row)

    def _text_blocks(self, stream: _Stream) -> Iterator[RowBlock]:
        dims = self.info.dims
        row = 0
        while True:
            words: list[str] = []
            offsets: list[int] = []
            values: list[bytes] = []
            first_row = row
            at_end = False
            while len(words) < TEXT_BLOCK_ROWS:
                offset = stream.offset
                line = stream.readline()
                if not line:
                    at_end = True
                    break
                stripped = line.rstrip()
                if not stripped:
                    continue  # blank lines (often at the end)
                space = stripped.find(b" ")
                raw_word, raw_values = stripped[:space], stripped[space + 1 :]
                if stripped.count(b" ") != dims:
                    parts = stripped.split()
                    if len(parts) > dims + 1 and not _all_numbers(parts[1 : len(parts) - dims]):
                        # A word with spaces (glove.840B has ". . ." and "at name@domain.com"):
                        # the vector is the last ``dims`` fields, the word all before them.
                        raw_word = stripped.rsplit(None, dims)[0].strip()
                        raw_values = b" ".join(parts[len(parts) - dims :])
                        self._note_spaced_word(raw_word)
                    elif len(parts) != dims + 1:
                        found = len(parts) - 1
                        raise VectorFileError(
                            f"row has {found} values, expected {dims} (as the "
                            f"{'header' if self.info.header_rows is not None else 'first row'} "
                            "says); mixed dimensions or a truncated line",
                            self.path,
                            row=row,
                            offset=offset,
                        )
                    else:
                        raw_word, raw_values = parts[0], b" ".join(parts[1:])
                words.append(self._decode(raw_word, row, offset))
                offsets.append(offset)
                values.append(raw_values)
                row += 1
            self._report(stream)
            if words:
                yield RowBlock(first_row, words, offsets, dims, self.path, _text_values=values)
            if at_end:
                break
        self._finish(row)
