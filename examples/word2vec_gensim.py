"""Watch Word2Vec learn, epoch by epoch, in TensorBoard's Embedding Projector.

Trains gensim's Word2Vec on ``lee_background.cor`` (ships with gensim) with the
:class:`~embedding_projector.gensim.Any2VecProjector` callback, then trains a little more in a
second ``train()`` call: the projector steps simply continue.

Run::

    pip install "embedding-projector[gensim]"
    python examples/word2vec_gensim.py --logdir runs/word2vec --epochs 10
    tensorboard --logdir runs/word2vec

In TensorBoard:

* PROJECTOR: one tensor per epoch (``words:000000000`` is the random start), the same 500
  words in the same rows at every step; colour by ``count`` or search for a word.
* SCALARS: ``train/loss`` per epoch (not gensim's running total), ``train/learning_rate``,
  ``words/drift`` and ``words/neighbor_overlap_at_10`` (the embedding has converged when drift
  is near 0 and overlap near 1).
* TEXT: ``words/neighbors``, the nearest neighbours of the probe words at every snapshot.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from gensim.models import Word2Vec
from gensim.test.utils import datapath
from gensim.utils import simple_preprocess

from embedding_projector.gensim import DEFAULT_INSIGHT, Any2VecProjector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="runs/word2vec", help="TensorBoard log directory")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the first train()")
    args = parser.parse_args(argv)

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        sentences = [simple_preprocess(line) for line in handle]

    callback = Any2VecProjector(
        args.logdir,
        limit=500,  # the 500 most frequent words, identical rows at every step
        probe_rows=["australia", "government", "police", "fire"],
        insight=replace(DEFAULT_INSIGHT, neighbors_k=8),
    )
    # compute_loss=True: Word2Vec only reports a loss when asked. workers=1: with more
    # threads gensim's loss counter is unreliable (the callback warns about it).
    model = Word2Vec(vector_size=50, window=5, min_count=3, sg=1, workers=1, seed=7)
    model.build_vocab(sentences)
    model.train(
        sentences,
        total_examples=model.corpus_count,
        epochs=args.epochs,
        compute_loss=True,
        callbacks=[callback],
    )
    # Continue training: gensim restarts its loss counter, the callback's steps continue.
    model.train(
        sentences,
        total_examples=model.corpus_count,
        epochs=2,
        compute_loss=True,
        callbacks=[callback],
    )
    callback.close()
    # Word2Vec does not keep callbacks; for FastText use save(..., ignore=["callbacks"]) or
    # rely on the callback being picklable.
    model.save(str(Path(args.logdir) / "word2vec.model"))

    steps = callback.steps_written()
    print(f"wrote projector steps {steps[0]}..{steps[-1]} to {args.logdir}")
    print(f"now run: tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
