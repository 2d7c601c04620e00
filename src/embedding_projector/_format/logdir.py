"""The log directory as a whole: where it is, its lock, its refresh run, its free space."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import DiskReserveError, LogDirError, SnapshotWriteError
from . import LOCK_FILENAME, REFRESH_DIRNAME, check_local_logdir
from .files import remove_tree, write_empty_event_file

__all__ = [
    "ConfigLock",
    "bump_refresh_run",
    "check_disk_reserve",
    "check_not_a_file",
    "check_writable",
    "disk_usage",
    "human_size",
    "local_logdir",
    "remove_refresh_runs",
    "reserve_for",
    "resolve_logdir",
    "validate_disk_reserve",
    "write_error",
]


def resolve_logdir(logdir_or_writer: Any) -> Path:
    """The log directory of a path, a tensorboardX/torch ``SummaryWriter`` or a Lightning logger.

    Raises:
        TypeError: the object is none of these.
        LogDirError: the log directory is a URL (``s3://``, ``gs://``, ``memory://``, ...):
            TensorBoard's projector cannot serve snapshots from a remote log dir.
    """
    if isinstance(logdir_or_writer, (str, os.PathLike)):
        return local_logdir(logdir_or_writer)
    for attribute in ("get_logdir", "log_dir", "logdir"):
        value = getattr(logdir_or_writer, attribute, None)
        if callable(value):
            value = value()
        if isinstance(value, (str, os.PathLike)):
            return local_logdir(value)
    raise TypeError(
        "logdir_or_writer must be a log directory path or a SummaryWriter (tensorboardX or "
        f"torch.utils.tensorboard); got {type(logdir_or_writer).__name__}."
    )


def local_logdir(logdir: str | os.PathLike[str]) -> Path:
    text = os.fspath(logdir)
    check_local_logdir(text)
    return Path(text).expanduser()


def write_error(
    error: OSError, logdir: Path, lock_timeout: float, action: str
) -> SnapshotWriteError:
    """The error to raise when the file system refused ``action`` (e.g. "write snapshot ...")."""
    if isinstance(error, TimeoutError):
        message = (
            f"another process held the lock on {logdir} for more than {lock_timeout:g} s; "
            f"could not {action}"
        )
    else:
        message = (
            f"could not {action} in {logdir}: {error.strerror or error}; earlier snapshots "
            "and the config are unchanged"
        )
    if error.errno is not None:
        return SnapshotWriteError(error.errno, message)
    return SnapshotWriteError(message)


def check_not_a_file(logdir: Path) -> None:
    """Raises LogDirError when ``logdir`` is an existing file (not a directory)."""
    if logdir.exists() and not logdir.is_dir():
        raise LogDirError(
            f"log dir {str(logdir)!r} is an existing file, not a directory; pass a directory "
            "(it is created if missing). Nothing was written.",
            str(logdir),
        )


def check_writable(logdir: Path) -> None:
    """Refuse, before anything is written, a log dir that cannot take snapshots: a URL, an
    existing file, a file on its path, or a directory this process may not write into (the
    nearest existing one when ``logdir`` is still to be created). Creates nothing.

    Raises:
        LogDirError: what is wrong and what to pass instead.
    """
    check_local_logdir(str(logdir))
    check_not_a_file(logdir)
    existing = _existing_ancestor(logdir)
    if not existing.is_dir():
        raise LogDirError(
            f"log dir {str(logdir)!r} cannot be created: {str(existing)!r} on its path is a "
            "file, not a directory. Pass a directory path. Nothing was written.",
            str(logdir),
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "it" if existing == logdir.absolute() else f"its parent {str(existing)!r}"
        raise LogDirError(
            f"log dir {str(logdir)!r} is not writable: {where} does not let this user create "
            "files. Pass a directory you can write to. Nothing was written.",
            str(logdir),
        )


#: The default reserve is the larger of 2x the snapshot and this share of the file system ...
RESERVE_SHARE = 0.05
#: ... the share capped at this many bytes.
RESERVE_SHARE_CAP = 1 << 30
_BLOCK = 4096


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def disk_usage(logdir: Path) -> tuple[int, int]:
    """(total, free) bytes of the file system that holds (or will hold) ``logdir``."""
    usage = shutil.disk_usage(_existing_ancestor(logdir))
    return usage.total, usage.free


def human_size(size: float) -> str:
    """``size`` bytes for people: ``"800.0 KiB"``, ``"1.6 GiB"``."""
    return _human(size)


def reserve_for(disk_reserve: int | None, total: int, needed: int) -> int:
    """The bytes that must stay free after writing ``needed`` bytes on a file system of
    ``total`` bytes: ``disk_reserve``, or by default (``None``) the larger of twice the
    snapshot and 5 % of the file system capped at 1 GiB."""
    if disk_reserve is not None:
        return disk_reserve
    return max(2 * needed, min(int(total * RESERVE_SHARE), RESERVE_SHARE_CAP))


def validate_disk_reserve(logdir: Path, disk_reserve: int | None) -> None:
    """A reserve is ``None`` (the default rule) or bytes, ``0`` to ``< total``; checked once.

    Raises:
        ValueError: not a non-negative integer, or not smaller than the whole file system.
    """
    if disk_reserve is None:
        return
    if isinstance(disk_reserve, bool) or not isinstance(disk_reserve, int) or disk_reserve < 0:
        raise ValueError(
            f"disk_reserve must be a number of bytes >= 0 (0 disables the check) or None for "
            f"the default; got {disk_reserve!r}."
        )
    total = shutil.disk_usage(_existing_ancestor(logdir)).total
    if disk_reserve >= total:
        raise ValueError(
            f"disk_reserve={disk_reserve} ({_human(disk_reserve)}) is not smaller than the "
            f"whole file system of {logdir} ({_human(total)}): no snapshot could ever be "
            "written. Pass a smaller reserve, None for the default, or 0 to disable it."
        )


def check_disk_reserve(logdir: Path, sizes: list[int], disk_reserve: int | None, what: str) -> None:
    """Refuse a write of files of ``sizes`` bytes that would leave less than the reserve free.

    The default reserve (``disk_reserve=None``) is the larger of twice the snapshot and 5 % of
    the file system capped at 1 GiB, so the run's own checkpoints and logs keep room.

    Raises:
        DiskReserveError: before anything is written.
    """
    if disk_reserve == 0:
        return
    needed = sum(-(-size // _BLOCK) * _BLOCK for size in sizes)  # whole blocks
    usage = shutil.disk_usage(_existing_ancestor(logdir))
    reserve = reserve_for(disk_reserve, usage.total, needed)
    if usage.free - needed >= reserve:
        return
    raise DiskReserveError(
        f"{what} was not written: it needs {_human(needed)}, {_human(usage.free)} is free on "
        f"the file system of {logdir}, and {_human(reserve)} must stay free for the rest of "
        "the run (No space left on device within the reserve). Free some space, write fewer "
        "rows or fewer snapshots (keep only recent steps: ProjectorWriter.retain), or lower "
        "the reserve with disk_reserve= (bytes; 0 disables the check).",
        free=usage.free,
        needed=needed,
        reserve=reserve,
    )


def bump_refresh_run(logdir: Path) -> None:
    """Rename the one-event run under ``.projector-refresh/``: the set of runs changes.

    TensorBoard's projector re-reads configs only when its set of runs changes, so this is
    what makes a running TensorBoard notice a new snapshot.
    """
    refresh_root = logdir / REFRESH_DIRNAME
    refresh_root.mkdir(exist_ok=True)
    current = sorted((name for name in os.listdir(refresh_root) if name.isdigit()), key=int)
    next_name = str(int(current[-1]) + 1 if current else 1).zfill(12)
    if current:
        os.rename(refresh_root / current[-1], refresh_root / next_name)
        for stale in current[:-1]:
            remove_tree(refresh_root / stale)
    else:
        target = refresh_root / next_name
        target.mkdir()
        write_empty_event_file(target, ".projector-refresh")


#: How long a refresh run must have existed before it is removed. TensorBoard notices a changed
#: set of runs only at a reload (``--reload_interval``, 5 s by default): a refresh run created
#: and removed between two reloads is never seen, and the snapshot it announced stays invisible.
REFRESH_GRACE_SECONDS = 12.0

#: Run detached by :func:`remove_refresh_runs`: waits, then removes the refresh runs unless a
#: writer renamed one since (then that writer removes it when it closes).
_REMOVE_LATER = """
import os, shutil, sys, time
path, delay, stamp = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
time.sleep(delay)
try:
    if os.stat(path).st_mtime == stamp:
        shutil.rmtree(path)
except OSError:
    pass
"""


#: Process ids of the detached removers started (reaped at the next start: no zombies pile up).
_REMOVERS: list[int] = []


def remove_refresh_runs(logdir: Path) -> None:
    """Remove ``.projector-refresh/``: the run set changes once more, and no ghost run remains.

    A refresh run younger than :data:`REFRESH_GRACE_SECONDS` may not have been seen by a running
    TensorBoard yet; removing it now would hide the last snapshot, so a small detached process
    removes it once the grace has passed (this process may exit meanwhile). Where no such
    process can be started (no ``posix_spawn``), it stays until a later close removes it.
    """
    root = logdir / REFRESH_DIRNAME
    try:
        stamp = root.stat().st_mtime  # renames inside it update it
    except FileNotFoundError:
        return
    age = time.time() - stamp
    if age >= REFRESH_GRACE_SECONDS:
        remove_tree(root)
        return
    _reap_removers()
    spawn = getattr(os, "posix_spawn", None)
    if spawn is None:
        return
    import sys

    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    arguments = [str(root), repr(REFRESH_GRACE_SECONDS - age), repr(stamp)]
    with contextlib.suppress(OSError):  # no process: the refresh run stays until next close
        _REMOVERS.append(
            spawn(
                sys.executable,
                [sys.executable, "-S", "-c", _REMOVE_LATER, *arguments],
                os.environ,
                file_actions=quiet,
                setsid=True,  # outlives this process, ignores its Ctrl-C
            )
        )


def _reap_removers() -> None:
    for pid in list(_REMOVERS):
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = pid
        if finished:
            _REMOVERS.remove(pid)


class ConfigLock:
    """The lock around a log dir's config read-modify-write, which may remove its own file.

    On POSIX an ``flock`` on ``.projector_config.pbtxt.lock`` (the same lock ``filelock``
    takes, so both exclude each other). The file can be unlinked while held
    (:meth:`remove_file`): a waiter that then locks the unlinked file sees that the path no
    longer names what it locked and tries again, so two holders never coexist. Elsewhere
    ``filelock.FileLock``, which manages its file itself.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with ConfigLock(Path(tempfile.mkdtemp()), timeout=1.0) as lock:
        ...     lock.remove_file()
    """

    def __init__(self, logdir: Path, timeout: float) -> None:
        self.path = logdir / LOCK_FILENAME
        self.timeout = timeout
        self._fd: int | None = None
        self._fallback: Any = None

    def __enter__(self) -> ConfigLock:
        try:
            import fcntl
        except ImportError:  # Windows
            from filelock import FileLock

            lock = FileLock(str(self.path), timeout=self.timeout)
            lock.acquire()
            self._fallback = lock
            return self
        deadline = time.monotonic() + self.timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        errno.ETIMEDOUT, "lock held by another writer", str(self.path)
                    ) from None
                time.sleep(0.05)
                continue
            except BaseException:
                os.close(fd)
                raise
            if self._still_named(fd):
                self._fd = fd
                return self
            os.close(fd)  # a closing writer removed the file after we opened it

    def _still_named(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def remove_file(self) -> None:
        """Unlink the lock file while holding it (POSIX; elsewhere filelock manages the file)."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        elif self._fallback is not None:
            self._fallback.release()
            self._fallback = None
