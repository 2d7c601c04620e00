"""The one place that knows how TensorBoard's Embedding Projector reads a log directory.

Everything this package writes goes through :class:`ProjectorWriter`. It keeps tensorboardX's
layout, so snapshots of both tools coexist in one run::

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

import codecs
import contextlib
import errno
import io
import logging
import math
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._arrays import as_float32_matrix, as_label_columns, as_uint8_images
from .errors import ConfigError, InvalidEmbeddingError, SnapshotWriteError

if TYPE_CHECKING:
    from tensorboard.plugins.projector.projector_config_pb2 import (
        EmbeddingInfo,
        ProjectorConfig,
    )

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

# --- Format constants (TensorBoard's projector plugin and frontend, tensorboardX's layout) ---
CONFIG_FILENAME = "projector_config.pbtxt"
#: The projector frontend requests ``num_rows=100000``; later rows are never shown.
MAX_PROJECTOR_ROWS = 100_000
#: The frontend refuses sprite sheets wider or taller than this.
MAX_SPRITE_SIDE = 8192
#: tensorboardX pads the step directory to 5 digits; we keep that so layouts coexist.
STEP_DIR_DIGITS = 5
#: Tensor names pad steps to 9 digits: the dropdown lists tensors with labels first, then
#: larger ones first, then by name, so same-sized snapshots of a tag appear in step order.
TENSOR_NAME_STEP_DIGITS = 9
#: TensorBoard decodes this much of a tensor file as UTF-8 before it parses TSV lines.
TSV_PROBE_BYTES = 16 * 1024 * 1024
_PROBE_CHUNK = 64 * 1024
TENSOR_BINARY_SUFFIX = ".bin"
TENSOR_TSV_SUFFIX = ".tsv"
#: Tensor files at least this big are written with ``O_DIRECT`` where possible (see
#: ``_write_direct``); smaller ones are not worth a second open.
DIRECT_WRITE_MIN_BYTES = 8 * 1024 * 1024
_DIRECT_BLOCK = 4096
_DIRECT_CHUNK = 8 * 1024 * 1024
LOCK_FILENAME = ".projector_config.pbtxt.lock"
TEMP_PREFIX = ".tmp-embedding-projector-"
REFRESH_DIRNAME = ".projector-refresh"
EVENT_FILE_MARKER = "tfevents"
#: Longest tag directory name in bytes (file systems allow 255; leave room for temp names).
MAX_TAG_DIR_BYTES = 160
_OUR_FILE = re.compile(r"^(tensors|metadata|sprite)\.r(\d+)\.(bin|tsv|png)$")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
_UNSAFE_TAG_CHARS = set('%/\\<>:"|?*\x7f')
_BLANK_LABEL = "(empty)"
_NEEDS_ESCAPE = re.compile(r"[\t\r]")
#: A line that ``escape_label`` would call blank (``\s`` here is exactly ``str.isspace``).
_BLANK_LINE = re.compile(r"(?m)^(?:[^\S\n]|\ufeff)*$")
_LABEL_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


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


# --------------------------------------------------------------------------- naming rules


def tag_dirname(tag: str) -> str:
    """The directory name for a tag: tensorboardX's name for plain tags, always one safe component.

    ``%``, path separators, control and Windows-reserved characters are percent-encoded, a
    leading dot (``.``, ``..``, hidden files) and trailing dots/spaces too; reserved device
    names get their first letter encoded; over-long tags are truncated with a hash suffix.
    """
    encoded = "".join(
        "".join(f"%{byte:02x}" for byte in char.encode("utf-8"))
        if char in _UNSAFE_TAG_CHARS or ord(char) < 32
        else char
        for char in tag
    )
    if encoded.startswith("."):
        encoded = "%2e" + encoded[1:]
    if encoded.endswith((".", " ")):
        encoded = encoded[:-1] + f"%{ord(encoded[-1]):02x}"
    if _WINDOWS_RESERVED.match(encoded):
        encoded = f"%{ord(encoded[0]):02x}" + encoded[1:]
    if len(encoded.encode("utf-8")) > MAX_TAG_DIR_BYTES:
        digest = sha256(tag.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        head = encoded.encode("utf-8")[: MAX_TAG_DIR_BYTES - 17].decode("utf-8", "ignore")
        encoded = f"{head}~{digest}"
    return encoded


def step_dirname(step: int) -> str:
    """tensorboardX's step directory: the step zero-padded to 5 digits."""
    return str(step).zfill(STEP_DIR_DIGITS)


