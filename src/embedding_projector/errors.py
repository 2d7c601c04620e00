"""The exceptions this package raises.

Each one subclasses the builtin it refines, so ``except ValueError`` keeps working for callers
who do not know this package, and each message says what was expected, what was found and how
to fix it.
"""

from __future__ import annotations

import errno

__all__ = [
    "ConfigError",
    "DiskReserveError",
    "EmbeddingProjectorError",
    "InvalidEmbeddingError",
    "LogDirError",
    "SnapshotExistsError",
    "SnapshotNotFoundError",
    "SnapshotWriteError",
    "VectorFileError",
]


class EmbeddingProjectorError(Exception):
    """Base class of every error raised by embedding-projector."""


class InvalidEmbeddingError(EmbeddingProjectorError, ValueError):
    """A matrix, label list, image batch, tag or step cannot be written as given.

    Raised before any file is touched.
    """


class SnapshotWriteError(EmbeddingProjectorError, OSError):
    """The file system refused a snapshot (disk full, read-only, permission denied, lock timeout).

    ``errno`` is the underlying error's. What was written before is unchanged, and the
    snapshot's own partial files are removed.
    """


class DiskReserveError(SnapshotWriteError):
    """A snapshot would leave less free space than the reserve, so it was not written.

    Raised before any file is touched; ``errno`` is ``ENOSPC``. Lower the reserve with
    ``ProjectorWriter(disk_reserve=...)`` (0 disables it), write fewer rows, or free space.

    Attributes:
        free: bytes free on the log dir's file system before the write.
        needed: bytes the snapshot would write.
        reserve: bytes that must stay free after it.
    """

    def __init__(self, message: str, *, free: int, needed: int, reserve: int) -> None:
        super().__init__(errno.ENOSPC, message)
        self.free = free
        self.needed = needed
        self.reserve = reserve

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_disk_reserve_error, (self.strerror, self.free, self.needed, self.reserve))


def _rebuild_disk_reserve_error(
    message: str, free: int, needed: int, reserve: int
) -> DiskReserveError:
    return DiskReserveError(message, free=free, needed=needed, reserve=reserve)


class LogDirError(EmbeddingProjectorError, ValueError):
    """The log directory cannot hold snapshots: a URL (remote store) or an existing file.

    Raised before any file is touched.

    Attributes:
        logdir: the log directory as given.
    """

    def __init__(self, message: str, logdir: str) -> None:
        super().__init__(message)
        self.logdir = logdir

    def __reduce__(self) -> tuple[type[LogDirError], tuple[str, str]]:
        return (type(self), (self.args[0], self.logdir))


class SnapshotExistsError(EmbeddingProjectorError, ValueError):
    """A snapshot of another source already holds the tag and step; it was left as it is.

    Raised before any file is written. Pass ``overwrite=True`` (``--overwrite``) to replace
    it, or write to another tag, step or log directory.

    Attributes:
        tag: the tag.
        step: the step.
        existing: what the snapshot there was made from, or ``None`` if not recorded (another
            writer: a training callback, tensorboardX, ...).
    """

    def __init__(self, message: str, *, tag: str, step: int, existing: str | None) -> None:
        super().__init__(message)
        self.tag = tag
        self.step = step
        self.existing = existing

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_snapshot_exists_error, (self.args[0], self.tag, self.step, self.existing))


def _rebuild_snapshot_exists_error(
    message: str, tag: str, step: int, existing: str | None
) -> SnapshotExistsError:
    return SnapshotExistsError(message, tag=tag, step=step, existing=existing)


class SnapshotNotFoundError(EmbeddingProjectorError, LookupError):
    """No snapshot of the requested tag at the requested step in the log directory."""


class ConfigError(EmbeddingProjectorError, ValueError):
    """An existing ``projector_config.pbtxt`` cannot be parsed, so it is left untouched.

    Attributes:
        path: the config file.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str]]:
        return (type(self), (self.args[0], self.path))


class VectorFileError(EmbeddingProjectorError, ValueError):
    """A vector file is truncated, corrupt or not in the format it claims.

    Attributes:
        path: the file.
        offset: byte offset (or ``None``) where the problem was found.
        row: 0-based vector row (or ``None``) where the problem was found.
    """

    def __init__(
        self, message: str, path: str, *, offset: int | None = None, row: int | None = None
    ) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        full = f"{path}: {message}" + (f" (at {', '.join(where)})" if where else "")
        super().__init__(full)
        self.path = path
        self.offset = offset
        self.row = row
        self._message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_vector_file_error, (self._message, self.path, self.offset, self.row))


def _rebuild_vector_file_error(
    message: str, path: str, offset: int | None, row: int | None
) -> VectorFileError:
    return VectorFileError(message, path, offset=offset, row=row)
