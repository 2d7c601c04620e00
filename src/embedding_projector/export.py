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
    >>> from embedding_projector.export import RowSelection, export_embeddings
    >>> vectors = np.random.default_rng(0).normal(size=(50, 8))
    >>> labels = [f"w{i}" for i in range(50)]
    >>> summary = export_embeddings((vectors, labels), tempfile.mkdtemp(),
    ...                             RowSelection(words=["w7", "nope"], limit=5))
    >>> summary.rows, summary.missing_words
    (6, ['nope'])
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InvalidEmbeddingError
from .readers import ProgressCallback, SelectedRows, SourceOptions, load_rows
from .readers.selection import REASON_NEAR_PREFIX, RowSelection, check_count, unique_in_order
from .writer import MAX_PROJECTOR_ROWS, ProjectorWriter, Snapshot, prepare_metadata_columns

if TYPE_CHECKING:
    from .insight.layouts import ProjectorLayout

__all__ = [
    "ExportSummary",
    "RowSelection",
    "SourceOptions",
    "default_tag",
    "export_embeddings",
]

logger = logging.getLogger(__name__)

COLUMN_WORD = "word"
COLUMN_RANK = "rank"
COLUMN_COUNT = "count"
COLUMN_NEAR = "near"
COLUMN_REASON = "selected by"
_REASON_LABELS = {"word": "words", "top": "limit", "sample": "sample"}


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
        suggestions: missing word -> a word of the source that differs only in case.
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
    suggestions: dict[str, str] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Every requested word that was not found (``words`` then ``near``)."""
        return unique_in_order([*self.missing_words, *self.missing_near])

    def describe(self, max_words: int = 20) -> str:
        """A human-readable report (what the CLI prints)."""

        def listing(words: Sequence[str]) -> str:
            shown = ", ".join(_with_hint(word, self.suggestions) for word in words[:max_words])
            return shown + (
                f", ... ({len(words) - max_words} more)" if len(words) > max_words else ""
            )

        lines = [
            f"Wrote {self.rows:,} rows x {self.dims} dims as {self.tensor_name!r} "
            f"(tag {self.tag!r}, step {self.step}) from {self.source}"
        ]
        if self.rows_in_source is not None:
            lines.append(f"  source holds {self.rows_in_source:,} distinct rows")
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
    selection: RowSelection | None = None,
    *,
    source_options: SourceOptions | None = None,
    tag: str | None = None,
    step: int | None = None,
    progress: ProgressCallback | None = None,
    sprites: Literal["glyphs"] | None = None,
    layout: Literal["pca", "umap"] | None = None,
    overwrite: bool = False,
) -> ExportSummary:
    """Select rows of pretrained vectors and write them as one projector snapshot.

    Args:
        source: a path to a word2vec binary/text (``.bin``, ``.txt``, ``.vec``, also
            ``.gz``/``.bz2``), GloVe text, fastText ``.bin`` or saved gensim file, a ``.npy`` /
            ``.npz`` array, a Parquet/Arrow/Feather file or directory, a ``.safetensors`` file
            or a local Hugging Face model folder; a gensim ``KeyedVectors`` or model
            (``Word2Vec``/``FastText``/``Doc2Vec``: its ``wv``); or a ``(matrix, labels)`` pair.
        logdir: the run directory to write into (created if missing).
        selection: which rows (:class:`RowSelection`: ``words``, then ``near``, then
            ``limit``, then ``sample``); default: every row.
        source_options: how to read the source (:class:`SourceOptions`: format, binary,
            encoding, tensor, labels file, table columns); default: detect everything.
        tag: the embedding's name in the projector (default: the source's name, ``vectors``
            for ``vectors.vec.gz``, so exports of different files into one log dir sit side
            by side; ``embeddings`` for in-memory sources).
        step: the step number (default 0).
        progress: called as ``progress(bytes_read, bytes_total)`` while a file is read.
        sprites: ``"glyphs"`` draws each word as its point's image (character, kana, kanji or
            emoji vectors; see :func:`~embedding_projector.glyphs.glyph_images`).
        layout: ``"pca"`` or ``"umap"``: a layout of every row saved as a BOOKMARKS state
            (UMAP: umap-learn, the ``layouts`` extra; with a progress bar when ``progress``).
        overwrite: replace a snapshot of the same tag and step that was made from another
            source (or by another writer). Without it that is an error and nothing is
            written; exporting the same file (or the same data) again is always a rewrite.

    With no selection, every row is written. Over 100,000 rows, a warning says how to narrow.

    Returns:
        An :class:`ExportSummary` (rows, missing words, paths, the ``tensorboard`` command).

    Raises:
        VectorFileError: the file is missing, truncated or corrupt; nothing was written.
        InvalidEmbeddingError: fewer than 2 rows selected, NaN/Inf vectors, a bad tag.
        SnapshotExistsError: another source's snapshot holds the tag and step and
            ``overwrite`` is False; nothing was written (checked before a file is read).
        ValueError: a bad option (negative count, unknown format, ...).

    Example:
        >>> from gensim.test.utils import datapath  # doctest: +SKIP
        >>> summary = export_embeddings(datapath("lee_fasttext.vec"), "runs/lee",
        ...                             RowSelection(near=["night"], near_k=20, limit=1000))
        ... # doctest: +SKIP
        >>> print(summary.tensorboard_command)  # doctest: +SKIP
        tensorboard --logdir runs/lee
    """
    selection = selection if selection is not None else RowSelection()
    source_options = source_options if source_options is not None else SourceOptions()
    if tag is None:
        tag = default_tag(source, "embeddings")
    _check_output(tag=tag, step=step, sprites=sprites, layout=layout)
    # O_DIRECT: the tensor skips the page cache (a copy the kernel would make in this process,
    # in the CPU time an export is measured by), no slower on an SSD.
    writer = ProjectorWriter(logdir, direct_io=True)
    identity = file_identity(source)
    if identity is not None and not overwrite:
        writer.check_overwrite(tag, step, identity)  # before a large file is read
    picked = load_rows(source, selection, source_options, progress=progress)
    rows, dims = _check_size(picked)
    header, columns = metadata_table(picked, selection)
    labels = prepare_metadata_columns(columns, header)
    if identity is None:
        identity = data_identity(picked.matrix, labels.text)
        if not overwrite:
            writer.check_overwrite(tag, step, identity)  # before a layout is computed
    # Closing removes the refresh run and the lock file: a one-shot export leaves only the run.
    with writer, warnings.catch_warnings():
        # Already said above, with the options that narrow an export.
        warnings.filterwarnings("ignore", message=r"Writing \d+ rows for tag", category=UserWarning)
        snapshot = writer.add_embedding(
            picked.matrix,
            metadata=labels,
            label_img=sprites,
            global_step=step,
            tag=tag,
            layout=None if layout is None else _layouts(layout, picked, progress is not None),
            source=identity,
            overwrite=overwrite,
        )
    logger.info("exported %d x %d rows from %s to %s", rows, dims, picked.source, writer.logdir)
    return _summary(picked, snapshot, writer.logdir, header, tag)


_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
_UNSAFE_IN_TAG = re.compile(r"[^\w.@+-]+")


def default_tag(source: Any, fallback: str) -> str:
    """The tag an export of ``source`` gets by default: its name without suffixes.

    ``vectors.vec.gz`` → ``vectors``, a model folder → its name, ``runs/a::words@3`` (a
    compare source) → ``words@3``; ``fallback`` for in-memory sources.
    """
    if not isinstance(source, (str, os.PathLike)):
        return fallback
    text = os.fspath(source)
    if "::" in text and not Path(text).exists():
        return _UNSAFE_IN_TAG.sub("_", text.rsplit("::", 1)[1]).strip("_.") or fallback
    path = Path(text).expanduser()
    name = path.resolve().name if path.name in ("", ".", "..") else path.name
    if not path.is_dir():
        for suffix in _COMPRESSION_SUFFIXES:
            name = name.removesuffix(suffix)
        name = Path(name).stem if Path(name).suffix else name
    return _UNSAFE_IN_TAG.sub("_", name).strip("_.") or fallback


def file_identity(source: Any) -> str | None:
    """What a file source is recorded as (its resolved path); None for in-memory sources.

    The same file exported again is a rewrite of its own snapshot, whatever its content now.
    """
    if not isinstance(source, (str, os.PathLike)):
        return None
    return f"file {os.path.realpath(Path(os.fspath(source)).expanduser())}"


def data_identity(matrix: Any, metadata_text: bytes | None) -> str:
    """What in-memory rows are recorded as: a digest of the values and labels written."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(matrix, dtype=np.float32).tobytes())
    digest.update(metadata_text or b"")
    return f"data {matrix.shape[0]} x {matrix.shape[1]}, blake2b {digest.hexdigest()}"


