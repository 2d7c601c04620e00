"""Writes what TensorBoard's Embedding Projector reads from a log directory.

Everything this package writes goes through :class:`ProjectorWriter`. With :mod:`._format`
(names, limits, text rules) and :mod:`._files` (atomic writes, ``O_DIRECT``, temp files) it is
the only code that knows the on-disk layout; the names defined there stay importable from here.
It keeps tensorboardX's layout, so snapshots of both tools coexist in one run::

    <logdir>/projector_config.pbtxt             merged config (TensorBoard's own proto)
    <logdir>/<step, 5 digits>/<tag>/tensors.r1.bin    raw little-endian float32, tensor_shape set
    <logdir>/<step, 5 digits>/<tag>/metadata.r1.tsv   escaped labels (header only if >1 column)
    <logdir>/<step, 5 digits>/<tag>/sprite.r1.png     sprite sheet, <= 8192 x 8192 px
    <logdir>/.projector-refresh/<n>/events...   tiny run renamed per snapshot (see below)

Why each rule exists (all verified against TensorBoard 2.21's ``projector_plugin.py``):

* **Binary tensors.** The plugin first parses a tensor file as TSV and falls back to float32
  binary only on a ``UnicodeDecodeError`` in the first 16 MiB it decodes. A binary file whose
  start is valid UTF-8 (all zeros, tiny matrices) would be misparsed, so such a matrix is
  written as TSV instead.
* **A new revision per write.** Tensors are cached by (run, name) and every config entry's
  tensor is read when configs are re-read; a tensor rewritten in place under the same name is
  served stale, and a config pointing at a half-replaced file breaks the projector for *all*
  runs. So every write goes to fresh file names (``.r<rev>.``), the config is switched
  atomically afterwards, and a rewrite of the same tag and step gets a new tensor name.
* **The refresh run.** The plugin re-reads configs only when the set of runs changes. A
  snapshot added to a run TensorBoard already knows stays invisible until restart. After each
  write, a one-event run under ``.projector-refresh/`` is renamed, which changes the set of
  runs; a browser refresh then shows the new snapshot. It costs one extra row in the run list.
* **The frontend** orders its tensor dropdown by: labelled first, more rows first, then name
  (so a fixed-size selection shows its steps in order), hides tensors with fewer than 2 rows
  or columns, skips whitespace-only
  metadata lines (misaligning every later row), treats a first line with a tab as a header,
  and refuses sprites larger than 8192 px on a side.

Example:
    >>> import numpy as np, tempfile
    >>> from embedding_projector import ProjectorWriter
    >>> writer = ProjectorWriter(tempfile.mkdtemp())
    >>> snap = writer.add_embedding(np.random.rand(5, 3), metadata=list("abcde"), global_step=2)
    >>> snap.tensor_name
    'default:000000002'
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._arrays import (
    as_float32_matrix,
    as_label_columns,
    as_uint8_images,
    validate_step,
    validate_tag,
)
from ._files import DIRECT_WRITE_MIN_BYTES as DIRECT_WRITE_MIN_BYTES
from ._files import atomic_write, bump_refresh_run, remove_stale_temp_files
from ._files import write_direct as _write_direct  # noqa: F401  (tests probe it)
from ._files import write_empty_event_file as _write_empty_event_file
from ._format import BOOKMARKS_FILE, OUR_FILE, parse_our_tensor_path, posix, tensor_tsv
from ._format import CONFIG_FILENAME as CONFIG_FILENAME
from ._format import EVENT_FILE_MARKER as EVENT_FILE_MARKER
from ._format import GLYPHS as GLYPHS
from ._format import LOCK_FILENAME as LOCK_FILENAME
from ._format import MAX_PROJECTOR_ROWS as MAX_PROJECTOR_ROWS
from ._format import MAX_SPRITE_SIDE as MAX_SPRITE_SIDE
from ._format import MAX_TAG_DIR_BYTES as MAX_TAG_DIR_BYTES
from ._format import REFRESH_DIRNAME as REFRESH_DIRNAME
from ._format import STEP_DIR_DIGITS as STEP_DIR_DIGITS
from ._format import TEMP_PREFIX as TEMP_PREFIX
from ._format import TENSOR_BINARY_SUFFIX as TENSOR_BINARY_SUFFIX
from ._format import TENSOR_NAME_STEP_DIGITS as TENSOR_NAME_STEP_DIGITS
from ._format import TENSOR_TSV_SUFFIX as TENSOR_TSV_SUFFIX
from ._format import TSV_PROBE_BYTES as TSV_PROBE_BYTES
from ._format import escape_label as escape_label
from ._format import metadata_tsv as metadata_tsv
from ._format import read_config as read_config
from ._format import sprite_cell_size as sprite_cell_size
from ._format import sprite_png as sprite_png
from ._format import step_dirname as step_dirname
from ._format import tag_dirname as tag_dirname
from ._format import tensor_name as tensor_name
from ._format import tensor_needs_tsv as tensor_needs_tsv
from ._states import bookmarks_file
from .errors import InvalidEmbeddingError, SnapshotWriteError

if TYPE_CHECKING:
    from tensorboard.plugins.projector.projector_config_pb2 import (
        EmbeddingInfo,
        ProjectorConfig,
    )

    from .layouts import LayoutSpec

__all__ = [
    "MAX_PROJECTOR_ROWS",
    "MAX_SPRITE_SIDE",
    "PreparedMetadata",
    "ProjectorWriter",
    "Snapshot",
    "add_embedding",
    "escape_label",
    "prepare_metadata",
    "resolve_logdir",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What one write produced.

    Attributes:
        tag: the tag as given.
        step: the step number.
        tensor_name: the name the projector's dropdown shows.
        shape: (rows, columns).
        directory: the snapshot's directory.
        tensor_path: the tensor file.
        metadata_path: the metadata file, if labels were given.
        sprite_path: the sprite sheet, if images were given.
        config_path: the run's ``projector_config.pbtxt``.
        bookmarks_path: the saved states (``layout=``), if any.
    """

    tag: str
    step: int
    tensor_name: str
    shape: tuple[int, int]
    directory: Path
    tensor_path: Path
    metadata_path: Path | None
    sprite_path: Path | None
    config_path: Path
    bookmarks_path: Path | None = None


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
    return _prepared_for(metadata, rows, metadata_header)