def tensor_name(tag: str, step: int, revision: int = 1, suffix: str | None = None) -> str:
    """The projector's name for a snapshot: tag, step (sortable), and what makes it unique."""
    name = f"{tag}:{step:0{TENSOR_NAME_STEP_DIGITS}d}"
    if suffix:
        name += f" {suffix}"
    if revision > 1:
        name += f" (rewrite {revision})"
    return name


def escape_label(label: str) -> str:
    """Make one metadata cell safe for TensorBoard's TSV parsers.

    Tabs, newlines and carriage returns become the visible two-character escapes ``\\t``,
    ``\\n``, ``\\r`` (TensorBoard would split rows or columns on them); an empty or
    whitespace-only label becomes ``(empty)`` (the frontend skips blank lines, which would shift
    every later row).

    Example:
        >>> escape_label("a\\tb")
        'a\\\\tb'
        >>> escape_label("")
        '(empty)'
    """
    escaped = label.translate(_LABEL_ESCAPES)
    return escaped if escaped.replace("\ufeff", " ").strip() else _BLANK_LABEL


def metadata_tsv(columns: Sequence[Sequence[str]], header: Sequence[str] | None) -> str:
    """The metadata file's text: one line per point, a header line only for several columns.

    ``columns`` is column-major (one list of cells per column).
    """
    if header is None:
        return _single_column_tsv(columns[0])
    lines = ["\t".join(_unique_column_names([escape_label(h) for h in header]))]
    for row in zip(*columns, strict=True):
        cells = [cell.translate(_LABEL_ESCAPES) for cell in row]
        if not "".join(cells).replace("\ufeff", " ").strip():
            cells[0] = _BLANK_LABEL
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def _single_column_tsv(labels: Sequence[str]) -> str:
    # Fast path for the common case: one join, two regex scans, no per-label work.
    text = "\n".join(labels)
    if (
        text.count("\n") != len(labels) - 1
        or _NEEDS_ESCAPE.search(text)
        or _BLANK_LINE.search(text)
    ):
        text = "\n".join(escape_label(label) for label in labels)
    return text + "\n"


def _unique_column_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name} ({count + 1})")
    return unique


# --------------------------------------------------------------------------- sprites


def sprite_cell_size(count: int, height: int, width: int) -> int:
    """Side of one square sprite cell so that ``count`` cells fit in 8192 x 8192 px."""
    per_row = math.ceil(math.sqrt(count))
    if per_row > MAX_SPRITE_SIDE:
        raise InvalidEmbeddingError(
            f"{count} sprite images cannot fit in TensorBoard's {MAX_SPRITE_SIDE} px sprite "
            "limit even at 1 px each; pass fewer rows with images."
        )
    return min(max(height, width), MAX_SPRITE_SIDE // per_row)


def sprite_png(images: npt.NDArray[np.uint8]) -> tuple[bytes, int]:
    """Encode NHWC uint8 images as one PNG sprite sheet; returns (png bytes, cell side).

    Non-square images are padded (black) to squares; if the sheet would exceed 8192 px, cells
    are downscaled with a warning instead of failing.
    """
    from PIL import Image

    count, height, width, channels = images.shape
    side = max(height, width)
    if height != width:
        padded = np.zeros((count, side, side, channels), dtype=np.uint8)
        top, left = (side - height) // 2, (side - width) // 2
        padded[:, top : top + height, left : left + width] = images
        images = padded
    cell = sprite_cell_size(count, side, side)
    if cell < side:
        warnings.warn(
            f"{count} sprite images of {side}x{side} px exceed TensorBoard's "
            f"{MAX_SPRITE_SIDE} px sprite limit; downscaling each to {cell}x{cell} px.",
            UserWarning,
            stacklevel=4,
        )
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        images = np.stack(
            [
                np.asarray(
                    Image.fromarray(image.squeeze(-1) if channels == 1 else image, mode).resize(
                        (cell, cell), Image.Resampling.LANCZOS
                    )
                ).reshape(cell, cell, channels)
                for image in images
            ]
        )
    per_row = math.ceil(math.sqrt(count))
    rows = math.ceil(count / per_row)
    grid = np.zeros((rows * per_row, cell, cell, channels), dtype=np.uint8)
    grid[:count] = images
    sheet = (
        grid.reshape(rows, per_row, cell, cell, channels)
        .transpose(0, 2, 1, 3, 4)
        .reshape(rows * cell, per_row * cell, channels)
    )
    image = Image.fromarray(sheet.squeeze(-1) if channels == 1 else sheet)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), cell


