"""Export pretrained vectors to TensorBoard's Embedding Projector in one call.

:func:`export_embeddings` reads a word2vec (binary or text), GloVe or fastText file, a saved
gensim object, an in-memory ``KeyedVectors``/gensim model or a ``(matrix, labels)`` pair,
selects the rows you want to see and writes them as one projector snapshot.

The projector shows only the first 100,000 rows, so the selection is ordered: ``words`` first
(your list), then ``near`` (each query word and its ``near_k`` nearest neighbours by cosine),
then ``limit`` (the first rows: the most frequent in word2vec files), then ``sample`` (seeded
random rows of the rest). Words that are not in the vocabulary are reported by name.

Word2vec and GloVe files are streamed, never loaded whole: ``limit`` reads only the first rows,
``words`` and ``sample`` keep only their rows, ``near`` scans in blocks.

Metadata columns: ``word``; ``rank`` (1 = first row of the source); ``count`` where the source
has real counts (gensim's made-up counts for files without a vocabulary are left out); ``near``
(the query word whose neighbourhood brought the row in) for ``near`` selections; ``selected by``
when several kinds of selection are combined.

Example:
    >>> import numpy as np, tempfile
    >>> from embedding_projector.export import export_embeddings
    >>> vectors = np.random.default_rng(0).normal(size=(50, 8))
    >>> labels = [f"w{i}" for i in range(50)]
    >>> summary = export_embeddings((vectors, labels), tempfile.mkdtemp(), words=["w7", "nope"],
    ...                             limit=5)
    >>> summary.rows, summary.missing_words
    (6, ['nope'])
"""

from __future__ import annotations

import logging
import os
import shlex
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import layouts
from .errors import InvalidEmbeddingError
from .readers import FORMATS, ProgressCallback, SelectedRows, detect_format, load_with_gensim
from .readers import select_from_file as _select_from_file
from .selection import (
    REASON_NEAR_PREFIX,
    as_word_list,
    check_count,
    read_word_list,
    select_keys,
    unique_in_order,
)
from .writer import MAX_PROJECTOR_ROWS, ProjectorWriter

__all__ = ["ExportSummary", "export_embeddings"]

logger = logging.getLogger(__name__)

