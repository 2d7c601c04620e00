"""The on-disk format: every name, limit and text rule of a projector log directory.

With the writer's other modules (:mod:`.writer` lists them) the only place that knows the
layout TensorBoard's projector plugin reads::

    <logdir>/projector_config.pbtxt             merged config (TensorBoard's own proto)
    <logdir>/<step, 5 digits>/<tag>/tensors.r1.bin    raw little-endian float32, tensor_shape set
    <logdir>/<step, 5 digits>/<tag>/metadata.r1.tsv   escaped labels (header only if >1 column)
    <logdir>/<step, 5 digits>/<tag>/sprite.r1.png     sprite sheet, <= 8192 x 8192 px
    <logdir>/.projector-refresh/<n>/events...   tiny run renamed per snapshot (while open)
    <logdir>/.projector_config.pbtxt.lock       the config lock (while open)

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
  runs; a browser refresh then shows the new snapshot. While a writer is open it is one extra
  row in the run list; closing the writer removes it (a change in the set of runs too).
* **The frontend** orders its tensor dropdown by: labelled first, more rows first, then name
  (so a fixed-size selection shows its steps in order), hides tensors with fewer than 2 rows
  or columns, skips whitespace-only metadata lines (misaligning every later row), treats a
  first line with a tab as a header, and refuses sprites larger than 8192 px on a side.
"""

from __future__ import annotations

import codecs
import io
import math
import re
import warnings
from collections.abc import Sequence
from hashlib import sha256

import numpy as np
import numpy.typing as npt

from ..errors import InvalidEmbeddingError, LogDirError

__all__ = [
    "BOOKMARKS_FILE",
    "CONFIG_FILENAME",
    "GLYPHS",
    "MAX_PROJECTOR_ROWS",
    "MAX_SPRITE_SIDE",
    "check_local_logdir",
    "escape_label",
    "metadata_tsv",
    "sprite_cell_size",
    "sprite_png",
    "step_dirname",
    "tag_dirname",
    "tensor_name",
    "tensor_needs_tsv",
]

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
#: Held around the config's read-modify-write; removed when a writer closes.
LOCK_FILENAME = ".projector_config.pbtxt.lock"
TEMP_PREFIX = ".tmp-embedding-projector-"
#: Holds the one-event run renamed after each write; removed when a writer closes.
REFRESH_DIRNAME = ".projector-refresh"
#: A URL (``s3://``, ``gs://``, ``memory://``, ...; also what ``pathlib`` makes of one,
#: ``s3:/b/x``). Two or more letters, so Windows drive letters (``C:/``) are not schemes.
URL_LOGDIR = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/")
EVENT_FILE_MARKER = "tfevents"
#: Longest tag directory name in bytes (file systems allow 255; leave room for temp names).
MAX_TAG_DIR_BYTES = 160
#: A snapshot's saved states (bookmarks): ``bookmarks.r<rev>.json`` beside ``tensors.r<rev>``.
BOOKMARKS_FILE = "bookmarks.r%d.json"
#: What a snapshot was made from (export's path or data digest): ``source.r<rev>.txt``, so a
#: later export of something else to the same tag and step can refuse to replace it.
SOURCE_FILE = "source.r%d.txt"
OUR_FILE = re.compile(
    r"^(tensors|metadata|sprite|bookmarks|source)\.r(\d+)\.(bin|tsv|png|json|txt)$"
)
#: tensorboardX's file names: ``<step, 5 digits>/<tag>/tensors.tsv`` (one per step, no revision).
FOREIGN_TENSOR_FILE = "tensors.tsv"
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
_UNSAFE_TAG_CHARS = set('%/\\<>:"|?*\x7f')
_BLANK_LABEL = "(empty)"
_BOM = "\ufeff"
_LABEL_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})
_TAB_CR_ESCAPES = str.maketrans({"\t": "\\t", "\r": "\\r"})

#: ``label_img`` shortcut: draw each point's label (first metadata column) as its sprite.
GLYPHS = "glyphs"


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


