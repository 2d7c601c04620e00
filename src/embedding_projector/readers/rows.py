"""Selected rows: what every reader returns, and selection from a matrix held or mapped.

Example:
    >>> import numpy as np
    >>> from embedding_projector.readers.selection import RowSelection
    >>> rows = select_rows(np.eye(4, 3), ["a", "b", "c", "A"], RowSelection(words=["a", "B"]))
    >>> rows.keys, rows.missing, rows.suggestions
    (['a'], ['B'], {'B': 'b'})
"""

from __future__ import annotations

import contextlib
import mmap
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .selection import RowBlocks, RowSelection, select_keys

__all__ = ["ArrayBlocks", "CaseHints", "SelectedRows", "describe_variant", "select_rows"]

#: Bytes of float32 rows per block when a mapped matrix is read or searched block by block.
ARRAY_BLOCK_BYTES = 32 * 1024 * 1024


@dataclass
class SelectedRows:
    """Rows picked from a source, in display order, with why and where each came from.

    Attributes:
        matrix: (N, D) float32 vectors.
        keys: the labels (words) of the rows.
        ranks: each row's 0-based index in the source (duplicates not counted, as gensim).
        reasons: ``"word"``, ``"near:<query>"``, ``"top"`` or ``"sample"``.
        missing: requested ``words`` not in the source.
        missing_near: ``near`` queries not in the source.
        duplicates: words that occur more than once (first occurrence kept), in file order.
        rows_in_source: unique rows in the source, None if it was not read to the end.
        header_rows: rows the header announces (word2vec files).
        counts: real word counts per row, or None when the source has none.
        notes: things worth telling the user.
        key_column: the name of the label column (``"word"``, ``"token"``, a table's column,
            or ``"row"`` when the rows have only their numbers).
        columns: further metadata columns of the selected rows (name -> values).
        suggestions: missing word -> a word of the source that differs only in case or in
            Unicode normal form (see :class:`CaseHints`).
        source: a description of the source.
    """

    matrix: npt.NDArray[np.float32]
    keys: list[str]
    ranks: list[int]
    reasons: list[str]
    missing: list[str] = field(default_factory=list)
    missing_near: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rows_in_source: int | None = None
    header_rows: int | None = None
    counts: list[int] | None = None
    notes: list[str] = field(default_factory=list)
    key_column: str = "word"
    columns: dict[str, list[str]] = field(default_factory=dict)
    suggestions: dict[str, str] = field(default_factory=dict)
    source: str = ""


class CaseHints:
    """Finds, for requested words, words of the source that differ only in case or in Unicode
    normal form (``"が"`` as one code point, NFC, or two, NFD; full-width ``"ＡＢＣ"`` for
    ``"ABC"``, NFKC).

    Labels stay byte-exact: a word matches only itself; these are hints for a miss. Each
    requested word is looked for under its case-folded NFC, NFD and NFKC forms, so the
    source's words are only case-folded (no per-row normalisation while a file streams): a
    full-width request finds an ASCII word, not the other way round.

    Example:
        >>> hints = CaseHints(["Australia", "\u304b\u3099"])
        >>> hints.look(["the", "australia", "\u304c"])
        >>> hints.suggestions(["Australia", "\u304b\u3099"]) == {
        ...     "Australia": "australia", "\u304b\u3099": "\u304c"}
        True
        >>> describe_variant("\u304b\u3099", "\u304c")
        "did you mean '\u304c'? (the same text in Unicode NFC)"
    """

    def __init__(self, words: Iterable[str]) -> None:
        self._targets: dict[str, set[str]] = {}
        for word in words:
            for key in _lookup_keys(word):
                self._targets.setdefault(key, set()).add(word)
        self._variants: dict[str, list[str]] = {}

    def look(self, words: Iterable[str]) -> None:
        """Look at (more of) the source's words."""
        if not self._targets:
            return
        folded = list(map(str.casefold, words))
        if self._targets.keys().isdisjoint(folded):
            return
        for word, key in zip(words, folded, strict=False):
            if key in self._targets:
                variants = self._variants.setdefault(key, [])
                if word not in variants and len(variants) < 4:
                    variants.append(word)

    def forget(self, words: Iterable[str]) -> None:
        """Stop looking for these words (they were found as they are)."""
        for word in words:
            for key in _lookup_keys(word):
                targets = self._targets.get(key)
                if targets is not None:
                    targets.discard(word)
                    if not targets:
                        del self._targets[key]

    def suggestions(self, missing: Iterable[str]) -> dict[str, str]:
        """``missing word -> variant`` for the missing words that have a variant."""
        found: dict[str, str] = {}
        for word in missing:
            for key in _lookup_keys(word):
                variants = [v for v in self._variants.get(key, []) if v != word]
                if variants:
                    found[word] = variants[0]
                    break
        return found


