"""How bytes reach the disk: atomic replacement, ``O_DIRECT`` for big tensors, temp clean-up.

No layout knowledge beyond the temp-file prefix and the event-file framing lives here; names
come from :mod:`._format`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import TEMP_PREFIX

__all__ = [
    "atomic_write",
    "remove_stale_temp_files",
    "remove_tree",
    "write_direct",
    "write_empty_event_file",
    "write_event_file",
]

logger = logging.getLogger(__name__)

#: Tensor files at least this big are written with ``O_DIRECT`` where possible (see
#: ``write_direct``); smaller ones are not worth a second open.
DIRECT_WRITE_MIN_BYTES = 8 * 1024 * 1024
_DIRECT_BLOCK = 4096
_DIRECT_CHUNK = 8 * 1024 * 1024


def atomic_write(
    directory: Path, name: str, data: bytes | npt.NDArray[np.float32], *, direct: bool = False
) -> Path:
    """Write to a temp file in the same directory, then rename over ``name``.

    ``direct``: write a big array's aligned head with ``O_DIRECT`` (see :func:`write_direct`).
    """
    fd, temp = _create_temp(directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            start = 0
            if direct and isinstance(data, np.ndarray) and data.nbytes >= DIRECT_WRITE_MIN_BYTES:
                start = write_direct(temp, data)
            # write() rather than ndarray.tofile: it reports ENOSPC with its errno.
            payload = memoryview(data.data if isinstance(data, np.ndarray) else data).cast("B")
            handle.seek(start)
            handle.write(payload[start:])
        os.replace(temp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return directory / name


def _create_temp(directory: Path) -> tuple[int, str]:
    """A new temp file in ``directory``, its mode ``0o666`` less the umask, as ``open()`` makes.

    (``tempfile.mkstemp`` makes ``0o600`` whatever the umask: a TensorBoard run by another
    user could then read no snapshot.)
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = os.path.join(directory, TEMP_PREFIX + os.urandom(8).hex())
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temp file name", str(directory))


def write_direct(path: str, data: npt.NDArray[np.float32]) -> int:
    """Write the block-aligned head of ``data`` to ``path`` with ``O_DIRECT``; bytes written.

    A buffered write spends kernel CPU allocating and filling page-cache pages one by one, many
    times what ``O_DIRECT`` spends (``benchmarks/RESULTS.md``): when every core is training,
    that CPU comes out of training. The data goes through a block-aligned bounce
    buffer (``O_DIRECT`` needs aligned memory, offsets and lengths); the unaligned tail is
    left to the caller's buffered write. Returns 0, having written nothing that matters, where the
    platform or file system does not do ``O_DIRECT`` (tmpfs, some network file systems).
    """
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return 0
    source = np.frombuffer(data.data, dtype=np.uint8)
    aligned = len(source) - len(source) % _DIRECT_BLOCK
    try:
        fd = os.open(path, os.O_WRONLY | flag)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        return 0
    try:
        spare = np.empty(_DIRECT_CHUNK + _DIRECT_BLOCK, dtype=np.uint8)
        shift = -spare.ctypes.data % _DIRECT_BLOCK
        staging = spare[shift : shift + _DIRECT_CHUNK]  # starts on a block boundary
        done = 0
        while done < aligned:
            size = min(_DIRECT_CHUNK, aligned - done)
            np.copyto(staging[:size], source[done : done + size])
            written = 0
            while written < size:
                written += os.write(fd, staging[written:size].data)
            done += size
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise  # ENOSPC, EIO, ...: the caller removes the temp file
        logger.debug("O_DIRECT refused for %s; writing it buffered", path)
        return 0  # the buffered write starts over at offset 0
    finally:
        os.close(fd)
    return aligned


def remove_stale_temp_files(directory: Path) -> None:
    # Called under the lock: every writer holds it while it has temp files, so any left are
    # from a process that died mid-write.
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def write_empty_event_file(directory: Path, suffix: str) -> None:
    """An event file holding only the ``file_version`` event (what makes a directory a run)."""
    write_event_file(directory, suffix, [])


def write_event_file(directory: Path, suffix: str, events: Sequence[bytes]) -> Path:
    """A complete event file: the ``file_version`` event, then ``events``, written atomically.

    ``events`` are serialized ``Event`` protos. The TFRecord framing is done here: importing
    tensorboardX's writer imports torch when it is installed, and TensorBoard's own writer and
    ``masked_crc32c`` live behind its TensorFlow stub, whose import pulls in fsspec and asyncio:
    costs a one-shot export would pay in time and memory. The Event proto is
    TensorBoard's; the checksum is :func:`masked_crc32c`.
    """
    import struct
    import time

    from tensorboard.compat.proto.event_pb2 import Event

    now = time.time()
    records = bytearray()
    for data in [Event(wall_time=now, file_version="brain.Event:2").SerializeToString(), *events]:
        header = struct.pack("<Q", len(data))
        records += header + struct.pack("<I", masked_crc32c(header))
        records += data + struct.pack("<I", masked_crc32c(data))
    name = f"events.out.tfevents.{int(now):010d}.{_host()}.{os.getpid()}.{next(_EVENT_FILES)}"
    return atomic_write(directory, name + suffix, bytes(records))


#: Numbers the event files of this process (two in one second must not share a name).
_EVENT_FILES = itertools.count()


def _host() -> str:
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (Castagnoli) of ``data``.

    Example:
        >>> hex(masked_crc32c(b"123456789"))  # CRC-32C check value 0xe3069283, masked
        '0xc78ab0e5'
    """
    table = _crc32c_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@functools.cache
def _crc32c_table() -> tuple[int, ...]:
    """CRC-32C's byte table (reflected polynomial 0x82F63B78)."""
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
        table.append(crc)
    return tuple(table)


def remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
