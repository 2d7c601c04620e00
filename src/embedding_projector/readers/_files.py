"""Opening word2vec/GloVe files: compression, magic bytes, the header line.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.vec")
    >>> with open(path, "w") as f:
    ...     _ = f.write("2 2\\nthe 0.1 0.2\\nof 0.3 0.4\\n")
    >>> info = inspect_vector_file(path)
    >>> info.format, info.binary, info.header_rows, info.dims
    ('word2vec', False, 2, 2)
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import VectorFileError

__all__ = ["VectorFileInfo", "detect_format", "inspect_vector_file"]

logger = logging.getLogger(__name__)

#: Bytes read per call by default (gensim uses 100 KiB). 1 MiB: larger blocks stop paying
#: off, as their fresh buffers cost page faults and cache misses (``benchmarks/RESULTS.md``).
DEFAULT_BUFFER_SIZE = 1024 * 1024
#: A binary row's word longer than this means the file is not word2vec binary.
MAX_WORD_BYTES = 64 * 1024
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")
_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_PICKLE_PROTOCOL_2_PLUS = b"\x80"
_TEXT_VALUE_BYTES = frozenset(b"0123456789+-.eEnNaAiIfF \t\r\n")


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
    parts = line.strip().rsplit(None, dims)  # a word may contain spaces (glove.840B)
    if len(parts) != dims + 1 or not parts[0]:
        return False
    return all(set(value) <= _TEXT_VALUE_BYTES for value in parts[1:])


def _text_dims(line: bytes) -> int:
    """Values in a text row: its trailing fields that read as numbers (not the first one)."""
    fields = line.split()
    count = 0
    for value in reversed(fields[1:]):
        try:
            float(value)
        except ValueError:
            break
        count += 1
    return count


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


def _binary_rows(sample: bytes, dims: int, binary: bool | None, path: Path, offset: int) -> bool:
    """Binary or text rows, from the first row; ``binary=True`` on text rows is refused."""
    text = bool(sample.strip()) and _looks_like_text_row(sample, dims)
    if binary is None:
        return bool(sample.strip()) and not text
    if binary and text:
        raise VectorFileError(
            f"binary=True (--binary), but this looks like a word2vec text file: its first row "
            f"{sample[:50]!r}... is a word and {dims} numbers in text. Drop binary=True "
            "(--binary) to detect it, or pass binary=False (--text)",
            str(path),
            row=0,
            offset=offset,
        )
    return binary


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
                if not _looks_like_text_row(first, _text_dims(stripped)):
                    raise VectorFileError(
                        "is neither a word2vec file (no '<rows> <dims>' header line) nor GloVe "
                        "text; for an old fastText .bin (no magic bytes) pass format='fasttext'",
                        str(file_path),
                        offset=0,
                    ) from None
            dims = _text_dims(stripped)
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
        binary = _binary_rows(stream.readline(), dims, binary, file_path, header_end)
    return VectorFileInfo(file_path, "word2vec", binary, compression, rows, dims, header_end, size)
