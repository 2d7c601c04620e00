"""The Hugging Face Trainer callback: a real Trainer on a tiny BERT, read back by TensorBoard."""

from __future__ import annotations

import json
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("tokenizers")
pytest.importorskip("gensim")

import torch
from gensim.test.utils import datapath
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from embedding_projector import AlignedLayout
from embedding_projector.sink import InsightOptions
from embedding_projector.transformers import EmbeddingProjectorCallback, trainer_logdir
from tb_server import TensorBoard, parse_metadata

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LINES = 120  # lines of lee_background.cor: 8 steps per epoch at batch 16
NO_MAPS = InsightOptions(maps=False, scalars=False)


@pytest.fixture(autouse=True)
def _no_logging_dir_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    yield


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    with open(datapath("lee_background.cor"), encoding="utf-8") as corpus:
        lines = [line.strip() for line in corpus][:LINES]
    model = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    model.train_from_iterator(lines, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=model,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.lines = lines  # type: ignore[attr-defined]
    return fast


class Capture(TrainerCallback):
    """The input (and output) embedding at each train begin / epoch end, by global step."""

    def __init__(self) -> None:
        self.inputs: dict[int, np.ndarray] = {}
        self.outputs: dict[int, np.ndarray] = {}

    def _keep(self, state: Any, model: Any) -> None:
        self.inputs[state.global_step] = model.get_input_embeddings().weight.detach().numpy().copy()
        self.outputs[state.global_step] = (
            model.get_output_embeddings().weight.detach().numpy().copy()
        )

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._keep(state, kwargs["model"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._keep(state, kwargs["model"])


def train(
    tokenizer: PreTrainedTokenizerFast,
    output_dir: Path,
    callback: EmbeddingProjectorCallback,
    *,
    epochs: int = 2,
    extra_rows: int = 0,
    tie: bool = True,
    poison_row: int | None = None,
) -> tuple[Trainer, Capture]:
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=len(tokenizer) + extra_rows,
        tie_word_embeddings=tie,
    )
    encoded = tokenizer(tokenizer.lines, truncation=True, max_length=32)  # type: ignore[attr-defined]
    dataset = [{"input_ids": ids} for ids in encoded["input_ids"]]
    args = TrainingArguments(
        output_dir=str(output_dir),
        report_to=["tensorboard"],
        use_cpu=True,
        save_strategy="no",
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    capture = Capture()
    model = BertForMaskedLM(config)
    if poison_row is not None:
        with torch.no_grad():
            model.get_input_embeddings().weight[poison_row] = float("nan")
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
        processing_class=tokenizer,
        callbacks=[callback, capture],
    )
    trainer.train()
    return trainer, capture


def steps_of(server: TensorBoard, run: str) -> dict[str, dict[int, str]]:
    """tag -> step -> tensor name, as the projector lists them."""
    found: dict[str, dict[int, str]] = {}
    for name in server.tensor_names(run):
        tag, _, rest = name.partition(":")
        found.setdefault(tag, {})[int(rest.split()[0])] = name
    return found


def scalar_tags(server: TensorBoard, run: str) -> set[str]:
    return set(json.loads(server.get("/data/plugin/scalars/tags")).get(run, {}))


def only_run_dir(output_dir: Path) -> Path:
    runs = [path for path in (output_dir / "runs").iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_epoch_snapshots_share_the_trainers_run_and_match_the_model(
    tokenizer: PreTrainedTokenizerFast,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
) -> None:
    output_dir, name = shared_run()
    callback = EmbeddingProjectorCallback(insight=InsightOptions(map_budget=None))
    trainer, capture = train(tokenizer, output_dir, callback, extra_rows=3)

    run_dir = only_run_dir(output_dir)  # transformers' TensorBoardCallback made it
    assert callback.resolved_logdir == run_dir
    run = f"{name}/runs/{run_dir.name}"
    shared_tensorboard.wait_for_run(run)
    per_epoch = trainer.state.global_step // 2
    expected = [0, per_epoch, 2 * per_epoch]
    tag = "bert.embeddings.word_embeddings"
    tables = shared_tensorboard.wait_for(
        lambda: (found := steps_of(shared_tensorboard, run)) and len(found[tag]) == 3 and found
    )
    assert list(tables) == [tag]  # the tied decoder is not asked for and not written
    assert sorted(tables[tag]) == expected
    for step in expected:
        served = shared_tensorboard.tensor(run, tables[tag][step])
        np.testing.assert_array_equal(served, capture.inputs[step])
    assert not np.array_equal(capture.inputs[0], capture.inputs[expected[-1]])

    header, rows = parse_metadata(shared_tensorboard.metadata(run, tables[tag][expected[-1]]))
    assert header == ["token", "special"]
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    assert [row[0] for row in rows[: len(tokenizer)]] == vocabulary
    special = {tokenizer.convert_ids_to_tokens(i) for i in tokenizer.all_special_ids}
    assert {row[0] for row in rows if row[1] == "yes"} == special == set(SPECIAL)
    assert [row[0] for row in rows[len(tokenizer) :]] == [
        f"<row {len(tokenizer) + i}: beyond the vocabulary>" for i in range(3)
    ]
    # One run: the projector and transformers' own scalars, plus the sink's map scalars.
    shared_tensorboard.wait_for(
        lambda: {"train/loss", f"{tag}/drift"} <= scalar_tags(shared_tensorboard, run)
    )


@pytest.mark.slow
def test_every_n_steps_and_a_final_snapshot(
    tokenizer: PreTrainedTokenizerFast,
    start_tensorboard: Callable[..., TensorBoard],
    tmp_path: Path,
) -> None:
    callback = EmbeddingProjectorCallback(every_n_steps=3, labels=tokenizer, insight=NO_MAPS)
    trainer, capture = train(tokenizer, tmp_path, callback, epochs=1)
    last = trainer.state.global_step
    assert last % 3 != 0  # so the end of training adds a snapshot
    server = start_tensorboard(tmp_path / "runs")
    run = only_run_dir(tmp_path).name
    server.wait_for_run(run)
    steps = steps_of(server, run)["bert.embeddings.word_embeddings"]
    assert sorted(steps) == [0, *range(3, last, 3), last]
    np.testing.assert_array_equal(server.tensor(run, steps[last]), capture.inputs[last])


@pytest.mark.slow
def test_untied_output_embeddings_and_an_explicit_logdir(
    tokenizer: PreTrainedTokenizerFast,
    start_tensorboard: Callable[..., TensorBoard],
    tmp_path: Path,
) -> None:
    logdir = tmp_path / "mine"
    callback = EmbeddingProjectorCallback(
        output_embeddings=True, snapshot_at_start=False, logdir=logdir, insight=NO_MAPS
    )
    trainer, capture = train(tokenizer, tmp_path / "out", callback, epochs=1, tie=False)
    last = trainer.state.global_step
    server = start_tensorboard(logdir)
    server.wait_for_run(".")
    tables = steps_of(server, ".")
    assert sorted(tables) == ["bert.embeddings.word_embeddings", "cls.predictions.decoder"]
    assert all(sorted(steps) == [last] for steps in tables.values())
    decoder = server.tensor(".", tables["cls.predictions.decoder"][last])
    np.testing.assert_array_equal(decoder, capture.outputs[last])
    assert not np.array_equal(decoder, capture.inputs[last])
    header, rows = parse_metadata(server.metadata(".", tables["cls.predictions.decoder"][last]))
    assert header == ["token", "special"] and rows[5][0] == tokenizer.convert_ids_to_tokens(5)
    # transformers' scalars stay in their own run; nothing of ours went there
    assert not list((only_run_dir(tmp_path / "out")).glob("projector_config.pbtxt"))


@pytest.mark.slow
def test_tied_output_embeddings_are_written_once_with_a_warning(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    callback = EmbeddingProjectorCallback(
        output_embeddings=True, modules=["*.position_embeddings"], insight=NO_MAPS
    )
    with pytest.warns(UserWarning, match="tied to the input embeddings"):
        train(tokenizer, tmp_path, callback, epochs=1)
    config = (only_run_dir(tmp_path) / "projector_config.pbtxt").read_text()
    assert "cls.predictions.decoder" not in config
    assert config.count('tensor_name: "bert.embeddings.word_embeddings:') == 2
    assert config.count('tensor_name: "bert.embeddings.position_embeddings:') == 2


@pytest.mark.slow
def test_a_snapshot_that_cannot_be_written_warns_once_and_training_goes_on(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    callback = EmbeddingProjectorCallback(every_n_steps=2, insight=NO_MAPS)
    with pytest.warns(RuntimeWarning) as record:
        trainer, _ = train(tokenizer, tmp_path, callback, epochs=1, poison_row=7)
    assert trainer.state.global_step == -(-LINES // 16)  # every step ran
    skipped = [str(w.message) for w in record if "skipped" in str(w.message)]
    # NaN spreads through training: every snapshot is refused, the problem is told once
    assert len(skipped) == 1, skipped
    assert "'bert.embeddings.word_embeddings' at step 0" in skipped[0]
    assert "NaN" in skipped[0]
    assert not list(tmp_path.rglob("tensors*.bin"))


@pytest.mark.slow
def test_too_few_labels_fail_before_anything_is_written(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    callback = EmbeddingProjectorCallback(labels=["a", "b"], insight=NO_MAPS)
    with pytest.raises(ValueError, match=r"labels has 2 entries but .* has \d+ rows"):
        train(tokenizer, tmp_path, callback, epochs=1)
    assert not list(tmp_path.rglob("projector_config.pbtxt"))


@pytest.mark.slow
def test_probe_tokens_and_ids_give_a_trajectory(
    tokenizer: PreTrainedTokenizerFast,
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
) -> None:
    output_dir, name = shared_run()
    insight = InsightOptions(maps=False, scalars=False, map_budget=None, trajectory=True)
    police = tokenizer.convert_tokens_to_ids("police")
    callback = EmbeddingProjectorCallback(
        probe_rows=["government", police, "Australia"], insight=insight
    )
    trainer, capture = train(tokenizer, output_dir, callback, epochs=2)

    run = f"{name}/runs/{only_run_dir(output_dir).name}"
    shared_tensorboard.wait_for_run(run)
    per_epoch = trainer.state.global_step // 2
    steps = [0, per_epoch, 2 * per_epoch]
    tag = "bert.embeddings.word_embeddings"
    tables = shared_tensorboard.wait_for(
        lambda: (found := steps_of(shared_tensorboard, run)) and len(found[tag]) == 3 and found
    )
    (trajectory,) = tables[f"{tag} · trajectory"].values()  # the newest holds every step
    assert trajectory.startswith(f"{tag} · trajectory:{steps[-1]:09d}")
    probes = ["government", "police", "Australia"]
    header, rows = parse_metadata(shared_tensorboard.metadata(run, trajectory))
    assert header == ["label", "step"]
    assert rows == [[token, str(step)] for step in steps for token in probes]
    states = shared_tensorboard.bookmarks(run, trajectory)
    assert [state["label"] for state in states] == [
        f"steps 0–{steps[-1]} · aligned PCA",
        f"steps 0–{steps[-1]} · aligned PCA 3-D",
        *(f"step {step} · aligned PCA" for step in steps),
    ]
    assert [state["filteredPoints"] for state in states[2:]] == [
        [3 * i, 3 * i + 1, 3 * i + 2] for i in range(len(steps))
    ]
    # Its vectors: the probe tokens' rows of each step's embedding, in the run's aligned frame.
    ids = tokenizer.convert_tokens_to_ids(probes)
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    vectors = shared_tensorboard.tensor(run, trajectory)
    frame = AlignedLayout()
    for index, step in enumerate(steps):
        frame.update(vocabulary, capture.inputs[step], step)
        assert frame.aligned_matrix is not None
        expected = frame.aligned_matrix[ids]
        np.testing.assert_allclose(vectors[3 * index : 3 * index + 3], expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("probe_rows", "message"),
    [
        (["polise"], r"'polise' is not a label of its \d+ written rows .*Close labels: 'police'"),
        ([10**6], r"row 1000000 is out of range; each snapshot writes rows 0 to \d+"),
    ],
)
def test_probe_rows_that_name_no_token_fail_before_anything_is_written(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path, probe_rows: list[Any], message: str
) -> None:
    callback = EmbeddingProjectorCallback(probe_rows=probe_rows, insight=NO_MAPS)
    with pytest.raises(ValueError, match=message):
        train(tokenizer, tmp_path, callback, epochs=1)
    assert not list(tmp_path.rglob("projector_config.pbtxt"))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"probe_rows": "police"}, TypeError, "probe_rows must be a list"),
        ({"probe_rows": [None]}, TypeError, r"entries must be row indices \(int\) or labels"),
        (
            {"insight": InsightOptions(trajectory=True)},
            ValueError,
            r"trajectory=True\) follows the probe rows, but probe_rows is empty",
        ),
        ({"every_n_steps": 0}, ValueError, "every_n_steps must be >= 1"),
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs must be >= 1"),
        ({"limit": 0}, ValueError, "limit must be >= 2"),
        ({"modules": [""]}, ValueError, "modules entries must be non-empty strings"),
        ({"labels": 42}, TypeError, "labels must be a tokenizer, a list of labels or None"),
        ({"insight": True}, TypeError, r"insight=\.\.\.\) takes InsightOptions\(\.\.\.\) or None"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        EmbeddingProjectorCallback(**kwargs)


def test_logdir_order_explicit_env_logging_dir_newest_run_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = types.SimpleNamespace(output_dir=str(tmp_path))
    old, new = tmp_path / "runs" / "old", tmp_path / "runs" / "new"
    for run in (old, new):
        run.mkdir(parents=True)
        (run / "events.out.tfevents.1.host").write_bytes(b"")
    os.utime(old / "events.out.tfevents.1.host", (1, 1))  # an earlier run's
    assert trainer_logdir(args, since=100) == new
    assert trainer_logdir(args, tmp_path / "x", since=100) == tmp_path / "x"
    assert trainer_logdir(types.SimpleNamespace(output_dir=str(tmp_path), logging_dir="4x")) == (
        Path("4x")
    )
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "env"))
    assert trainer_logdir(args, since=100) == tmp_path / "env"
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR")
    (new / "events.out.tfevents.1.host").unlink()
    default = trainer_logdir(args, since=100)
    assert default.parent == tmp_path / "runs" and default not in (old, new)


def test_a_remote_logdir_warns_and_writes_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", "s3://bucket/run")
    args = types.SimpleNamespace(output_dir=str(tmp_path))
    with pytest.warns(UserWarning, match=r"remote log dir 's3://bucket/run'.*projector"):
        assert trainer_logdir(args) == tmp_path / "projector"
