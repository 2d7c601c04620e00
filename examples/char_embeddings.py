"""Character embeddings for Japanese text, each point drawn as its own glyph in the projector.

Trains gensim's Word2Vec on *character* sequences (every sentence is a list of its characters),
then writes the character vectors with a sprite of glyphs, so TensorBoard's projector shows
漢, ひ, カ, ... instead of dots. Kanji that share contexts (年/月/日, 東/西/南/北) end up close.

The text:

* ``--corpus hironsan``: the 500 Japanese news sentences shipped inside the PyPI package
  ``hironsancorpus`` (``pip install hironsancorpus``; file ``hironsan/corpus/iob_sents.txt``,
  one token per line; MIT licence declared by the package). Read straight from the installed
  file; nothing is downloaded at run time.
* ``--corpus generated``: sentences generated here from a small Japanese vocabulary (time,
  person, place, object, verb), so the example runs with nothing but gensim installed.
* ``--corpus auto`` (default): the first if the package is installed, else the second.

Run it, then open the projector::

    python examples/char_embeddings.py --logdir runs/chars
    tensorboard --logdir runs/chars

Glyphs need a font that covers Japanese (``apt-get install fonts-noto-cjk``); without one,
characters are drawn as their code points and a warning says what to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import random
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedding_projector import ProjectorWriter, Snapshot
from embedding_projector.glyphs import glyph_images

logger = logging.getLogger("char_embeddings")

HIRONSAN_PACKAGE = "hironsancorpus"
CORPUS_CHOICES = ("auto", "hironsan", "generated")

# Generated corpus: a few word classes whose characters share contexts.
_TIMES = ["今日", "昨日", "明日", "毎朝", "今夜", "週末", "春に", "夏に", "秋に", "冬に"]
_PEOPLE = ["私", "母", "父", "兄", "姉", "先生", "学生", "子供", "友達", "医者", "猫", "犬"]
_PLACES = ["学校", "公園", "駅", "家", "図書館", "病院", "会社", "海", "山", "東京", "京都"]
_OBJECTS = [
    ("本", "読みました"),
    ("新聞", "読みました"),
    ("手紙", "書きました"),
    ("日記", "書きました"),
    ("水", "飲みました"),
    ("お茶", "飲みました"),
    ("魚", "食べました"),
    ("肉", "食べました"),
    ("ご飯", "食べました"),
    ("映画", "見ました"),
    ("花", "見ました"),
    ("車", "買いました"),
    ("服", "買いました"),
]
_ADJECTIVES = ["大きい", "小さい", "新しい", "古い", "赤い", "青い", "白い", "黒い"]


def generated_sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` simple Japanese sentences, e.g. ``今日、先生は図書館で古い本を読みました。``."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        obj, verb = rng.choice(_OBJECTS)
        adjective = rng.choice(_ADJECTIVES) if rng.random() < 0.5 else ""
        sentences.append(
            f"{rng.choice(_TIMES)}、{rng.choice(_PEOPLE)}は{rng.choice(_PLACES)}で"
            f"{adjective}{obj}を{verb}。"
        )
    return sentences


def hironsan_sentences() -> list[str] | None:
    """The sentences of the ``hironsancorpus`` package, or None if it is not installed."""
    try:
        spec = importlib.util.find_spec("hironsan.corpus")
    except ModuleNotFoundError:
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "iob_sents.txt"
    if not path.is_file():
        return None
    sentences: list[str] = []
    tokens: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                sentences.append("".join(tokens))
                tokens = []
            continue
        tokens.append(line.split("\t", 1)[0])
    if tokens:
        sentences.append("".join(tokens))
    return sentences


def load_sentences(corpus: str = "auto", *, generated_count: int = 2000) -> tuple[list[str], str]:
    """(sentences, name of the corpus used)."""
    if corpus not in CORPUS_CHOICES:
        raise ValueError(f"corpus must be one of {CORPUS_CHOICES}; got {corpus!r}")
    if corpus in ("auto", "hironsan"):
        sentences = hironsan_sentences()
        if sentences:
            return sentences, "hironsan"
        if corpus == "hironsan":
            raise ModuleNotFoundError(
                f"the corpus needs the {HIRONSAN_PACKAGE!r} package: pip install {HIRONSAN_PACKAGE}"
            )
    return generated_sentences(generated_count), "generated"


def char_sequences(sentences: Sequence[str]) -> list[list[str]]:
    """Each sentence as its characters, without whitespace."""
    return [[char for char in sentence if not char.isspace()] for sentence in sentences]


def script_of(char: str) -> str:
    """A coarse script name, as a metadata column to colour points by."""
    name = unicodedata.name(char, "")
    if name.startswith("CJK UNIFIED IDEOGRAPH") or name.startswith("CJK COMPATIBILITY"):
        return "kanji"
    for script in ("HIRAGANA", "KATAKANA", "HANGUL", "LATIN"):
        if script in name:
            return script.lower()
    if char.isdigit():
        return "digit"
    return "symbol"


def train(
    sentences: Sequence[Sequence[str]],
    *,
    vector_size: int = 64,
    epochs: int = 20,
    min_count: int = 2,
    seed: int = 0,
) -> Any:
    """Skip-gram Word2Vec over characters (one worker: reproducible)."""
    from gensim.models import Word2Vec

    return Word2Vec(
        sentences=[list(sentence) for sentence in sentences],
        vector_size=vector_size,
        window=3,
        min_count=min_count,
        sg=1,
        epochs=epochs,
        workers=1,
        seed=seed,
    )


def export(model: Any, logdir: str | Path, *, max_chars: int | None = None) -> Snapshot:
    """Write the (most frequent) character vectors with glyph sprites."""
    keys = list(model.wv.index_to_key)[:max_chars]
    vectors = np.asarray(model.wv.vectors[: len(keys)], dtype=np.float32)
    rows = [[char, str(model.wv.get_vecattr(char, "count")), script_of(char)] for char in keys]
    return ProjectorWriter(logdir).add_embedding(
        vectors,
        metadata=rows,
        metadata_header=["char", "count", "script"],
        label_img=glyph_images(keys),
        tag="chars",
        global_step=int(model.epochs),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="runs/char_embeddings")
    parser.add_argument("--corpus", choices=CORPUS_CHOICES, default="auto")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--vector-size", type=int, default=64)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--max-chars", type=int, default=None, help="most frequent N only")
    parser.add_argument(
        "--max-sentences", type=int, default=None, help="use the first N sentences only"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    sentences, corpus = load_sentences(args.corpus)
    sentences = sentences[: args.max_sentences]
    model = train(
        char_sequences(sentences),
        vector_size=args.vector_size,
        epochs=args.epochs,
        min_count=args.min_count,
        seed=args.seed,
    )
    snapshot = export(model, args.logdir, max_chars=args.max_chars)
    print(
        f"{corpus} corpus: {len(sentences)} sentences, {len(model.wv)} characters; "
        f"wrote {snapshot.shape[0]} glyphs as {snapshot.tensor_name!r} to {args.logdir}"
    )
    for query in ("日", "東", "食"):
        if query in model.wv.key_to_index:
            near = ", ".join(char for char, _ in model.wv.most_similar(query, topn=5))
            print(f"  nearest to {query}: {near}")
    print(f"view: tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