def _summary(
    picked: SelectedRows, snapshot: Snapshot, logdir: Path, header: list[str], tag: str
) -> ExportSummary:
    rows, dims = picked.matrix.shape
    return ExportSummary(
        rows=rows,
        dims=dims,
        missing_words=list(picked.missing),
        missing_near=list(picked.missing_near),
        duplicates=list(picked.duplicates),
        tensor_name=snapshot.tensor_name,
        tag=tag,
        step=snapshot.step,
        logdir=logdir,
        tensor_path=snapshot.tensor_path,
        metadata_path=snapshot.metadata_path,
        config_path=snapshot.config_path,
        columns=list(header),
        source=picked.source,
        rows_in_source=picked.rows_in_source,
        notes=list(picked.notes),
        tensorboard_command=f"tensorboard --logdir {shlex.quote(str(logdir))}",
        suggestions=dict(picked.suggestions),
    )


def _check_size(picked: SelectedRows) -> tuple[int, int]:
    """Refuse a selection the projector cannot show; warn over its row limit."""
    rows, dims = picked.matrix.shape
    if rows < 2 or dims < 2:
        missing = unique_in_order([*picked.missing, *picked.missing_near])
        shown = ", ".join(_with_hint(word, picked.suggestions) for word in missing[:20])
        raise InvalidEmbeddingError(
            f"the selection has {rows} row(s) of {dims} value(s); the projector needs at least "
            "2 rows and 2 columns. "
            + (f"Not in the vocabulary: {shown}. " if missing else "")
            + "Select more rows (limit, words, near, sample). Nothing was written."
        )
    if rows > MAX_PROJECTOR_ROWS:
        warnings.warn(
            f"{rows:,} rows selected, but TensorBoard's projector shows only the first "
            f"{MAX_PROJECTOR_ROWS:,}: narrow the selection with limit= (--limit), sample= "
            "(--sample), words= (--words) or near= (--near).",
            UserWarning,
            stacklevel=3,
        )
    return rows, dims


