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
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


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
