"""Watch word embeddings learn: a small CBOW model on gensim's Lee corpus, in TensorBoard.

A PyTorch Lightning model predicts each word from the two words on either side of it. After
every epoch, ``EmbeddingProjector`` snapshots its token embedding with the vocabulary (and
the word counts) as labels, into the TensorBoardLogger's run next to the loss curve.

Run, then open the Projector tab::

    python examples/lightning_text.py --logdir lightning_logs --epochs 10
    tensorboard --logdir lightning_logs

Needs ``pip install 'embedding-projector[lightning,gensim]'`` (the corpus ships with gensim).
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from gensim.test.utils import datapath
from gensim.utils import simple_preprocess
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from embedding_projector.lightning import EmbeddingProjector


def read_corpus(path: str | None = None) -> list[list[str]]:
    """The Lee background corpus (300 news articles), one token list per line."""
    with open(path or datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [simple_preprocess(line) for line in handle]


def build_vocabulary(
    sentences: Sequence[Sequence[str]], max_vocab: int, min_count: int
) -> tuple[list[str], list[int]]:
    """Most frequent words first (the projector shows the first rows of a table)."""
    counts = Counter(word for sentence in sentences for word in sentence)
    common = [(w, c) for w, c in counts.most_common(max_vocab) if c >= min_count]
    return [w for w, _ in common], [c for _, c in common]


def cbow_examples(
    sentences: Sequence[Sequence[str]], index: dict[str, int], window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(context ids, centre id) for every centre word with a full window of known words."""
    contexts, centres = [], []
    for sentence in sentences:
        ids = [index[word] for word in sentence if word in index]
        for position in range(window, len(ids) - window):
            contexts.append(
                ids[position - window : position] + ids[position + 1 : position + 1 + window]
            )
            centres.append(ids[position])
    return torch.tensor(contexts), torch.tensor(centres)


class CBOW(pl.LightningModule):
    """Mean of the context words' embeddings -> a softmax over the vocabulary."""

    def __init__(self, vocab_size: int, dim: int, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.embeddings = nn.Embedding(vocab_size, dim)
        self.output = nn.Linear(dim, vocab_size)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.output(self.embeddings(context).mean(dim=1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        context, centre = batch
        loss = nn.functional.cross_entropy(self(context), centre)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="lightning_logs", help="TensorBoard log directory")
    parser.add_argument("--name", default="lee-cbow", help="experiment name inside --logdir")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--max-vocab", type=int, default=2000)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit-batches", type=int, default=None, help="batches per epoch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    pl.seed_everything(args.seed, verbose=False)
    sentences = read_corpus()
    words, counts = build_vocabulary(sentences, args.max_vocab, args.min_count)
    contexts, centres = cbow_examples(sentences, {w: i for i, w in enumerate(words)}, args.window)
    loader = DataLoader(TensorDataset(contexts, centres), batch_size=args.batch_size, shuffle=True)

    projector = EmbeddingProjector(
        modules=["embeddings"],
        labels={"embeddings": {"word": words, "count": counts}},
    )
    logger = TensorBoardLogger(save_dir=args.logdir, name=args.name)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=args.epochs,
        callbacks=[projector],
        logger=logger,
        limit_train_batches=args.limit_batches,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(CBOW(len(words), args.dim), loader)
    print(f"{len(words)} words, {len(centres)} training examples.")
    print(f"Snapshots in {Path(logger.log_dir)}; run: tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*does not have many workers")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    raise SystemExit(main())