# --------------------------------------------------------------------------- tensor bytes


def tensor_needs_tsv(matrix: npt.NDArray[np.float32]) -> bool:
    """True when TensorBoard would misread the raw float32 bytes as TSV text.

    TensorBoard decodes up to 16 MiB of the file as UTF-8 before it parses lines; it falls back
    to binary only if that decoding fails. So binary is safe exactly when the first
    ``TSV_PROBE_BYTES`` bytes are not valid UTF-8 (usually the first few bytes tell).
    """
    raw = matrix.reshape(-1).view(np.uint8)
    end = min(raw.size, TSV_PROBE_BYTES)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, end, _PROBE_CHUNK):
            stop = min(start + _PROBE_CHUNK, end)
            decoder.decode(raw[start:stop].tobytes(), final=stop == raw.size)
    except UnicodeDecodeError:
        return False
    return True


def _tensor_tsv(matrix: npt.NDArray[np.float32]) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, matrix, fmt="%.9g", delimiter="\t")
    return buffer.getvalue().encode("ascii")


# --------------------------------------------------------------------------- config


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
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(
            f"{path} is not a valid projector config ({error}); it was left untouched. "
            "Fix or remove it, then write again.",
            str(path),
        ) from error
    return config


def _posix(*parts: str) -> str:
    return "/".join(parts)


def _atomic_write(
    directory: Path, name: str, data: bytes | npt.NDArray[np.float32], *, direct: bool = False
) -> Path:
    """Write to a temp file in the same directory, then rename over ``name``.

    ``direct``: write a big array's aligned head with ``O_DIRECT`` (see :func:`_write_direct`).
    """
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            start = 0
            if direct and isinstance(data, np.ndarray) and data.nbytes >= DIRECT_WRITE_MIN_BYTES:
                start = _write_direct(temp, data)
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


