"""The map image as an IMAGES summary, PNG-encoded here (sink layer: :func:`log_map`).

``SummaryWriter.add_image`` (tensorboardX and ``torch.utils.tensorboard`` alike) encodes with
Pillow's defaults: zlib level 6 and a filter chosen per row by trying all five, on the writer
thread beside training. A map is flat colours on white: unfiltered rows at zlib level 1 are
several times faster for about 30 % more bytes (``benchmarks/RESULTS.md``). The summary proto
is the writer's own class (tensorboardX's or TensorBoard's), so the
event is the one ``add_image`` would write apart from the PNG's bytes; a writer of another
kind gets ``add_image``.

Example:
    >>> import io
    >>> import numpy as np
    >>> from PIL import Image
    >>> image = np.zeros((4, 6, 3), dtype=np.uint8); image[1, 2] = (255, 0, 0)
    >>> decoded = np.asarray(Image.open(io.BytesIO(png_bytes(image))))
    >>> decoded.shape, bool((decoded == image).all())
    ((4, 6, 3), True)
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ..maps import MapFrame

__all__ = ["add_png", "image_summary", "log_map", "png_bytes", "summary_tag"]

#: What tensorboardX replaces by ``_`` in a summary's name (its ``summary._clean_tag``).
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type by channel count: grey, grey + alpha, RGB, RGBA.
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def png_bytes(image: npt.NDArray[np.uint8], *, level: int = 1) -> bytes:
    """``image`` ((height, width, channels) uint8, 1-4 channels) as PNG: rows unfiltered,
    zlib ``level`` (1: fastest)."""
    height, width, channels = image.shape
    rows = np.empty((height, width * channels + 1), dtype=np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = image.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def summary_tag(name: str) -> str:
    """``name`` as tensorboardX writes it (torch's writer keeps it as given): the same tags
    whichever writer logs them.

    Example:
        >>> summary_tag("features (hidden)/map")
        'features__hidden_/map'
    """
    return _INVALID_TAG_CHARACTERS.sub("_", name).lstrip("/")


def image_summary(summary: Any, name: str, image: npt.NDArray[np.uint8]) -> Any:
    """A ``Summary`` of the proto class ``summary`` (tensorboardX's or TensorBoard's: the same
    message) holding ``image`` as a :func:`png_bytes` PNG under ``name``."""
    height, width, channels = image.shape
    picture = summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=png_bytes(image)
    )
    return summary(value=[summary.Value(tag=name, image=picture)])


def add_png(writer: Any, name: str, image: npt.NDArray[np.uint8], step: int) -> None:
    """``writer.add_image(name, image, step, dataformats="HWC")``, with the PNG encoded by
    :func:`png_bytes` when ``writer`` is a tensorboardX or ``torch.utils.tensorboard``
    ``SummaryWriter`` (``name`` already cleaned by :func:`summary_tag`)."""
    summary = _summary_class(writer)
    file_writer = getattr(writer, "_get_file_writer", None)
    if summary is None or not callable(file_writer) or image.ndim != 3:
        writer.add_image(name, image, step, dataformats="HWC")
        return
    logged = image_summary(summary, name, image)
    file_writer().add_summary(logged, step)
    comet = getattr(writer, "_get_comet_logger", None)  # tensorboardX's add_image does this too
    if callable(comet):
        comet().log_image_encoded(logged.value[0].image.encoded_image_string, name, step=step)


def _summary_class(writer: Any) -> Any:
    """The ``Summary`` proto class ``writer``'s event files take, or ``None`` (unknown writer)."""
    module = type(writer).__module__
    if module.startswith("tensorboardX."):
        from tensorboardX.proto.summary_pb2 import Summary

        return Summary
    if module.startswith("torch.utils.tensorboard"):
        from tensorboard.compat.proto.summary_pb2 import Summary

        return Summary
    return None


def log_map(
    writer: Any, frame: MapFrame, tag: str, *, image: bool = True, scalars: bool = True
) -> None:
    """Log a map frame to a ``SummaryWriter`` (tensorboardX or ``torch.utils.tensorboard``).

    The image goes to ``<tag>/map`` (IMAGES tab; PNG at zlib level 1, as above),
    the scalars as named by :meth:`MapFrame.scalars` (SCALARS tab), all at ``frame.step``.
    Names are cleaned as tensorboardX cleans them (other characters than letters, digits,
    ``_-./`` become ``_``: ``"features (hidden)/map"`` is ``"features__hidden_/map"``).

    Args:
        writer: anything with ``add_image`` and ``add_scalar`` like a ``SummaryWriter``.
        frame: from :meth:`EvolutionMap.update`.
        tag: prefix of the names, usually the projector tag (``"words"``, ``"features"``).
        image: log the image (when the frame has one).
        scalars: log the scalars.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from tensorboardX import SummaryWriter
        >>> from embedding_projector.maps import EvolutionMap
        >>> evolution = EvolutionMap(max_rows=20, render=False)
        >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
        ...     for step in range(2):
        ...         frame = evolution.update(np.random.rand(20, 4), step=step)
        ...         log_map(writer, frame, "features")
    """
    if image and frame.image is not None:
        add_png(writer, summary_tag(f"{tag}/map"), frame.image, frame.step)  # zlib level 1
    if scalars:
        for name, value in frame.scalars(tag).items():
            writer.add_scalar(summary_tag(name), value, frame.step)
