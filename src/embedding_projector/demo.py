"""``embedding-projector demo``: train word2vec and watch it learn in TensorBoard.

Trains gensim's Word2Vec on ``lee_background.cor`` (300 news articles, 58,000 words; it ships
with gensim, nothing is downloaded) with :class:`~embedding_projector.gensim.Any2VecProjector`
attached, then prints the ``tensorboard`` command and what to look at. Needs only
``pip install "embedding-projector[gensim]"`` (no torch, no Lightning).

Example:
    >>> import io, tempfile
    >>> from embedding_projector.demo import run_demo
    >>> out = io.StringIO()
    >>> run_demo(tempfile.mkdtemp(), epochs=1, stream=out)
    0
    >>> "tensorboard --logdir" in out.getvalue()
    True
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["DEMO_PROBE_WORDS", "run_demo"]

#: Frequent words of the Lee corpus whose neighbours are worth watching.
DEMO_PROBE_WORDS = ("australia", "government", "police", "arafat", "afghanistan")


def _corpus() -> list[list[str]]:
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [simple_preprocess(line) for line in handle]


def _run_directory(logdir: Path) -> Path:
    """A new run directory under ``logdir`` (earlier demo runs stay, as separate runs)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = logdir / f"word2vec-{stamp}"
    number = 2
    while candidate.exists():
        candidate = logdir / f"word2vec-{stamp}-{number}"
        number += 1
    return candidate


def run_demo(
    logdir: str | os.PathLike[str] = "runs/demo",
    epochs: int = 10,
    *,
    limit: int = 1000,
    vector_size: int = 50,
    probe_words: Sequence[str] = DEMO_PROBE_WORDS,
    seed: int = 42,
    stream: TextIO | None = None,
) -> int:
    """Train Word2Vec on a corpus shipped with gensim, snapshotting every epoch.

    Each call writes a new run directory under ``logdir`` (``word2vec-<date>-<time>``), so
    ``tensorboard --logdir <logdir>`` shows every demo run side by side.

    Args:
        logdir: TensorBoard log directory (created if missing).
        epochs: training epochs; one projector snapshot each, plus step 0 (random start).
        limit: how many of the most frequent words to snapshot.
        vector_size: dimensions of the word vectors.
        probe_words: words whose nearest neighbours are tabulated each epoch (TEXT tab).
        seed: random seed (training runs on one worker thread, so it is reproducible).
        stream: where to print the instructions (default: standard output).

    Returns:
        0 (the process exit code for the CLI).

    Raises:
        ValueError: ``epochs`` or ``limit`` is not positive.
        ImportError: gensim is not installed (the message names the extra to install).

    Example:
        >>> run_demo("runs/demo", epochs=10)  # doctest: +SKIP
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer; got {epochs!r}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 2:
        raise ValueError(f"limit must be an integer >= 2; got {limit!r}.")
    out = stream if stream is not None else sys.stdout
    try:
        from gensim.models import Word2Vec
    except ImportError as error:
        raise ImportError(
            "the demo needs gensim; install it with pip install 'embedding-projector[gensim]'."
        ) from error

    from .gensim import Any2VecProjector

    root = Path(os.fspath(logdir)).expanduser()
    run_dir = _run_directory(root)
    sentences = _corpus()
    words = sum(len(sentence) for sentence in sentences)
    print(
        f"Training Word2Vec on gensim's lee_background.cor ({len(sentences)} articles, "
        f"{words:,} words) for {epochs} epoch{'s' if epochs != 1 else ''} ...",
        file=out,
        flush=True,
    )
    callback = Any2VecProjector(run_dir, limit=limit, probe_rows=list(probe_words))
    started = time.perf_counter()
    model = Word2Vec(vector_size=vector_size, window=5, min_count=3, sg=1, workers=1, seed=seed)
    model.build_vocab(sentences)
    _train(model, sentences, epochs, callback)
    callback.close()
    elapsed = time.perf_counter() - started
    message = _instructions(model, callback.steps_written(), run_dir, root, limit, probe_words)
    print(f"Done in {elapsed:.1f} s: {message}", file=out, flush=True)
    return 0


def _train(model: Any, sentences: list[list[str]], epochs: int, callback: Any) -> None:
    """One ``train()`` call per epoch, the learning rate decaying across them as in one call.

    gensim's running loss is a float32 summed over a ``train()`` call, imprecise past 2**22
    (reached here after a few epochs); each call restarts it, so every epoch's loss is exact.
    """
    alphas = np.linspace(model.alpha, model.min_alpha, epochs + 1)
    for epoch in range(epochs):
        model.train(
            sentences,
            total_examples=model.corpus_count,
            epochs=1,
            start_alpha=float(alphas[epoch]),
            end_alpha=float(alphas[epoch + 1]),
            compute_loss=True,
            callbacks=[callback],
        )


def _instructions(
    model: Any,
    steps: list[int],
    run_dir: Path,
    root: Path,
    limit: int,
    probe_words: Sequence[str],
) -> str:
    """What was written and where to look in TensorBoard."""
    shown = min(limit, len(model.wv))
    known = [word for word in probe_words if word in model.wv.key_to_index]
    command = f"tensorboard --logdir {shlex.quote(str(root))}"
    lines = [
        f"{len(steps)} snapshots (steps {steps[0]}-{steps[-1]}) of the "
        f"{shown:,} most frequent words in {run_dir}",
        "",
    ]
    if known:
        neighbours = ", ".join(word for word, _ in model.wv.most_similar(known[0], topn=5))
        lines += [f"Nearest neighbours of {known[0]!r} after training: {neighbours}", ""]
    lines += [
        "See it evolve:",
        f"    {command}",
        "then open http://localhost:6006 and look at:",
        f"  PROJECTOR  run {run_dir.name}: pick tensor words:{steps[0]:09d} (the random start),",
        f"             then words:{steps[-1]:09d}; search for "
        + ", ".join(repr(word) for word in known[:3])
        + " and use 'isolate' to see their neighbourhoods form.",
        "             BOOKMARKS: click a step's 'aligned PCA' state - every step in one frame.",
        "  SCALARS    train/loss falls each epoch; words/drift -> 0 and",
        "             words/neighbor_overlap_at_10 -> 1 when the embedding has stopped moving.",
        "  TEXT       words/neighbors: the probe words' nearest neighbours at every epoch.",
        "  IMAGES     words/map: each epoch aligned onto the last, same axes - move the step",
        "             slider to watch the words settle.",
    ]
    return "\n".join(lines)
