"""The ``embedding-projector`` command line.

Example:
    $ embedding-projector --help
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

__all__ = ["build_parser", "main"]


def _int_at_least(minimum: int, expected: str) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers >= ``minimum`` (``expected`` names them)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive = _int_at_least(1, "a positive integer")
_non_negative = _int_at_least(0, "a whole number >= 0")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to keep CLI flags and the Python API in sync)."""
    parser = argparse.ArgumentParser(
        prog="embedding-projector",
        description=(
            "Put embeddings into TensorBoard's Embedding Projector: export pretrained vectors, "
            "compare two embeddings in one aligned view, or run a demo that trains word2vec "
            "and shows it evolve."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_export_command(subparsers)
    _add_demo_command(subparsers)
    _add_compare_command(subparsers)
    return parser


def _add_demo_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``embedding-projector demo``: train word2vec on a shipped corpus, watch it evolve."""
    parser = subparsers.add_parser(
        "demo",
        help="train word2vec on a corpus shipped with gensim and watch it evolve in TensorBoard",
        description=(
            "Train gensim's Word2Vec on lee_background.cor (ships with gensim) for a few epochs, "
            "writing a projector snapshot, loss, drift and nearest-neighbour tables each epoch, "
            "then print the tensorboard command to look at them. Needs: "
            'pip install "embedding-projector[gensim]".'
        ),
    )
    parser.add_argument(
        "--logdir",
        default="runs/demo",
        help="TensorBoard log directory; each demo run adds a run directory (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=_positive,
        default=10,
        help="training epochs, one snapshot each (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    try:
        from .demo import run_demo

        return run_demo(args.logdir, args.epochs)
    except (ImportError, OSError, ValueError) as error:
        print(f"embedding-projector demo: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version, or a usage error (code 2)
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    if args.command is None:
        parser.print_help()
        return 2
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- compare

_COMPARE_EPILOG = """\
A and B: vector files (as for export), or a snapshot of a projector run written as
LOGDIR::TAG@STEP (@STEP omitted: the latest step). The selection applies to each source;
rows are matched by label; B is rotated onto A (orthogonal Procrustes on the shared rows).

examples:
  embedding-projector compare epoch1.bin epoch50.bin --logdir runs/cmp --limit 20000
  embedding-projector compare runs/exp1::words@1 runs/exp1::words@9 --logdir runs/cmp
  embedding-projector compare w2v.bin fasttext.vec --logdir runs/cmp --near king --near-k 200
"""

#: CLI options that are not ``compare_embeddings`` parameters of the same name.
COMPARE_FLAG_TO_PARAMETER = {"quiet": "progress"}


def _add_compare_command(subparsers: Any) -> None:
    """``embedding-projector compare``: two embeddings in one aligned projector view."""
    compare = subparsers.add_parser(
        "compare",
        help="show two embeddings aligned in one projector view, and what changed",
        description=(
            "Match the rows of two embeddings by label, rotate B onto A, write both as one\n"
            "projector tensor, and list the words whose neighbourhoods changed most."
        ),
        epilog=_COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("a", metavar="A", help="reference: vector file or LOGDIR::TAG@STEP")
    compare.add_argument("b", metavar="B", help="compared with A and aligned onto it")
    compare.add_argument("--logdir", required=True, help="run directory to write into")
    compare.add_argument(
        "--names",
        nargs=2,
        default=("a", "b"),
        metavar=("NAME_A", "NAME_B"),
        help="the sources' names in the metadata and report (default: a b)",
    )
    _add_selection_flags(compare)  # applied to each source
    output = compare.add_argument_group("comparison and output")
    output.add_argument(
        "--k",
        type=_positive,
        default=10,
        metavar="K",
        help="neighbourhood size of overlap@K (default: %(default)s)",
    )
    output.add_argument(
        "--top",
        type=_positive,
        default=100,
        metavar="N",
        help="most-changed words in the table and TSV file (default: %(default)s)",
    )
    output.add_argument(
        "--tag", help="tensor tag (default: both sources' names, e.g. seed1_vs_seed2)"
    )
    output.add_argument("--step", type=_non_negative, metavar="N", help="step (default: 0)")
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a comparison of other sources at the same tag and step",
    )
    states = output.add_mutually_exclusive_group()
    states.add_argument(
        "--layout",
        choices=("pca", "umap"),
        default="pca",
        help="BOOKMARKS states of both sets in one frame and of each source alone: aligned "
        "PCA, or also UMAP (pip install 'embedding-projector[layouts]') (default: %(default)s)",
    )
    states.add_argument(
        "--no-layout",
        dest="layout",
        action="store_const",
        const=None,
        default="pca",
        help="write no BOOKMARKS states",
    )
    compare.add_argument("--quiet", action="store_true", help="no progress bars, no summary")
    compare.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from .compare import compare_embeddings
    from .errors import EmbeddingProjectorError

    prog = "embedding-projector compare"
    if args.words is not None and not Path(args.words).is_file():
        print(f"{prog}: error: --words {args.words}: no such file", file=sys.stderr)
        return 2
    bars: dict[str, Any] = {}
    started: dict[str, float] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage not in bars:
            now = time.monotonic()
            if stage not in started:
                started[stage] = now
                for bar in bars.values():  # one bar at a time: a new stage ends the last one
                    bar.close()
            if now - started[stage] < 0.5:
                return  # a bar only for a stage that lasts (tqdm is imported only then)
            from tqdm import tqdm

            reading = stage.startswith("reading")
            bars[stage] = tqdm(
                total=total,
                desc=stage,
                file=sys.stderr,
                leave=False,
                unit="B" if reading else " rows",
                unit_scale=reading,
                unit_divisor=1024,
            )
        bars[stage].update(done - bars[stage].n)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = compare_embeddings(
                args.a,
                args.b,
                args.logdir,
                names=tuple(args.names),
                selection=_row_selection(args),
                k=args.k,
                top=args.top,
                tag=args.tag,
                step=args.step,
                progress=None if args.quiet else progress,
                layout=args.layout,
                overwrite=args.overwrite,
            )
    except (EmbeddingProjectorError, ValueError, OSError, TypeError, ImportError) as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    finally:
        for bar in bars.values():
            bar.close()
    for warning in caught:
        print(f"{prog}: warning: {warning.message}", file=sys.stderr)
    if not args.quiet:
        print(summary.describe())
    return 0


# --------------------------------------------------------------------------- export

_EXPORT_EPILOG = """\
selection order (the projector shows only the first 100,000 rows):
  --words first, then each --near word with its --near-k neighbours, then the first
  --limit rows, then --sample random rows of the rest.

examples:
  embedding-projector export entity_vector.model.bin --logdir runs --limit 10000
  embedding-projector export vectors.vec.gz --logdir runs --near 東京 大阪 --near-k 50
  embedding-projector export glove.6B.100d.txt --logdir runs --words mywords.txt --sample 5000
  embedding-projector export docs.npy --labels titles.tsv --logdir runs --sample 20000
  embedding-projector export chunks.parquet --vector-column embedding --label-column text \\
      --metadata-columns source --logdir runs --limit 50000
  embedding-projector export ./bert-base-uncased --logdir runs --near king --near-k 100
"""


def _add_export_command(subparsers: Any) -> None:
    """``embedding-projector export``: one-shot export of pretrained vectors."""
    from .readers import FORMATS

    export = subparsers.add_parser(
        "export",
        help="write pretrained vectors (word2vec, GloVe, fastText, gensim, NumPy, Parquet, "
        "safetensors, Hugging Face models) for the projector",
        description=(
            "Select rows of a vector file, array, table or model and write them where\n"
            "TensorBoard's Embedding Projector finds them. Files are streamed or memory-mapped:\n"
            "only the selected rows are kept in memory."
        ),
        epilog=_EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "source",
        metavar="SOURCE",
        help="word2vec .bin/.txt/.vec (.gz/.bz2 too), GloVe .txt, fastText .bin, gensim file, "
        ".npy/.npz, Parquet/Arrow/Feather file or directory, .safetensors, model folder",
    )
    export.add_argument("--logdir", required=True, help="run directory to write into")
    _add_selection_flags(export)
    output = export.add_argument_group("output")
    output.add_argument(
        "--tag",
        metavar="NAME",
        help="embedding name (default: the source's name, e.g. vectors for vectors.vec.gz)",
    )
    output.add_argument("--step", type=_non_negative, metavar="N", help="step number (default: 0)")
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a snapshot of the same tag and step made from another source (without "
        "it that is an error; the same source again is always a rewrite)",
    )
    output.add_argument(
        "--sprites",
        choices=("glyphs",),
        default=None,
        help="glyphs: draw each word as its point's picture (character/kanji embeddings)",
    )
    _add_reading_flags(export, FORMATS)
    output.add_argument(
        "--layout",
        choices=("pca", "umap"),
        help="save a PCA or UMAP layout of every row as a BOOKMARKS state (umap: pip install "
        "'embedding-projector[layouts]')",
    )
    export.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    export.set_defaults(handler=_run_export)


def _add_selection_flags(export: argparse.ArgumentParser) -> None:
    select = export.add_argument_group("selection (combine freely)")
    select.add_argument("--limit", type=_non_negative, metavar="N", help="the first N rows")
    select.add_argument(
        "--words", metavar="FILE", help="UTF-8 file with words to show first, one per line"
    )
    select.add_argument(
        "--near", nargs="+", metavar="W", help="query words: each one and its nearest neighbours"
    )
    select.add_argument(
        "--near-k",
        type=_non_negative,
        default=10,
        metavar="K",
        help="neighbours per --near word (default: %(default)s)",
    )
    select.add_argument(
        "--sample", type=_non_negative, metavar="N", help="N random rows of the rest"
    )
    select.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of --sample (default: %(default)s)"
    )


def _add_reading_flags(export: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    reading = export.add_argument_group("reading")
    reading.add_argument(
        "--format",
        choices=formats,
        default="auto",
        help="source format; auto detects it from the file's first bytes (default)",
    )
    binary = reading.add_mutually_exclusive_group()
    binary.add_argument(
        "--binary", dest="binary", action="store_true", default=None, help="word2vec binary"
    )
    binary.add_argument(
        "--text",
        dest="binary",
        action="store_false",
        default=None,
        help="word2vec text (default: detect)",
    )
    reading.add_argument(
        "--encoding", default="utf-8", help="encoding of the words (default: %(default)s)"
    )
    reading.add_argument(
        "--unicode-errors",
        choices=("strict", "replace", "ignore"),
        default="strict",
        help="undecodable bytes in words: fail, replace or drop them (default: %(default)s)",
    )
    arrays = export.add_argument_group("arrays, tables and models")
    arrays.add_argument(
        "--tensor",
        metavar="NAME",
        help="the array of a .npz, or the 2-D tensor of a safetensors file or model folder "
        "(default: the only one / the model's input embedding)",
    )
    arrays.add_argument(
        "--labels",
        metavar="FILE",
        help="labels of a .npy/.npz/safetensors: one per line, or a TSV with a header line",
    )
    arrays.add_argument(
        "--vector-column", metavar="COL", help="table column of vectors (default: the list one)"
    )
    arrays.add_argument(
        "--label-column",
        dest="label_columns",
        action="append",
        metavar="COL",
        help="table column shown as label (repeatable; the first one names the rows)",
    )
    arrays.add_argument(
        "--metadata-columns",
        nargs="*",
        default=False,
        metavar="COL",
        help="also keep these table columns (no names: every other scalar column)",
    )


#: CLI options that are not ``export_embeddings`` parameters (or option fields) of that name.
EXPORT_FLAG_TO_PARAMETER = {"quiet": "progress"}


def _row_selection(args: argparse.Namespace) -> Any:
    """The ``RowSelection`` the selection flags ask for (export and compare)."""
    from .readers.selection import RowSelection

    return RowSelection(
        limit=args.limit,
        words=args.words,
        near=args.near,
        near_k=args.near_k,
        sample=args.sample,
        seed=args.seed,
    )


def _export_options(args: argparse.Namespace) -> tuple[Any, Any]:
    """The ``RowSelection`` and ``SourceOptions`` the flags ask for."""
    from .readers import SourceOptions

    selection = _row_selection(args)
    metadata_columns = args.metadata_columns
    source_options = SourceOptions(
        format=args.format,
        binary=args.binary,
        encoding=args.encoding,
        unicode_errors=args.unicode_errors,
        tensor=args.tensor,
        labels=args.labels,
        vector_column=args.vector_column,
        label_columns=args.label_columns or (),
        metadata_columns=True if metadata_columns == [] else metadata_columns,
    )
    return selection, source_options


def _progress_bar() -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """A tqdm byte counter on stderr (shown after 0.5 s) and its closer.

    tqdm is imported only once 0.5 s have passed: a quick export does not pay for it.
    """
    bar: Any = None
    show_after = time.monotonic() + 0.5

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            if time.monotonic() < show_after:
                return
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="reading",
                file=sys.stderr,
                leave=False,
            )
        bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return progress, close


def _run_export(args: argparse.Namespace) -> int:
    from .errors import EmbeddingProjectorError
    from .export import export_embeddings

    prog = "embedding-projector export"
    if args.words is not None and not Path(args.words).is_file():
        print(f"{prog}: error: --words {args.words}: no such file", file=sys.stderr)
        return 2
    progress, close_bar = _progress_bar()
    try:
        selection, source_options = _export_options(args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = export_embeddings(
                args.source,
                args.logdir,
                selection,
                source_options=source_options,
                tag=args.tag,
                step=args.step,
                progress=None if args.quiet else progress,
                sprites=args.sprites,
                layout=args.layout,
                overwrite=args.overwrite,
            )
    except (EmbeddingProjectorError, ValueError, OSError, TypeError, ImportError) as error:
        message = " ".join(str(error).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    finally:
        close_bar()
    for warning in caught:
        print(f"{prog}: warning: {warning.message}", file=sys.stderr)
    if not args.quiet:
        print(summary.describe())
    elif summary.missing:
        from .readers.rows import describe_variant

        hints = summary.suggestions
        shown = [
            f"{w} ({describe_variant(w, hints[w])})" if w in hints else w for w in summary.missing
        ]
        print(f"{prog}: missing words: {', '.join(shown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
