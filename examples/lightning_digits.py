"""See a classifier's feature space form: scikit-learn's digits in TensorBoard's projector.

A small PyTorch Lightning MLP learns to classify the 8x8 digit images bundled with
scikit-learn. After every validation epoch, ``EmbeddingProjector`` passes the validation images
through the network, takes the hidden layer's output as each image's embedding, and writes it
with the digit as label and the image itself as the sprite: switch the projector to t-SNE or
UMAP and watch ten clusters appear over the epochs.

Run, then open the Projector tab (colour and label by "digit")::

    python examples/lightning_digits.py --logdir lightning_logs --epochs 15
    tensorboard --logdir lightning_logs

Needs ``pip install 'embedding-projector[lightning]' scikit-learn``.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from embedding_projector.lightning import EmbeddingProjector, FeatureInputs


def digits(val_size: int, seed: int) -> tuple[TensorDataset, TensorDataset]:
    """(train, validation) with pixel values scaled to [0, 1] and shape (N, 1, 8, 8)."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    return TensorDataset(images[train], labels[train]), TensorDataset(images[val], labels[val])


class DigitClassifier(pl.LightningModule):
    """8x8 image -> 32-d feature (``hidden``) -> 10 classes."""

    def __init__(self, feature_dim: int = 32, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, feature_dim), nn.ReLU()
        )
        self.classifier = nn.Linear(feature_dim, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.hidden(images))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = nn.functional.cross_entropy(self(images), labels)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.log("val_loss", nn.functional.cross_entropy(logits, labels))
        self.log("val_accuracy", (logits.argmax(dim=1) == labels).float().mean())

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="lightning_logs", help="TensorBoard log directory")
    parser.add_argument("--name", default="digits", help="experiment name inside --logdir")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--val-size", type=int, default=360)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    pl.seed_everything(args.seed, verbose=False)
    train, val = digits(args.val_size, args.seed)
    val_images, val_labels = val.tensors
    probe = FeatureInputs(
        val_images,
        labels={
            "digit": [str(int(label)) for label in val_labels],
            "ink": [f"{float(image.mean()):.2f}" for image in val_images],
        },
        images=val_images,
        layer="hidden",
        tag="validation features",
    )
    projector = EmbeddingProjector(modules=None, features=probe, on="validation_epoch_end")
    logger = TensorBoardLogger(save_dir=args.logdir, name=args.name)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=args.epochs,
        callbacks=[projector],
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    model = DigitClassifier()
    trainer.fit(
        model,
        DataLoader(train, batch_size=args.batch_size, shuffle=True),
        DataLoader(val, batch_size=args.batch_size),
    )
    accuracy = float(trainer.callback_metrics["val_accuracy"])
    print(f"validation accuracy {accuracy:.3f} after {args.epochs} epochs.")
    print(f"Snapshots in {Path(logger.log_dir)}; run: tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*does not have many workers")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    raise SystemExit(main())