# --------------------------------------------------------------------------- options


def _check_output(*, tag: object, step: object, sprites: object, layout: object) -> None:
    """Check what is written (before anything is read): tag, step, sprites, layout."""
    check_count("step", step)
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError(f"tag must be a non-empty string; got {tag!r}.")
    if sprites not in (None, "glyphs"):
        raise ValueError(f'sprites must be None or "glyphs"; got {sprites!r}.')
    if layout is not None:
        from .insight import layouts

        layouts.check_layout_kind(layout)
        if layout == "umap":
            layouts.require_umap()


def _layouts(
    kind: Literal["pca", "umap"], picked: SelectedRows, progress: bool
) -> list[ProjectorLayout]:
    from .insight import layouts  # numpy maths (and umap-learn): imported only when asked

    return layouts.layouts_for(kind, picked.matrix, progress=progress)


def _with_hint(word: str, suggestions: dict[str, str]) -> str:
    from .readers.rows import describe_variant

    variant = suggestions.get(word)
    return f"{word} ({describe_variant(word, variant)})" if variant is not None else word


# --------------------------------------------------------------------------- metadata


def metadata_table(
    picked: SelectedRows, selection: RowSelection
) -> tuple[list[str], list[list[str]]]:
    """The metadata header and columns (column-major) the exporter writes for ``picked``.

    Columns: the label column (``word``, ``token``, a table's first label column or ``row``),
    ``rank``, the source's further columns, ``count`` (real counts only), ``near`` and, when
    several kinds of selection are combined, ``selected by``.
    """
    header = [picked.key_column, COLUMN_RANK]
    columns: list[list[str]] = [picked.keys, [str(rank + 1) for rank in picked.ranks]]
    for name, values in picked.columns.items():
        header.append(name)
        columns.append(values)
    if picked.counts is not None:
        header.append(COLUMN_COUNT)
        columns.append([str(count) for count in picked.counts])
    if selection.near:
        header.append(COLUMN_NEAR)
        columns.append(
            [
                reason[len(REASON_NEAR_PREFIX) :] if reason.startswith(REASON_NEAR_PREFIX) else ""
                for reason in picked.reasons
            ]
        )
    if len(selection.kinds()) > 1:
        header.append(COLUMN_REASON)
        columns.append(
            [
                "near" if reason.startswith(REASON_NEAR_PREFIX) else _REASON_LABELS[reason]
                for reason in picked.reasons
            ]
        )
    return header, columns
