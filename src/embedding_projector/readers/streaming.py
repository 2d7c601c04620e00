"""Select rows from a word2vec/GloVe file while streaming it once.

:func:`select_from_file` keeps only the rows a :class:`~embedding_projector.readers.selection.
RowSelection` asks for, so memory follows the selection, not the file; with the same arguments
it picks the same rows, in the same order, as
:func:`~embedding_projector.readers.selection.select_keys` on the loaded vectors.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.vec")
    >>> with open(path, "w") as f:
    ...     _ = f.write("3 2\\nthe 0.1 0.2\\nof 0.3 0.4\\nking 0.5 0.6\\n")
    >>> rows = select_from_file(path, RowSelection(words=["king", "queen"]))
    >>> rows.keys, rows.missing, rows.matrix.shape
    (['king'], ['queen'], (1, 2))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._distinct import DistinctWords
from ._files import DEFAULT_BUFFER_SIZE
from .options import SourceOptions
from .rows import CaseHints, SelectedRows
from .selection import (
    REASON_NEAR_PREFIX,
    REASON_SAMPLE,
    REASON_TOP,
    REASON_WORD,
    NeighborSearch,
    RowSelection,
    SampleReservoir,
    unique_in_order,
)
from .word2vec import ProgressCallback, RowBlock, VectorFileReader

__all__ = ["NEAR_BATCH_ROWS", "select_from_file"]

#: Rows scored together by the ``near`` search (its batch is ~13 MB at 200-d).
NEAR_BATCH_ROWS = 16_384

Vector = npt.NDArray[np.float32]


def select_from_file(
    path: str | os.PathLike[str],
    selection: RowSelection | None = None,
    options: SourceOptions | None = None,
    *,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    progress: ProgressCallback | None = None,
    **fields: Any,
) -> SelectedRows:
    """Stream a word2vec/GloVe file once and keep only the selected rows.

    The selection means what :func:`~embedding_projector.readers.selection.select_keys` means on the
    loaded vectors (same rows, same order, same seeded sample): ``words`` first, then each
    ``near`` query with its ``near_k`` nearest neighbours (cosine), then the first ``limit``
    rows, then ``sample`` random rows of the rest. With none given, every row is kept.

    Memory: ``limit`` alone reads only the first rows; ``words`` stops when all are found;
    ``words``/``sample`` keep only their rows; ``near`` first finds the query rows, then
    scans the file block by block. A row is a duplicate only when its word equals an earlier
    one (:class:`DistinctWords`: about 40 bytes per distinct word).

    Args:
        path: the file.
        selection: the rows to keep (default: all).
        options: how to read the file (``format``, ``binary``, ``encoding``,
            ``unicode_errors``).
        buffer_size: bytes per read.
        progress: called with ``(bytes read, bytes to read)``.
        fields: shortcuts for :class:`RowSelection` / :class:`SourceOptions` fields
            (``limit=10``, ``binary=True``, ...), merged into ``selection`` / ``options``.

    Raises:
        VectorFileError: the file cannot be read (named, with row and byte offset).
        ValueError: a bad count.
    """
    selection, options = _merge_fields(selection, options, fields)
    reader = VectorFileReader(
        path,
        format=options.format if options.format in ("word2vec", "glove") else "auto",
        binary=options.binary,
        encoding=options.encoding,
        unicode_errors=options.unicode_errors,
        buffer_size=buffer_size,
    )
    return _FileSelector(reader, selection, progress).run()


def _merge_fields(
    selection: RowSelection | None, options: SourceOptions | None, fields: dict[str, Any]
) -> tuple[RowSelection, SourceOptions]:
    import dataclasses

    selection = selection or RowSelection()
    options = options or SourceOptions()
    names = {f.name for f in dataclasses.fields(RowSelection)}
    mine = {k: v for k, v in fields.items() if k in names}
    rest = {k: v for k, v in fields.items() if k not in names}
    try:
        return dataclasses.replace(selection, **mine), dataclasses.replace(options, **rest)
    except TypeError as error:
        raise TypeError(f"select_from_file: {error}") from None


class _FileSelector:
    """The state of one streamed selection (two passes when ``near`` is asked)."""

    def __init__(
        self,
        reader: VectorFileReader,
        selection: RowSelection,
        progress: ProgressCallback | None,
    ) -> None:
        self.reader = reader
        self.selection = selection
        self.wanted = unique_in_order(selection.word_list() or [])
        self.queries = selection.near_list() or []
        self.hints = CaseHints([*self.wanted, *self.queries])
        passes = 2 if self.queries else 1
        total = reader.info.size * passes
        if progress is not None:
            reader.progress = lambda done, _size: progress(done, total)
        self.query_rows: dict[str, tuple[int, Vector]] = {}
        self.query_index: dict[str, int] = {}  # query -> index among distinct words
        self.found_queries: list[str] = []
        self.query_raw_rows: dict[int, str] = {}
        self.search: NeighborSearch | None = None
        self.found_words: dict[str, tuple[int, Vector]] = {}
        self.top_keys: list[str] = []
        self.top_blocks: list[Vector] = []
        #: ``limit`` alone: the top rows go straight into the result (see ``direct_top``).
        self.top_matrix: Vector | None = None
        self.neighbour_names: dict[int, tuple[str, int]] = {}  # raw row -> (word, index)
        self.segments: list[tuple[list[str], int, int]] = []  # (words, index, batch offset)
        self.fill = 0
        self.unique = 0
        self.duplicates: dict[str, None] = {}

    # ----------------------------------------------------------------- pass 1 (near only)

    def find_queries(self) -> None:
        """The query vectors. A query's row is its word's first occurrence; rows are raw."""
        query_set = set(self.queries)
        for block in self.reader.blocks():
            self.hints.look(block.words)
            if query_set.isdisjoint(block.words):
                continue
            first_seen: dict[str, int] = {}
            for position, word in enumerate(block.words):
                if word in query_set and word not in self.query_rows:
                    first_seen.setdefault(word, position)
            hits = [(position, word) for word, position in first_seen.items()]
            vectors = block.matrix([p for p, _ in hits])
            for (position, word), vector in zip(hits, vectors, strict=True):
                self.query_rows[word] = (block.first_row + position, vector.copy())
            if len(self.query_rows) == len(query_set):
                break
        self.reader._progress_base = self.reader.info.size
        self.hints.forget(self.query_rows)
        self.found_queries = [q for q in self.queries if q in self.query_rows]
        self.query_raw_rows = {self.query_rows[q][0]: q for q in self.found_queries}
        if self.found_queries:
            self.search = NeighborSearch(
                np.stack([self.query_rows[q][1] for q in self.found_queries]),
                self.selection.near_k,
                exclude_self=[self.query_rows[q][0] for q in self.found_queries],
                keep_vectors=True,
            )

    # ----------------------------------------------------------------- neighbour batches

    def flush(self) -> None:
        """Score the batch of rows waiting for the neighbour search."""
        if self.search is None or self.fill == 0:
            return
        raw_rows = self.batch_raw[: self.fill].copy()
        self.search.update(int(raw_rows[0]), self.batch_vectors[: self.fill], raw_rows)
        best = set(self.search.indices.ravel().tolist())
        new_best = [r for r in best.difference(self.neighbour_names) if r >= raw_rows[0]]
        for raw in new_best:
            position = int(np.searchsorted(raw_rows, raw))
            for segment_words, start, offset in reversed(self.segments):
                if position >= offset:
                    self.neighbour_names[raw] = (
                        segment_words[position - offset],
                        start + position - offset,
                    )
                    break
        for raw in set(self.neighbour_names).difference(best):
            del self.neighbour_names[raw]
        self.segments.clear()
        self.fill = 0

    def add_to_batch(
        self, vectors: Vector, raw_rows: npt.NDArray[np.int64], words: list[str], first: int
    ) -> None:
        """Queue rows for the neighbour search (fewer, larger matrix products)."""
        done = 0
        size = len(self.batch_raw)
        while done < len(raw_rows):
            take = min(len(raw_rows) - done, size - self.fill)
            self.batch_vectors[self.fill : self.fill + take] = vectors[done : done + take]
            self.batch_raw[self.fill : self.fill + take] = raw_rows[done : done + take]
            self.segments.append((words[done : done + take], first + done, self.fill))
            self.fill += take
            done += take
            if self.fill == size:
                self.flush()

    # ----------------------------------------------------------------- pass 2

    def scan(self) -> bool:
        """Read the rows; True if the file was read to its end."""
        from . import streaming  # NEAR_BATCH_ROWS may be changed at run time (tests)

        batch_size = streaming.NEAR_BATCH_ROWS if self.search is not None else 0
        self.batch_vectors = np.empty((batch_size, self.reader.info.dims), dtype=np.float32)
        self.batch_raw = np.empty(batch_size, dtype=np.int64)
        selection = self.selection
        self.top_limit = (
            selection.limit
            if selection.limit is not None
            else (None if selection.everything else 0)
        )
        self.reservoir = (
            SampleReservoir(
                selection.sample,
                seed=selection.seed,
                slack=len(self.found_queries) * (selection.near_k + 1),
            )
            if selection.sample
            else None
        )
        self.wanted_set = set(self.wanted)
        self.top_matrix = self.direct_top()
        info = self.reader.info
        seen = DistinctWords(min(info.header_rows or 0, info.size // (2 * info.dims + 2)))
        for block in self.reader.blocks():
            self.hints.look(block.words)
            keep = seen.first_occurrences(block.words, self.duplicates)
            first_index = self.unique
            self.unique += len(keep)
            found_before = len(self.found_words)
            self.add_block(block, keep, first_index)
            if len(self.found_words) != found_before:  # insertion order: the new ones last
                self.hints.forget(list(self.found_words)[found_before:])
            done_top = self.top_limit is not None and self.unique >= self.top_limit
            if (
                self.search is None
                and self.reservoir is None
                and not selection.everything
                and done_top
                and len(self.found_words) == len(self.wanted_set)
            ):
                return False
        return True

    def direct_top(self) -> Vector | None:
        """The result matrix, to fill in place, when ``limit`` is the whole selection.

        The top rows are then the result, in file order, so each block's rows are copied once,
        straight to their place: no list of blocks copied again at the end (a second copy and
        twice the memory at its peak). Its size is the limit, or the rows the header
        announces if fewer; pages never written are never touched, so they cost no memory.
        """
        header_rows = self.reader.info.header_rows
        if (
            self.wanted
            or self.queries
            or self.reservoir is not None
            or self.top_limit is None
            or not header_rows
        ):
            return None
        rows = min(self.top_limit, header_rows)
        return np.empty((rows, self.reader.info.dims), dtype=np.float32) if rows else None

    def add_top(self, block: RowBlock, take: Sequence[int]) -> None:
        """Keep the top rows ``take`` of ``block`` (in place when ``direct_top`` allowed it)."""
        filled = len(self.top_keys) - len(take)  # the keys are already added
        if self.top_matrix is not None and filled + len(take) > len(self.top_matrix):
            # More rows than the header announced: go on with a list of blocks.
            self.top_blocks.append(self.top_matrix[:filled])
            self.top_matrix = None
        if self.top_matrix is None:
            self.top_blocks.append(block.matrix(take))
        else:
            block.matrix(take, out=self.top_matrix[filled : filled + len(take)])

    def add_block(self, block: RowBlock, keep: Sequence[int], first_index: int) -> None:
        """Offer one block's distinct rows to each kind of selection."""
        if self.search is not None and keep:
            raw_rows = block.first_row + np.asarray(keep, dtype=np.int64)
            words = [block.words[p] for p in keep]
            self.add_to_batch(block.matrix(keep), raw_rows, words, first_index)
            first_raw, last_raw = block.first_row, block.first_row + len(block.words)
            for raw, query in self.query_raw_rows.items():
                if first_raw <= raw < last_raw and query not in self.query_index:
                    self.query_index[query] = first_index + list(keep).index(raw - first_raw)
        take: Sequence[int] = []
        if self.top_limit is None:
            take = keep
        elif first_index < self.top_limit:
            take = keep[: self.top_limit - first_index]
        if take:
            if isinstance(take, range) and take.start == 0 and take.step == 1:
                self.top_keys.extend(block.words[: take.stop])
            else:
                self.top_keys.extend([block.words[p] for p in take])
            self.add_top(block, take)
        if self.wanted_set and not self.wanted_set.isdisjoint(block.words):
            hits = [
                (p, first_index + i)
                for i, p in enumerate(keep)
                if block.words[p] in self.wanted_set and block.words[p] not in self.found_words
            ]
            if hits:
                vectors = block.matrix([p for p, _ in hits])
                for (p, index), vector in zip(hits, vectors, strict=True):
                    self.found_words[block.words[p]] = (index, vector.copy())
        if self.reservoir is not None and keep:
            self.offer_sample(block, keep, first_index)

    def offer_sample(self, block: RowBlock, keep: Sequence[int], first_index: int) -> None:
        """Offer a block's rows to the seeded sample (only those that can still enter it)."""
        reservoir = self.reservoir
        assert reservoir is not None
        priorities = reservoir.priorities(len(keep))
        threshold = reservoir.threshold
        limit_end = self.top_limit if self.top_limit is not None else self.unique
        for i in np.flatnonzero(priorities < threshold).tolist():
            index = first_index + i
            position = keep[i]
            word = block.words[position]
            if index < limit_end or word in self.wanted_set:
                continue  # already selected as top row or named word
            priority = float(priorities[i])
            if priority < reservoir.threshold:
                vector = block.matrix([position])[0]
                reservoir.offer(priority, index, (word, vector))

    # ----------------------------------------------------------------- result

    def run(self) -> SelectedRows:
        if self.queries:
            self.find_queries()
        complete = self.scan()
        self.flush()
        return self.assemble(complete)

    def named_rows(self) -> list[tuple[str, int, str, Vector]]:
        """``words`` and ``near`` rows as (key, index, reason, vector), deduplicated."""
        rows: list[tuple[str, int, str, Vector]] = []
        for word in self.wanted:
            if word in self.found_words:
                index, vector = self.found_words[word]
                rows.append((word, index, REASON_WORD, vector))
        if self.search is not None:
            kept = self.search.vectors if self.search.vectors is not None else np.zeros((0, 0, 0))
            for q, query in enumerate(self.found_queries):
                reason = REASON_NEAR_PREFIX + query
                rows.append((query, self.query_index[query], reason, self.query_rows[query][1]))
                for column, (neighbour, _) in enumerate(self.search.neighbors(q)):
                    name, neighbour_index = self.neighbour_names[neighbour]
                    rows.append((name, neighbour_index, reason, kept[q, column]))
        seen: set[int] = set()
        unique_rows = []
        for row in rows:  # a query may also be a named word
            if row[1] not in seen:
                seen.add(row[1])
                unique_rows.append(row)
        return unique_rows

    def stack(
        self,
        first: list[tuple[str, int, str, Vector]],
        top_mask: npt.NDArray[np.bool_],
        sample_rows: list[tuple[int, Any]],
    ) -> Vector:
        """One matrix of the named rows, the top rows left in ``top_mask`` and the sample."""
        total = len(first) + int(top_mask.sum()) + len(sample_rows)
        matrix = np.empty((total, self.reader.info.dims), dtype=np.float32)
        if first:
            matrix[: len(first)] = np.stack([vector for _, _, _, vector in first])
        position = len(first)
        block_start = 0
        while self.top_blocks:  # move block by block, so the peak stays near one matrix
            top_block = self.top_blocks.pop(0)
            mask = top_mask[block_start : block_start + len(top_block)]
            chosen_rows = top_block if mask.all() else top_block[mask]
            matrix[position : position + len(chosen_rows)] = chosen_rows
            position += len(chosen_rows)
            block_start += len(top_block)
        for row, (_, (_, vector)) in enumerate(sample_rows):
            matrix[position + row] = vector
        return matrix

    def assemble(self, complete: bool) -> SelectedRows:
        """The rows in display order: words, near, top, sample; each row once, where first."""
        first = self.named_rows()
        seen_small = {index for _, index, _, _ in first}
        sample_rows = (
            self.reservoir.chosen(exclude=seen_small) if self.reservoir is not None else []
        )
        top_count = len(self.top_keys)
        top_mask = np.ones(top_count, dtype=bool)
        top_mask[[i for i in seen_small if i < top_count]] = False
        if self.top_matrix is not None:  # limit alone: the rows are in place already
            matrix = self.top_matrix[:top_count]
            self.top_matrix = None
        else:
            matrix = self.stack(first, top_mask, sample_rows)
        keys = [key for key, _, _, _ in first]
        if top_mask.all():  # the usual case: nothing named among the top rows
            keys += self.top_keys
            ranks = [index for _, index, _, _ in first] + list(range(top_count))
        else:
            keys += [k for k, keep in zip(self.top_keys, top_mask.tolist(), strict=True) if keep]
            ranks = [index for _, index, _, _ in first] + np.flatnonzero(top_mask).tolist()
        reasons = [reason for _, _, reason, _ in first]
        reasons += [REASON_TOP] * (len(ranks) - len(first))
        keys += [word for _, (word, _) in sample_rows]
        ranks += [index for index, _ in sample_rows]
        reasons += [REASON_SAMPLE] * len(sample_rows)
        missing = [w for w in self.wanted if w not in self.found_words]
        missing_near = [q for q in self.queries if q not in self.query_rows]
        return SelectedRows(
            matrix=matrix,
            keys=keys,
            ranks=ranks,
            reasons=reasons,
            missing=missing,
            missing_near=missing_near,
            duplicates=list(self.duplicates),
            rows_in_source=self.unique if complete else None,
            header_rows=self.reader.info.header_rows,
            notes=list(self.reader.notes),
            suggestions=self.hints.suggestions([*missing, *missing_near]),
        )
