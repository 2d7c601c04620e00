"""How to read a source: one object for the format options of every reader.

Example:
    >>> SourceOptions(format="parquet", vector_column="embedding", label_columns=["title"])
    ... # doctest: +ELLIPSIS
    SourceOptions(format='parquet', ...)
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["FORMATS", "Format", "SourceOptions"]

Format = Literal[
    "auto",
    "word2vec",
    "glove",
    "fasttext",
    "keyedvectors",
    "npy",
    "npz",
    "parquet",
    "arrow",
    "safetensors",
    "huggingface",
]
#: The values of ``format``.
FORMATS: tuple[str, ...] = get_args(Format)
#: The values of ``unicode_errors``.
UNICODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")


@dataclass(frozen=True)
class SourceOptions:
    """How to read a source: its format and where its vectors and labels are.

    Attributes:
        format: ``"auto"`` (detect from the file's first bytes), ``"word2vec"``, ``"glove"``,
            ``"fasttext"``, ``"keyedvectors"`` (a file saved by gensim's ``save``; only load
            pickles you trust), ``"npy"``, ``"npz"``, ``"parquet"``, ``"arrow"`` (Arrow IPC /
            Feather), ``"safetensors"`` or ``"huggingface"`` (a local model folder).
        binary: word2vec binary (True) or text (False); None detects it.
        encoding: the words' encoding in word2vec/GloVe files.
        unicode_errors: ``"strict"``, ``"replace"`` or ``"ignore"`` for undecodable words.
        tensor: the array of a ``.npz`` or the 2-D tensor of a safetensors file / model folder
            (default: the only one, or a model's input embedding).
        labels: a labels file for ``.npy``/``.npz``/safetensors: one label per line, or a TSV
            with a header line (several metadata columns; the first one names the rows).
        vector_column: the table column holding the vectors (default: the only list column).
        label_columns: table columns shown as labels (the first one names the rows).
        metadata_columns: also keep the table's other scalar columns (True), or these ones.

    Raises:
        ValueError: an unknown format or error handler, or a bad type.
    """

    format: Format = "auto"
    binary: bool | None = None
    encoding: str = "utf-8"
    unicode_errors: str = "strict"
    tensor: str | None = None
    labels: str | None = None
    vector_column: str | None = None
    label_columns: Sequence[str] = ()
    metadata_columns: bool | Sequence[str] = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {self.format!r}.")
        if self.binary is not None and not isinstance(self.binary, bool):
            raise ValueError(f"binary must be True, False or None; got {self.binary!r}.")
        if self.unicode_errors not in UNICODE_ERRORS:
            raise ValueError(
                f"unicode_errors must be one of {', '.join(UNICODE_ERRORS)}; "
                f"got {self.unicode_errors!r}."
            )
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ValueError(f"unknown encoding {self.encoding!r}.") from None
        if isinstance(self.label_columns, str):
            object.__setattr__(self, "label_columns", (self.label_columns,))
        else:
            object.__setattr__(self, "label_columns", tuple(self.label_columns))
        if not isinstance(self.metadata_columns, bool):
            columns = self.metadata_columns
            names = (columns,) if isinstance(columns, str) else tuple(columns)
            object.__setattr__(self, "metadata_columns", names)
        if self.labels is not None:
            object.__setattr__(self, "labels", str(self.labels))
