"""Text that :mod:`embedding_projector.compare` writes and prints: the change table and summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .insight import _markdown_cell
from .writer import escape_label

__all__ = ["ChangedWord", "changes_table", "changes_tsv", "describe_summary"]

#: Most-changed rows shown in the TEXT table (the TSV file holds ``top`` of them).
TEXT_TABLE_ROWS = 50


@dataclass(frozen=True)
class ChangedWord:
    """One word whose neighbourhood changed between the two sources.

    Attributes:
        rank: 1 for the most changed word.
        label: the word.
        overlap: fraction of its ``k`` neighbours in A that are also its neighbours in B.
        displacement: cosine distance (centred) between its two vectors after alignment.
        neighbors_a: its nearest neighbours in A, nearest first.
        neighbors_b: its nearest neighbours in B, nearest first.
    """

    rank: int
    label: str
    overlap: float
    displacement: float
    neighbors_a: list[str]
    neighbors_b: list[str]


def changes_tsv(changed: Sequence[ChangedWord], names: tuple[str, str], k: int) -> str:
    """``compare_changes.tsv``: one line per word, most changed first, with a header."""
    header = [
        "rank",
        "label",
        f"overlap@{k}",
        "displacement",
        f"neighbours in {escape_label(names[0])}",
        f"neighbours in {escape_label(names[1])}",
    ]
    lines = ["\t".join(header)]
    for word in changed:
        cells = [
            str(word.rank),
            escape_label(word.label),
            f"{word.overlap:.4f}",
            f"{word.displacement:.6f}",
            ", ".join(escape_label(label) for label in word.neighbors_a),
            ", ".join(escape_label(label) for label in word.neighbors_b),
        ]
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def changes_table(
    changed: Sequence[ChangedWord], names: tuple[str, str], k: int, shared: int
) -> str:
    """The Markdown table for TensorBoard's TEXT tab (the first 50 most changed words)."""
    a, b = (_markdown_cell(name) for name in names)
    lines = [
        f"Words whose {k} nearest neighbours changed most between **{a}** and **{b}** "
        f"(among {shared:,} shared words; neighbours by centred cosine):",
        "",
        f"| rank | word | overlap@{k} | displacement | neighbours in {a} | neighbours in {b} |",
        "|---|---|---|---|---|---|",
    ]
    for word in changed[:TEXT_TABLE_ROWS]:
        lines.append(
            f"| {word.rank} | **{_markdown_cell(word.label)}** | {word.overlap:.2f} | "
            f"{word.displacement:.3f} | "
            + ", ".join(_markdown_cell(label) for label in word.neighbors_a)
            + " | "
            + ", ".join(_markdown_cell(label) for label in word.neighbors_b)
            + " |"
        )
    return "\n".join(lines)


def _listing(words: Sequence[str], max_words: int) -> str:
    shown = ", ".join(words[:max_words])
    more = len(words) - max_words
    return shown + (f", ... ({more:,} more)" if more > 0 else "")


def describe_summary(summary: Any, max_words: int = 20) -> str:
    """What the CLI prints for a :class:`~embedding_projector.compare.CompareSummary`."""
    a, b = summary.names
    lines = [
        f"Compared {a!r} ({summary.sources[0]}, {summary.dims[0]} dims) with {b!r} "
        f"({summary.sources[1]}, {summary.dims[1]} dims)",
        f"  shared labels: {summary.shared:,} (written: {summary.written:,} of each, "
        f"{2 * summary.written:,} points)",
        f"  only in {a!r}: {len(summary.only_in_a):,}"
        + (f" ({_listing(summary.only_in_a, max_words)})" if summary.only_in_a else ""),
        f"  only in {b!r}: {len(summary.only_in_b):,}"
        + (f" ({_listing(summary.only_in_b, max_words)})" if summary.only_in_b else ""),
        f"  alignment: {summary.alignment}",
        f"  mean overlap@{summary.k}: {summary.mean_overlap:.3f}; median aligned displacement "
        f"(centred cosine distance): {summary.median_displacement:.4f}",
    ]
    lines.extend(f"  note: {note}" for note in summary.notes)
    if summary.most_changed:
        lines.append(f"Most changed (lowest overlap@{summary.k} first):")
        width = max(len(word.label) for word in summary.most_changed[:max_words])
        for word in summary.most_changed[:max_words]:
            lines.append(
                f"  {word.rank:>3}. {word.label:<{width}}  overlap {word.overlap:.2f}  "
                f"moved {word.displacement:.3f}  {a}: {', '.join(word.neighbors_a[:5])}  "
                f"{b}: {', '.join(word.neighbors_b[:5])}"
            )
    lines.append(f"  tensor:   {summary.tensor_path} ({summary.tensor_name!r})")
    if summary.metadata_path is not None:
        lines.append(f"  metadata: {summary.metadata_path}")
    lines.append(f"  changes:  {summary.changes_path}")
    lines.append("View it with:")
    lines.append(f"  {summary.tensorboard_command}")
    return "\n".join(lines)
