"""The ``embedding-projector`` command line.

Example:
    $ embedding-projector --help
"""

from __future__ import annotations

import argparse
import sys
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
            "or run a demo that trains word2vec and shows it evolve."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_export_command(subparsers)
    _add_demo_command(subparsers)
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


# --------------------------------------------------------------------------- export

_EXPORT_EPILOG = """\
selection order (the projector shows only the first 100,000 rows):
  --words first, then each --near word with its --near-k neighbours, then the first
  --limit rows, then --sample random rows of the rest.

examples:
  embedding-projector export entity_vector.model.bin --logdir runs --limit 10000
  embedding-projector export vectors.vec.gz --logdir runs --near 東京 大阪 --near-k 50
  embedding-projector export glove.6B.100d.txt --logdir runs --words mywords.txt --sample 5000
"""


def _add_export_command(subparsers: Any) -> None:
    """``embedding-projector export``: one-shot export of pretrained vectors."""
    from .readers import FORMATS

    export = subparsers.add_parser(
        "export",
        help="write pretrained vectors (word2vec, GloVe, fastText, gensim) for the projector",
        description=(
            "Select rows of a vector file or saved gensim model and write them where\n"
            "TensorBoard's Embedding Projector finds them. Files are streamed: only the\n"
            "selected rows are kept in memory."
        ),
        epilog=_EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "source",
        metavar="SOURCE",
        help="word2vec .bin/.txt/.vec (.gz/.bz2 too), GloVe .txt, fastText .bin, gensim file",
    )
    export.add_argument("--logdir", required=True, help="run directory to write into")
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
    output = export.add_argument_group("output")
    output.add_argument(
        "--tag", default="embeddings", metavar="NAME", help="embedding name (default: %(default)s)"
    )
    output.add_argument("--step", type=_non_negative, metavar="N", help="step number (default: 0)")
    output.add_argument(
        "--sprites",
        choices=("glyphs",),
        default=None,
        help="glyphs: draw each word as its point's picture (character/kanji embeddings)",
    )
    reading = export.add_argument_group("reading")
    reading.add_argument(
        "--format",
        choices=FORMATS,
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
    output.add_argument(
        "--layout",
        choices=("pca", "umap"),
        help="save a PCA or UMAP layout of every row as a BOOKMARKS state (umap: pip install "
        "'embedding-projector[layouts]')",
    )
    export.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    export.set_defaults(handler=_run_export)


#: CLI options that are not ``export_embeddings`` parameters of the same name.
EXPORT_FLAG_TO_PARAMETER = {"quiet": "progress"}


def _run_export(args: argparse.Namespace) -> int:
    from .errors import EmbeddingProjectorError
    from .export import export_embeddings

    prog = "embedding-projector export"
    if args.words is not None and not Path(args.words).is_file():
        print(f"{prog}: error: --words {args.words}: no such file", file=sys.stderr)
        return 2
    bar: Any = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="reading",
                file=sys.stderr,
                delay=0.5,
                leave=False,
            )
        bar.update(done - bar.n)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = export_embeddings(
                args.source,
                args.logdir,
                limit=args.limit,
                words=args.words,
                near=args.near,
                near_k=args.near_k,
                sample=args.sample,
                seed=args.seed,
                tag=args.tag,
                step=args.step,
                binary=args.binary,
                format=args.format,
                encoding=args.encoding,
                unicode_errors=args.unicode_errors,
                progress=None if args.quiet else progress,
                sprites=args.sprites,
                layout=args.layout,
            )
    except (EmbeddingProjectorError, ValueError, OSError, TypeError, ImportError) as error:
        message = " ".join(str(error).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    for warning in caught:
        print(f"{prog}: warning: {warning.message}", file=sys.stderr)
    if not args.quiet:
        print(summary.describe())
    elif summary.missing:
        print(f"{prog}: missing words: {', '.join(summary.missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
