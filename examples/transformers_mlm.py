"""Watch a tiny BERT learn its token embeddings with the Hugging Face Trainer, in TensorBoard.

A word-level tokenizer is trained on gensim's Lee corpus, then a one-layer ``BertForMaskedLM``
(hidden size 32) learns masked-word prediction on it. ``EmbeddingProjectorCallback`` snapshots
the input embeddings before training and after every epoch, with the tokens as labels (special
tokens marked), into the run where transformers' TensorBoard callback writes the loss curve.
Nothing is downloaded.

Run, then open the Projector tab::

    python examples/transformers_mlm.py --output-dir mlm --epochs 10
    tensorboard --logdir mlm/runs

It also runs data-parallel on CPU (``torchrun --nproc_per_node 2 examples/transformers_mlm.py``):
only the world process zero writes.

Needs ``pip install 'embedding-projector[transformers,gensim]'`` (the corpus ships with gensim).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from gensim.test.utils import datapath
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
)

from embedding_projector.transformers import EmbeddingProjectorCallback

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_lines(limit: int | None = None) -> list[str]:
    """The Lee background corpus (300 news articles), one article per line."""
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()][:limit]


def build_tokenizer(lines: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on ``lines`` (most frequent words first)."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="mlm", help="Trainer output_dir (runs/ inside)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lines", type=int, default=None, help="corpus lines (all: 300)")
    parser.add_argument("--vocab-size", type=int, default=3000)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.manual_seed(args.seed)
    lines = read_lines(args.lines)
    tokenizer = build_tokenizer(lines, args.vocab_size)
    encoded = tokenizer(lines, truncation=True, max_length=args.max_length)
    dataset = [{"input_ids": ids} for ids in encoded["input_ids"]]
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=len(tokenizer),
    )
    projector = EmbeddingProjectorCallback(labels=tokenizer)
    trainer = Trainer(
        model=BertForMaskedLM(config),
        args=TrainingArguments(
            output_dir=args.output_dir,
            report_to=["tensorboard"],
            use_cpu=True,
            save_strategy="no",
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            logging_steps=5,
            disable_tqdm=True,
            seed=args.seed,
        ),
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
        processing_class=tokenizer,
        callbacks=[projector],
    )
    trainer.train()
    if trainer.is_world_process_zero():  # under torchrun, the process that wrote
        runs = Path(args.output_dir) / "runs"
        print(f"{len(tokenizer)} tokens, {len(dataset)} lines, {trainer.state.global_step} steps.")
        print(f"Snapshots in {projector.resolved_logdir}; run: tensorboard --logdir {runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
