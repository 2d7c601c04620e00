"""One entry point for every source: :func:`load_rows` reads the selected rows, writes nothing.

Example:
    >>> import numpy as np
    >>> from embedding_projector.readers.selection import RowSelection
    >>> rows = load_rows((np.eye(4, 2), ["a", "b", "c", "d"]), RowSelection(limit=3))
    >>> rows.keys, rows.matrix.dtype
    (['a', 'b', 'c'], dtype('float32'))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import VectorFileError
from ._files import detect_format
from .arrays import select_from_array_file
from .memory import load_with_gensim, select_in_memory
from .options import SourceOptions
from .rows import SelectedRows
from .selection import RowSelection
from .streaming import select_from_file
from .word2vec import ProgressCallback

__all__ = ["detect_source", "load_rows"]

#: File suffixes that name a format without looking inside.
_SUFFIXES = {
    ".npy": "npy",
    ".npz": "npz",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".safetensors": "safetensors",
}
#: Options that only some formats read: option -> formats.
_OPTION_FORMATS = {
    "tensor": ("npz", "safetensors", "huggingface"),
    "labels": ("npy", "npz", "safetensors", "huggingface"),
    "vector_column": ("parquet", "arrow"),
    "label_columns": ("parquet", "arrow"),
    "metadata_columns": ("parquet", "arrow"),
    "binary": ("word2vec", "glove"),
}


def load_rows(
    source: Any,
    selection: RowSelection | None = None,
    options: SourceOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> SelectedRows:
    """Read the selected rows of any source, in display order, without writing anything.

    What :func:`~embedding_projector.export.export_embeddings` writes, and what a comparison
    of two sources reads.

    Args:
        source: a path (word2vec/GloVe text or binary, fastText ``.bin``, saved gensim object,
            ``.npy``/``.npz``, Parquet/Arrow/Feather file or directory, ``.safetensors``, a
            local Hugging Face model folder), a gensim ``KeyedVectors``/model, or a
            ``(matrix, labels)`` pair.
        selection: which rows (default: all).
        options: how to read the source (default: detect everything).
        progress: called as ``progress(bytes_read, bytes_total)`` while a file is read.

    Returns:
        :class:`SelectedRows`: the float32 matrix, labels, further metadata columns, missing
        words and where each row came from.

    Raises:
        VectorFileError: the file is missing, truncated, corrupt or not what it claims.
        InvalidEmbeddingError: an in-memory matrix that is not (N, D) with one label per row.
        ValueError: an option that does not apply to this source.
    """
    selection = selection or RowSelection()
    options = options or SourceOptions()
    if not isinstance(source, (str, os.PathLike)):
        return select_in_memory(source, selection)
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        raise VectorFileError(_missing_message(path), str(path))
    kind = detect_source(path) if options.format == "auto" else options.format
    _check_options_apply(kind, options, path)
    rows = _read(kind, path, selection, options, progress)
    if not rows.source:
        rows.source = str(path) if kind in ("word2vec", "glove") else f"{path} ({kind})"
    return rows


def _read(
    kind: str,
    path: Path,
    selection: RowSelection,
    options: SourceOptions,
    progress: ProgressCallback | None,
) -> SelectedRows:
    if kind in ("word2vec", "glove"):
        return select_from_file(path, selection, options, progress=progress)
    if kind in ("npy", "npz"):
        return select_from_array_file(path, selection, options)
    if kind in ("parquet", "arrow"):
        from .arrow import select_from_table

        return select_from_table(path, selection, options)
    if kind in ("safetensors", "huggingface"):
        from .huggingface import select_from_safetensors

        return select_from_safetensors(path, selection, options)
    if kind in ("fasttext", "keyedvectors"):
        loaded = load_with_gensim(path, "fasttext" if kind == "fasttext" else "keyedvectors")
        rows = select_in_memory(loaded, selection)
        rows.source = ""  # named after the file below
        return rows
    raise ValueError(f"format {kind!r} is not supported here.")  # pragma: no cover


def detect_source(path: Path) -> str:
    """The format of a path: a model folder, a table, an array file or a vector file.

    Raises:
        VectorFileError: missing, empty, or a directory that is neither a model nor a table.
    """
    if path.is_dir():
        return _detect_directory(path)
    if not path.exists():
        raise VectorFileError(_missing_message(path), str(path))
    kind = _sniff(path) or _SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        return kind
    return detect_format(path)


def _sniff(path: Path) -> str | None:
    """The format its magic bytes say (arrays, tables, safetensors), or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return None
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04") and path.suffix.lower() == ".npz":
        return "npz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 2**27:
        return "safetensors"
    return None


def _detect_directory(path: Path) -> str:
    if (path / "config.json").is_file() or any(path.glob("*.safetensors")):
        return "huggingface"
    for file in sorted(path.rglob("*")):
        kind = _SUFFIXES.get(file.suffix.lower())
        if kind in ("parquet", "arrow") and file.is_file():
            return kind
    raise VectorFileError(
        "is a directory, not a vector file (nor a Hugging Face model folder with config.json, "
        "nor a directory of Parquet/Arrow files)",
        str(path),
    )


def _missing_message(path: Path) -> str:
    text = str(path)
    if len(path.parts) <= 2 and not path.suffix and not text.startswith((".", "/", "~")):
        return (
            "no such file or folder. If it is a Hugging Face Hub model name: embedding-projector "
            "never downloads anything; download the model first (e.g. `hf download "
            f"{text} --local-dir DIR`) and pass the local folder"
        )
    return "no such file"


def _check_options_apply(kind: str, options: SourceOptions, path: Path) -> None:
    defaults = SourceOptions()
    for name, formats in _OPTION_FORMATS.items():
        if getattr(options, name) != getattr(defaults, name) and kind not in formats:
            raise ValueError(
                f"{name} applies to {', '.join(formats)} sources; {path} is {kind}. "
                f"Leave {name} out (or pass the right format)."
            )
