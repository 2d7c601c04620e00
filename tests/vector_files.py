"""Generate word2vec/GloVe files (with the quirks real files have) for the reader tests."""

from __future__ import annotations

import bz2
import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np

KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
)
KANJI = "東京大阪日本語学校電車映画音楽世界時間天気料理"


def japanese_words(count: int) -> list[str]:
    """``count`` distinct Japanese-looking words (kanji + kana), deterministic."""
    words = []
    for index in range(count):
        digits = []
        value = index
        while True:
            digits.append(KANA[value % len(KANA)])
            value //= len(KANA)
            if not value:
                break
        words.append(KANJI[index % len(KANJI)] + "".join(digits))
    return words


def random_vectors(count: int, dims: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, dims)).astype(np.float32)


def word2vec_bytes(
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    binary: bool,
    header: str | None = "auto",
    newline_after_vector: bool = False,
    line_end: str = "\n",
    trailing_space: bool = False,
    encoded_words: Sequence[bytes] | None = None,
) -> bytes:
    """A word2vec file's bytes; ``header=None`` gives GloVe (no header line)."""
    out = bytearray()
    if header == "auto":
        header = f"{len(words)} {vectors.shape[1]}"
    if header is not None:
        out += (header + line_end).encode("ascii")
    raw_words = encoded_words or [word.encode("utf-8") for word in words]
    for raw, vector in zip(raw_words, vectors, strict=True):
        if binary:
            out += raw + b" " + vector.astype("<f4").tobytes()
            if newline_after_vector:
                out += b"\n"
        else:
            text = " ".join(repr(float(v)) for v in vector)
            out += raw + b" " + text.encode("ascii")
            if trailing_space:
                out += b" "
            out += line_end.encode("ascii")
    return bytes(out)


def write(path: Path, data: bytes, compression: str | None = None) -> Path:
    if compression == "gzip":
        data = gzip.compress(data)
    elif compression == "bz2":
        data = bz2.compress(data)
    path.write_bytes(data)
    return path
