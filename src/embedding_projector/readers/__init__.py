"""Read embeddings from files without loading what you will not show.

Every reader returns :class:`SelectedRows` for a :class:`~embedding_projector.readers.selection.
RowSelection`, and :func:`load_rows` picks the reader for a source:

* word2vec (binary or text, with the ``"<rows> <dims>"`` header line), GloVe text (no header)
  and their ``.gz``/``.bz2`` versions, streamed (:mod:`.word2vec`, :mod:`.streaming`): memory
  follows the selection, not the file. The parsers accept the mess real files contain, like
  gensim's ``load_word2vec_format``: header counts that disagree with the body, trailing
  spaces, CRLF line ends, a newline after each binary vector, undecodable bytes in words
  (``unicode_errors``) and duplicate words (the first one wins; the others are reported).
* fastText ``.bin`` files and saved gensim objects, loaded through gensim (:mod:`.memory`).
* NumPy ``.npy`` (memory-mapped) and ``.npz`` arrays with a labels file (:mod:`.arrays`).
* Parquet, Arrow IPC and Feather tables, files or directories, in record batches
  (:mod:`.arrow`, needs pyarrow).
* safetensors files and local Hugging Face model folders, read lazily with ``safe_open``
  (:mod:`.huggingface`, needs safetensors, and tokenizers for ``tokenizer.json``).

What cannot be read — a truncated row, a row with the wrong number of values, a file that is
not what it claims — raises :class:`~embedding_projector.errors.VectorFileError` with the file
and, where it applies, the row and byte offset.

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

from ._files import (
    DEFAULT_BUFFER_SIZE,
    MAX_WORD_BYTES,
    VectorFileInfo,
    detect_format,
    inspect_vector_file,
)
from .arrays import read_labels_file, select_from_array_file
from .arrow import select_from_table
from .huggingface import select_from_safetensors
from .memory import load_with_gensim, select_in_memory
from .options import FORMATS, Format, SourceOptions
from .rows import ArrayBlocks, CaseHints, SelectedRows, select_rows
from .selection import RowSelection
from .sources import detect_source, load_rows
from .streaming import NEAR_BATCH_ROWS, select_from_file
from .word2vec import TEXT_BLOCK_ROWS, ProgressCallback, RowBlock, VectorFileReader

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "FORMATS",
    "MAX_WORD_BYTES",
    "NEAR_BATCH_ROWS",
    "TEXT_BLOCK_ROWS",
    "ArrayBlocks",
    "CaseHints",
    "Format",
    "ProgressCallback",
    "RowBlock",
    "RowSelection",
    "SelectedRows",
    "SourceOptions",
    "VectorFileInfo",
    "VectorFileReader",
    "detect_format",
    "detect_source",
    "inspect_vector_file",
    "load_rows",
    "load_with_gensim",
    "read_labels_file",
    "select_from_array_file",
    "select_from_file",
    "select_from_safetensors",
    "select_from_table",
    "select_in_memory",
    "select_rows",
]
