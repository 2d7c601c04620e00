"""Writes what TensorBoard's Embedding Projector reads from a log directory.

Everything this package writes goes through :class:`ProjectorWriter`. With its private helper
modules it is the only code that knows the on-disk layout: :mod:`._format` (names, limits, text
rules), :mod:`._format.files` (atomic writes, ``O_DIRECT``, temp files), :mod:`._format.config` (the
config's entries), :mod:`._format.logdir` (URL check, lock, refresh run, free space),
:mod:`._format.metadata` (labels) and :mod:`._format.readback` (reading a snapshot back).
It keeps tensorboardX's layout, so snapshots of both tools coexist in one run::

    <logdir>/projector_config.pbtxt                   merged config (TensorBoard's own proto)
    <logdir>/<step, 5 digits>/<tag>/tensors.r<rev>.bin float32 (tiny or UTF-8-like ones: .tsv)

The full layout, and why each rule exists, is in :mod:`._format`.

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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._format import (
    BOOKMARKS_FILE,
    CONFIG_FILENAME,
    EVENT_FILE_MARKER,
    SOURCE_FILE,
    TENSOR_BINARY_SUFFIX,
    TENSOR_TSV_SUFFIX,
    posix,
    sprite_png,
    step_dirname,
    tag_dirname,
    tensor_name,
    tensor_needs_tsv,
    tensor_tsv,
)
from ._format import MAX_PROJECTOR_ROWS as MAX_PROJECTOR_ROWS
from ._format import MAX_SPRITE_SIDE as MAX_SPRITE_SIDE
from ._format import escape_label as escape_label
from ._format.arrays import as_float32_matrix, as_uint8_images, validate_step, validate_tag
from ._format.bookmarks import bookmarks_file
from ._format.config import (
    OverwriteGuard,
    next_revision,
    our_steps,
    prune_files,
    read_config,
    remove_entries,
    remove_unreferenced,
    rename_foreign_entries,
    replace_entry,
    write_config,
)
from ._format.files import atomic_write, remove_stale_temp_files
from ._format.files import write_empty_event_file as _write_empty_event_file
from ._format.logdir import (
    ConfigLock,
    bump_refresh_run,
    check_disk_reserve,
    check_not_a_file,
    local_logdir,
    remove_refresh_runs,
    resolve_logdir,
    validate_disk_reserve,
    write_error,
)
from ._format.metadata import PreparedMetadata as PreparedMetadata
from ._format.metadata import glyph_sprites, metadata_for
from ._format.metadata import prepare_metadata as prepare_metadata
from ._format.metadata import prepare_metadata_columns as prepare_metadata_columns
from ._format.readback import Snapshot as Snapshot
from ._format.readback import StoredSnapshot as StoredSnapshot
from ._format.readback import find_entry, read_entry, stored_steps
from ._keywords import suggest_keywords

if TYPE_CHECKING:
    from tensorboard.plugins.projector.projector_config_pb2 import (
        EmbeddingInfo,
        ProjectorConfig,
    )

    from .insight.layouts import LayoutSpec

__all__ = [
    "MAX_PROJECTOR_ROWS",
    "MAX_SPRITE_SIDE",
    "PreparedMetadata",
    "ProjectorWriter",
    "Snapshot",
    "StoredSnapshot",
    "add_embedding",
    "escape_label",
    "prepare_metadata",
    "prepare_metadata_columns",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- writer


@suggest_keywords()
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
            file system allow it (Linux; not tmpfs): far less CPU, as the page cache is
            bypassed, but the call then waits for the disk. For writers beside training (the
            callbacks use it), where CPU is what training misses, and for ``export`` (its
            whole-process CPU is what it is measured by; on an SSD it is no slower).
        disk_reserve: bytes that must stay free on the log dir's file system after each
            snapshot, or a snapshot raises :class:`~.errors.DiskReserveError` before writing
            anything. ``None`` (default): the larger of twice the snapshot and 5 % of the file
            system capped at 1 GiB, so the run's checkpoints keep room. ``0`` disables it.

    Raises:
        LogDirError: ``logdir`` is a URL (``s3://``, ``gs://``, ``memory://``, ...), which
            TensorBoard's projector cannot serve from, or an existing file.
        ValueError: ``disk_reserve`` is negative or not smaller than the whole file system.

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
        disk_reserve: int | None = None,
    ) -> None:
        self.logdir = local_logdir(logdir)
        check_not_a_file(self.logdir)
        validate_disk_reserve(self.logdir, disk_reserve)
        self.config_path = self.logdir / CONFIG_FILENAME
        self.live_refresh = live_refresh
        self.lock_timeout = lock_timeout
        self.direct_io = direct_io
        self.disk_reserve = disk_reserve

    def __repr__(self) -> str:
        return f"ProjectorWriter({str(self.logdir)!r})"

    def __enter__(self) -> ProjectorWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the refresh run and the lock file; the snapshots and config stay.

        Removing the refresh run changes TensorBoard's set of runs once more, so a running
        TensorBoard still picks up the last snapshot (after its next reload), and no empty
        ``.projector-refresh/...`` run stays in the run lists of the other dashboards. Call it
        when this process writes no more snapshots to the log dir (or use the writer as a
        context manager); writing afterwards works and needs another ``close()``. Failures are
        logged, never raised: the snapshots are complete either way.
        """
        if not self.logdir.is_dir():
            return
        try:
            with ConfigLock(self.logdir, self.lock_timeout) as lock:
                if self.live_refresh:
                    remove_refresh_runs(self.logdir)
                lock.remove_file()
        except OSError as error:
            logger.warning("could not tidy up %s on close: %s", self.logdir, error)

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
        source: str | None = None,
        overwrite: bool = True,
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
            source: what the snapshot is made from (a file's resolved path, a digest of the
                data), recorded beside it so a later write can tell a rewrite of the same
                source from a different one.
            overwrite: ``False``: refuse to replace a snapshot of this tag and step that was
                made from anything but ``source`` (or by another writer) -- what export and
                compare do unless asked. A rewrite of one step (a callback's) is the default.

        Returns:
            The :class:`Snapshot` written.

        Raises:
            InvalidEmbeddingError: bad input or layout; nothing written (ImportError: no umap).
            SnapshotExistsError: ``overwrite=False`` and another source's snapshot holds the
                tag and step; nothing was written.
            ConfigError: the existing config does not parse; nothing was written.
            DiskReserveError: the snapshot would leave less than ``disk_reserve`` free;
                nothing was written.
            SnapshotWriteError: the disk is full, read-only or not writable (an ``OSError``);
                earlier snapshots and the config are unchanged.
        """
        step = validate_step(global_step)
        validate_tag(tag)
        matrix = as_float32_matrix(mat, table=tag)
        rows = matrix.shape[0]
        prepared = metadata_for(metadata, rows, metadata_header)
        metadata_text = None if prepared is None else prepared.text
        labels = None if prepared is None else prepared.labels
        if isinstance(label_img, str):
            label_img = glyph_sprites(label_img, labels)
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
        guard = OverwriteGuard(source, overwrite)
        return self._write(matrix, metadata_text, sprite, step, tag, name_suffix, bookmarks, guard)

    def check_overwrite(self, tag: str, step: int | None, source: str | None) -> None:
        """Raise what ``add_embedding(..., source=source, overwrite=False)`` would raise.

        For a caller that can fail early, before it reads its source; the write checks again
        under the config lock.

        Raises:
            SnapshotExistsError: a snapshot of another source holds ``tag`` at ``step``.
        """
        step = validate_step(step)
        validate_tag(tag)
        OverwriteGuard(source, overwrite=False).check(
            self.logdir, read_config(self.config_path), tag, step
        )

    def steps(self, tag: str = "default") -> list[int]:
        """Steps already written for ``tag``, by this package or by tensorboardX (sorted)."""
        return stored_steps(read_config(self.config_path), tag)

    def entries(self) -> list[EmbeddingInfo]:
        """All entries of the run's projector config, tensorboardX's included."""
        return list(read_config(self.config_path).embeddings)

    def read(self, tag: str, step: int | None = None) -> StoredSnapshot:
        """Read a snapshot back through its config entry: (matrix, metadata columns, header).

        Ours (binary or TSV tensors) and tensorboardX's (TSV) alike; of a step written twice,
        the current revision; ``step=None`` reads the latest step. Labels come back as
        TensorBoard serves them (escaped).

        Raises:
            SnapshotNotFoundError: no snapshot of ``tag`` at ``step`` (a ``LookupError``).
            ConfigError: the config does not parse, or its files do not match it.

        Example:
            >>> import numpy as np, tempfile
            >>> writer = ProjectorWriter(tempfile.mkdtemp())
            >>> _ = writer.add_embedding(np.eye(3), metadata=["a", "b", "c"], global_step=3)
            >>> matrix, columns, header = writer.read("default", 3)
            >>> matrix.shape, columns, header
            ((3, 3), [['a', 'b', 'c']], None)
        """
        validate_tag(tag)
        if step is not None:
            step = validate_step(step)
        entry = find_entry(read_config(self.config_path), tag, step)
        return read_entry(self.logdir, entry)

    def remove_steps(self, tag: str, steps: Iterable[int]) -> list[int]:
        """Remove snapshots of ``tag``: from the config first (atomically), then their files.

        A crash in between leaves a config that references only complete snapshots; the
        orphaned files go at the next ``remove_steps`` or :meth:`retain`. Steps never written
        are ignored; tensorboardX's entries are never touched.

        Returns:
            The steps removed (sorted).

        Raises:
            InvalidEmbeddingError: a step that is not an integer >= 0, or a bad tag.
            SnapshotWriteError: the config could not be rewritten (it is unchanged).

        Example:
            >>> import numpy as np, tempfile
            >>> writer = ProjectorWriter(tempfile.mkdtemp())
            >>> for step in range(4):
            ...     _ = writer.add_embedding(np.random.rand(3, 2), global_step=step)
            >>> writer.remove_steps("default", [1, 2, 7])
            [1, 2]
        """
        validate_tag(tag)
        wanted = {validate_step(step) for step in steps}
        return self._prune(tag, lambda existing: wanted & set(existing))

    def retain(self, tag: str, keep: int, always_keep: Iterable[int] = (0,)) -> list[int]:
        """Keep the ``keep`` most recent steps of ``tag`` and ``always_keep``; remove the rest.

        What callbacks call after each snapshot to bound a long run's footprint: by default
        the random start (step 0) stays, so the projector can still compare against it. The
        last step is always among the kept. Removal is as in :meth:`remove_steps`.

        Returns:
            The steps removed (sorted).

        Raises:
            ValueError: ``keep`` is not an integer >= 1.

        Example:
            >>> import numpy as np, tempfile
            >>> writer = ProjectorWriter(tempfile.mkdtemp())
            >>> for step in range(6):
            ...     _ = writer.add_embedding(np.random.rand(3, 2), global_step=step)
            ...     _ = writer.retain("default", keep=2)
            >>> writer.steps()
            [0, 4, 5]
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(
                f"keep must be an integer >= 1 (how many recent steps stay); got {keep!r}."
            )
        validate_tag(tag)
        always = {validate_step(step) for step in always_keep}

        def doomed(existing: list[int]) -> set[int]:
            return set(existing[:-keep]) - always

        return self._prune(tag, doomed)

    # -- internals -------------------------------------------------------------------------

    def _prune(self, tag: str, choose: Callable[[list[int]], set[int]]) -> list[int]:
        if not self.config_path.exists():
            return []
        try:
            with ConfigLock(self.logdir, self.lock_timeout):
                config = read_config(self.config_path)
                remove_stale_temp_files(self.logdir)  # e.g. from a prune killed mid-way
                doomed = choose(our_steps(config, tag))
                if doomed:
                    remove_entries(config, tag, doomed)
                    write_config(self.logdir, config)  # the commit: files go after it
                prune_files(self.logdir, tag, set(our_steps(config, tag)))
                if doomed and self.live_refresh:
                    with contextlib.suppress(OSError):
                        bump_refresh_run(self.logdir)
        except OSError as error:
            raise write_error(
                error, self.logdir, self.lock_timeout, f"remove steps of {tag!r}"
            ) from error
        logger.debug("removed steps %s of %r from %s", sorted(doomed), tag, self.logdir)
        return sorted(doomed)

    def _write(
        self,
        matrix: npt.NDArray[np.float32],
        metadata_text: bytes | None,
        sprite: tuple[bytes, int] | None,
        step: int,
        tag: str,
        name_suffix: str | None,
        bookmarks: bytes | None = None,
        guard: OverwriteGuard | None = None,
    ) -> Snapshot:
        check_not_a_file(self.logdir)
        tensor = tensor_tsv(matrix) if tensor_needs_tsv(matrix) else matrix
        sizes = [tensor.nbytes if isinstance(tensor, np.ndarray) else len(tensor)]
        sizes += [len(metadata_text or b""), len(sprite[0]) if sprite else 0, len(bookmarks or b"")]
        with contextlib.suppress(OSError):
            sizes.append(self.config_path.stat().st_size + 1024)  # the new config beside it
        check_disk_reserve(self.logdir, sizes, self.disk_reserve, f"snapshot {tag!r} step {step}")
        written: list[Path] = []
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            with ConfigLock(self.logdir, self.lock_timeout):
                snapshot = self._write_locked(
                    matrix,
                    tensor,
                    metadata_text,
                    sprite,
                    (tag, step, name_suffix),
                    written,
                    bookmarks,
                    guard or OverwriteGuard(None, overwrite=True),
                )
        except OSError as error:
            for path in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            action = f"write snapshot {tag!r} step {step}"
            raise write_error(error, self.logdir, self.lock_timeout, action) from error
        logger.debug("wrote %s (%d x %d) to %s", snapshot.tensor_name, *matrix.shape, self.logdir)
        return snapshot

    def _write_locked(
        self,
        matrix: npt.NDArray[np.float32],
        tensor: bytes | npt.NDArray[np.float32],
        metadata_text: bytes | None,
        sprite: tuple[bytes, int] | None,
        where: tuple[str, int, str | None],
        written: list[Path],
        bookmarks: bytes | None,
        guard: OverwriteGuard,
    ) -> Snapshot:
        """Write the files, then the config; ``written`` lists files to remove on failure."""
        tag, step, name_suffix = where
        use_tsv = not isinstance(tensor, np.ndarray)
        relative_dir = posix(step_dirname(step), tag_dirname(tag))
        directory = self.logdir / step_dirname(step) / tag_dirname(tag)
        config = read_config(self.config_path)
        guard.check(self.logdir, config, tag, step)  # before any file of this snapshot
        remove_stale_temp_files(self.logdir)
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(directory)
        revision = next_revision(config, relative_dir, directory)
        tensor_file = f"tensors.r{revision}" + (
            TENSOR_TSV_SUFFIX if use_tsv else TENSOR_BINARY_SUFFIX
        )
        # Data first, each by atomic rename; the config last: a crash at any point
        # leaves the previous config pointing at complete files.
        tensor_path = atomic_write(directory, tensor_file, tensor, direct=self.direct_io)
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
        if guard.source is not None:
            source_text = guard.source.encode("utf-8", "surrogateescape")
            written.append(atomic_write(directory, SOURCE_FILE % revision, source_text))
        name = tensor_name(tag, step, revision, name_suffix)
        entry = replace_entry(config, relative_dir)
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
        rename_foreign_entries(config)
        self._ensure_event_file()
        write_config(self.logdir, config)
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

    def _tidy_up(self, directory: Path, config: ProjectorConfig, relative_dir: str) -> None:
        """Best-effort work after the commit: its failure must not fail the write."""
        try:
            remove_unreferenced(directory, config, relative_dir)
            if self.live_refresh:
                bump_refresh_run(self.logdir)
        except OSError as error:
            logger.warning("snapshot written, but tidying up %s failed: %s", directory, error)

    def _ensure_event_file(self) -> None:
        """TensorBoard lists a directory as a run only if it holds an event file."""
        if any(EVENT_FILE_MARKER in name for name in os.listdir(self.logdir)):
            return
        _write_empty_event_file(self.logdir, ".embedding-projector")


def add_embedding(
    logdir_or_writer: Any,
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
        logdir_or_writer: a log directory, or a tensorboardX / ``torch.utils.tensorboard``
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
        LogDirError: the log dir is a URL or an existing file; nothing was written.
        SnapshotWriteError: the file system refused the write (an ``OSError``).

    Example:
        >>> import numpy as np, tempfile
        >>> from embedding_projector import add_embedding
        >>> snap = add_embedding(tempfile.mkdtemp(), np.eye(3), metadata=["a", "b", "c"])
        >>> snap.shape
        (3, 3)
    """
    # One shot: the write bumps the refresh run, close() removes it; see the README's "What a
    # running TensorBoard picks up".
    with ProjectorWriter(resolve_logdir(logdir_or_writer)) as writer:
        return writer.add_embedding(
            mat,
            metadata=metadata,
            label_img=label_img,
            global_step=global_step,
            tag=tag,
            metadata_header=metadata_header,
            layout=layout,
        )
