"""The ``embedding-projector`` command line.

Example:
    $ embedding-projector --help
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["build_parser", "main"]


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
        type=_positive_int,
        default=10,
        help="training epochs, one snapshot each (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_demo)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _run_demo(args: argparse.Namespace) -> int:
    try:
        from .demo import run_demo

        return run_demo(args.logdir, args.epochs)
    except ImportError as error:
        print(f"embedding-projector demo: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"embedding-projector demo: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