def _prepared_for(
    metadata: Any, rows: int, metadata_header: Sequence[Any] | None
) -> PreparedMetadata:
    """Labels validated against ``rows`` points, escaped and encoded."""
    columns, header = as_label_columns(metadata, rows, metadata_header)
    return PreparedMetadata(
        rows=rows, text=metadata_tsv(columns, header).encode("utf-8"), labels=tuple(columns[0])
    )


# --------------------------------------------------------------------------- writer


def resolve_logdir(writer_or_logdir: Any) -> Path:
    """The log directory of a path, a tensorboardX/torch ``SummaryWriter`` or a Lightning logger.

    Raises:
        TypeError: the object is none of these.
    """
    if isinstance(writer_or_logdir, (str, os.PathLike)):
        return Path(os.fspath(writer_or_logdir)).expanduser()
    for attribute in ("get_logdir", "log_dir", "logdir"):
        value = getattr(writer_or_logdir, attribute, None)
        if callable(value):
            value = value()
        if isinstance(value, (str, os.PathLike)):
            return Path(os.fspath(value)).expanduser()
    raise TypeError(
        "writer_or_logdir must be a log directory path or a SummaryWriter (tensorboardX or "
        f"torch.utils.tensorboard); got {type(writer_or_logdir).__name__}."
    )