def _lookup_keys(word: str) -> list[str]:
    """The keys a requested word is looked for under: case-folded, then in each normal form."""
    folded = word.casefold()
    keys = [folded]
    for form in ("NFC", "NFD", "NFKC"):
        key = unicodedata.normalize(form, folded)
        if key not in keys:
            keys.append(key)
    return keys


def describe_variant(word: str, variant: str) -> str:
    """The hint for a missing ``word`` whose ``variant`` the source has, saying how they differ.

    Example:
        >>> describe_variant("Australia", "australia")
        "did you mean 'australia'?"
    """
    hint = f"did you mean {variant!r}?"
    for form in ("NFC", "NFD", "NFKC"):
        normal = unicodedata.normalize(form, word)
        if normal == word:
            continue
        if normal == variant:
            return f"{hint} (the same text in Unicode {form})"
        if normal.casefold() == variant.casefold():
            return f"{hint} (another case, in Unicode {form})"
    return hint


class ArrayBlocks:
    """A (possibly memory-mapped) 2-D array read a block or a set of rows at a time.

    Only the rows asked for are touched, so a memory-mapped ``.npy`` file is never read whole
    unless ``near`` scans it.
    """

    def __init__(self, array: npt.NDArray[Any], block_bytes: int = ARRAY_BLOCK_BYTES) -> None:
        self.array = array
        self.block_rows = max(1, block_bytes // (4 * max(1, array.shape[1])))

    def __len__(self) -> int:
        return len(self.array)

    def take(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        order = np.argsort(indices, kind="stable")  # read the file front to back
        out = np.empty((len(indices), self.array.shape[1]), dtype=np.float32)
        for start in range(0, len(order), self.block_rows):
            chunk = order[start : start + self.block_rows]
            out[chunk] = self.array[indices[chunk]]
            self._release()
        return out

    def blocks(self) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        for start in range(0, len(self.array), self.block_rows):
            block = np.array(self.array[start : start + self.block_rows], dtype=np.float32)
            self._release()
            yield start, block

    def _release(self) -> None:
        """Drop the mapped file pages already copied from this process's resident set.

        They are clean file pages (the kernel keeps them cached), but while mapped they count
        as this process's RSS: a ``near`` scan of a 3 GB file would look like 3 GB of memory.
        """
        mapping = getattr(self.array, "_mmap", None)
        if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            with contextlib.suppress(OSError, ValueError):  # platform dependent
                mapping.madvise(mmap.MADV_DONTNEED)


def select_rows(
    vectors: npt.NDArray[Any] | RowBlocks,
    keys: list[str],
    selection: RowSelection,
    *,
    counts: list[int] | None = None,
    columns: Mapping[str, list[str]] | None = None,
    key_column: str = "word",
    unique_keys: bool = False,
) -> SelectedRows:
    """Select rows of a matrix (in memory, mapped, or any :class:`RowBlocks`) by its labels.

    Args:
        vectors: (N, D) matrix or a reader of one.
        keys: one label per row.
        selection: which rows.
        counts: real word counts per row (shown as a ``count`` column).
        columns: further metadata columns, one value per row.
        key_column: the name of the label column.
        unique_keys: the keys are known to be distinct (row numbers): skip the duplicate check.
    """
    duplicates: dict[str, None] = {}
    if not unique_keys:
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                duplicates[key] = None
            seen.add(key)
    chosen = select_keys(
        keys,
        limit=selection.limit,
        words=selection.word_list(),
        near=selection.near_list(),
        near_k=selection.near_k,
        sample=selection.sample,
        seed=selection.seed,
        key_to_index=None,
        vectors=vectors if selection.near else None,
    )
    indices = np.asarray(chosen.indices, dtype=np.int64)
    if isinstance(vectors, np.ndarray):
        matrix = np.asarray(vectors[indices], dtype=np.float32)
    else:
        matrix = vectors.take(indices)
    hints = CaseHints([*chosen.missing, *chosen.missing_near])
    hints.look(keys)
    return SelectedRows(
        matrix=matrix,
        keys=list(chosen.keys),
        ranks=list(chosen.indices),
        reasons=list(chosen.reasons),
        missing=list(chosen.missing),
        missing_near=list(chosen.missing_near),
        duplicates=list(duplicates),
        rows_in_source=len(keys),
        counts=[counts[i] for i in chosen.indices] if counts is not None else None,
        key_column=key_column,
        columns={
            name: [values[i] for i in chosen.indices] for name, values in (columns or {}).items()
        },
        suggestions=hints.suggestions([*chosen.missing, *chosen.missing_near]),
    )
