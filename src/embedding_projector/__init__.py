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

from .compare import CompareSummary, compare_embeddings
from .errors import (
    ConfigError,
    DiskReserveError,
    EmbeddingProjectorError,
    InvalidEmbeddingError,
    LogDirError,
    SnapshotNotFoundError,
    SnapshotWriteError,
    VectorFileError,
)
from .export import ExportSummary, export_embeddings
from .fonts import MissingGlyphWarning
from .glyphs import glyph_images
from .layouts import AlignedLayout, ProjectorLayout
from .readers import SourceOptions, load_rows
from .selection import RowSelection
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
