"""In-memory sources (a gensim ``KeyedVectors``/model, a ``(matrix, labels)`` pair) and
files read through gensim (fastText ``.bin``, saved gensim objects).

Example:
    >>> import numpy as np
    >>> from embedding_projector.readers.selection import RowSelection
    >>> rows = select_in_memory((np.eye(3), ["a", "b", "c"]), RowSelection(limit=2))
    >>> rows.keys
    ['a', 'b']
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InvalidEmbeddingError, VectorFileError
from ._files import _check_path
from .rows import SelectedRows, select_rows
from .selection import RowSelection

__all__ = ["load_with_gensim", "select_in_memory"]

logger = logging.getLogger(__name__)


def select_in_memory(source: Any, selection: RowSelection) -> SelectedRows:
    """Select rows of a ``(matrix, labels)`` pair or a gensim ``KeyedVectors``/model.

    Raises:
        InvalidEmbeddingError: the matrix is not 2-D or has not one label per row.
        TypeError: not one of those sources.
    """
    if isinstance(source, tuple) and len(source) == 2:
        matrix, labels = np.asarray(source[0]), [str(label) for label in source[1]]
        _check_shape(matrix, len(labels))
        rows = select_rows(matrix, labels, selection)
        rows.source = "(matrix, labels)"
        return rows
    vectors = _keyed_vectors(source)
    matrix = np.asarray(vectors.vectors)
    raw_keys = list(vectors.index_to_key)
    valid = None
    if any(key is None for key in raw_keys):
        # gensim 4.4 keeps its preallocated slots when a word2vec file has duplicate words:
        # None keys with zero vectors at the end. They are not words.
        valid = [i for i, key in enumerate(raw_keys) if key is not None]
        matrix = matrix[valid]
        raw_keys = [raw_keys[i] for i in valid]
    counts = _real_counts(vectors, valid, len(raw_keys))
    keys = [str(key) for key in raw_keys]
    _check_shape(matrix, len(keys))
    rows = select_rows(matrix, keys, selection, counts=counts)
    rows.source = type(source).__name__
    return rows


def _check_shape(matrix: np.ndarray[Any, Any], labels: int) -> None:
    if matrix.ndim != 2 or len(matrix) != labels:
        raise InvalidEmbeddingError(
            f"matrix has shape {matrix.shape} but there are {labels} labels; pass an (N, D) "
            "matrix with one label per row."
        )


def _keyed_vectors(source: Any) -> Any:
    """A gensim ``KeyedVectors`` from itself or from a model (its ``wv``)."""
    if hasattr(source, "index_to_key") and hasattr(source, "vectors"):
        return source
    wv = getattr(source, "wv", None)
    if wv is not None and hasattr(wv, "index_to_key"):
        if getattr(source, "dm", 1) == 0 and not getattr(source, "dbow_words", 0):
            warnings.warn(
                "This Doc2Vec model was trained with dm=0 and dbow_words=0, so its word vectors "
                "(model.wv) were never trained; export model.dv for the document vectors.",
                UserWarning,
                stacklevel=4,
            )
        return wv
    raise TypeError(
        "source must be a path, a gensim KeyedVectors or model, or a (matrix, labels) pair; "
        f"got {type(source).__name__}."
    )


def _real_counts(vectors: Any, valid: list[int] | None, size: int) -> list[int] | None:
    """Per-row counts, or None when there are none or they are gensim's made-up ones.

    gensim gives words loaded from a word2vec file without a vocabulary file the count
    ``vocab_size - index`` (decreasing by exactly 1): that is not a frequency.
    """
    expandos = getattr(vectors, "expandos", None)
    raw = expandos.get("count") if isinstance(expandos, dict) else None
    if raw is None or size == 0:
        return None
    try:
        values = np.asarray(raw)
        counts = np.asarray(values[valid] if valid is not None else values, dtype=np.int64)
    except (TypeError, ValueError, IndexError):
        return None
    if counts.shape != (size,):
        return None
    if size >= 2 and bool(np.all(np.diff(counts) == -1)):
        logger.debug("counts decrease by exactly 1 row by row: gensim's placeholders, left out")
        return None
    if not counts.any():
        return None
    return [int(c) for c in counts]


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