COLUMN_WORD = "word"
COLUMN_RANK = "rank"
COLUMN_COUNT = "count"
COLUMN_NEAR = "near"
COLUMN_REASON = "selected by"
_REASON_LABELS = {"word": "words", "top": "limit", "sample": "sample"}
_UNICODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_embeddings` wrote.

    Attributes:
        rows: rows written.
        dims: values per row.
        missing_words: requested ``words`` not in the source, in request order.
        missing_near: ``near`` query words not in the source.
        duplicates: words that occur more than once in the source (first one kept).
        tensor_name: the name the projector's dropdown shows.
        tag: the tag written.
        step: the step written.
        logdir: the run directory.
        tensor_path: the tensor file.
        metadata_path: the metadata file.
        config_path: the run's ``projector_config.pbtxt``.
        columns: the metadata columns.
        source: a description of the source.
        rows_in_source: distinct rows in the source (None if it was not read to the end).
        notes: things worth knowing (header counts disagreeing with the body, ...).
        tensorboard_command: the command that shows the snapshot.
    """

    rows: int
    dims: int
    missing_words: list[str]
    missing_near: list[str]
    duplicates: list[str]
    tensor_name: str
    tag: str
    step: int
    logdir: Path
    tensor_path: Path
    metadata_path: Path | None
    config_path: Path
    columns: list[str]
    source: str
    rows_in_source: int | None = None
    notes: list[str] = field(default_factory=list)
    tensorboard_command: str = ""

    @property
    def missing(self) -> list[str]:
        """Every requested word that was not found (``words`` then ``near``)."""
        return unique_in_order([*self.missing_words, *self.missing_near])

    def describe(self, max_words: int = 20) -> str:
        """A human-readable report (what the CLI prints)."""

        def listing(words: Sequence[str]) -> str:
            shown = ", ".join(words[:max_words])
            return shown + (
                f", ... ({len(words) - max_words} more)" if len(words) > max_words else ""
            )

        lines = [
            f"Wrote {self.rows:,} rows x {self.dims} dims as {self.tensor_name!r} "
            f"(tag {self.tag!r}, step {self.step}) from {self.source}"
        ]
        if self.rows_in_source is not None:
            lines.append(f"  source holds {self.rows_in_source:,} distinct words")
        if self.missing_words:
            lines.append(
                f"  missing words ({len(self.missing_words)}): {listing(self.missing_words)}"
            )
        if self.missing_near:
            lines.append(
                f"  missing near words ({len(self.missing_near)}): {listing(self.missing_near)}"
            )
        if self.duplicates:
            lines.append(
                f"  duplicate words, first kept ({len(self.duplicates)}): "
                f"{listing(self.duplicates)}"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append(f"  tensor:   {self.tensor_path}")
        if self.metadata_path is not None:
            lines.append(f"  metadata: {self.metadata_path} ({', '.join(self.columns)})")
        lines.append(f"  config:   {self.config_path}")
        lines.append("View it with:")
        lines.append(f"  {self.tensorboard_command}")
        return "\n".join(lines)


def export_embeddings(
    source: Any,
    logdir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    words: str | os.PathLike[str] | Iterable[str] | None = None,
    near: str | Iterable[str] | None = None,
    near_k: int = 10,
    sample: int | None = None,
    seed: int = 0,
    tag: str = "embeddings",
    step: int | None = None,
    binary: bool | None = None,
    format: Literal["auto", "word2vec", "glove", "fasttext", "keyedvectors"] = "auto",
    encoding: str = "utf-8",
    unicode_errors: str = "strict",
    progress: ProgressCallback | None = None,
    sprites: Literal["glyphs"] | None = None,
    layout: Literal["pca", "umap"] | None = None,
) -> ExportSummary:
    """Select rows of pretrained vectors and write them as one projector snapshot.

    Args:
        source: a path to a word2vec binary/text (``.bin``, ``.txt``, ``.vec``, also
            ``.gz``/``.bz2``), GloVe text, fastText ``.bin`` or saved gensim file; a gensim
            ``KeyedVectors`` or model (``Word2Vec``/``FastText``/``Doc2Vec``: its ``wv``); or a
            ``(matrix, labels)`` pair.
        logdir: the run directory to write into (created if missing).
        limit: the first ``limit`` rows (frequency order in word2vec files).
        words: words to show first: a list, or a UTF-8 file with one word per line.
        near: query words; each one and its ``near_k`` nearest neighbours (cosine).
        near_k: neighbours per query word.
        sample: this many random rows of the rest (seeded by ``seed``).
        seed: the sample's seed; the same seed gives the same rows from a file and from the
            same vectors loaded by gensim.
        tag: the embedding's name in the projector.
        step: the step number (default 0).
        binary: word2vec binary (True) or text (False); None detects it.
        format: ``"auto"`` (detect from the file's first bytes), ``"word2vec"``, ``"glove"``,
            ``"fasttext"`` or ``"keyedvectors"`` (a file saved by gensim's ``save``; only
            load pickles you trust).
        encoding: the words' encoding in word2vec/GloVe files.
        unicode_errors: ``"strict"``, ``"replace"`` or ``"ignore"`` for undecodable words.
        progress: called as ``progress(bytes_read, bytes_total)`` while a file is read.
        sprites: ``"glyphs"`` draws each word as its point's image (character, kana, kanji or
            emoji vectors; see :func:`~embedding_projector.glyphs.glyph_images`).
        layout: ``"pca"`` or ``"umap"``: a layout of every row saved as a BOOKMARKS state
            (UMAP: umap-learn, the ``layouts`` extra; with a progress bar when ``progress``).

    With no selection, every row is written. Over 100,000 rows, a warning says how to narrow.

    Returns:
        An :class:`ExportSummary` (rows, missing words, paths, the ``tensorboard`` command).

    Raises:
        VectorFileError: the file is missing, truncated or corrupt; nothing was written.
        InvalidEmbeddingError: fewer than 2 rows selected, NaN/Inf vectors, a bad tag.
        ValueError: a bad option (negative count, unknown format, ...).

    Example:
        >>> from gensim.test.utils import datapath  # doctest: +SKIP
        >>> summary = export_embeddings(datapath("lee_fasttext.vec"), "runs/lee",
        ...                             near=["night"], near_k=20, limit=1000)  # doctest: +SKIP
        >>> print(summary.tensorboard_command)  # doctest: +SKIP
        tensorboard --logdir runs/lee
    """
    _check_options(
        limit=limit,
        sample=sample,
        near_k=near_k,
        seed=seed,
        tag=tag,
        step=step,
        format=format,
        binary=binary,
        unicode_errors=unicode_errors,
    )
    if sprites not in (None, "glyphs"):
        raise ValueError(f'sprites must be None or "glyphs"; got {sprites!r}.')
    if layout is not None:
        layouts.check_layout_kind(layout)
        if layout == "umap":
            layouts.require_umap()
    word_list = read_word_list(words) if words is not None else None
    near_list = unique_in_order(as_word_list(near)) if near is not None else None
    options: dict[str, Any] = {
        "limit": limit,
        "words": word_list,
        "near": near_list,
        "near_k": near_k,
        "sample": sample,
        "seed": seed,
    }
    picked, description = _pick_rows(
        source,
        options,
        format=format,
        binary=binary,
        encoding=encoding,
        unicode_errors=unicode_errors,
        progress=progress,
    )
    rows, dims = picked.matrix.shape
    if rows < 2 or dims < 2:
        missing = unique_in_order([*picked.missing, *picked.missing_near])
        raise InvalidEmbeddingError(
            f"the selection has {rows} row(s) of {dims} value(s); the projector needs at least "
            "2 rows and 2 columns. "
            + (f"Not in the vocabulary: {', '.join(missing[:20])}. " if missing else "")
            + "Select more rows (limit, words, near, sample). Nothing was written."
        )
    if rows > MAX_PROJECTOR_ROWS:
        warnings.warn(
            f"{rows:,} rows selected, but TensorBoard's projector shows only the first "
            f"{MAX_PROJECTOR_ROWS:,}: narrow the selection with limit= (--limit), sample= "
            "(--sample), words= (--words) or near= (--near).",
            UserWarning,
            stacklevel=2,
        )
    header, table = _metadata(picked, options)
    writer = ProjectorWriter(logdir)
    with warnings.catch_warnings():
        # Already said above, with the options that narrow an export.
        warnings.filterwarnings("ignore", message=r"Writing \d+ rows for tag", category=UserWarning)
        snapshot = writer.add_embedding(
            picked.matrix,
            metadata=table,
            label_img=sprites,
            global_step=step,
            tag=tag,
            metadata_header=header,
            layout=None
            if layout is None
            else layouts.layouts_for(layout, picked.matrix, progress=progress is not None),
        )
    logger.info("exported %d x %d rows from %s to %s", rows, dims, description, writer.logdir)
    return ExportSummary(
        rows=rows,
        dims=dims,
        missing_words=list(picked.missing),
        missing_near=list(picked.missing_near),
        duplicates=list(picked.duplicates),
        tensor_name=snapshot.tensor_name,
        tag=tag,
        step=snapshot.step,
        logdir=writer.logdir,
        tensor_path=snapshot.tensor_path,
        metadata_path=snapshot.metadata_path,
        config_path=snapshot.config_path,
        columns=list(header),
        source=description,
        rows_in_source=picked.rows_in_source,
        notes=list(picked.notes),
        tensorboard_command=f"tensorboard --logdir {shlex.quote(str(writer.logdir))}",
    )


# --------------------------------------------------------------------------- options


def _check_options(
    *,
    limit: object,
    sample: object,
    near_k: object,
    seed: object,
    tag: object,
    step: object,
    format: object,
    binary: object,
    unicode_errors: object,
) -> None:
    check_count("limit", limit)
    check_count("sample", sample)
    check_count("near_k", near_k)
    check_count("step", step)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer; got {seed!r}.")
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError(f"tag must be a non-empty string; got {tag!r}.")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}.")
    if binary is not None and not isinstance(binary, bool):
        raise ValueError(f"binary must be True, False or None; got {binary!r}.")
    if unicode_errors not in _UNICODE_ERRORS:
        raise ValueError(
            f"unicode_errors must be one of {', '.join(_UNICODE_ERRORS)}; got {unicode_errors!r}."
        )


# --------------------------------------------------------------------------- sources


def _pick_rows(
    source: Any,
    options: dict[str, Any],
    *,
    format: str,
    binary: bool | None,
    encoding: str,
    unicode_errors: str,
    progress: ProgressCallback | None,
) -> tuple[SelectedRows, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source)).expanduser()
        kind = detect_format(path) if format == "auto" else format
        if kind in ("word2vec", "glove"):
            picked = _select_from_file(
                path,
                format="glove"
                if format == "glove"
                else "word2vec"
                if format == "word2vec"
                else "auto",
                binary=binary,
                encoding=encoding,
                unicode_errors=unicode_errors,
                progress=progress,
                **options,
            )
            return picked, str(path)
        loaded = load_with_gensim(path, "fasttext" if kind == "fasttext" else "keyedvectors")
        picked, _ = _pick_rows(
            loaded,
            options,
            format="auto",
            binary=None,
            encoding=encoding,
            unicode_errors=unicode_errors,
            progress=None,
        )
        return picked, f"{path} ({kind})"
    if isinstance(source, tuple) and len(source) == 2:
        matrix, labels = source
        keys = [str(label) for label in labels]
        return _select_in_memory(np.asarray(matrix), keys, None, options), "(matrix, labels)"
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
    description = type(source).__name__
    return _select_in_memory(matrix, keys, counts, options), description


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


def _select_in_memory(
    matrix: npt.NDArray[Any],
    keys: list[str],
    counts: list[int] | None,
    options: dict[str, Any],
) -> SelectedRows:
    if matrix.ndim != 2 or len(matrix) != len(keys):
        raise InvalidEmbeddingError(
            f"matrix has shape {matrix.shape} but there are {len(keys)} labels; pass an (N, D) "
            "matrix with one label per row."
        )
    seen: dict[str, None] = {}
    duplicates: dict[str, None] = {}
    for key in keys:
        if key in seen:
            duplicates[key] = None
        seen[key] = None
    selection = select_keys(
        keys,
        limit=options["limit"],
        words=options["words"],
        near=options["near"],
        near_k=options["near_k"],
        sample=options["sample"],
        seed=options["seed"],
        vectors=matrix if options["near"] else None,
    )
    indices = np.asarray(selection.indices, dtype=np.int64)
    return SelectedRows(
        matrix=np.asarray(matrix[indices]),
        keys=list(selection.keys),
        ranks=list(selection.indices),
        reasons=list(selection.reasons),
        missing=list(selection.missing),
        missing_near=list(selection.missing_near),
        duplicates=list(duplicates),
        rows_in_source=len(keys),
        counts=[counts[i] for i in selection.indices] if counts is not None else None,
    )


# --------------------------------------------------------------------------- metadata


def _metadata(picked: SelectedRows, options: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [COLUMN_WORD, COLUMN_RANK]
    columns: list[list[str]] = [picked.keys, [str(rank + 1) for rank in picked.ranks]]
    if picked.counts is not None:
        header.append(COLUMN_COUNT)
        columns.append([str(count) for count in picked.counts])
    if options["near"]:
        header.append(COLUMN_NEAR)
        columns.append(
            [
                reason[len(REASON_NEAR_PREFIX) :] if reason.startswith(REASON_NEAR_PREFIX) else ""
                for reason in picked.reasons
            ]
        )
    kinds = [name for name in ("words", "near", "limit", "sample") if options[name] is not None]
    if len(kinds) > 1:
        header.append(COLUMN_REASON)
        columns.append(
            [
                "near" if reason.startswith(REASON_NEAR_PREFIX) else _REASON_LABELS[reason]
                for reason in picked.reasons
            ]
        )
    return header, [list(row) for row in zip(*columns, strict=True)]