class ProjectorWriter:
    """Writes embedding snapshots into one TensorBoard run directory.

    Safe against crashes (data first, config last, both via atomic renames), against other
    writers (a file lock around the config's read-modify-write) and against bad input
    (validated before any file is touched).

    Args:
        logdir: the run directory (created if missing).
        live_refresh: rename the ``.projector-refresh`` marker run after each write so a
            TensorBoard that is already running shows the new snapshot on a browser refresh.
        lock_timeout: seconds to wait for another writer's lock.
        direct_io: write tensors of 8 MiB and more with ``O_DIRECT`` where the platform and
            file system allow it (Linux; not tmpfs): a tenth of the CPU, as the page cache is
            bypassed, but the call then waits for the disk. For writers beside training (the
            callbacks use it), where CPU is what training misses; off for one-shot writes,
            where the wall-clock time matters.

    Example:
        >>> import numpy as np, tempfile
        >>> writer = ProjectorWriter(tempfile.mkdtemp())
        >>> for step in range(3):
        ...     _ = writer.add_embedding(np.random.rand(10, 4), global_step=step, tag="words")
        >>> writer.steps("words")
        [0, 1, 2]
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        live_refresh: bool = True,
        lock_timeout: float = 120.0,
        direct_io: bool = False,
    ) -> None:
        self.logdir = Path(os.fspath(logdir)).expanduser()
        self.config_path = self.logdir / CONFIG_FILENAME
        self.live_refresh = live_refresh
        self.lock_timeout = lock_timeout
        self.direct_io = direct_io

    def __repr__(self) -> str:
        return f"ProjectorWriter({str(self.logdir)!r})"

    # -- public API ------------------------------------------------------------------------

    def add_embedding(
        self,
        mat: Any,
        metadata: Sequence[Any] | PreparedMetadata | None = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: Sequence[Any] | None = None,
        *,
        name_suffix: str | None = None,
        layout: LayoutSpec | None = None,
    ) -> Snapshot:
        """Write one snapshot; the arguments mean what they mean in tensorboardX.

        Args:
            mat: (N, D) matrix: numpy array, torch tensor or nested lists.
            metadata: N labels, or N rows of several columns (then name them in
                ``metadata_header``), or labels made once by :func:`prepare_metadata`.
            label_img: (N, C, H, W) images (C = 1, 3 or 4; float in [0, 1] or uint8) that
                become the sprite sheet, or ``"glyphs"``: each point's label (the first
                metadata column) drawn as its image (see :func:`~.glyphs.glyph_images`).
            global_step: step number (default 0).
            tag: name of the embedding.
            metadata_header: column names for multi-column metadata.
            name_suffix: extra text for the tensor name (e.g. ``"epoch 3"``).
            layout: saved states (BOOKMARKS) beside the tensor: ``"pca"`` or ``"umap"`` (computed
                here; UMAP needs the ``layouts`` extra), or ``ProjectorLayout`` objects.

        Returns:
            The :class:`Snapshot` written.

        Raises:
            InvalidEmbeddingError: bad input or layout; nothing written (ImportError: no umap).
            ConfigError: the existing config does not parse; nothing was written.
            SnapshotWriteError: the disk is full, read-only or not writable (an ``OSError``);
                earlier snapshots and the config are unchanged.
        """
        step = validate_step(global_step)
        validate_tag(tag)
        matrix = as_float32_matrix(mat)
        rows = matrix.shape[0]
        prepared: PreparedMetadata | None = None
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
            prepared = metadata
        elif metadata is not None:
            prepared = _prepared_for(metadata, rows, metadata_header)
        metadata_text = None if prepared is None else prepared.text
        labels = None if prepared is None else prepared.labels
        if isinstance(label_img, str):
            label_img = _glyph_sprites(label_img, labels)
        sprite: tuple[bytes, int] | None = None
        if label_img is not None:
            sprite = sprite_png(as_uint8_images(label_img, rows))
        bookmarks = None if layout is None else bookmarks_file(layout, matrix, metadata_text)
        if rows > MAX_PROJECTOR_ROWS:
            warnings.warn(
                f"Writing {rows} rows for tag {tag!r}, but TensorBoard's projector loads only "
                f"the first {MAX_PROJECTOR_ROWS} (tensorflow/tensorboard#773); put the rows "
                "you care about first, or select fewer.",
                UserWarning,
                stacklevel=2,
            )
        return self._write(matrix, metadata_text, sprite, step, tag, name_suffix, bookmarks)

    def steps(self, tag: str = "default") -> list[int]:
        """Steps already written for ``tag`` by this package (sorted)."""
        prefix_dir = tag_dirname(tag)
        found = set()
        for entry in read_config(self.config_path).embeddings:
            parsed = parse_our_tensor_path(entry.tensor_path)
            if parsed and parsed[1] == prefix_dir:
                found.add(parsed[0])
        return sorted(found)

    def entries(self) -> list[EmbeddingInfo]:
        """All entries of the run's projector config, tensorboardX's included."""
        return list(read_config(self.config_path).embeddings)

    # -- internals -------------------------------------------------------------------------

    def _write(
        self,
        matrix: npt.NDArray[np.float32],
        metadata_text: bytes | None,
        sprite: tuple[bytes, int] | None,
        step: int,
        tag: str,
        name_suffix: str | None,
        bookmarks: bytes | None = None,
    ) -> Snapshot:
        from filelock import FileLock

        written: list[Path] = []
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.logdir / LOCK_FILENAME), timeout=self.lock_timeout):
                snapshot = self._write_locked(
                    matrix, metadata_text, sprite, (tag, step, name_suffix), written, bookmarks
                )
        except OSError as error:
            for path in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise self._write_error(error, f"snapshot {tag!r} step {step}") from error
        logger.debug("wrote %s (%d x %d) to %s", snapshot.tensor_name, *matrix.shape, self.logdir)
        return snapshot

    def _write_error(self, error: OSError, what: str) -> SnapshotWriteError:
        if isinstance(error, TimeoutError):
            message = (
                f"another process held the lock on {self.logdir} for more than "
                f"{self.lock_timeout:g} s; {what} was not written"
            )
        else:
            message = (
                f"could not write {what} to {self.logdir}: "
                f"{error.strerror or error}; earlier snapshots and the config are unchanged"
            )
        if error.errno is not None:
            return SnapshotWriteError(error.errno, message)
        return SnapshotWriteError(message)

    def _write_locked(
        self,
        matrix: npt.NDArray[np.float32],
        metadata_text: bytes | None,
        sprite: tuple[bytes, int] | None,
        where: tuple[str, int, str | None],
        written: list[Path],
        bookmarks: bytes | None = None,
    ) -> Snapshot:
        """Write the files, then the config; ``written`` lists files to remove on failure."""
        tag, step, name_suffix = where
        use_tsv = tensor_needs_tsv(matrix)
        relative_dir = posix(step_dirname(step), tag_dirname(tag))
        directory = self.logdir / step_dirname(step) / tag_dirname(tag)
        config = read_config(self.config_path)
        remove_stale_temp_files(self.logdir)
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(directory)
        revision = self._next_revision(config, relative_dir, directory)
        tensor_file = f"tensors.r{revision}" + (
            TENSOR_TSV_SUFFIX if use_tsv else TENSOR_BINARY_SUFFIX
        )
        # Data first, each by atomic rename; the config last: a crash at any point
        # leaves the previous config pointing at complete files.
        tensor_path = atomic_write(
            directory, tensor_file, tensor_tsv(matrix) if use_tsv else matrix, direct=self.direct_io
        )
        written.append(tensor_path)
        metadata_path = sprite_path = None
        if metadata_text is not None:
            metadata_path = atomic_write(directory, f"metadata.r{revision}.tsv", metadata_text)
            written.append(metadata_path)
        if sprite is not None:
            sprite_path = atomic_write(directory, f"sprite.r{revision}.png", sprite[0])
            written.append(sprite_path)
        bookmarks_path = None
        if bookmarks is not None:
            bookmarks_path = atomic_write(directory, BOOKMARKS_FILE % revision, bookmarks)
            written.append(bookmarks_path)
        name = tensor_name(tag, step, revision, name_suffix)
        entry = self._replace_entry(config, relative_dir)
        entry.tensor_name = name
        entry.tensor_path = posix(relative_dir, tensor_file)
        entry.tensor_shape.extend(matrix.shape)
        if metadata_path is not None:
            entry.metadata_path = posix(relative_dir, metadata_path.name)
        if sprite is not None and sprite_path is not None:
            entry.sprite.image_path = posix(relative_dir, sprite_path.name)
            entry.sprite.single_image_dim.extend([sprite[1], sprite[1]])
        if bookmarks_path is not None:
            entry.bookmarks_path = posix(relative_dir, bookmarks_path.name)
        self._ensure_event_file()
        self._write_config(config)
        written.clear()  # committed: these files are now referenced
        self._tidy_up(directory, config, relative_dir)
        return Snapshot(
            tag=tag,
            step=step,
            tensor_name=name,
            shape=(int(matrix.shape[0]), int(matrix.shape[1])),
            directory=directory,
            tensor_path=tensor_path,
            metadata_path=metadata_path,
            sprite_path=sprite_path,
            config_path=self.config_path,
            bookmarks_path=bookmarks_path,
        )

    @staticmethod
    def _next_revision(config: ProjectorConfig, relative_dir: str, directory: Path) -> int:
        revisions = [0]
        for entry in config.embeddings:
            parsed = parse_our_tensor_path(entry.tensor_path)
            if parsed and posix(step_dirname(parsed[0]), parsed[1]) == relative_dir:
                revisions.append(parsed[2])
        with contextlib.suppress(OSError):
            for file_name in os.listdir(directory):
                match = OUR_FILE.match(file_name)
                if match:
                    revisions.append(int(match.group(2)))
        return max(revisions) + 1

    @staticmethod
    def _replace_entry(config: ProjectorConfig, relative_dir: str) -> EmbeddingInfo:
        """Clear and return our entry for this step and tag (or append a new one)."""
        for entry in config.embeddings:
            parsed = parse_our_tensor_path(entry.tensor_path)
            if parsed and posix(step_dirname(parsed[0]), parsed[1]) == relative_dir:
                entry.Clear()
                return entry
        return config.embeddings.add()

    def _write_config(self, config: ProjectorConfig) -> None:
        from google.protobuf import text_format

        atomic_write(
            self.logdir, CONFIG_FILENAME, text_format.MessageToString(config).encode("utf-8")
        )

    def _tidy_up(self, directory: Path, config: ProjectorConfig, relative_dir: str) -> None:
        """Best-effort work after the commit: its failure must not fail the write."""
        try:
            self._remove_unreferenced(directory, config, relative_dir)
            if self.live_refresh:
                bump_refresh_run(self.logdir)
        except OSError as error:
            logger.warning("snapshot written, but tidying up %s failed: %s", directory, error)

    @staticmethod
    def _remove_unreferenced(directory: Path, config: ProjectorConfig, relative_dir: str) -> None:
        referenced = set()
        for entry in config.embeddings:
            files = (entry.tensor_path, entry.metadata_path, entry.sprite.image_path)
            for path in (*files, entry.bookmarks_path):
                if path.startswith(relative_dir + "/"):
                    referenced.add(path[len(relative_dir) + 1 :])
        for file_name in os.listdir(directory):
            if OUR_FILE.match(file_name) and file_name not in referenced:
                with contextlib.suppress(OSError):
                    os.unlink(directory / file_name)

    def _ensure_event_file(self) -> None:
        """TensorBoard lists a directory as a run only if it holds an event file."""
        if any(EVENT_FILE_MARKER in name for name in os.listdir(self.logdir)):
            return
        _write_empty_event_file(self.logdir, ".embedding-projector")


def _glyph_sprites(label_img: str, labels: Sequence[str] | None) -> Any:
    """Images for ``label_img="glyphs"``: the first metadata column drawn by glyph_images."""
    if label_img != GLYPHS:
        raise InvalidEmbeddingError(
            f'label_img must be an (N, C, H, W) image array or "{GLYPHS}"; got {label_img!r}.'
        )
    if labels is None:
        raise InvalidEmbeddingError(
            f'label_img="{GLYPHS}" draws each point\'s label, so it needs metadata.'
        )
    from .glyphs import glyph_images  # Pillow and fonts: loaded only when glyphs are drawn

    # Warnings point at the caller of add_embedding (two frames above glyph_images).
    return glyph_images(list(labels), stacklevel=4)


def add_embedding(
    writer_or_logdir: Any,
    mat: Any,
    metadata: Sequence[Any] | PreparedMetadata | None = None,
    label_img: Any = None,
    global_step: int | None = None,
    tag: str = "default",
    metadata_header: Sequence[Any] | None = None,
    *,
    layout: LayoutSpec | None = None,
) -> Snapshot:
    """Drop-in for tensorboardX's ``SummaryWriter.add_embedding``, fast and safe.

    Args:
        writer_or_logdir: a log directory, or a tensorboardX / ``torch.utils.tensorboard``
            ``SummaryWriter`` (its log directory is used; snapshots of both coexist).
        mat: (N, D) matrix: numpy array, torch tensor (any device or dtype) or nested lists.
        metadata: N labels, or N rows of columns named by ``metadata_header``.
        label_img: (N, C, H, W) images for the sprite sheet, or ``"glyphs"`` to draw each
            point's label as its image.
        global_step: step number (default 0).
        tag: name of the embedding.
        metadata_header: column names for multi-column metadata.
        layout: saved states beside the tensor (see :meth:`ProjectorWriter.add_embedding`).

    Returns:
        The :class:`Snapshot` written.

    Raises:
        InvalidEmbeddingError: bad input, reported before any file is touched.

    Example:
        >>> import numpy as np, tempfile
        >>> from embedding_projector import add_embedding
        >>> snap = add_embedding(tempfile.mkdtemp(), np.eye(3), metadata=["a", "b", "c"])
        >>> snap.shape
        (3, 3)
    """
    writer = ProjectorWriter(resolve_logdir(writer_or_logdir))
    return writer.add_embedding(
        mat,
        metadata=metadata,
        label_img=label_img,
        global_step=global_step,
        tag=tag,
        metadata_header=metadata_header,
        layout=layout,
    )
