"""torch helpers shared by the torch-based adapters: reusable copy buffers, label copies.

Imported only by adapters that already imported torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["CopyBuffers", "copy_of", "head"]


class CopyBuffers:
    """Reusable CPU buffers for the training thread's one copy of each table.

    Copying into a fresh tensor costs about five times the copy itself (a 50 MB allocation is
    page-faulted in, then unmapped again), and that time is spent on the training thread. So
    each tag keeps the buffer of its last written snapshot for the next one. A buffer is
    reused only after the background thread handed it back, so a snapshot still queued is
    never overwritten; at most one idle buffer per tag is kept, and :meth:`clear` drops them.
    """

    def __init__(self) -> None:
        self._idle: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def copy(self, tag: str, tensor: torch.Tensor, rows: int | None) -> torch.Tensor:
        view = tensor.detach()
        if rows is not None:
            view = view[:rows]
        with self._lock:
            buffer = self._idle.pop(tag, None)
        if buffer is None or buffer.shape != view.shape:
            buffer = torch.empty(view.shape, dtype=torch.float32, device="cpu")
        buffer.copy_(view)
        return buffer

    def give_back(self, tag: str, buffer: torch.Tensor) -> None:
        with self._lock:
            self._idle[tag] = buffer

    def giver(self, tag: str, buffer: torch.Tensor) -> Callable[[], None]:
        """Hands ``buffer`` back once called: a request's ``on_written`` (the sink wrote it)."""
        return lambda: self.give_back(tag, buffer)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()


def copy_of(labels: Any) -> Any:
    """A shallow copy taken on the training thread: the writer thread reads the labels later,
    after the next epoch may have edited the caller's list in place."""
    if isinstance(labels, torch.Tensor):
        return labels.detach().clone()
    if isinstance(labels, np.ndarray):
        return labels.copy()
    if isinstance(labels, Mapping):
        return {key: copy_of(column) for key, column in labels.items()}
    if isinstance(labels, (list, tuple)):
        return list(labels)
    return labels


def head(values: Any, count: int) -> Any:
    if values is None or isinstance(values, str):  # "glyphs" is drawn by the writer
        return values
    if isinstance(values, Mapping):
        return {key: column[:count] for key, column in values.items()}
    return values[:count]