def _write_direct(path: str, data: npt.NDArray[np.float32]) -> int:
    """Write the block-aligned head of ``data`` to ``path`` with ``O_DIRECT``; bytes written.

    A buffered write of a 50 MB tensor cost 75-95 ms of kernel CPU on the 2-core test VM (page
    cache pages allocated and filled one by one), ``O_DIRECT`` 3 ms: when every core is
    training, that CPU comes out of training. The data goes through a block-aligned bounce
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


def _remove_stale_temp_files(directory: Path) -> None:
    # Called under the lock: every writer holds it while it has temp files, so any left are
    # from a process that died mid-write.
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


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

        Returns:
            The :class:`Snapshot` written.

        Raises:
            InvalidEmbeddingError: bad input; nothing was written.
            ConfigError: the existing config does not parse; nothing was written.
            SnapshotWriteError: the disk is full, read-only or not writable (an ``OSError``);
                earlier snapshots and the config are unchanged.
        """
        step = _validate_step(global_step)
        _validate_tag(tag)
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
        if rows > MAX_PROJECTOR_ROWS:
            warnings.warn(
                f"Writing {rows} rows for tag {tag!r}, but TensorBoard's projector loads only "
                f"the first {MAX_PROJECTOR_ROWS} (tensorflow/tensorboard#773); put the rows "
                "you care about first, or select fewer.",
                UserWarning,
                stacklevel=2,
            )
        return self._write(matrix, metadata_text, sprite, step, tag, name_suffix)

    def steps(self, tag: str = "default") -> list[int]:
        """Steps already written for ``tag`` by this package (sorted)."""
        prefix_dir = tag_dirname(tag)
        found = set()
        for entry in read_config(self.config_path).embeddings:
            parsed = _parse_our_tensor_path(entry.tensor_path)
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
    ) -> Snapshot:
        from filelock import FileLock

        use_tsv = tensor_needs_tsv(matrix)
        relative_dir = _posix(step_dirname(step), tag_dirname(tag))
        directory = self.logdir / step_dirname(step) / tag_dirname(tag)
        written: list[Path] = []
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.logdir / LOCK_FILENAME), timeout=self.lock_timeout)
            with lock:
                config = read_config(self.config_path)
                _remove_stale_temp_files(self.logdir)
                directory.mkdir(parents=True, exist_ok=True)
                _remove_stale_temp_files(directory)
                revision = self._next_revision(config, relative_dir, directory)
                tensor_file = f"tensors.r{revision}" + (
                    TENSOR_TSV_SUFFIX if use_tsv else TENSOR_BINARY_SUFFIX
                )
                # Data first, each by atomic rename; the config last: a crash at any point
                # leaves the previous config pointing at complete files.
                tensor_path = _atomic_write(
                    directory,
                    tensor_file,
                    _tensor_tsv(matrix) if use_tsv else matrix,
                    direct=self.direct_io,
                )
                written.append(tensor_path)
                metadata_path = sprite_path = None
                if metadata_text is not None:
                    metadata_path = _atomic_write(
                        directory, f"metadata.r{revision}.tsv", metadata_text
                    )
                    written.append(metadata_path)
                if sprite is not None:
                    sprite_path = _atomic_write(directory, f"sprite.r{revision}.png", sprite[0])
                    written.append(sprite_path)
                name = tensor_name(tag, step, revision, name_suffix)
                entry = self._replace_entry(config, relative_dir)
                entry.tensor_name = name
                entry.tensor_path = _posix(relative_dir, tensor_file)
                entry.tensor_shape.extend(matrix.shape)
                if metadata_path is not None:
                    entry.metadata_path = _posix(relative_dir, metadata_path.name)
                if sprite is not None and sprite_path is not None:
                    entry.sprite.image_path = _posix(relative_dir, sprite_path.name)
                    entry.sprite.single_image_dim.extend([sprite[1], sprite[1]])
                self._ensure_event_file()
                self._write_config(config)
                written.clear()  # committed: these files are now referenced
                self._tidy_up(directory, config, relative_dir)
        except OSError as error:
            for path in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            if isinstance(error, TimeoutError):
                message = (
                    f"another process held the lock on {self.logdir} for more than "
                    f"{self.lock_timeout:g} s; snapshot {tag!r} step {step} was not written"
                )
            else:
                message = (
                    f"could not write snapshot {tag!r} step {step} to {self.logdir}: "
                    f"{error.strerror or error}; earlier snapshots and the config are unchanged"
                )
            raise (
                SnapshotWriteError(error.errno, message)
                if error.errno is not None
                else SnapshotWriteError(message)
            ) from error
        logger.debug("wrote %s (%d x %d) to %s", name, *matrix.shape, directory)
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
        )

    @staticmethod
    def _next_revision(config: ProjectorConfig, relative_dir: str, directory: Path) -> int:
        revisions = [0]
        for entry in config.embeddings:
            parsed = _parse_our_tensor_path(entry.tensor_path)
            if parsed and _posix(step_dirname(parsed[0]), parsed[1]) == relative_dir:
                revisions.append(parsed[2])
        with contextlib.suppress(OSError):
            for file_name in os.listdir(directory):
                match = _OUR_FILE.match(file_name)
                if match:
                    revisions.append(int(match.group(2)))
        return max(revisions) + 1

    @staticmethod
    def _replace_entry(config: ProjectorConfig, relative_dir: str) -> EmbeddingInfo:
        """Clear and return our entry for this step and tag (or append a new one)."""
        for entry in config.embeddings:
            parsed = _parse_our_tensor_path(entry.tensor_path)
            if parsed and _posix(step_dirname(parsed[0]), parsed[1]) == relative_dir:
                entry.Clear()
                return entry
        return config.embeddings.add()

    def _write_config(self, config: ProjectorConfig) -> None:
        from google.protobuf import text_format

        _atomic_write(
            self.logdir, CONFIG_FILENAME, text_format.MessageToString(config).encode("utf-8")
        )

    def _tidy_up(self, directory: Path, config: ProjectorConfig, relative_dir: str) -> None:
        """Best-effort work after the commit: its failure must not fail the write."""
        try:
            self._remove_unreferenced(directory, config, relative_dir)
            if self.live_refresh:
                self._bump_refresh_run()
        except OSError as error:
            logger.warning("snapshot written, but tidying up %s failed: %s", directory, error)

    @staticmethod
    def _remove_unreferenced(directory: Path, config: ProjectorConfig, relative_dir: str) -> None:
        referenced = set()
        for entry in config.embeddings:
            for path in (entry.tensor_path, entry.metadata_path, entry.sprite.image_path):
                if path.startswith(relative_dir + "/"):
                    referenced.add(path[len(relative_dir) + 1 :])
        for file_name in os.listdir(directory):
            if _OUR_FILE.match(file_name) and file_name not in referenced:
                with contextlib.suppress(OSError):
                    os.unlink(directory / file_name)

    def _ensure_event_file(self) -> None:
        """TensorBoard lists a directory as a run only if it holds an event file."""
        if any(EVENT_FILE_MARKER in name for name in os.listdir(self.logdir)):
            return
        _write_empty_event_file(self.logdir, ".embedding-projector")

    def _bump_refresh_run(self) -> None:
        refresh_root = self.logdir / REFRESH_DIRNAME
        refresh_root.mkdir(exist_ok=True)
        current = sorted((name for name in os.listdir(refresh_root) if name.isdigit()), key=int)
        next_name = str(int(current[-1]) + 1 if current else 1).zfill(12)
        if current:
            os.rename(refresh_root / current[-1], refresh_root / next_name)
            for stale in current[:-1]:
                _remove_tree(refresh_root / stale)
        else:
            target = refresh_root / next_name
            target.mkdir()
            _write_empty_event_file(target, ".projector-refresh")


