"""Labels: validated, escaped and encoded once (and drawn, for ``label_img="glyphs"``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidEmbeddingError
from . import GLYPHS, metadata_tsv
from .arrays import as_label_columns, as_text_column

__all__ = [
    "PreparedMetadata",
    "glyph_sprites",
    "metadata_for",
    "prepare_metadata",
    "prepare_metadata_columns",
    "prepared_for",
]


@dataclass(frozen=True)
class PreparedMetadata:
    """Labels validated, escaped and encoded once, for many snapshots of the same rows.

    Made by :func:`prepare_metadata`; pass it as ``metadata=`` to
    :meth:`ProjectorWriter.add_embedding`. Callbacks that snapshot the same rows every epoch
    use it so that the per-row text work (tens of milliseconds of GIL-holding Python for
    10,000 rows of several columns) is done once, not beside training every epoch.

    Attributes:
        rows: how many points the labels are for.
        text: the metadata file's bytes.
        labels: the first column (what ``label_img="glyphs"`` draws).
    """

    rows: int
    text: bytes
    labels: tuple[str, ...]


def prepare_metadata(
    metadata: Sequence[Any], metadata_header: Sequence[Any] | None = None
) -> PreparedMetadata:
    """Validate and encode labels once (see :class:`PreparedMetadata`).

    Args:
        metadata: one label per point, or one row of several columns per point (then name
            them in ``metadata_header``), as for :meth:`ProjectorWriter.add_embedding`.
        metadata_header: column names for several columns.

    Raises:
        InvalidEmbeddingError: the labels are not a list of labels or rows.

    Example:
        >>> import numpy as np, tempfile
        >>> from embedding_projector import ProjectorWriter
        >>> labels = prepare_metadata([["cat", "12"], ["dog", "7"]], ["word", "count"])
        >>> writer = ProjectorWriter(tempfile.mkdtemp())
        >>> for step in range(2):
        ...     _ = writer.add_embedding(np.random.rand(2, 3), labels, global_step=step)
        >>> labels.text.decode().splitlines()[1].split("\\t")
        ['cat', '12']
    """
    try:
        rows = len(metadata)
    except TypeError as error:
        raise InvalidEmbeddingError(
            f"metadata must be a list of labels; got {type(metadata).__name__}."
        ) from error
    return prepared_for(metadata, rows, metadata_header)


def prepare_metadata_columns(
    columns: Sequence[Sequence[Any]], metadata_header: Sequence[Any] | None = None
) -> PreparedMetadata:
    """:func:`prepare_metadata` for labels held column by column (no rows built and split again).

    Args:
        columns: one sequence of cells per column, all of the same length.
        metadata_header: the column names; needed for several columns, ignored for one.

    Raises:
        InvalidEmbeddingError: no column, columns of different lengths, or a header that does
            not name every column.

    Example:
        >>> labels = prepare_metadata_columns([["cat", "dog"], [12, 7]], ["word", "count"])
        >>> labels.text.decode().splitlines()
        ['word\\tcount', 'cat\\t12', 'dog\\t7']
    """
    if not columns:
        raise InvalidEmbeddingError("metadata needs at least one column.")
    rows = len(columns[0])
    lengths = sorted({len(column) for column in columns})
    if len(lengths) > 1:
        raise InvalidEmbeddingError(
            f"metadata columns must be equally long; got lengths {lengths}."
        )
    header: list[str] | None = None
    if len(columns) > 1:
        if metadata_header is None or len(metadata_header) != len(columns):
            raise InvalidEmbeddingError(
                f"{len(columns)} metadata columns need as many names in metadata_header; "
                f"got {metadata_header!r}."
            )
        header = as_text_column(list(metadata_header))
    texts = [as_text_column(column) for column in columns]
    return PreparedMetadata(
        rows=rows, text=metadata_tsv(texts, header).encode("utf-8"), labels=tuple(texts[0])
    )


def prepared_for(
    metadata: Any, rows: int, metadata_header: Sequence[Any] | None
) -> PreparedMetadata:
    """Labels validated against ``rows`` points, escaped and encoded."""
    columns, header = as_label_columns(metadata, rows, metadata_header)
    return PreparedMetadata(
        rows=rows, text=metadata_tsv(columns, header).encode("utf-8"), labels=tuple(columns[0])
    )


def metadata_for(
    metadata: Sequence[Any] | PreparedMetadata | None,
    rows: int,
    metadata_header: Sequence[Any] | None,
) -> PreparedMetadata | None:
    """The labels of one snapshot of ``rows`` points (``None``: no labels).

    Labels prepared earlier (:func:`prepare_metadata`) are checked against ``rows``; others
    are validated and encoded here.
    """
    if isinstance(metadata, PreparedMetadata):
        if metadata.rows != rows:
            raise InvalidEmbeddingError(
                f"the prepared metadata has {metadata.rows} labels but mat has {rows} rows; "
                "they must match one-to-one."
            )
        if metadata_header is not None:
            raise InvalidEmbeddingError(
                "metadata_header goes to prepare_metadata() with the labels, not here."
            )
        return metadata
    if metadata is None:
        return None
    return prepared_for(metadata, rows, metadata_header)


def glyph_sprites(label_img: str, labels: Sequence[str] | None) -> Any:
    """Images for ``label_img="glyphs"``: the first metadata column drawn by glyph_images."""
    if label_img != GLYPHS:
        raise InvalidEmbeddingError(
            f'label_img must be an (N, C, H, W) image array or "{GLYPHS}"; got {label_img!r}.'
        )
    if labels is None:
        raise InvalidEmbeddingError(
            f'label_img="{GLYPHS}" draws each point\'s label, so it needs metadata.'
        )
    from ..glyphs import glyph_images  # Pillow and fonts: loaded only when glyphs are drawn

    # Warnings point at the caller of add_embedding (two frames above glyph_images).
    return glyph_images(list(labels), stacklevel=4)