def check_local_logdir(logdir: str) -> None:
    """Refuse a log dir that is a URL: TensorBoard cannot serve projector files from one.

    TensorBoard 2.21 lists the runs of a remote log dir, but its projector resolves asset
    paths with ``os.path.realpath`` on the config path, so ``s3://b/x`` becomes the local
    ``<cwd>/s3:/b/x`` and every tensor is "Not Found".

    Raises:
        LogDirError: ``logdir`` starts with a URL scheme.
    """
    match = URL_LOGDIR.match(logdir)
    if match:
        raise LogDirError(
            f"log dir {logdir!r} is a {match.group(1)}:// URL, but TensorBoard's projector "
            "(2.21) cannot serve snapshots from a remote log dir: it resolves their paths "
            "with os.path.realpath, as local files. Write to a local log dir and sync it to "
            f"the remote store afterwards (e.g. `aws s3 sync`, `gsutil rsync`). Nothing was "
            "written.",
            logdir,
        )


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

    ``columns`` is column-major (one list of cells per column). Each cell is escaped as
    :func:`escape_label` does, but column by column in a few C-level calls (one join, one
    ``translate``, one split per column that needs it); a row whose cells are all blank gets
    ``(empty)`` in its first cell.
    """
    rows = len(columns[0])
    if rows == 0:
        lines = [] if header is None else ["\t".join(_header_cells(header))]
        return "\n".join(lines) + "\n"
    escaped = [_escaped_column(column) for column in columns]
    if len(escaped) == 1:
        text = "\n".join(escaped[0])
    else:
        text = "\n".join(map("\t".join, zip(*escaped, strict=True)))
    if _may_have_blank_rows(escaped):  # rare: then each row is checked
        text = "\n".join(_fill_blank_rows(escaped))
    if header is not None:
        text = "\t".join(_header_cells(header)) + "\n" + text
    return text + "\n"


def _header_cells(header: Sequence[str]) -> list[str]:
    return _unique_column_names([escape_label(name) for name in header])


def _escaped_column(cells: Sequence[str]) -> Sequence[str]:
    """``cells`` with tabs, newlines and carriage returns escaped; the same list if none has any.

    Joined with a separator no cell contains (a newline, else NUL), translated once, split.
    """
    text = "\n".join(cells)
    if text.count("\n") == len(cells) - 1:
        if "\t" not in text and "\r" not in text:
            return cells
        return text.translate(_TAB_CR_ESCAPES).split("\n")  # (no cell holds a newline)
    text = "\x00".join(cells)  # some cell holds a newline
    if text.count("\x00") == len(cells) - 1:
        return text.translate(_LABEL_ESCAPES).split("\x00")
    return [cell.translate(_LABEL_ESCAPES) for cell in cells]  # NULs and newlines in cells


def _may_have_blank_rows(escaped: list[Sequence[str]]) -> bool:
    """False when some column has no blank cell (then no row is all blank): C-level checks."""
    for column in escaped:
        if _BOM not in "".join(column) and all(map(str.strip, column)):
            return False
    return True


def _fill_blank_rows(escaped: list[Sequence[str]]) -> list[str]:
    lines = []
    for row in zip(*escaped, strict=True):
        cells = list(row)
        if not "".join(cells).replace("\ufeff", " ").strip():
            cells[0] = _BLANK_LABEL
        lines.append("\t".join(cells))
    return lines


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


def tensor_tsv(matrix: npt.NDArray[np.float32]) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, matrix, fmt="%.9g", delimiter="\t")
    return buffer.getvalue().encode("ascii")


# --------------------------------------------------------------------------- config paths


def posix(*parts: str) -> str:
    """A config path: always ``/``-separated, relative to the log directory."""
    return "/".join(parts)


def parse_our_tensor_path(tensor_path: str) -> tuple[int, str, int] | None:
    """(step, tag directory, revision) if ``tensor_path`` is one of ours, else None."""
    parts = tensor_path.split("/")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    match = OUR_FILE.match(parts[2])
    if not match or match.group(1) != "tensors":
        return None
    return int(parts[0]), parts[1], int(match.group(2))


def parse_foreign_tensor_path(tensor_path: str) -> tuple[int, str] | None:
    """(step, tag directory) if ``tensor_path`` is in tensorboardX's layout, else None.

    tensorboardX writes the same step and tag directories as we do (its tag encoding is ours
    for plain tags), so an entry of either tool at one step and tag is the same snapshot.
    """
    parts = tensor_path.replace("\\", "/").split("/")
    if len(parts) != 3 or not parts[0].isdigit() or parts[2] != FOREIGN_TENSOR_FILE:
        return None
    return int(parts[0]), parts[1]


def snapshot_at(tensor_path: str) -> tuple[int, str] | None:
    """(step, tag directory) of an entry of ours or of tensorboardX's, else None."""
    ours = parse_our_tensor_path(tensor_path)
    return ours[:2] if ours else parse_foreign_tensor_path(tensor_path)
