"""safetensors files and Hugging Face model folders, read lazily with ``safe_open``.

A model folder is what ``save_pretrained`` writes: ``config.json``, ``model.safetensors`` (or
shards listed in ``model.safetensors.index.json``) and ``tokenizer.json`` (or ``vocab.txt``).
By default the input embedding is shown (``…word_embeddings.weight``, ``…embed_tokens.weight``,
``…wte.weight``, ``…shared.weight``), one point per token, labelled with the tokenizer's
vocabulary; special tokens are marked in a ``special`` column. Only the selected rows of the
one tensor are read (``near`` reads it in blocks); bfloat16/float16 become float32. Nothing is
ever downloaded: a Hub name that is not a local folder is refused.

Example:
    >>> from embedding_projector.readers.selection import RowSelection  # doctest: +SKIP
    >>> rows = select_from_safetensors("./my-bert", RowSelection(near=["king"]))  # doctest: +SKIP
    >>> rows.key_column, rows.columns.keys()  # doctest: +SKIP
    ('token', dict_keys(['special']))
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import VectorFileError
from .arrays import check_matrix, row_labels
from .options import SourceOptions
from .rows import SelectedRows, select_rows
from .selection import RowSelection

__all__ = ["SafetensorsBlocks", "select_from_safetensors"]

#: Input-embedding names, most specific first (BERT, Llama/Mistral, GPT-2, T5).
EMBEDDING_SUFFIXES = (
    "word_embeddings.weight",
    "embed_tokens.weight",
    "wte.weight",
    "shared.weight",
    "embed_in.weight",
    "tok_embeddings.weight",
)
#: Rows read per ``safe_open`` slice while scanning, and the gap merged into one slice.
SCAN_ROWS = 16_384
MERGE_GAP = 64
_INDEX_FILE = "model.safetensors.index.json"


def _safe_open() -> Any:
    try:
        from safetensors import safe_open
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading safetensors needs safetensors: pip install 'embedding-projector[safetensors]'"
        ) from error
    return safe_open


def select_from_safetensors(
    path: str | os.PathLike[str],
    selection: RowSelection | None = None,
    options: SourceOptions | None = None,
) -> SelectedRows:
    """Select rows of a 2-D tensor of a ``.safetensors`` file or a local model folder.

    Args:
        path: a ``.safetensors`` file or a model folder.
        selection: which rows (default: all).
        options: ``tensor`` (default: the only 2-D tensor of a file, a folder's input
            embedding) and ``labels`` (default: a folder's tokenizer vocabulary, else row
            numbers).

    Raises:
        VectorFileError: unreadable, no such tensor, not 2-D, or labels that do not match.
    """
    selection = selection or RowSelection()
    options = options or SourceOptions()
    folder = Path(os.fspath(path))
    files = _tensor_files(folder)
    name = options.tensor or _default_tensor(folder, files)
    if name not in files:
        two_d = ", ".join(n for n in files if len(_shape(files[n], n)) == 2) or "none"
        raise VectorFileError(f"has no tensor {name!r}; its 2-D tensors: {two_d}", str(folder))
    tensor = SafetensorsBlocks(files[name], name)
    if options.labels is None and folder.is_dir():
        key_column, keys, columns = tokenizer_labels(folder, len(tensor))
    else:
        key_column, keys, columns = row_labels(len(tensor), options.labels, str(folder))
    rows = select_rows(
        tensor,
        keys,
        selection,
        key_column=key_column,
        columns=columns,
        unique_keys=key_column == "row",
    )
    rows.source = f"{folder} (tensor {name!r}, {len(tensor):,} x {tensor.dims} {tensor.dtype})"
    return rows


def _tensor_files(path: Path) -> dict[str, Path]:
    """Tensor name -> the file that holds it (a file, a folder, or a sharded folder)."""
    if path.is_file():
        return dict.fromkeys(_keys(path), path)
    index = path / _INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise VectorFileError(f"has no readable weight_map ({error})", str(index)) from None
        return {name: path / file for name, file in weight_map.items()}
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise VectorFileError(
            "has no model.safetensors (nor model.safetensors.index.json): not a Hugging Face "
            "model folder saved with safetensors (a PyTorch .bin checkpoint is not read)",
            str(path),
        )
    return {name: file for file in files for name in _keys(file)}


def _keys(file: Path) -> list[str]:
    try:
        with _safe_open()(str(file), framework="numpy") as handle:
            return list(handle.keys())
    except Exception as error:  # safetensors raises its own error types
        raise VectorFileError(
            f"is not a readable safetensors file ({error}); truncated or corrupt?", str(file)
        ) from error


def _shape(file: Path, name: str) -> list[int]:
    with _safe_open()(str(file), framework="numpy") as handle:
        return list(handle.get_slice(name).get_shape())


def _default_tensor(path: Path, files: dict[str, Path]) -> str:
    """The input embedding of a model folder, or the only 2-D tensor of a file."""
    two_d = [name for name in files if len(_shape(files[name], name)) == 2]
    if path.is_dir():
        vocab_size = _config(path).get("vocab_size")
        for suffix in EMBEDDING_SUFFIXES:
            named = [n for n in two_d if n.endswith(suffix)]
            sized = [n for n in named if _shape(files[n], n)[0] == vocab_size] or named
            if sized:
                return sorted(sized, key=len)[0]
    if len(two_d) == 1:
        return two_d[0]
    raise VectorFileError(
        f"holds {len(two_d)} 2-D tensors and none is a known input embedding; pick one with "
        f"tensor= (--tensor NAME): {', '.join(two_d[:20]) or 'none'}",
        str(path),
    )


def _config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(config.get("text_config"), dict):  # multimodal models
        config = {**config, **config["text_config"]}
    return config if isinstance(config, dict) else {}


class SafetensorsBlocks:
    """One 2-D tensor of a safetensors file, read by row slices (a ``RowBlocks``)."""

    def __init__(self, file: Path, name: str) -> None:
        self.file = file
        self.name = name
        try:
            with _safe_open()(str(file), framework="numpy") as handle:
                piece = handle.get_slice(name)
                self.shape = tuple(piece.get_shape())
                self.dtype = str(piece.get_dtype())
        except Exception as error:
            raise VectorFileError(
                f"tensor {name!r} cannot be read ({error}); truncated or corrupt?", str(file)
            ) from error
        check_matrix(self.shape, "f", str(file), what=f"tensor {name!r}")
        self.dims = int(self.shape[1])
        # numpy has no bfloat16: read those through torch when it is there, else as raw bits.
        self._framework = "numpy"
        if self.dtype == "BF16":
            try:
                import torch  # noqa: F401

                self._framework = "pt"
            except ImportError:
                self._framework = "bits"

    def __len__(self) -> int:
        return int(self.shape[0])

    def _read(self, handle: Any, start: int, stop: int) -> npt.NDArray[np.float32]:
        try:
            if self._framework == "bits":
                return _bf16_rows(self.file, self.name, start, stop, self.dims)
            piece = handle.get_slice(self.name)[start:stop]
            if self._framework == "pt":
                piece = piece.float().numpy()
            return np.asarray(piece, dtype=np.float32)
        except VectorFileError:
            raise
        except Exception as error:
            raise VectorFileError(
                f"tensor {self.name!r} rows {start}-{stop} cannot be read ({error}); truncated?",
                str(self.file),
            ) from error

    def _open(self) -> Any:
        framework = "numpy" if self._framework == "bits" else self._framework
        return _safe_open()(str(self.file), framework=framework)

    def take(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out = np.empty((len(indices), self.dims), dtype=np.float32)
        if not len(indices):
            return out
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        # Runs of nearby rows become one slice each.
        breaks = np.flatnonzero(np.diff(ordered) > MERGE_GAP) + 1
        with self._open() as handle:
            for run in np.split(np.arange(len(ordered)), breaks):
                first, last = int(ordered[run[0]]), int(ordered[run[-1]])
                block = self._read(handle, first, last + 1)
                out[order[run]] = block[ordered[run] - first]
        return out

    def blocks(self) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        with self._open() as handle:
            for start in range(0, len(self), SCAN_ROWS):
                yield start, self._read(handle, start, min(start + SCAN_ROWS, len(self)))


def _bf16_rows(file: Path, name: str, start: int, stop: int, dims: int) -> npt.NDArray[np.float32]:
    """bfloat16 rows without torch: the upper 16 bits of float32, from the file's own header."""
    with open(file, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
        begin, _ = header[name]["data_offsets"]
        handle.seek(8 + size + begin + start * dims * 2)
        raw = np.frombuffer(handle.read((stop - start) * dims * 2), dtype="<u2")
    if raw.size != (stop - start) * dims:
        raise VectorFileError(f"tensor {name!r} ends early (truncated file?)", str(file))
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(stop - start, dims)


def tokenizer_labels(folder: Path, rows: int) -> tuple[str, list[str], dict[str, list[str]]]:
    """``("token", tokens, {"special": ...})`` from a folder's tokenizer, else row numbers.

    Rows the vocabulary does not cover (embeddings padded to a multiple of 64) are named
    ``<row N>`` and marked ``padding``.
    """
    vocabulary = _vocabulary(folder)
    if vocabulary is None:
        return row_labels(rows, None, str(folder))
    tokens, special = vocabulary
    keys = [f"<row {i}>" for i in range(rows)]
    marks = ["padding"] * rows
    for index, token in tokens.items():
        if 0 <= index < rows:
            keys[index] = token
            marks[index] = "special" if token in special else ""
    return "token", keys, {"special": marks}


def _vocabulary(folder: Path) -> tuple[dict[int, str], set[str]] | None:
    """(id -> token, special tokens) from tokenizer.json or vocab.txt, or None."""
    if (folder / "tokenizer.json").is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Reading tokenizer.json needs tokenizers: pip install "
                "'embedding-projector[safetensors]'"
            ) from error
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:
            raise VectorFileError(
                f"tokenizer.json cannot be read ({error})", str(folder / "tokenizer.json")
            ) from error
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        special = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
        return {index: token for token, index in vocab.items()}, special
    if (folder / "vocab.txt").is_file():
        lines = (folder / "vocab.txt").read_text("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        special = _special_tokens_map(folder)
        return dict(enumerate(lines)), special
    return None


def _special_tokens_map(folder: Path) -> set[str]:
    try:
        mapping = json.loads((folder / "special_tokens_map.json").read_text("utf-8"))
    except (OSError, ValueError):
        return set()
    found: set[str] = set()
    for value in mapping.values():
        for item in value if isinstance(value, list) else [value]:
            content = item.get("content") if isinstance(item, dict) else item
            if isinstance(content, str):
                found.add(content)
    return found
