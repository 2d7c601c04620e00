"""The projector config: read, merged entry by entry, written atomically.

Entries are TensorBoard's own ``EmbeddingInfo`` protos; ours are recognised by their tensor
path (``<step>/<tag dir>/tensors.r<rev>.<bin|tsv>``), so tensorboardX's entries are kept as
they are.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SnapshotExistsError
from . import (
    CONFIG_FILENAME,
    OUR_FILE,
    SOURCE_FILE,
    TEMP_PREFIX,
    TENSOR_NAME_STEP_DIGITS,
    parse_foreign_tensor_path,
    parse_our_tensor_path,
    posix,
    snapshot_at,
    step_dirname,
    tag_dirname,
)
from .files import atomic_write

if TYPE_CHECKING:
    from tensorboard.plugins.projector.projector_config_pb2 import (
        EmbeddingInfo,
        ProjectorConfig,
    )

__all__ = [
    "OverwriteGuard",
    "all_steps",
    "entry_at",
    "next_revision",
    "our_steps",
    "prune_files",
    "read_config",
    "remove_entries",
    "remove_unreferenced",
    "rename_foreign_entries",
    "replace_entry",
    "source_of",
    "write_config",
]


def _config_module() -> Any:
    from tensorboard.plugins.projector import projector_config_pb2

    return projector_config_pb2


def read_config(path: Path) -> ProjectorConfig:
    """Parse a ``projector_config.pbtxt`` with TensorBoard's own proto (empty if missing).

    Raises:
        ConfigError: the file exists but does not parse; it is never overwritten then.
    """
    from google.protobuf import text_format

    config = _config_module().ProjectorConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return config
    key = os.fspath(path)
    with _PARSED_LOCK:
        parsed = _PARSED.get(key)
    if parsed is not None and parsed[0] == text:  # the same text: copy, do not parse again
        config.CopyFrom(parsed[1])
        return config
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(
            f"{path} is not a valid projector config ({error}); it was left untouched. "
            "Fix or remove it, then write again.",
            str(path),
        ) from error
    _remember(key, text, config)
    return config


def _remember(key: str, text: str, config: ProjectorConfig) -> None:
    kept = _config_module().ProjectorConfig()
    kept.CopyFrom(config)  # callers edit what they get
    with _PARSED_LOCK:
        if len(_PARSED) >= _PARSED_KEEP and key not in _PARSED:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = (text, kept)


#: The last parse of each recently read config, by path: a writer reads its config at every
#: snapshot (twice), and parsing the text format is the costly part (it grows with the run).
#: Reused only for the very same text, so a change by anyone else is always seen.
_PARSED: dict[str, tuple[str, ProjectorConfig]] = {}
_PARSED_KEEP = 16
_PARSED_LOCK = threading.Lock()


def write_config(logdir: Path, config: ProjectorConfig) -> None:
    """Replace the config atomically: TensorBoard reads every config; a torn one breaks all runs."""
    from google.protobuf import text_format

    text = text_format.MessageToString(config)
    atomic_write(logdir, CONFIG_FILENAME, text.encode("utf-8"))
    _remember(os.fspath(logdir / CONFIG_FILENAME), text, config)


def our_steps(config: ProjectorConfig, tag: str) -> list[int]:
    """Steps of ``tag`` that this package wrote (sorted)."""
    tag_dir = tag_dirname(tag)
    found = set()
    for entry in config.embeddings:
        parsed = parse_our_tensor_path(entry.tensor_path)
        if parsed and parsed[1] == tag_dir:
            found.add(parsed[0])
    return sorted(found)


def all_steps(config: ProjectorConfig, tag: str) -> list[int]:
    """Steps of ``tag`` written by this package or by tensorboardX (sorted, each once)."""
    tag_dir = tag_dirname(tag)
    found = set()
    for entry in config.embeddings:
        where = snapshot_at(entry.tensor_path)
        if where and where[1] == tag_dir:
            found.add(where[0])
    return sorted(found)


def _at(entry: EmbeddingInfo, relative_dir: str) -> bool:
    """Whether ``entry`` (ours or tensorboardX's) is the snapshot in ``relative_dir``."""
    where = snapshot_at(entry.tensor_path)
    return where is not None and posix(step_dirname(where[0]), where[1]) == relative_dir


def entry_at(config: ProjectorConfig, relative_dir: str) -> EmbeddingInfo | None:
    """The entry (ours or tensorboardX's) of the snapshot in ``relative_dir``, if any."""
    return next((entry for entry in config.embeddings if _at(entry, relative_dir)), None)


def source_of(logdir: Path, entry: EmbeddingInfo) -> str | None:
    """What an entry was exported from (its ``source.r<rev>.txt``); None if not recorded."""
    parsed = parse_our_tensor_path(entry.tensor_path)
    if parsed is None:
        return None
    relative_dir = posix(step_dirname(parsed[0]), parsed[1])
    try:
        return (logdir / relative_dir / (SOURCE_FILE % parsed[2])).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def rename_foreign_entries(config: ProjectorConfig) -> None:
    """Give tensorboardX's entries our 9-digit step in their names (``words:00001`` → ``…001``).

    The projector's dropdown orders same-sized tensors by name: with 5 digits beside 9,
    tensorboardX's step 1 would sort after our step 21. Only the name changes (tensors are
    cached by name, so a new name is never served stale).
    """
    for entry in config.embeddings:
        where = parse_foreign_tensor_path(entry.tensor_path)
        prefix, _, digits = entry.tensor_name.rpartition(":")
        if where and prefix and digits.isdigit() and int(digits) == where[0]:
            entry.tensor_name = f"{prefix}:{where[0]:0{TENSOR_NAME_STEP_DIGITS}d}"


def _is_ours_at(entry: EmbeddingInfo, relative_dir: str) -> tuple[int, str, int] | None:
    parsed = parse_our_tensor_path(entry.tensor_path)
    if parsed and posix(step_dirname(parsed[0]), parsed[1]) == relative_dir:
        return parsed
    return None


def next_revision(config: ProjectorConfig, relative_dir: str, directory: Path) -> int:
    """One more than any revision in the config or on disk for this step and tag."""
    revisions = [0]
    for entry in config.embeddings:
        parsed = _is_ours_at(entry, relative_dir)
        if parsed:
            revisions.append(parsed[2])
    with contextlib.suppress(OSError):
        for file_name in os.listdir(directory):
            match = OUR_FILE.match(file_name)
            if match:
                revisions.append(int(match.group(2)))
    return max(revisions) + 1


def replace_entry(config: ProjectorConfig, relative_dir: str) -> EmbeddingInfo:
    """Clear and return the entry for this step and tag (or append a new one).

    Ours or tensorboardX's, in place; any further entry of the same step and tag (tensorboardX
    appends one per call) is dropped, so the projector lists each step once.
    """
    found = [index for index, entry in enumerate(config.embeddings) if _at(entry, relative_dir)]
    if not found:
        return config.embeddings.add()
    for index in reversed(found[1:]):
        del config.embeddings[index]
    entry = config.embeddings[found[0]]
    entry.Clear()
    return entry


def remove_unreferenced(directory: Path, config: ProjectorConfig, relative_dir: str) -> None:
    """Remove our files in ``directory`` that no config entry references (older revisions)."""
    referenced = set()
    for entry in config.embeddings:
        files = (entry.tensor_path, entry.metadata_path, entry.sprite.image_path)
        for path in (*files, entry.bookmarks_path):
            if path.startswith(relative_dir + "/"):
                referenced.add(path[len(relative_dir) + 1 :])
        parsed = _is_ours_at(entry, relative_dir)
        if parsed:  # the record of what the tensor was made from goes with it
            referenced.add(SOURCE_FILE % parsed[2])
    for file_name in os.listdir(directory):
        if OUR_FILE.match(file_name) and file_name not in referenced:
            with contextlib.suppress(OSError):
                os.unlink(directory / file_name)


def remove_entries(config: ProjectorConfig, tag: str, steps: set[int]) -> None:
    """Drop our entries of ``tag`` at ``steps`` (tensorboardX's entries are never touched)."""
    tag_dir = tag_dirname(tag)
    for index in reversed(range(len(config.embeddings))):
        parsed = parse_our_tensor_path(config.embeddings[index].tensor_path)
        if parsed and parsed[1] == tag_dir and parsed[0] in steps:
            del config.embeddings[index]


def prune_files(logdir: Path, tag: str, referenced_steps: set[int]) -> None:
    """Remove our files of ``tag`` in every step directory the config no longer references.

    Also what an interrupted earlier prune left (its config was already switched). Only our
    own file names go; a directory is removed once empty (tensorboardX's files keep theirs).
    """
    tag_dir = tag_dirname(tag)
    with os.scandir(logdir) as entries:
        step_dirs = [e.path for e in entries if e.name.isdigit() and e.is_dir()]
    for step_dir in step_dirs:
        directory = Path(step_dir) / tag_dir
        if int(Path(step_dir).name) in referenced_steps:
            continue
        with contextlib.suppress(OSError):  # (gone already: an interrupted prune)
            for name in os.listdir(directory):
                if OUR_FILE.match(name) or name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(directory / name)
        for empty in (directory, Path(step_dir)):
            with contextlib.suppress(OSError):
                empty.rmdir()  # fails while anything else is inside: then it stays


@dataclass(frozen=True)
class OverwriteGuard:
    """What a write may replace: anything (``overwrite``), or only a snapshot of ``source``."""

    source: str | None
    overwrite: bool

    def check(self, logdir: Path, config: ProjectorConfig, tag: str, step: int) -> None:
        if self.overwrite:
            return
        existing = entry_at(config, posix(step_dirname(step), tag_dirname(tag)))
        if existing is None:
            return
        previous = source_of(logdir, existing)
        if self.source is not None and previous == self.source:
            return  # the same source again: a clean rewrite
        made_from = (
            f"made from {previous}"
            if previous is not None
            else "written by another writer (a training callback, tensorboardX, ...)"
        )
        raise SnapshotExistsError(
            f"{logdir} already holds a snapshot of tag {tag!r} at step {step} "
            f"({existing.tensor_name!r}), {made_from}. Pass --overwrite (overwrite=True) to "
            "replace it, or choose another --tag, --step or --logdir. Nothing was written.",
            tag=tag,
            step=step,
            existing=previous,
        )
