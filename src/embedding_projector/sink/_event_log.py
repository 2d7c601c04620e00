"""The sink's own event file (scalars, text, map images) when the adapter gives no writer.

tensorboardX's ``SummaryWriter.flush()`` does not wait for the events still queued for its
logger thread, so a writer that must have everything on disk when ``train()`` returns had to be
closed, and every ``train()`` call started a new event file (the CLI demo left 11 in one run).
:class:`EventLog` writes through TensorBoard's own ``EventFileWriter``, whose ``flush()`` blocks
until every queued event is written: one event file for the writer's lifetime, and nothing
pending after :meth:`EventLog.flush`. The summaries are the ones tensorboardX's
``SummaryWriter`` would log (a ``simple_value`` scalar, text as a string tensor of the text
plugin under ``<tag>/text_summary``), built from TensorBoard's protos, so nothing here imports
tensorboardX (which imports torch when installed: seconds); map images are PNG-encoded by
:func:`~embedding_projector.sink._summary_image.image_summary`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> logdir = Path(tempfile.mkdtemp())
    >>> log = EventLog(logdir)
    >>> log.add_scalar("train/loss", 0.5, 1)
    >>> log.flush()  # on disk now
    >>> log.add_scalar("train/loss", 0.25, 2)
    >>> log.close()
    >>> len(list(logdir.glob("events.out.tfevents.*")))
    1
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._summary_image import image_summary, summary_tag

__all__ = ["EventLog"]


class EventLog:
    """A minimal ``SummaryWriter`` (``add_scalar``, ``add_text``, ``add_image``) on one event
    file, whose :meth:`flush` waits until everything logged is on disk.

    Args:
        logdir: the run directory (created if missing).
    """

    def __init__(self, logdir: str | os.PathLike[str]) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.logdir = Path(os.fspath(logdir))
        # A unique, time-ordered name: two writers started in the same second do not
        # overwrite each other's file, and readers read the files in writing order.
        self._file = EventFileWriter(
            str(self.logdir), max_queue_size=64, filename_suffix=f".{time.time_ns()}"
        )

    def __repr__(self) -> str:
        return f"EventLog({str(self.logdir)!r})"

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Log ``value`` under ``tag`` (SCALARS; the name cleaned as tensorboardX cleans it)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        value = Summary.Value(tag=summary_tag(tag), simple_value=float(value))
        self.add_summary(Summary(value=[value]), step)

    def add_text(self, tag: str, text: str, step: int) -> None:
        """Log Markdown ``text`` under ``<tag>/text_summary`` (TEXT), as tensorboardX does."""
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.metadata import create_summary_metadata

        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        value = Summary.Value(
            tag=f"{tag}/text_summary",
            metadata=create_summary_metadata(display_name="", description=""),
            tensor=tensor,
        )
        self.add_summary(Summary(value=[value]), step)

    def add_image(
        self, tag: str, image: npt.NDArray[np.uint8], step: int, dataformats: str = "HWC"
    ) -> None:
        """Log a (height, width, channels) uint8 image under ``tag`` (IMAGES)."""
        if dataformats != "HWC" or image.ndim != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"EventLog.add_image takes (height, width, channels) uint8 images; got "
                f"{image.dtype} {image.shape} as {dataformats!r}."
            )
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.add_summary(image_summary(Summary, tag, image), step)

    def add_summary(self, summary: Any, step: int) -> None:
        """Log a ``Summary`` proto (TensorBoard's or tensorboardX's: the same message)."""
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        if not isinstance(summary, Summary):
            summary = Summary.FromString(summary.SerializeToString())
        self._file.add_event(Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        """Return once every event logged so far is written to the file."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file (logging afterwards raises ``OSError``)."""
        self._file.close()
