"""Exact de-duplication of the words of a stream, in bounded memory (:class:`DistinctWords`)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["DistinctWords"]

#: Probes still looking when :class:`DistinctWords` goes on one by one (numpy calls cost more).
_FEW_PROBES = 64
#: A slot of :class:`DistinctWords`' table.
_SLOT = np.dtype([("hash", np.int64), ("number", np.int64)])


class DistinctWords:
    """The distinct words of a stream so far: a word is a duplicate only when it *equals* one.

    Python's ``hash()`` of a ``str`` is no fingerprint: CPython hashes the string's internal
    buffer, so ``hash("低") == hash("NO")`` in every process (4,606 such pairs between U+4E00
    and U+9FFF). It serves here only to find candidates; every candidate is compared exactly.

    Memory, about 40 bytes per distinct word of six CJK characters (a set of their hashes
    takes about 70, a set of the words about 120): an open-addressing table of 64-bit hashes
    and 32-bit word numbers, at most half full (at most 24 bytes per word), and the words
    themselves, joined block by block (1, 2 or 4 bytes per character, as Python stores them)
    with a 4-byte end offset each, so that a candidate can be compared with the word it hit.

    Example:
        >>> seen = DistinctWords()
        >>> duplicates: dict[str, None] = {}
        >>> list(seen.first_occurrences(["NO", "低", "NO"], duplicates))
        [0, 1]
        >>> list(seen.first_occurrences(["千", "低", "CS"], duplicates)), list(duplicates)
        ([0, 2], ['NO', '低'])
        >>> len(seen), seen.word(3)
        (4, 'CS')
    """

    def __init__(self, expected: int = 0) -> None:
        capacity = 1 << max(12, (2 * expected - 1).bit_length())  # at most half full
        # One 16-byte record per slot (hash, word number): a probe touches one cache line.
        # Python never hashes to -1 (its error value): -1 marks an empty slot.
        self._table = np.full(capacity, -1, dtype=_SLOT)
        self._count = 0
        self._texts: list[str] = []  # the words kept from each block, joined
        self._ends: list[npt.NDArray[np.int32]] = []  # where each word ends in its text
        self._firsts: list[int] = []  # the number of each text's first word

    def __len__(self) -> int:
        return self._count

    def word(self, number: int) -> str:
        """The distinct word numbered ``number`` (0: the first one seen)."""
        chunk = bisect.bisect_right(self._firsts, number) - 1
        local = number - self._firsts[chunk]
        ends = self._ends[chunk]
        start = int(ends[local - 1]) if local else 0
        return self._texts[chunk][start : int(ends[local])]

    def first_occurrences(
        self, words: list[str], duplicates: dict[str, None] | None = None
    ) -> Sequence[int]:
        """Positions in ``words`` of the words not seen before; remembers them.

        The others (equal to a word seen before, or earlier in ``words``) go into
        ``duplicates`` (file order, each once).
        """
        count = len(words)
        if not count:
            return range(0)
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=count)
        while 2 * (self._count + count) > len(self._table):
            self._grow()
        base = self._count
        slots = self._place(hashes, base + np.arange(count), words)
        kept = slots >= 0
        keep: Sequence[int]
        if kept.all():
            keep = range(count)
            kept_words = words
        else:
            positions = np.flatnonzero(kept)
            keep = positions.tolist()
            kept_words = [words[p] for p in keep]
            if duplicates is not None:
                for position in np.flatnonzero(~kept).tolist():
                    duplicates[words[position]] = None
            # The table holds ``base + position`` for this block's words: renumber the kept.
            self._table["number"][slots[positions]] = base + np.arange(len(positions))
        self._count += len(kept_words)
        self._texts.append("".join(kept_words))
        ends = np.fromiter(map(len, kept_words), dtype=np.int64, count=len(kept_words))
        self._ends.append(np.cumsum(ends).astype(np.int32))
        self._firsts.append(base)
        return keep

    def _place(
        self,
        hashes: npt.NDArray[np.int64],
        numbers: npt.NDArray[np.int64],
        words: list[str] | None,
    ) -> npt.NDArray[np.int64]:
        """Insert words numbered ``numbers``; each position's slot, -1 for a duplicate.

        Linear probing, all positions at once: at each round every position still looking
        reads its slot; an equal hash is compared exactly (equal word: a duplicate; else the
        probe goes on), an empty slot goes to the first position claiming it (the others read
        it again next round: a repeat within the block then finds its first occurrence), an
        occupied one sends the probe to the next slot. The few long probes left after the
        first rounds go on one by one, in file order. ``words=None``: all known distinct.
        """
        base = int(numbers[0]) if len(numbers) else 0
        table = self._table
        table_hashes, table_numbers = table["hash"], table["number"]
        mask = len(table) - 1
        result = np.full(len(hashes), -1, dtype=np.int64)
        looking = np.arange(len(hashes), dtype=np.int64)
        slot = hashes & mask
        while len(looking) > _FEW_PROBES:
            at = slot[looking]
            records = table[at]
            found, occupants = records["hash"], records["number"]
            sought = hashes[looking]
            empty = found == -1
            done = np.zeros(len(looking), dtype=bool)
            if words is not None:
                same = np.flatnonzero(found == sought)
                for j in same.tolist():  # rare: a repeat, or a hash collision
                    done[j] = self._equal(int(occupants[j]), int(looking[j]), base, words)
            claims = np.flatnonzero(empty)
            if claims.size:
                claimed, claiming = at[claims], numbers[looking[claims]]
                table_numbers[claimed] = claiming
                won = table_numbers[claimed] == claiming  # one claimant per slot wins
                if words is not None and not won.all():
                    # Two claims of one slot: the earlier position wins (a repeat must find
                    # its first occurrence there).
                    _, first = np.unique(claimed, return_index=True)
                    table_numbers[claimed[first]] = claiming[first]
                    won[:] = False
                    won[first] = True
                table_hashes[claimed[won]] = sought[claims[won]]
                winners = claims[won]
                result[looking[winners]] = at[winners]
                done[winners] = True
            move = ~empty & ~done
            slot[looking[move]] = (at[move] + 1) & mask
            looking = looking[~done]
        for position in looking.tolist():
            at_slot, digest = int(slot[position]), int(hashes[position])
            while True:
                occupant = table_hashes.item(at_slot)
                if occupant == -1:
                    table_hashes[at_slot] = digest
                    table_numbers[at_slot] = numbers[position]
                    result[position] = at_slot
                    break
                if (
                    words is not None
                    and occupant == digest
                    and self._equal(table_numbers.item(at_slot), position, base, words)
                ):
                    break
                at_slot = (at_slot + 1) & mask
        return result

    def _equal(self, number: int, position: int, base: int, words: list[str]) -> bool:
        """Whether ``words[position]`` equals the word numbered ``number`` (this block's from
        ``base`` on, not yet renumbered)."""
        earlier = words[number - base] if number >= base else self.word(number)
        return earlier == words[position]

    def _grow(self) -> None:
        """Twice the slots; the words already seen placed again (all distinct)."""
        records = self._table[self._table["hash"] != -1]
        self._table = np.full(2 * len(self._table), -1, dtype=_SLOT)
        self._place(
            np.ascontiguousarray(records["hash"]), np.ascontiguousarray(records["number"]), None
        )