def _write_empty_event_file(directory: Path, suffix: str) -> None:
    """An event file holding only the ``file_version`` event (what makes a directory a run).

    Framed as TFRecord by hand because importing tensorboardX's writer imports torch when it
    is installed (seconds); the Event proto and CRC come from TensorBoard itself.
    """
    import socket
    import struct
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    now = time.time()
    data = Event(wall_time=now, file_version="brain.Event:2").SerializeToString()
    header = struct.pack("<Q", len(data))
    record = (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )
    name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}{suffix}"
    _atomic_write(directory, name, record)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _parse_our_tensor_path(tensor_path: str) -> tuple[int, str, int] | None:
    """(step, tag directory, revision) if ``tensor_path`` is one of ours, else None."""
    parts = tensor_path.split("/")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    match = _OUR_FILE.match(parts[2])
    if not match or match.group(1) != "tensors":
        return None
    return int(parts[0]), parts[1], int(match.group(2))


#: ``label_img`` shortcut: draw each point's label (first metadata column) as its sprite.
GLYPHS = "glyphs"


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
    from .glyphs import glyph_images

    # Warnings point at the caller of add_embedding (two frames above glyph_images).
    return glyph_images(list(labels), stacklevel=4)


def _validate_step(global_step: Any) -> int:
    if global_step is None:
        return 0
    if isinstance(global_step, bool) or not isinstance(global_step, (int, np.integer)):
        if hasattr(global_step, "item") and getattr(global_step, "ndim", 1) == 0:
            global_step = global_step.item()
        if not isinstance(global_step, (int, np.integer)) or isinstance(global_step, bool):
            raise InvalidEmbeddingError(
                f"global_step must be a non-negative integer; got {global_step!r}."
            )
    step = int(global_step)
    if step < 0:
        raise InvalidEmbeddingError(f"global_step must be >= 0; got {step}.")
    return step


def _validate_tag(tag: Any) -> None:
    if not isinstance(tag, str) or not tag:
        raise InvalidEmbeddingError(f"tag must be a non-empty string; got {tag!r}.")
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidEmbeddingError(f"tag is not valid Unicode text: {error}.") from error


def add_embedding(
    writer_or_logdir: Any,
    mat: Any,
    metadata: Sequence[Any] | PreparedMetadata | None = None,
    label_img: Any = None,
    global_step: int | None = None,
    tag: str = "default",
    metadata_header: Sequence[Any] | None = None,
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
    )
