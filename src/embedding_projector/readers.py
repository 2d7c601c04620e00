"""Read pretrained word vectors without loading what you will not show.

Word2vec files (binary or text, with the ``"<rows> <dims>"`` header line), GloVe text (no
header) and their ``.gz``/``.bz2`` versions are parsed here, streamed: :class:`VectorFileReader`
yields blocks of rows, and :func:`select_from_file` keeps only the rows a selection asks for,
so memory follows the selection, not the file. fastText ``.bin`` files and saved gensim
objects are loaded through gensim (:func:`load_with_gensim`).

The parsers accept the mess real files contain, like gensim's ``load_word2vec_format``: header
counts that disagree with the body, trailing spaces, CRLF line ends, a newline after each
binary vector, undecodable bytes in words (``unicode_errors``) and duplicate words (the first
one wins; the others are reported). What cannot be read — a truncated row, a row with the wrong
number of values, a file that is not what it claims — raises
:class:`~embedding_projector.errors.VectorFileError` with the file and the row and byte offset.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.vec")
    >>> with open(path, "w") as f:
    ...     _ = f.write("3 2\\nthe 0.1 0.2\\nof 0.3 0.4\\nking 0.5 0.6\\n")
    >>> rows = select_from_file(path, words=["king", "queen"])
    >>> rows.keys, rows.missing, rows.matrix.shape
    (['king'], ['queen'], (1, 2))
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import VectorFileError
from .selection import (
    REASON_NEAR_PREFIX,
    REASON_SAMPLE,
    REASON_TOP,
    REASON_WORD,
    NeighborSearch,
    SampleReservoir,
    as_word_list,
    check_count,
    unique_in_order,
)

__all__ = [
    "FORMATS",
    "RowBlock",
    "SelectedRows",
    "VectorFileInfo",
    "VectorFileReader",
    "detect_format",
    "inspect_vector_file",
    "load_with_gensim",
    "select_from_file",
]

logger = logging.getLogger(__name__)

Format = Literal["auto", "word2vec", "glove", "fasttext", "keyedvectors"]
#: The values of ``format``.
FORMATS: tuple[str, ...] = ("auto", "word2vec", "glove", "fasttext", "keyedvectors")
#: Bytes read per call by default (gensim uses 100 KiB; larger is faster for big files).
DEFAULT_BUFFER_SIZE = 4 * 1024 * 1024
#: A binary row's word longer than this means the file is not word2vec binary.
MAX_WORD_BYTES = 64 * 1024
#: Rows scored together by the ``near`` search (its batch is ~13 MB at 200-d).
NEAR_BATCH_ROWS = 16_384
#: Text rows parsed per block.
TEXT_BLOCK_ROWS = 4096
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")
_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_PICKLE_PROTOCOL_2_PLUS = b"\x80"
_TEXT_VALUE_BYTES = frozenset(b"0123456789+-.eEnNaAiIfF \t\r\n")

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class VectorFileInfo:
    """What a vector file is, found from its first bytes.

    Attributes:
        path: the file.
        format: ``"word2vec"`` (header line) or ``"glove"`` (no header).
        binary: word2vec binary rows (else text rows).
        compression: ``"gzip"``, ``"bz2"`` or None.
        header_rows: the row count the header announces (None for GloVe).
        dims: values per row.
        data_offset: (uncompressed) byte offset of the first row.
        size: the file's size on disk.
    """

    path: Path
    format: Literal["word2vec", "glove"]
    binary: bool
    compression: Literal["gzip", "bz2"] | None
    header_rows: int | None
    dims: int
    data_offset: int
    size: int


# --------------------------------------------------------------------------- opening files


def _check_path(path: Path) -> int:
    if path.is_dir():
        raise VectorFileError("is a directory, not a vector file", str(path))
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise VectorFileError("no such file", str(path)) from None
    except OSError as error:
        raise VectorFileError(f"cannot be read ({error.strerror})", str(path)) from error
    if size == 0:
        raise VectorFileError("is empty", str(path), offset=0)
    return size


def _compression(path: Path) -> Literal["gzip", "bz2"] | None:
    with open(path, "rb") as handle:
        magic = handle.read(3)
    suffix = path.suffix.lower()
    if magic.startswith(_GZIP_MAGIC):
        return "gzip"
    if magic.startswith(_BZ2_MAGIC):
        return "bz2"
    if suffix in (".gz", ".gzip"):
        raise VectorFileError(
            "has a .gz name but is not gzip-compressed (no gzip magic bytes); rename it",
            str(path),
            offset=0,
        )
    if suffix == ".bz2":
        raise VectorFileError(
            "has a .bz2 name but is not bzip2-compressed; rename it", str(path), offset=0
        )
    return None


class _Stream:
    """A (possibly decompressing) binary stream that knows how far into the file it is."""

    def __init__(self, path: Path, compression: str | None) -> None:
        self.path = path
        self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.handle: io.BufferedIOBase
        if compression == "gzip":
            self.handle = gzip.GzipFile(fileobj=self._raw, mode="rb")
        elif compression == "bz2":
            self.handle = bz2.BZ2File(self._raw, mode="rb")
        else:
            self.handle = self._raw
        self.offset = 0  # uncompressed bytes consumed

    def read(self, size: int) -> bytes:
        return self._counted(self.handle.read, size)

    def readline(self) -> bytes:
        return self._counted(self.handle.readline)

    def _counted(self, method: Callable[..., bytes], *args: int) -> bytes:
        """Call a read method, turning decompression errors into a VectorFileError."""
        try:
            data = method(*args)
        except (EOFError, OSError, zlib.error) as error:
            raise VectorFileError(
                f"compressed data is truncated or corrupt ({error})",
                str(self.path),
                offset=self.offset,
            ) from error
        self.offset += len(data)
        return data

    def raw_position(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.handle is not self._raw:
            self.handle.close()
        self._raw.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_header(line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        rows, dims = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return rows, dims


def _looks_like_text_row(line: bytes, dims: int) -> bool:
    """True if ``line`` is ``word v1 ... v<dims>`` in text (not binary float bytes)."""
    stripped = line.rstrip()
    space = stripped.find(b" ")
    if space <= 0:
        return False
    values = stripped[space + 1 :]
    if not values or not set(values) <= _TEXT_VALUE_BYTES:
        return False
    return len(values.split()) == dims


def detect_format(
    path: str | os.PathLike[str],
) -> Literal["word2vec", "glove", "fasttext", "keyedvectors"]:
    """Guess a vector file's format from its first bytes (not its name).

    fastText binaries and pickled gensim objects are recognised by their magic bytes; a first
    line ``"<rows> <dims>"`` means word2vec (binary or text), anything else GloVe.

    Raises:
        VectorFileError: a directory, a missing or empty file, or a misnamed ``.gz``/``.bz2``.

    Example:
        >>> from gensim.test.utils import datapath  # doctest: +SKIP
        >>> detect_format(datapath("crime-and-punishment.bin"))  # doctest: +SKIP
        'fasttext'
    """
    file_path = Path(os.fspath(path))
    _check_path(file_path)
    compression = _compression(file_path)
    with _Stream(file_path, compression) as stream:
        head = stream.read(4)
        if compression is None and head == _FASTTEXT_MAGIC:
            return "fasttext"
        if head.startswith(_PICKLE_PROTOCOL_2_PLUS):
            return "keyedvectors"
        first = head[: head.index(b"\n") + 1] if b"\n" in head else head + stream.readline()
    if _parse_header(first) is not None:
        return "word2vec"
    return "glove"


def inspect_vector_file(
    path: str | os.PathLike[str],
    *,
    format: Literal["auto", "word2vec", "glove"] = "auto",
    binary: bool | None = None,
) -> VectorFileInfo:
    """Read a word2vec/GloVe file's header (and sniff binary vs text when ``binary`` is None).

    Raises:
        VectorFileError: not a word2vec or GloVe file, or a bad header.
    """
    file_path = Path(os.fspath(path))
    size = _check_path(file_path)
    compression = _compression(file_path)
    with _Stream(file_path, compression) as stream:
        first = stream.readline()
        header_end = stream.offset
        if first.startswith(_FASTTEXT_MAGIC) or first.startswith(_PICKLE_PROTOCOL_2_PLUS):
            raise VectorFileError(
                "is a fastText binary or a saved gensim object, not word2vec/GloVe; use "
                "format='fasttext' or 'keyedvectors' (or 'auto')",
                str(file_path),
                offset=0,
            )
        header = _parse_header(first)
        if format == "glove" or (format == "auto" and header is None):
            if binary:
                raise VectorFileError(
                    "GloVe files are text; binary=True needs a word2vec header line",
                    str(file_path),
                    offset=0,
                )
            stripped = first.rstrip()
            try:
                stripped.decode("utf-8", "strict")
            except UnicodeDecodeError:
                if not _looks_like_text_row(first, len(stripped.split()) - 1):
                    raise VectorFileError(
                        "is neither a word2vec file (no '<rows> <dims>' header line) nor GloVe "
                        "text; for an old fastText .bin (no magic bytes) pass format='fasttext'",
                        str(file_path),
                        offset=0,
                    ) from None
            dims = len(stripped.split()) - 1
            if not stripped or dims < 1 or not _looks_like_text_row(first, dims):
                raise VectorFileError(
                    "is neither a word2vec file (no '<rows> <dims>' header line) nor GloVe text "
                    "(first line is not 'word value value ...'); for an old fastText .bin (no "
                    "magic bytes) pass format='fasttext'",
                    str(file_path),
                    row=0,
                    offset=0,
                )
            return VectorFileInfo(file_path, "glove", False, compression, None, dims, 0, size)
        if header is None:
            raise VectorFileError(
                f"first line {first[:60]!r} is not a word2vec header '<rows> <dims>'; "
                "for GloVe files use format='glove'",
                str(file_path),
                offset=0,
            )
        rows, dims = header
        if rows < 0 or dims < 1:
            raise VectorFileError(
                f"header announces {rows} rows of {dims} values; expected positive numbers",
                str(file_path),
                offset=0,
            )
        if binary is None:
            sample = stream.readline()
            binary = not _looks_like_text_row(sample, dims) if sample.strip() else False
    return VectorFileInfo(file_path, "word2vec", binary, compression, rows, dims, header_end, size)


# --------------------------------------------------------------------------- row blocks


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
    _vector_starts: list[int] = field(default_factory=list)
    _text_values: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)

    def matrix(self, rows: Sequence[int] | None = None) -> npt.NDArray[np.float32]:
        """The vectors of ``rows`` (positions in this block; all rows when None), float32.

        Raises:
            VectorFileError: a text row with a value that is not a number, or NaN/Inf.
        """
        positions = range(len(self.words)) if rows is None else rows
        if not positions:
            return np.zeros((0, self.dims), dtype=np.float32)
        if self._text_values:
            matrix = self._text_matrix(positions)
        else:
            matrix = self._binary_matrix(positions)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            bad = list(positions)[int(np.flatnonzero(~finite)[0])]
            raise VectorFileError(
                f"the vector of {self.words[bad]!r} contains NaN or Inf",
                self.path,
                row=self.first_row + bad,
                offset=self.offsets[bad],
            )
        return matrix

    def _binary_matrix(self, positions: Sequence[int]) -> npt.NDArray[np.float32]:
        """Gather vectors at arbitrary byte offsets without a Python loop.

        The buffer is viewed as float32 at each of the 4 byte alignments; rows whose vector
        starts at that alignment are gathered with one fancy index.
        """
        starts = np.asarray(self._vector_starts, dtype=np.int64)
        if positions != range(len(starts)):
            starts = starts[np.asarray(positions, dtype=np.int64)]
        matrix = np.empty((len(starts), self.dims), dtype=np.float32)
        columns = np.arange(self.dims, dtype=np.int64)
        alignment = starts % 4
        for offset in range(4):
            rows = np.flatnonzero(alignment == offset)
            if not rows.size:
                continue
            view = np.frombuffer(
                self._buffer, dtype="<f4", offset=offset, count=(len(self._buffer) - offset) // 4
            )
            matrix[rows] = view[((starts[rows] - offset) // 4)[:, None] + columns]
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
            position = 0
            raws: list[bytes] = []
            word_starts: list[int] = []
            starts: list[int] = []
            size = len(buffer)
            while True:
                space = buffer.find(b" ", position)
                if space < 0 or space + 1 + width > size:
                    break
                word_start = position
                while buffer[word_start] == 10:  # b"\n" after each vector (word2vec.c)
                    word_start += 1
                if word_start >= space:
                    raise VectorFileError(
                        "empty word (misaligned rows: is the header's dimension count right?)",
                        self.path,
                        row=row + len(raws),
                        offset=base + position,
                    )
                raws.append(buffer[word_start:space])
                word_starts.append(word_start)
                starts.append(space + 1)
                position = space + 1 + width
            offsets = [base + s for s in word_starts]
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
                if stripped.count(b" ") != dims:
                    parts = stripped.split()
                    if len(parts) != dims + 1:
                        found = len(parts) - 1
                        raise VectorFileError(
                            f"row has {found} values, expected {dims} (as the "
                            f"{'header' if self.info.header_rows is not None else 'first row'} "
                            "says); mixed dimensions or a truncated line",
                            self.path,
                            row=row,
                            offset=offset,
                        )
                    stripped = b" ".join(parts)
                    space = stripped.find(b" ")
                words.append(self._decode(stripped[:space], row, offset))
                offsets.append(offset)
                values.append(stripped[space + 1 :])
                row += 1
            self._report(stream)
            if words:
                yield RowBlock(first_row, words, offsets, dims, self.path, _text_values=values)
            if at_end:
                break
        self._finish(row)


# --------------------------------------------------------------------------- selection


@dataclass
class SelectedRows:
    """Rows picked from a source, in display order, with why and where each came from.

    Attributes:
        matrix: (N, D) float32 vectors.
        keys: the words.
        ranks: each row's 0-based index in the source (duplicates not counted, as gensim).
        reasons: ``"word"``, ``"near:<query>"``, ``"top"`` or ``"sample"``.
        missing: requested ``words`` not in the source.
        missing_near: ``near`` queries not in the source.
        duplicates: words that occur more than once (first occurrence kept), in file order.
        rows_in_source: unique rows in the source, None if it was not read to the end.
        header_rows: rows the header announces (word2vec files).
        counts: real word counts per row, or None when the source has none.
        notes: things worth telling the user.
    """

    matrix: npt.NDArray[np.float32]
    keys: list[str]
    ranks: list[int]
    reasons: list[str]
    missing: list[str] = field(default_factory=list)
    missing_near: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rows_in_source: int | None = None
    header_rows: int | None = None
    counts: list[int] | None = None
    notes: list[str] = field(default_factory=list)


def select_from_file(
    path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    words: str | Iterable[str] | None = None,
    near: str | Iterable[str] | None = None,
    near_k: int = 10,
    sample: int | None = None,
    seed: int = 0,
    format: Literal["auto", "word2vec", "glove"] = "auto",
    binary: bool | None = None,
    encoding: str = "utf-8",
    unicode_errors: str = "strict",
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    progress: ProgressCallback | None = None,
) -> SelectedRows:
    """Stream a word2vec/GloVe file once and keep only the selected rows.

    The selection means what :func:`~embedding_projector.selection.select_keys` means on the
    loaded vectors (same rows, same order, same seeded sample): ``words`` first, then each
    ``near`` query with its ``near_k`` nearest neighbours (cosine), then the first ``limit``
    rows, then ``sample`` random rows of the rest. With none given, every row is kept.

    Memory: ``limit`` alone reads only the first rows; ``words`` stops when all are found;
    ``words``/``sample`` keep only their rows; ``near`` first finds the query rows, then
    scans the file block by block. Duplicate detection keeps a set of word hashes (about
    60 bytes per distinct word).

    Raises:
        VectorFileError: the file cannot be read (named, with row and byte offset).
        ValueError: a bad count.
    """
    for name, value in (("limit", limit), ("sample", sample), ("near_k", near_k)):
        check_count(name, value)
    wanted = unique_in_order(as_word_list(words)) if words is not None else []
    queries = unique_in_order(as_word_list(near)) if near is not None else []
    reader = VectorFileReader(
        path,
        format=format,
        binary=binary,
        encoding=encoding,
        unicode_errors=unicode_errors,
        buffer_size=buffer_size,
    )
    passes = 2 if queries else 1
    total = reader.info.size * passes
    if progress is not None:
        reader.progress = lambda done, _size: progress(done, total)

    # Pass 1 (near only): the query vectors. A query's row is its word's first occurrence,
    # so no duplicate tracking is needed here; rows are numbered as in the file (raw rows)
    # until pass 2 knows each row's index among distinct words.
    query_rows: dict[str, tuple[int, npt.NDArray[np.float32]]] = {}
    if queries:
        query_set = set(queries)
        for block in reader.blocks():
            if query_set.isdisjoint(block.words):
                continue
            first_seen: dict[str, int] = {}
            for position, word in enumerate(block.words):
                if word in query_set and word not in query_rows:
                    first_seen.setdefault(word, position)
            hits = [(position, word) for word, position in first_seen.items()]
            vectors = block.matrix([p for p, _ in hits])
            for (position, word), vector in zip(hits, vectors, strict=True):
                query_rows[word] = (block.first_row + position, vector.copy())
            if len(query_rows) == len(query_set):
                break
        reader._progress_base = reader.info.size
    found_queries = [q for q in queries if q in query_rows]
    query_raw_rows = {query_rows[q][0]: q for q in found_queries}
    query_index: dict[str, int] = {}  # query -> index among distinct words (pass 2)
    search = (
        NeighborSearch(
            np.stack([query_rows[q][1] for q in found_queries]),
            near_k,
            exclude_self=[query_rows[q][0] for q in found_queries],
            keep_vectors=True,
        )
        if found_queries
        else None
    )

    take_all = limit is None and words is None and near is None and sample is None
    top_limit = limit if limit is not None else (None if take_all else 0)
    reservoir = (
        SampleReservoir(sample, seed=seed, slack=len(found_queries) * (near_k + 1))
        if sample
        else None
    )
    wanted_set = set(wanted)
    found_words: dict[str, tuple[int, npt.NDArray[np.float32]]] = {}
    top_keys: list[str] = []
    top_blocks: list[npt.NDArray[np.float32]] = []
    neighbour_names: dict[int, tuple[str, int]] = {}  # raw row -> (word, distinct index)
    # Rows wait for the neighbour search in one preallocated batch: fewer, larger matrix
    # products, and memory bounded by the batch.
    batch_size = NEAR_BATCH_ROWS if search is not None else 0
    batch_vectors = np.empty((batch_size, reader.info.dims), dtype=np.float32)
    batch_raw = np.empty(batch_size, dtype=np.int64)
    segments: list[tuple[list[str], int, int]] = []  # (words, distinct index, batch offset)
    fill = 0

    def flush() -> None:
        nonlocal fill
        if search is None or fill == 0:
            return
        raw_rows = batch_raw[:fill].copy()
        search.update(int(raw_rows[0]), batch_vectors[:fill], raw_rows)
        best = set(search.indices.ravel().tolist())
        new_best = [r for r in best.difference(neighbour_names) if r >= raw_rows[0]]
        for raw in new_best:
            position = int(np.searchsorted(raw_rows, raw))
            for segment_words, start, offset in reversed(segments):
                if position >= offset:
                    neighbour_names[raw] = (
                        segment_words[position - offset],
                        start + position - offset,
                    )
                    break
        for raw in set(neighbour_names).difference(best):
            del neighbour_names[raw]
        segments.clear()
        fill = 0

    def add_to_batch(
        vectors: npt.NDArray[np.float32],
        raw_rows: npt.NDArray[np.int64],
        batch_words: list[str],
        first: int,
    ) -> None:
        nonlocal fill
        done = 0
        while done < len(raw_rows):
            take = min(len(raw_rows) - done, batch_size - fill)
            batch_vectors[fill : fill + take] = vectors[done : done + take]
            batch_raw[fill : fill + take] = raw_rows[done : done + take]
            segments.append((batch_words[done : done + take], first + done, fill))
            fill += take
            done += take
            if fill == batch_size:
                flush()

    seen_hashes: set[int] = set()
    duplicates: dict[str, None] = {}
    unique = 0
    complete = False
    for block in reader.blocks():
        keep = _first_occurrences(block.words, seen_hashes, duplicates)
        first_index = unique
        unique += len(keep)
        if search is not None and keep:
            raw_rows = block.first_row + np.asarray(keep, dtype=np.int64)
            add_to_batch(block.matrix(keep), raw_rows, [block.words[p] for p in keep], first_index)
            if query_raw_rows:
                first_raw, last_raw = block.first_row, block.first_row + len(block.words)
                for raw, query in query_raw_rows.items():
                    if first_raw <= raw < last_raw and query not in query_index:
                        query_index[query] = first_index + list(keep).index(raw - first_raw)
        take: Sequence[int] = []
        if top_limit is None:
            take = keep
        elif first_index < top_limit:
            take = keep[: top_limit - first_index]
        if take:
            top_keys.extend(block.words[p] for p in take)
            top_blocks.append(block.matrix(take))
        word_hits = (
            [
                (p, first_index + i)
                for i, p in enumerate(keep)
                if block.words[p] in wanted_set and block.words[p] not in found_words
            ]
            if wanted_set and not wanted_set.isdisjoint(block.words)
            else []
        )
        if word_hits:
            vectors = block.matrix([p for p, _ in word_hits])
            for (p, index), vector in zip(word_hits, vectors, strict=True):
                found_words[block.words[p]] = (index, vector.copy())
        if reservoir is not None and keep:
            priorities = reservoir.priorities(len(keep))
            threshold = reservoir.threshold
            limit_end = top_limit if top_limit is not None else unique
            for i in np.flatnonzero(priorities < threshold).tolist():
                index = first_index + i
                position = keep[i]
                word = block.words[position]
                if index < limit_end or word in wanted_set:
                    continue  # already selected as top row or named word
                priority = float(priorities[i])
                if priority < reservoir.threshold:
                    vector = block.matrix([position])[0]
                    reservoir.offer(priority, index, (word, vector))
        done_top = top_limit is not None and unique >= top_limit
        if (
            search is None
            and reservoir is None
            and not take_all
            and done_top
            and len(found_words) == len(wanted_set)
        ):
            break
    else:
        complete = True
    flush()

    # Assemble in display order: words, near, top, sample; a row appears once, where first.
    small_keys: list[str] = []
    small_ranks: list[int] = []
    small_reasons: list[str] = []
    small_vectors: list[npt.NDArray[np.float32]] = []
    for word in wanted:
        if word in found_words:
            index, vector = found_words[word]
            small_keys.append(word)
            small_ranks.append(index)
            small_reasons.append(REASON_WORD)
            small_vectors.append(vector)
    if search is not None:
        kept_vectors = search.vectors if search.vectors is not None else np.zeros((0, 0, 0))
        for q, query in enumerate(found_queries):
            vector = query_rows[query][1]
            index = query_index[query]
            reason = REASON_NEAR_PREFIX + query
            small_keys.append(query)
            small_ranks.append(index)
            small_reasons.append(reason)
            small_vectors.append(vector)
            for column, (neighbour, _) in enumerate(search.neighbors(q)):
                name, neighbour_index = neighbour_names[neighbour]
                small_keys.append(name)
                small_ranks.append(neighbour_index)
                small_reasons.append(reason)
                small_vectors.append(kept_vectors[q, column])
    # Words and near rows: small, deduplicated here (a query may also be a named word).
    seen_small: set[int] = set()
    first_keys: list[str] = []
    first_ranks: list[int] = []
    first_reasons: list[str] = []
    first_vectors: list[npt.NDArray[np.float32]] = []
    for key, index, reason, vector in zip(
        small_keys, small_ranks, small_reasons, small_vectors, strict=True
    ):
        if index not in seen_small:
            seen_small.add(index)
            first_keys.append(key)
            first_ranks.append(index)
            first_reasons.append(reason)
            first_vectors.append(vector)
    sample_rows = reservoir.chosen(exclude=seen_small) if reservoir is not None else []
    # Top rows are distinct rows 0..n-1; drop those already shown as words/near rows.
    top_count = len(top_keys)
    top_mask = np.ones(top_count, dtype=bool)
    top_mask[[i for i in seen_small if i < top_count]] = False
    dims = reader.info.dims
    total = len(first_ranks) + int(top_mask.sum()) + len(sample_rows)
    matrix = np.empty((total, dims), dtype=np.float32)
    if first_vectors:
        matrix[: len(first_vectors)] = np.stack(first_vectors)
    position = len(first_vectors)
    block_start = 0
    while top_blocks:  # move block by block, so the peak stays near one matrix
        top_block = top_blocks.pop(0)
        mask = top_mask[block_start : block_start + len(top_block)]
        chosen_rows = top_block if mask.all() else top_block[mask]
        matrix[position : position + len(chosen_rows)] = chosen_rows
        position += len(chosen_rows)
        block_start += len(top_block)
    for row, (_, (_, vector)) in enumerate(sample_rows):
        matrix[position + row] = vector
    keys = first_keys + [k for k, keep in zip(top_keys, top_mask.tolist(), strict=True) if keep]
    ranks = first_ranks + np.flatnonzero(top_mask).tolist()
    reasons = first_reasons + [REASON_TOP] * (len(ranks) - len(first_ranks))
    keys += [word for _, (word, _) in sample_rows]
    ranks += [index for index, _ in sample_rows]
    reasons += [REASON_SAMPLE] * len(sample_rows)
    return SelectedRows(
        matrix=matrix,
        keys=keys,
        ranks=ranks,
        reasons=reasons,
        missing=[w for w in wanted if w not in found_words],
        missing_near=[q for q in queries if q not in query_rows],
        duplicates=list(duplicates),
        rows_in_source=unique if complete else None,
        header_rows=reader.info.header_rows,
        notes=list(reader.notes),
    )


def _first_occurrences(
    words: list[str], seen: set[int], duplicates: dict[str, None] | None
) -> Sequence[int]:
    """Positions of the words not seen before (``seen`` holds word hashes and is updated).

    A set of hashes instead of words keeps memory at about 60 bytes per distinct word; two
    different words with the same 64-bit hash (odds about 1e-8 for a million words) would be
    taken for duplicates.
    """
    hashes = list(map(hash, words))
    if seen.isdisjoint(hashes):
        before = len(seen)
        seen.update(hashes)
        if len(seen) - before == len(hashes):
            return range(len(words))  # the usual case: no duplicates in this block
        for digest in hashes:
            seen.discard(digest)
    keep: list[int] = []
    for position, digest in enumerate(hashes):
        if digest in seen:
            if duplicates is not None:
                duplicates[words[position]] = None
            continue
        seen.add(digest)
        keep.append(position)
    return keep


# --------------------------------------------------------------------------- gensim


def load_with_gensim(
    path: str | os.PathLike[str], format: Literal["fasttext", "keyedvectors"]
) -> Any:
    """Load a fastText ``.bin`` (vectors only) or a saved gensim object (pickle).

    Only load pickles you trust: unpickling runs code.

    Raises:
        VectorFileError: gensim cannot read the file.
        ImportError: gensim is not installed.
    """
    try:
        from gensim.models.fasttext import load_facebook_vectors
        from gensim.utils import SaveLoad
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading fastText or gensim files needs gensim: pip install "
            "'embedding-projector[gensim]'"
        ) from error
    file_path = Path(os.fspath(path))
    _check_path(file_path)
    try:
        if format == "fasttext":
            return load_facebook_vectors(str(file_path))
        return SaveLoad.load(str(file_path))
    except (
        OSError,
        EOFError,
        ValueError,
        AssertionError,
        KeyError,
        IndexError,
        NotImplementedError,
        TypeError,
    ) as error:
        raise VectorFileError(
            f"gensim could not load it as {format} ({type(error).__name__}: {error})",
            str(file_path),
        ) from error
    except Exception as error:  # unpickling can raise anything
        if type(error).__module__.startswith(("pickle", "_pickle")):
            raise VectorFileError(
                f"is not a readable gensim file ({error})", str(file_path)
            ) from error
        raise
