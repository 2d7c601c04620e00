"""embedding-projector: put embedding matrices into TensorBoard's Embedding Projector.

Fast (raw float32 instead of TSV text), safe (escaped labels, merged and atomically written
config, crash-safe files) and visible in a TensorBoard that is already running.

Example:
    >>> import numpy as np, tempfile
    >>> import embedding_projector as ep
    >>> logdir = tempfile.mkdtemp()
    >>> labels = [str(i) for i in range(100)]
    >>> snap = ep.add_embedding(logdir, np.random.rand(100, 16), metadata=labels)
    >>> snap.tensor_name
    'default:000000000'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DiskReserveError,
    EmbeddingProjectorError,
    InvalidEmbeddingError,
    LogDirError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    SnapshotWriteError,
    VectorFileError,
)

if TYPE_CHECKING:
    from .compare import CompareSummary, compare_embeddings
    from .export import ExportSummary, export_embeddings
    from .glyphs import glyph_images
    from .glyphs.fonts import MissingGlyphWarning
    from .insight.layouts import AlignedLayout, ProjectorLayout
    from .readers import SourceOptions, load_rows
    from .readers.selection import RowSelection
    from .writer import (
        MAX_PROJECTOR_ROWS,
        MAX_SPRITE_SIDE,
        PreparedMetadata,
        ProjectorWriter,
        Snapshot,
        StoredSnapshot,
        add_embedding,
        escape_label,
        prepare_metadata,
    )

#: Public name -> the submodule that defines it. They are imported on first use (PEP 562), so
#: a one-shot ``export`` does not pay for compare, layouts, fonts or glyphs (a tenth of a second).
_LAZY = {
    **dict.fromkeys(["CompareSummary", "compare_embeddings"], "compare"),
    **dict.fromkeys(["ExportSummary", "export_embeddings"], "export"),
    "MissingGlyphWarning": "glyphs.fonts",
    "glyph_images": "glyphs",
    **dict.fromkeys(["AlignedLayout", "ProjectorLayout"], "insight.layouts"),
    **dict.fromkeys(["SourceOptions", "load_rows"], "readers"),
    "RowSelection": "readers.selection",
    **dict.fromkeys(
        [
            "MAX_PROJECTOR_ROWS",
            "MAX_SPRITE_SIDE",
            "PreparedMetadata",
            "ProjectorWriter",
            "Snapshot",
            "StoredSnapshot",
            "add_embedding",
            "escape_label",
            "prepare_metadata",
        ],
        "writer",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    "MAX_PROJECTOR_ROWS",
    "MAX_SPRITE_SIDE",
    "AlignedLayout",
    "CompareSummary",
    "ConfigError",
    "DiskReserveError",
    "EmbeddingProjectorError",
    "ExportSummary",
    "InvalidEmbeddingError",
    "LogDirError",
    "MissingGlyphWarning",
    "PreparedMetadata",
    "ProjectorLayout",
    "ProjectorWriter",
    "RowSelection",
    "Snapshot",
    "SnapshotExistsError",
    "SnapshotNotFoundError",
    "SnapshotWriteError",
    "SourceOptions",
    "StoredSnapshot",
    "VectorFileError",
    "__version__",
    "add_embedding",
    "compare_embeddings",
    "escape_label",
    "export_embeddings",
    "glyph_images",
    "load_rows",
    "prepare_metadata",
]
