"""The options and the request of :mod:`embedding_projector.sink` (import them from there).

Example:
    >>> from embedding_projector.sink import InsightOptions
    >>> InsightOptions(map_budget=None).map_rows
    500
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..insight._layout_core import check_layout_kind, require_umap
from ..maps import DEFAULT_MAP_ROWS
from ..maps._arrays import check_int as _check_int

__all__ = [
    "OPTION_FIELDS",
    "InsightOptions",
    "SinkOptions",
    "SinkStats",
    "SnapshotRequest",
    "resolve_options",
]


@dataclass(frozen=True)
class InsightOptions:
    """What the sink computes beside each snapshot, and how much time it may take.

    Args:
        maps: log an aligned 2-D map per snapshot (IMAGES tab ``<tag>/map``).
        scalars: log ``<tag>/drift``, ``<tag>/neighbor_overlap_at_<k>``, ``<tag>/separation``
            (features with classes) and the probe rows' neighbour table (TEXT tab).
        map_rows: rows drawn on each map (probe rows always).
        map_size: (width, height) of the map images in pixels.
        map_budget: the largest share of the time between snapshots drawing a tag's map may
            take: a tag's map image is skipped (and drawn at a later snapshot, with an INFO
            log line) while its last one took more than this share of the time since. The
            scalars and neighbour tables are logged at every snapshot regardless. ``None``:
            a map at every snapshot.
        neighbors_k: neighbours in the probe tables, and the k of ``neighbor_overlap_at_<k>``.
        max_rows: rows used for drift and overlap; ``None``: the ``map_rows`` drawn.
        color_column: the label column that labels the maps and colours class maps (a header
            name or a column number).
        layout: the saved state (BOOKMARKS) written beside each snapshot, in one frame for the
            run (:class:`~embedding_projector.insight.layouts.AlignedLayout`): ``"pca"`` (aligned
            PCA, 2-D and 3-D), ``"umap"`` (aligned UMAP of every row up to 100,000; the ``layouts``
            extra) or ``None``. Computed within ``map_budget`` with the map: a step over budget
            gets the last computed positions, labelled ``skipped (time budget)``.
        trajectory: also write ``<tag> · trajectory``: the probe rows at every step so far
            (up to 100,000 rows), labelled with label and step, in the layout's frame, with a
            saved state per step and one of all steps coloured by step. Needs ``layout``, and
            probe rows (gensim's ``probe_words``; ``probe_rows=`` of the Lightning and Hugging
            Face callbacks, which refuse ``trajectory=True`` without them).

    Raises:
        ValueError: a bad value (``layout="tsne"`` or an unknown name lists the choices).
        ImportError: ``layout="umap"`` without umap-learn (names the ``layouts`` extra).

    Example:
        >>> InsightOptions(maps=False).enabled
        True
        >>> InsightOptions(layout=None).layout is None
        True
    """

    maps: bool = True
    scalars: bool = True
    map_rows: int = DEFAULT_MAP_ROWS
    map_size: tuple[int, int] = (640, 640)
    map_budget: float | None = 0.02
    neighbors_k: int = 10
    max_rows: int | None = None
    color_column: str | int = 0
    layout: Literal["pca", "umap"] | None = "pca"
    trajectory: bool = False

    def __post_init__(self) -> None:
        if self.layout is not None:
            check_layout_kind(self.layout)  # lists the choices; says why not t-SNE
            if self.layout == "umap":
                require_umap()  # now, not at the first snapshot: names the extra
        if not isinstance(self.trajectory, bool):
            raise ValueError(f"trajectory must be True or False; got {self.trajectory!r}.")
        if self.trajectory and self.layout is None:
            raise ValueError(
                "trajectory=True draws the probe rows in the layout's frame; it needs "
                "layout='pca' or 'umap', got layout=None."
            )
        _check_int("map_rows", self.map_rows, minimum=2)
        _check_int("neighbors_k", self.neighbors_k, minimum=1)
        if self.max_rows is not None:
            _check_int("max_rows", self.max_rows, minimum=2)
        budget = self.map_budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1
        ):
            raise ValueError(f"map_budget must be a fraction in (0, 1] or None; got {budget!r}.")
        size = tuple(self.map_size)
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) for v in size):
            raise ValueError(f"map_size must be (width, height) in pixels; got {self.map_size!r}.")
        object.__setattr__(self, "map_size", (int(size[0]), int(size[1])))

    @property
    def enabled(self) -> bool:
        """Whether anything is computed beside the snapshots."""
        return self.maps or self.scalars


@dataclass(frozen=True)
class SinkOptions:
    """How snapshots are written.

    Args:
        background: write on a background thread (the training thread only copies rows);
            ``False`` writes in the caller's thread (debugging, benchmarks).
        max_pending: snapshots that may wait for the background thread before training waits.
        keep: keep the random start (step 0) and the ``keep`` most recent snapshots of each
            tag (the final one among them); older ones are removed from the config and the
            disk after each snapshot, and a resumed run prunes what it finds the same way.
            ``None``: keep every snapshot.
        disk_reserve: bytes that must stay free on the log dir's file system after each
            snapshot, so the run's own checkpoints keep room: a snapshot that would eat into
            them is skipped with one warning (later ones are tried again). ``None``: the
            larger of twice the snapshot and 5 % of the file system capped at 1 GiB; ``0``
            disables the check.

    Raises:
        ValueError: ``max_pending`` or ``keep`` below 1, ``disk_reserve`` negative.

    Example:
        >>> SinkOptions(background=False).max_pending
        2
        >>> SinkOptions(keep=3, disk_reserve=512 * 2**20).keep
        3
    """

    background: bool = True
    max_pending: int = 2
    keep: int | None = None
    disk_reserve: int | None = None

    def __post_init__(self) -> None:
        _check_int("max_pending", self.max_pending, minimum=1)
        if self.keep is not None:
            _check_int("keep", self.keep, minimum=1, hint=" (None keeps every snapshot)")
            object.__setattr__(self, "keep", int(self.keep))
        if self.disk_reserve is not None:
            _check_int(
                "disk_reserve",
                self.disk_reserve,
                minimum=0,
                hint=" bytes (0 disables the check; None is the default rule)",
            )
            object.__setattr__(self, "disk_reserve", int(self.disk_reserve))


@dataclass
class SinkStats:
    """Time the background side spent (read by the benchmarks)."""

    #: Wall seconds per submitted job.
    write_seconds: list[float] = field(default_factory=list)
    #: CPU seconds of the writing thread, all jobs together.
    write_cpu_seconds: float = 0.0


@dataclass
class SnapshotRequest:
    """One matrix to write at one step, as the training thread hands it over.

    Args:
        tag: projector tag.
        matrix: (N, D) float array (numpy, or a CPU torch tensor); the sink does not modify it
            and the caller must not modify it until ``on_written`` runs.
        labels: one label per row, rows of several columns (named by ``header``), or a
            mapping column name -> values; ``None``: the row numbers.
        header: column names for labels given as rows of several columns.
        sprites: (N, C, H, W) or (N, H, W) images, or ``"glyphs"`` (each row's first label
            column drawn as its image; drawn once per tag while the labels stay the same).
        name_suffix: extra text for the tensor name (``"epoch 3"``).
        probes: rows highlighted on the map and tabulated with their nearest neighbours.
        classes: the rows are fixed feature inputs: matched by row index across steps and
            coloured by ``InsightOptions.color_column`` on the map (no point labels).
        row_noun: what a row is, for the neighbour table (``"words"``).
        on_written: called on the writing thread once the request is done (buffer reuse).
    """

    tag: str
    matrix: Any
    labels: Any = None
    header: Sequence[str] | None = None
    sprites: Any = None
    name_suffix: str | None = None
    probes: Sequence[int] = ()
    classes: bool = False
    row_noun: str = "rows"
    on_written: Callable[[], None] | None = None


def resolve_options(
    owner: str,
    insight: InsightOptions | None,
    sink: SinkOptions | None,
    *,
    default_insight: InsightOptions | None = None,
) -> tuple[InsightOptions, SinkOptions]:
    """An adapter's ``insight`` and ``sink`` (``None``: the defaults), type-checked.

    Raises:
        TypeError: either is not its options object (``insight=True`` included).

    Example:
        >>> resolve_options("X", None, SinkOptions(keep=2))[1].keep
        2
        >>> resolve_options("X", True, None)  # type: ignore[arg-type]
        Traceback (most recent call last):
        ...
        TypeError: X(insight=...) takes InsightOptions(...) or None; got bool.
    """
    for name, value, kind in (("insight", insight, InsightOptions), ("sink", sink, SinkOptions)):
        if value is not None and not isinstance(value, kind):
            raise TypeError(
                f"{owner}({name}=...) takes {kind.__name__}(...) or None; "
                f"got {type(value).__name__}."
            )
    insight = insight if insight is not None else (default_insight or InsightOptions())
    return insight, sink if sink is not None else SinkOptions()


#: Fields of the options objects, by where a callback takes them (for a misspelt keyword's
#: message: ``EmbeddingProjector(map_rows=8)`` says ``insight=InsightOptions(map_rows=...)``).
#: ``max_rows`` is left out: passed to a callback it means the callbacks' ``limit``.
OPTION_FIELDS = {
    **{
        option.name: f"insight=InsightOptions({option.name}=...)"
        for option in dataclasses.fields(InsightOptions)
        if option.name != "max_rows"
    },
    **{
        option.name: f"sink=SinkOptions({option.name}=...)"
        for option in dataclasses.fields(SinkOptions)
    },
}
