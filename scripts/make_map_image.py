"""Render the README's picture of an aligned evolution map (``docs/images/evolution-map.png``).

Trains a small Word2Vec on gensim's shipped Lee corpus (``lee_background.cor``, 1 worker, fixed
seed), feeds the 300 most frequent words to :class:`embedding_projector.maps.EvolutionMap` after
each epoch, and puts the maps of three epochs side by side: the same axes, the probe words
highlighted and joined to where they were one epoch earlier. Works offline; needs gensim.
Run from the repository root::

    PYTHONPATH=src python scripts/make_map_image.py             # writes docs/images/
    PYTHONPATH=src python scripts/make_map_image.py --out /tmp/map.png --epochs 1 3 12
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedding_projector.maps import EvolutionMap, MapFrame, MapStyle

ROOT = Path(__file__).resolve().parent.parent
#: The README keeps each picture under this size.
MAX_BYTES = 300_000
WORDS = 300
PROBES = ("government", "police", "Afghanistan", "Israeli", "fire", "Australia")


def evolution_frames(
    epochs: Sequence[int], *, size: tuple[int, int] = (560, 560)
) -> list[MapFrame]:
    """Train Word2Vec for ``max(epochs)`` epochs; the map frames of the chosen epochs."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.models.word2vec import LineSentence
    from gensim.test.utils import datapath

    wanted = set(epochs)
    evolution = EvolutionMap(
        max_rows=WORDS, style=MapStyle(title="Word2Vec on the Lee corpus", size=size)
    )
    frames: list[MapFrame] = []

    class Maps(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model: Word2Vec) -> None:
            self.epoch += 1
            keys = model.wv.index_to_key[:WORDS]
            matrix = np.array(model.wv.vectors[:WORDS])
            evolution.render = self.epoch in wanted
            frame = evolution.update(matrix, keys, step=self.epoch, highlight=PROBES)
            if self.epoch in wanted:
                frames.append(frame)

    corpus = LineSentence(datapath("lee_background.cor"))
    Word2Vec(
        corpus,
        vector_size=50,
        min_count=3,
        workers=1,
        seed=3,
        epochs=max(epochs),
        callbacks=[Maps()],
    )
    return frames


def side_by_side(frames: Sequence[MapFrame]) -> bytes:
    """The frames' images next to each other, as PNG bytes."""
    from PIL import Image

    images = [frame.image for frame in frames if frame.image is not None]
    strip = np.concatenate(images, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).quantize(colors=128).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "evolution-map.png")
    parser.add_argument("--epochs", type=int, nargs=3, default=[1, 4, 12])
    args = parser.parse_args(argv)
    data = side_by_side(evolution_frames(args.epochs))
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{args.out}: {len(data):,} bytes is over the {MAX_BYTES:,} byte limit")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
