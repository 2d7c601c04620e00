"""EmbeddingProjector with real Lightning Trainers, checked through a real TensorBoard."""

from __future__ import annotations

import io
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("pytorch_lightning")

from pytorch_lightning.callbacks import ModelCheckpoint  # noqa: E402
from pytorch_lightning.loggers import TensorBoardLogger  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from embedding_projector import AlignedLayout, ProjectorWriter  # noqa: E402
from embedding_projector.lightning import EmbeddingProjector, FeatureInputs  # noqa: E402
from embedding_projector.sink import InsightOptions, SinkOptions  # noqa: E402
from tb_server import TensorBoard, parse_metadata, state_coordinates  # noqa: E402

# Lightning's own noise on tiny CPU runs; nothing of ours is filtered.
LIGHTNING_NOISE = [
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec.*:FutureWarning",
    "ignore:You defined a `validation_step` but have no `val_dataloader`:UserWarning",
    "ignore:.*Checkpoint directory .* exists and is not empty:UserWarning",
]
pytestmark = [pytest.mark.filterwarnings(f) for f in LIGHTNING_NOISE]

VOCAB = 30
DIM = 4
ROWS = 64
BATCH = 16  # 4 optimizer steps per epoch


class TinyLM(pl.LightningModule):  # type: ignore[misc]
    """Predicts the next token id; tokens/positions embeddings, optional tied decoder."""

    def __init__(self, *, tie: bool = False) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM)
        self.positions = nn.Embedding(8, DIM)
        self.hidden = nn.Linear(DIM, DIM)
        self.decoder = nn.Linear(DIM, VOCAB)
        if tie:
            self.decoder.weight = self.tokens.weight
        self.modes_seen: list[bool] = []

    def forward(self, x: Any) -> Any:
        h = self.tokens(x) + self.positions(x % 8)
        return self.decoder(torch.tanh(self.hidden(h)))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.modes_seen.append(self.training and self.hidden.training)
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.5)


class TinyClassifier(pl.LightningModule):  # type: ignore[misc]
    """4x4 'images' -> 3 classes; the hidden layer's output is the feature space."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(16, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: Any) -> Any:
        return self.head(torch.relu(self.hidden(self.flatten(x))))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def token_data() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (ROWS,), generator=generator)
    return DataLoader(TensorDataset(x, (x + 1) % VOCAB), batch_size=BATCH)


def image_data() -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(30) % 3
    images = torch.rand(30, 1, 4, 4, generator=generator) * 0.3
    for cls in range(3):
        images[labels == cls, 0, cls, :] += 0.7  # each class lights up one row
    return images, labels


def make_trainer(
    callbacks: list[Any], logger: Any = False, max_epochs: int = 2, **kwargs: Any
) -> Any:
    kwargs.setdefault("default_root_dir", None)
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=kwargs.pop("enable_checkpointing", False),
        log_every_n_steps=1,
        num_sanity_val_steps=kwargs.pop("num_sanity_val_steps", 0),
        **kwargs,
    )


def tb_logger(tb: TensorBoard, shared_run: Callable[[], tuple[Path, str]]) -> tuple[Any, str]:
    _, name = shared_run()
    logger = TensorBoardLogger(save_dir=str(tb.logdir), name=name, version=0)
    return logger, f"{name}/version_0"


def wait_names(tb: TensorBoard, run: str, expected: list[str]) -> list[str]:
    tb.wait_for_run(run)
    tb.wait_for(lambda: set(expected) <= set(tb.tensor_names(run)))
    return tb.tensor_names(run)


# --------------------------------------------------------------------------- what and where


def test_auto_discovery_writes_every_table_each_epoch(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logger, run = tb_logger(shared_tensorboard, shared_run)
    model = TinyLM()
    make_trainer([EmbeddingProjector()], logger).fit(model, token_data())

    expected = [
        f"{tag}:{step:09d} {when}"
        for when, step in (("start", 0), ("epoch 0", 4), ("epoch 1", 8))
        for tag in ("tokens", "positions")
    ]
    names = wait_names(shared_tensorboard, run, expected)
    assert sorted(names) == sorted(expected)  # no Linear weights, nothing twice
    served = shared_tensorboard.tensor(run, "tokens:000000008 epoch 1")
    np.testing.assert_allclose(served, model.tokens.weight.detach().numpy(), rtol=1e-6)
    first = shared_tensorboard.tensor(run, "tokens:000000004 epoch 0")
    assert not np.allclose(first, served)  # a copy from epoch 0, not a view of live weights
    _, rows = parse_metadata(shared_tensorboard.metadata(run, "positions:000000008 epoch 1"))
    assert [row[0] for row in rows] == [str(i) for i in range(8)]  # row indices by default
    assert all(model.modes_seen)


def test_named_modules_globs_and_parameter_paths(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logger, run = tb_logger(shared_tensorboard, shared_run)
    model = TinyLM()
    callback = EmbeddingProjector(modules=["pos*", "decoder.weight"], snapshot_at_start=False)
    make_trainer([callback], logger, max_epochs=1).fit(model, token_data())

    names = wait_names(
        shared_tensorboard,
        run,
        ["positions:000000004 epoch 0", "decoder.weight:000000004 epoch 0"],
    )
    assert len(names) == 2
    served = shared_tensorboard.tensor(run, "decoder.weight:000000004 epoch 0")
    assert served.shape == (VOCAB, DIM)
    np.testing.assert_allclose(served, model.decoder.weight.detach().numpy(), rtol=1e-6)


def test_tied_output_embedding_is_one_table(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logger, run = tb_logger(shared_tensorboard, shared_run)
    model = TinyLM(tie=True)
    callback = EmbeddingProjector(
        modules=["tokens", "decoder.weight", "positions"], snapshot_at_start=False
    )
    make_trainer([callback], logger, max_epochs=1).fit(model, token_data())

    names = wait_names(
        shared_tensorboard, run, ["tokens:000000004 epoch 0", "positions:000000004 epoch 0"]
    )
    assert sorted(names) == ["positions:000000004 epoch 0", "tokens:000000004 epoch 0"]


def test_decoder_weight_alone_shows_the_tied_table(tmp_path: Path) -> None:
    model = TinyLM(tie=True)
    callback = EmbeddingProjector(
        modules="decoder.weight", logdir=tmp_path, snapshot_at_start=False
    )
    make_trainer([callback], max_epochs=1).fit(model, token_data())
    (entry,) = ProjectorWriter(tmp_path).entries()
    assert entry.tensor_name == "decoder.weight:000000004 epoch 0"
    written = np.fromfile(tmp_path / entry.tensor_path, dtype="<f4").reshape(VOCAB, DIM)
    np.testing.assert_allclose(written, model.tokens.weight.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        (["embeddings"], r"'embeddings' matches no module.*Candidates: 'tokens', 'positions'"),
        (["hidden.bias"], r"shape \(4,\); only 2-D tables"),
        (["*.nothing*"], r"matches no module.*'decoder.weight'"),
    ],
)
def test_unknown_or_bad_names_fail_at_setup_listing_candidates(
    tmp_path: Path, modules: list[str], message: str
) -> None:
    trainer = make_trainer([EmbeddingProjector(modules=modules, logdir=tmp_path)])
    with pytest.raises(ValueError, match=message):
        trainer.fit(TinyLM(), token_data())


def test_tables_built_in_configure_model_are_found_at_fit_start(tmp_path: Path) -> None:
    class Lazy(TinyLM):
        def __init__(self) -> None:
            pl.LightningModule.__init__(self)
            self.modes_seen = []

        def configure_model(self) -> None:
            if not hasattr(self, "tokens"):
                self.tokens = nn.Embedding(VOCAB, DIM)
                self.positions = nn.Embedding(8, DIM)
                self.hidden = nn.Linear(DIM, DIM)
                self.decoder = nn.Linear(DIM, VOCAB)

    callback = EmbeddingProjector(modules=["tokens", "decoder.weight"], logdir=tmp_path)
    make_trainer([callback], max_epochs=1).fit(Lazy(), token_data())
    writer = ProjectorWriter(tmp_path)
    assert writer.steps("tokens") == writer.steps("decoder.weight") == [0, 4]


def test_auto_without_embeddings_fails_unless_features(tmp_path: Path) -> None:
    images, labels = image_data()
    with pytest.raises(ValueError, match=r"no nn.Embedding.*'hidden.weight'"):
        make_trainer([EmbeddingProjector(logdir=tmp_path)]).fit(
            TinyClassifier(), DataLoader(TensorDataset(images, labels), batch_size=10)
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs must be >= 1; got 0"),
        ({"every_n_epochs": 1.5}, TypeError, "every_n_epochs must be an int"),
        ({"on": "epoch_end"}, ValueError, "on must be one of 'train_epoch_end', 'validation"),
        ({"step": "time"}, ValueError, "step must be one of 'global_step', 'epoch'; got 'time'"),
        ({"limit": 1}, ValueError, "limit must be >= 2"),
        ({"labels": "abc"}, TypeError, "labels must be a list"),
        ({"modules": [""]}, ValueError, "non-empty strings"),
        ({"modules": 3}, TypeError, 'modules must be "auto"'),
        ({"modules": None}, ValueError, "Nothing to snapshot"),
        ({"features": (1, 2, 3, 4)}, ValueError, r"\(inputs, labels\)"),
        ({"features": "x"}, TypeError, "features must be a FeatureInputs"),
        ({"map_budget": 0}, TypeError, r"it goes in insight=InsightOptions\(map_budget=\.\.\.\)"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        EmbeddingProjector(**kwargs)


@pytest.mark.parametrize("budget", [0, True])
def test_map_budget_must_be_a_fraction(budget: Any) -> None:
    with pytest.raises(ValueError, match=r"map_budget must be a fraction in \(0, 1\]"):
        EmbeddingProjector(insight=InsightOptions(map_budget=budget))


def test_feature_probe_validation() -> None:
    with pytest.raises(ValueError, match="10 input rows but 9 labels"):
        FeatureInputs(torch.zeros(10, 2), labels=list(range(9)))
    with pytest.raises(ValueError, match="10 input rows but 3 images"):
        FeatureInputs(torch.zeros(10, 2), images=torch.zeros(3, 1, 2, 2))
    with pytest.raises(TypeError, match="must be a tensor"):
        FeatureInputs("text")
    assert FeatureInputs((torch.zeros(5, 2), torch.zeros(5)), layer="a").resolved_tag == (
        "features (a)"
    )


def test_default_directory_without_logger(tmp_path: Path) -> None:
    trainer = make_trainer([EmbeddingProjector()], max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(TinyLM(), token_data())
    assert ProjectorWriter(tmp_path / "embeddings").steps("tokens") == [0, 4]


def test_explicit_logdir_wins_over_logger(tmp_path: Path) -> None:
    logger = TensorBoardLogger(save_dir=str(tmp_path / "tb"), name="exp", version=0)
    callback = EmbeddingProjector(logdir=tmp_path / "projector")
    make_trainer([callback], logger, max_epochs=1).fit(TinyLM(), token_data())
    assert ProjectorWriter(tmp_path / "projector").steps("tokens") == [0, 4]
    assert ProjectorWriter(logger.log_dir).steps("tokens") == []


# --------------------------------------------------------------------------- labels


def test_labels_per_table_with_multi_column_metadata(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logger, run = tb_logger(shared_tensorboard, shared_run)
    words = [f"w{i}\tx" if i == 5 else f"w{i}" for i in range(VOCAB)]  # a tab must not split
    callback = EmbeddingProjector(
        labels={
            "tokens": {"word": words, "frequency": [str(100 - i) for i in range(VOCAB)]},
            "positions": lambda tag: [f"{tag} #{i}" for i in range(8)],
        },
        limit=20,
    )
    make_trainer([callback], logger, max_epochs=1).fit(TinyLM(), token_data())

    wait_names(shared_tensorboard, run, ["tokens:000000004 epoch 0", "positions:000000004 epoch 0"])
    header, rows = parse_metadata(shared_tensorboard.metadata(run, "tokens:000000004 epoch 0"))
    assert header == ["word", "frequency"]
    assert len(rows) == 20  # limit: the first rows only
    assert rows[0] == ["w0", "100"]
    assert rows[5] == ["w5\\tx", "95"]
    assert shared_tensorboard.tensor(run, "tokens:000000004 epoch 0").shape == (20, DIM)
    header, rows = parse_metadata(shared_tensorboard.metadata(run, "positions:000000004 epoch 0"))
    assert header is None
    assert [row[0] for row in rows] == [f"positions #{i}" for i in range(8)]


def test_failing_labels_callable_warns_and_writes_indices(tmp_path: Path) -> None:
    def broken(tag: str) -> list[str]:
        raise KeyError(tag)

    callback = EmbeddingProjector(
        modules=["positions"], labels=broken, logdir=tmp_path, snapshot_at_start=False
    )
    with pytest.warns(RuntimeWarning, match=r"labels callable failed for 'positions' \(KeyError"):
        make_trainer([callback], max_epochs=1).fit(TinyLM(), token_data())
    (entry,) = ProjectorWriter(tmp_path).entries()
    assert (tmp_path / entry.metadata_path).read_text().split() == [str(i) for i in range(8)]


def test_labels_that_change_between_snapshots_are_written_as_they_are_then(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    """Encoded labels are reused only while they stay equal; a vocabulary list edited in
    place between epochs must show up too."""
    vocabulary = [f"w{i}" for i in range(8)]

    class Rename(pl.Callback):  # type: ignore[misc]
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            vocabulary[3] = f"renamed-at-epoch-{trainer.current_epoch}"

    logger, run = tb_logger(shared_tensorboard, shared_run)
    callback = EmbeddingProjector(
        modules=["positions"], labels=vocabulary, insight=InsightOptions(maps=False, scalars=False)
    )
    make_trainer([Rename(), callback], logger, max_epochs=3).fit(TinyLM(), token_data())
    names = [f"positions:{step:09d} epoch {epoch}" for epoch, step in ((0, 4), (1, 8), (2, 12))]
    wait_names(shared_tensorboard, run, names)
    for epoch, name in enumerate(names):
        _, rows = parse_metadata(shared_tensorboard.metadata(run, name))
        assert rows[3] == [f"renamed-at-epoch-{epoch}"] and rows[4] == ["w4"]


def test_sprites_for_a_table(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logger, run = tb_logger(shared_tensorboard, shared_run)
    glyphs = (torch.arange(VOCAB * 9).reshape(VOCAB, 1, 3, 3) % 256).to(torch.uint8)
    callback = EmbeddingProjector(
        modules=["tokens"], sprites={"tokens": glyphs}, limit=25, snapshot_at_start=False
    )
    make_trainer([callback], logger, max_epochs=1).fit(TinyLM(), token_data())
    (name,) = wait_names(shared_tensorboard, run, ["tokens:000000004 epoch 0"])
    info = shared_tensorboard.embedding(run, name)
    assert [int(v) for v in info["sprite"]["singleImageDim"]] == [3, 3]
    from PIL import Image

    sheet = np.asarray(Image.open(io.BytesIO(shared_tensorboard.sprite(run, name))))
    assert sheet.shape[:2] == (15, 15)  # the first 25 rows: 5 x 5 cells of 3 px
    np.testing.assert_array_equal(sheet[3:6, :3], glyphs[5, 0].numpy())  # row 5 in cell 5


def test_glyph_sprites_drawn_from_the_labels(tmp_path: Path) -> None:
    from embedding_projector.glyphs import glyph_images

    kana = [chr(0x3042 + i) for i in range(VOCAB)]  # あ, ぃ, い, ...
    callback = EmbeddingProjector(
        modules=["tokens"],
        labels={"tokens": kana},
        sprites="glyphs",
        logdir=tmp_path,
        snapshot_at_start=False,
    )
    make_trainer([callback], max_epochs=1).fit(TinyLM(), token_data())
    (entry,) = ProjectorWriter(tmp_path).entries()
    from PIL import Image

    cell = entry.sprite.single_image_dim[0]
    sheet = np.asarray(Image.open(tmp_path / entry.sprite.image_path))
    expected = glyph_images(kana, size=cell)
    per_row = sheet.shape[1] // cell
    for index in (0, 7, VOCAB - 1):
        row, col = divmod(index, per_row)
        drawn = sheet[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell]
        np.testing.assert_array_equal(drawn, expected[index, 0])


def test_labels_of_the_wrong_length_fail_at_setup(tmp_path: Path) -> None:
    callback = EmbeddingProjector(labels={"tokens": ["a", "b"]}, logdir=tmp_path)
    with pytest.raises(
        ValueError, match=r"labels for 'tokens' have 2 entries but the table has 30"
    ):
        make_trainer([callback]).fit(TinyLM(), token_data())
    callback = EmbeddingProjector(labels={"token": ["a", "b"]}, logdir=tmp_path)
    with pytest.raises(ValueError, match=r"labels names 'token', but the tables are"):
        make_trainer([callback]).fit(TinyLM(), token_data())
    callback = EmbeddingProjector(sprites=torch.zeros(8, 1, 2, 2), logdir=tmp_path)
    with pytest.raises(ValueError, match=r"sprites for 'tokens' have 8 entries but.* 30 rows"):
        make_trainer([callback]).fit(TinyLM(), token_data())


# --------------------------------------------------------------------------- features


def test_features_through_a_layer_with_sprites(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    from PIL import Image

    logger, run = tb_logger(shared_tensorboard, shared_run)
    images, labels = image_data()
    probe = FeatureInputs(
        images,
        labels=[f"class {int(c)}" for c in labels],
        images=images,
        layer="hidden",
        batch_size=7,
    )
    model = TinyClassifier()
    callback = EmbeddingProjector(modules=None, features=probe, snapshot_at_start=False)
    make_trainer([callback], logger, max_epochs=2).fit(
        model, DataLoader(TensorDataset(images, labels), batch_size=10)
    )

    names = wait_names(
        shared_tensorboard,
        run,
        ["features (hidden):000000003 epoch 0", "features (hidden):000000006 epoch 1"],
    )
    assert len(names) == 2
    served = shared_tensorboard.tensor(run, "features (hidden):000000006 epoch 1")
    with torch.no_grad():
        expected = model.hidden(model.flatten(images)).numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    assert model.training  # train mode restored
    _, rows = parse_metadata(
        shared_tensorboard.metadata(run, "features (hidden):000000006 epoch 1")
    )
    assert [row[0] for row in rows] == [f"class {int(c)}" for c in labels]
    info = shared_tensorboard.embedding(run, "features (hidden):000000006 epoch 1")
    assert [int(v) for v in info["sprite"]["singleImageDim"]] == [4, 4]
    sprite = Image.open(io.BytesIO(shared_tensorboard.sprite(run, info["tensorName"])))
    assert sprite.size == (24, 20)  # 30 images -> 6 per row, 5 rows, cells of 4 px
    first_cell = np.asarray(sprite.convert("L"))[:4, :4]
    np.testing.assert_allclose(first_cell / 255.0, images[0, 0].numpy(), atol=1 / 255 + 1e-6)


def test_features_of_the_model_output_from_a_tuple(tmp_path: Path) -> None:
    images, labels = image_data()
    model = TinyClassifier()
    callback = EmbeddingProjector(
        modules=None,
        features=(images, labels.tolist()),
        logdir=tmp_path,
        snapshot_at_start=False,
    )
    make_trainer([callback], max_epochs=1).fit(
        model, DataLoader(TensorDataset(images, labels), batch_size=10)
    )
    (entry,) = ProjectorWriter(tmp_path).entries()
    assert entry.tensor_name == "features:000000003 epoch 0"
    assert list(entry.tensor_shape) == [30, 3]


def test_unknown_probe_layer_lists_modules(tmp_path: Path) -> None:
    images, labels = image_data()
    callback = EmbeddingProjector(
        modules=None, features=FeatureInputs(images, layer="hiden"), logdir=tmp_path
    )
    with pytest.raises(ValueError, match=r"'hiden' is not a module.*'hidden'"):
        make_trainer([callback]).fit(
            TinyClassifier(), DataLoader(TensorDataset(images, labels), batch_size=10)
        )


# --------------------------------------------------------------------------- when


def test_every_n_epochs_with_epoch_as_step(tmp_path: Path) -> None:
    callback = EmbeddingProjector(
        modules=["tokens"], every_n_epochs=2, step="epoch", logdir=tmp_path
    )
    make_trainer([callback], max_epochs=5).fit(TinyLM(), token_data())
    names = [entry.tensor_name for entry in ProjectorWriter(tmp_path).entries()]
    assert names == [
        "tokens:000000001 step 8",
        "tokens:000000003 step 16",
        "tokens:000000004 step 20",
    ]


def test_validation_epoch_end_skips_the_sanity_check(tmp_path: Path) -> None:
    callback = EmbeddingProjector(modules=["tokens"], on="validation_epoch_end", logdir=tmp_path)
    trainer = make_trainer([callback], max_epochs=2, num_sanity_val_steps=2)
    trainer.fit(TinyLM(), token_data(), token_data())
    # Step 0 is the start snapshot, taken once; the sanity check writes nothing.
    assert [e.tensor_name for e in ProjectorWriter(tmp_path).entries()] == [
        "tokens:000000000 start",
        "tokens:000000004 epoch 0",
        "tokens:000000008 epoch 1",
    ]


def test_validation_hook_without_validation_warns(tmp_path: Path) -> None:
    callback = EmbeddingProjector(on="validation_epoch_end", logdir=tmp_path)
    with pytest.warns(UserWarning, match="will never snapshot"):
        make_trainer([callback], max_epochs=1, limit_val_batches=0).fit(TinyLM(), token_data())


def test_fast_dev_run_writes_nothing(tmp_path: Path) -> None:
    callback = EmbeddingProjector(logdir=tmp_path / "out")
    make_trainer([callback], fast_dev_run=True).fit(TinyLM(), token_data())
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- safety


def test_queued_snapshots_keep_their_own_epoch_while_copy_buffers_are_reused(
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The training thread copies into reused buffers: a queued snapshot must not change."""
    import embedding_projector.sink as sink_module

    class SlowWriter(ProjectorWriter):
        def add_embedding(self, *args: Any, **kwargs: Any) -> Any:
            time.sleep(0.3)  # several epochs finish while one snapshot is written
            return super().add_embedding(*args, **kwargs)

    class Record(pl.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.weights: dict[int, np.ndarray] = {}

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.weights[trainer.global_step] = pl_module.tokens.weight.detach().numpy().copy()

    monkeypatch.setattr(sink_module, "ProjectorWriter", SlowWriter)
    logger, run = tb_logger(shared_tensorboard, shared_run)
    record = Record()
    callback = EmbeddingProjector(
        modules=["tokens"],
        insight=InsightOptions(maps=False, scalars=False),
        sink=SinkOptions(max_pending=2),
    )
    make_trainer([callback, record], logger, max_epochs=6).fit(TinyLM(), token_data())

    steps = sorted(record.weights)
    names = [f"tokens:{step:09d} epoch {epoch}" for epoch, step in enumerate(steps)]
    wait_names(shared_tensorboard, run, names)
    for name, step in zip(names, steps, strict=True):
        served = shared_tensorboard.tensor(run, name)
        np.testing.assert_allclose(served, record.weights[step], rtol=1e-6, err_msg=name)
    assert len({record.weights[step].tobytes() for step in steps}) == len(steps)


def map_steps(logdir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={IMAGES: 0})
    events.Reload()
    return [image.step for image in events.Images(f"{tag}/map")]


@pytest.mark.parametrize(("budget", "expected"), [(None, [0, 4, 8, 12]), (1e-6, [0])])
def test_maps_stay_within_their_share_of_training_time(
    tmp_path: Path, budget: float | None, expected: list[int]
) -> None:
    """Each map takes milliseconds; 1e-6 of the time since would need hours between maps."""
    callback = EmbeddingProjector(
        modules=["positions"], logdir=tmp_path, insight=InsightOptions(map_budget=budget)
    )
    make_trainer([callback], max_epochs=3).fit(TinyLM(), token_data())
    assert ProjectorWriter(tmp_path).steps("positions") == [0, 4, 8, 12]  # every snapshot
    assert map_steps(tmp_path, "positions") == expected


def test_nan_table_warns_and_skips_that_snapshot(tmp_path: Path) -> None:
    class Poison(pl.Callback):  # type: ignore[misc]
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 1:
                with torch.no_grad():
                    pl_module.tokens.weight[3, 0] = float("inf")
                    pl_module.tokens.weight[7, 1] = float("nan")

    callback = EmbeddingProjector(modules=["tokens", "positions"], logdir=tmp_path)
    with pytest.warns(
        RuntimeWarning,
        match=r"skipped 'tokens' at step 8: .*2 row\(s\) containing NaN or Inf.*3, 7.*diverged",
    ):
        make_trainer([Poison(), callback], max_epochs=2).fit(TinyLM(), token_data())
    writer = ProjectorWriter(tmp_path)
    assert writer.steps("tokens") == [0, 4]
    assert writer.steps("positions") == [0, 4, 8]


def test_write_errors_become_warnings_and_training_finishes(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"

    class Block(pl.Callback):  # type: ignore[misc]
        """The log dir's parent becomes a file after setup checked it (setup refuses that)."""

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            blocker.write_text("x")

    callback = EmbeddingProjector(
        modules=["tokens"], logdir=blocker / "run", snapshot_at_start=False
    )
    trainer = make_trainer([Block(), callback], max_epochs=2)
    with pytest.warns(
        RuntimeWarning,
        match="EmbeddingProjector skipped 'tokens' at step (4|8): NotADirectoryError",
    ):
        trainer.fit(TinyLM(), token_data())
    assert trainer.current_epoch == 2


def test_exception_in_training_flushes_written_snapshots(tmp_path: Path) -> None:
    class Crash(pl.Callback):  # type: ignore[misc]
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 1:
                raise RuntimeError("boom")

    callback = EmbeddingProjector(modules=["tokens"], logdir=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer([callback, Crash()], max_epochs=3).fit(TinyLM(), token_data())
    assert ProjectorWriter(tmp_path).steps("tokens") == [0, 4]  # no fit-end snapshot either


def test_callback_pickles_after_fit(tmp_path: Path) -> None:
    callback = EmbeddingProjector(logdir=tmp_path)
    make_trainer([callback], max_epochs=1).fit(TinyLM(), token_data())
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.state_dict()["written"] == {"tokens": [0, 4], "positions": [0, 4]}


def test_state_key_tells_callbacks_apart() -> None:
    keys = {
        EmbeddingProjector().state_key,
        EmbeddingProjector(modules=["tokens"]).state_key,
        EmbeddingProjector(on="validation_epoch_end").state_key,
        EmbeddingProjector(step="epoch").state_key,
    }
    assert len(keys) == 4
    assert EmbeddingProjector(every_n_epochs=3).state_key == EmbeddingProjector().state_key


# --------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_resume_from_checkpoint_lists_each_step_once(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]], tmp_path: Path
) -> None:
    _, name = shared_run()
    run = f"{name}/version_0"

    def logger() -> Any:
        return TensorBoardLogger(save_dir=str(shared_tensorboard.logdir), name=name, version=0)

    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    first = make_trainer(
        [EmbeddingProjector(modules=["tokens"]), checkpoints],
        logger(),
        max_epochs=3,
        enable_checkpointing=True,
    )
    first.fit(TinyLM(), token_data())
    assert ProjectorWriter(logger().log_dir).steps("tokens") == [0, 4, 8, 12]
    saved = torch.load(tmp_path / "ckpt" / "epoch=0-step=4.ckpt", weights_only=False)
    (state,) = (v for k, v in saved["callbacks"].items() if k.startswith("EmbeddingProjector"))
    assert state["written"] == {"tokens": [0, 4]}

    # Resume from the first epoch's checkpoint: epochs 1-2 run again (steps 8, 12 already on
    # disk), epochs 3-4 are new.
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    resumed = make_trainer(
        [EmbeddingProjector(modules=["tokens"]), checkpoints],
        logger(),
        max_epochs=5,
        enable_checkpointing=True,
    )
    resumed.fit(TinyLM(), token_data(), ckpt_path=tmp_path / "ckpt" / "epoch=0-step=4.ckpt")

    expected = ["tokens:000000000 start"] + [
        f"tokens:{step:09d} epoch {step // 4 - 1}" for step in (4, 8, 12, 16, 20)
    ]
    names = wait_names(shared_tensorboard, run, expected)
    assert names == expected  # each step once, no "(rewrite 2)"


def test_load_state_dict_skips_written_steps_and_accepts_old_state(tmp_path: Path) -> None:
    callback = EmbeddingProjector(modules=["tokens"], logdir=tmp_path)
    callback.load_state_dict({"written": {"tokens": [4]}})
    EmbeddingProjector().load_state_dict({})  # an older or empty state loads
    make_trainer([callback], max_epochs=2).fit(TinyLM(), token_data())
    assert ProjectorWriter(tmp_path).steps("tokens") == [0, 8]


# --------------------------------------------------------------------------- visibility


@pytest.mark.slow
def test_tensorboard_started_before_fit_serves_every_snapshot(
    tmp_path: Path, start_tensorboard: Callable[..., TensorBoard]
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    server = start_tensorboard(root)
    logger = TensorBoardLogger(save_dir=str(root), name="exp")

    class Wait(pl.Callback):  # type: ignore[misc]
        """Before the first snapshot, make sure TensorBoard already knows the run."""

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 0:
                logger.experiment.add_scalar("started", 1.0, 0)
                logger.experiment.flush()
                server.wait_for(lambda: "exp/version_0" in server.all_runs())
                assert not (Path(logger.log_dir) / "projector_config.pbtxt").exists()
                # The projector plugin reads its configs now and caches them: later ones in
                # this run are seen only because the writer changes the set of runs.
                assert "exp/version_0" not in server.runs()

    # No start snapshot: the first one must come after TensorBoard read the run's (absent)
    # config. (Known race: a refresh run created, renamed and removed by close() within one
    # TensorBoard reload interval is never seen.)
    callback = EmbeddingProjector(modules=["tokens"], snapshot_at_start=False)
    make_trainer([callback, Wait()], logger, max_epochs=3).fit(TinyLM(), token_data())
    expected = [f"tokens:{step:09d} epoch {step // 4 - 1}" for step in (4, 8, 12)]
    names = wait_names(server, "exp/version_0", expected)
    assert names == expected
    assert server.tensor("exp/version_0", expected[-1]).shape == (VOCAB, DIM)


# --------------------------------------------------------------------------- namespaces


def test_lightning_pytorch_namespace(tmp_path: Path) -> None:
    lightning_pytorch = pytest.importorskip(
        "lightning.pytorch", reason="the unified `lightning` package is not installed"
    )

    class Model(lightning_pytorch.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, DIM)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self.tokens(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = lightning_pytorch.Trainer(
        accelerator="cpu",
        max_epochs=1,
        callbacks=[EmbeddingProjector()],
        logger=lightning_pytorch.loggers.TensorBoardLogger(str(tmp_path), name="l", version=0),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
    )
    trainer.fit(Model(), token_data())
    assert ProjectorWriter(tmp_path / "l" / "version_0").steps("tokens") == [0, 4]


def test_module_import_needs_no_lightning() -> None:
    import subprocess

    code = (
        "import sys; import embedding_projector; "
        "assert 'torch' not in sys.modules and 'pytorch_lightning' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- first-run behaviour


def test_fit_end_is_snapshot_whether_or_not_its_epoch_was_due(tmp_path: Path) -> None:
    """every_n_epochs=2, max_epochs=5: epochs 1 and 3 are due; the trained weights (epoch 4)
    are written at fit end, and the random start at step 0."""

    class Record(pl.Callback):  # type: ignore[misc]
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self.start = pl_module.tokens.weight.detach().numpy().copy()

    record = Record()
    callback = EmbeddingProjector(modules=["tokens"], every_n_epochs=2, logdir=tmp_path)
    model = TinyLM()
    make_trainer([record, callback], max_epochs=5).fit(model, token_data())
    writer = ProjectorWriter(tmp_path)
    names = [entry.tensor_name for entry in writer.entries()]
    assert names == [
        "tokens:000000000 start",
        "tokens:000000008 epoch 1",
        "tokens:000000016 epoch 3",
        "tokens:000000020 epoch 4",
    ]
    np.testing.assert_array_equal(writer.read("tokens", 20).matrix, model.tokens.weight.detach())
    np.testing.assert_array_equal(writer.read("tokens", 0).matrix, record.start)


def test_fit_end_on_a_due_epoch_is_written_once(tmp_path: Path) -> None:
    callback = EmbeddingProjector(
        modules=["tokens"], every_n_epochs=2, step="epoch", logdir=tmp_path
    )
    make_trainer([callback], max_epochs=4).fit(TinyLM(), token_data())
    names = [entry.tensor_name for entry in ProjectorWriter(tmp_path).entries()]
    # step="epoch": step 0 is epoch 0's end, so there is no start snapshot.
    assert names == ["tokens:000000001 step 8", "tokens:000000003 step 16"]


def test_start_snapshot_can_be_turned_off_and_is_not_taken_on_resume(tmp_path: Path) -> None:
    callback = EmbeddingProjector(
        modules=["tokens"], logdir=tmp_path / "a", snapshot_at_start=False
    )
    make_trainer([callback], max_epochs=1).fit(TinyLM(), token_data())
    assert ProjectorWriter(tmp_path / "a").steps("tokens") == [4]

    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    first = EmbeddingProjector(modules=["tokens"], logdir=tmp_path / "b")
    make_trainer([first, checkpoints], max_epochs=2, enable_checkpointing=True).fit(
        TinyLM(), token_data()
    )
    assert ProjectorWriter(tmp_path / "b").steps("tokens") == [0, 4, 8]
    resumed = EmbeddingProjector(modules=["tokens"], logdir=tmp_path / "b")
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    make_trainer([resumed, checkpoints], max_epochs=3, enable_checkpointing=True).fit(
        TinyLM(), token_data(), ckpt_path=tmp_path / "ckpt" / "epoch=0-step=4.ckpt"
    )
    names = [entry.tensor_name for entry in ProjectorWriter(tmp_path / "b").entries()]
    assert names == [
        f"tokens:{step:09d} {s}"
        for step, s in ((0, "start"), (4, "epoch 0"), (8, "epoch 1"), (12, "epoch 2"))
    ]  # each step once: no second start, no rewrite of 8


def scalar_steps(logdir: Path, name: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(name)]


def test_short_run_logs_drift_and_overlap_at_every_snapshot_while_maps_are_rationed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    callback = EmbeddingProjector(
        modules=["tokens"], logdir=tmp_path, insight=InsightOptions(map_budget=1e-6, map_rows=20)
    )
    with caplog.at_level("INFO", logger="embedding_projector.sink"):
        make_trainer([callback], max_epochs=5).fit(TinyLM(), token_data())
    steps = [0, 4, 8, 12, 16, 20]
    assert ProjectorWriter(tmp_path).steps("tokens") == steps
    assert map_steps(tmp_path, "tokens") == [0]  # the drawing is rationed ...
    assert scalar_steps(tmp_path, "tokens/drift") == steps[1:]  # ... the scalars are not
    assert scalar_steps(tmp_path, "tokens/neighbor_overlap_at_10") == steps[1:]
    assert "map image of 'tokens' was skipped at step 4" in caplog.text


def test_labels_that_cannot_fit_fail_at_setup_before_training(tmp_path: Path) -> None:
    message = (
        r"labels names 'n', 'word', but the tables are .*nest them under their table: "
        r"labels=\{'positions': \{'n': \.\.\., 'word': \.\.\.\}\}"
    )
    labels = {"word": [f"w{i}" for i in range(VOCAB)], "n": list(range(VOCAB))}
    callback = EmbeddingProjector(modules="auto", logdir=tmp_path, labels=labels)
    trainer = make_trainer([callback], max_epochs=2)
    with pytest.raises(ValueError, match=message):
        trainer.fit(TinyLM(), token_data())
    assert trainer.global_step == 0 and not tmp_path.joinpath("projector_config.pbtxt").exists()


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_a_log_dir_that_cannot_be_written_fails_at_setup(tmp_path: Path, where: str) -> None:
    from embedding_projector.errors import LogDirError

    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    logdir = blocker if where == "file" else blocker / "run"
    trainer = make_trainer([EmbeddingProjector(logdir=logdir)], max_epochs=2)
    with pytest.raises(LogDirError, match="blocker"):
        trainer.fit(TinyLM(), token_data())
    assert trainer.global_step == 0 and blocker.read_text() == "x"


def test_url_log_dir_is_refused_at_construction() -> None:
    from embedding_projector.errors import LogDirError

    with pytest.raises(LogDirError, match="s3:// URL"):
        EmbeddingProjector(logdir="s3://bucket/logs")


def test_remote_logger_warns_once_and_writes_snapshots_locally(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    logger = TensorBoardLogger("memory://bucket/logs", name="mf", version=3)
    callback = EmbeddingProjector(modules=["tokens"])
    trainer = make_trainer([callback], logger, max_epochs=2, default_root_dir=tmp_path)
    with pytest.warns(UserWarning, match="remote store") as record:
        trainer.fit(TinyLM(), token_data())
    assert len([w for w in record if "remote store" in str(w.message)]) == 1
    local = tmp_path / "embeddings" / "mf" / "version_3"
    assert str(local) in str(next(w for w in record if "remote store" in str(w.message)).message)
    assert ProjectorWriter(local).steps("tokens") == [0, 4, 8]
    assert scalar_steps(local, "tokens/drift") == [4, 8]  # insight beside the snapshots
    assert not Path("memory:").exists() and not (tmp_path / "memory:").exists()


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_labels_as_arrays_and_tensors(tmp_path: Path, kind: str) -> None:
    one = np.asarray([f"p{i}" for i in range(8)]) if kind == "numpy" else torch.arange(8) * 10
    two = np.arange(16).reshape(8, 2) if kind == "numpy" else torch.arange(16).reshape(8, 2)
    for name, labels in (("one", one), ("two", two)):
        callback = EmbeddingProjector(modules=["positions"], labels=labels, logdir=tmp_path / name)
        make_trainer([callback], max_epochs=1).fit(TinyLM(), token_data())
        writer = ProjectorWriter(tmp_path / name)
        stored = writer.read("positions", 4)
        if name == "one":
            expected = [str(v) for v in (one.tolist())]
            assert stored.header is None and list(stored.columns[0]) == expected
        else:
            assert stored.header == ["column 1", "column 2"]
            assert list(stored.columns[1]) == [str(2 * i + 1) for i in range(8)]


def test_columns_mapping_for_a_one_table_model_is_read_as_columns(tmp_path: Path) -> None:
    class OneTable(TinyLM):
        def __init__(self) -> None:
            super().__init__()
            del self.positions
            self.positions = lambda x: 0  # type: ignore[assignment]

    words = [f"w{i}" for i in range(VOCAB)]
    callback = EmbeddingProjector(
        labels={"word": words, "length": [len(w) for w in words]}, logdir=tmp_path
    )
    make_trainer([callback], max_epochs=1).fit(OneTable(), token_data())
    stored = ProjectorWriter(tmp_path).read("tokens", 4)
    assert stored.header == ["word", "length"]
    assert list(stored.columns[0]) == words


def test_late_label_problems_name_the_table_and_the_callbacks_argument(tmp_path: Path) -> None:
    """A labels callable (not checkable at setup) returning ragged rows: the warning names
    the table and says "labels", not add_embedding's argument names."""

    def ragged(tag: str) -> list[tuple[str, ...]]:
        return [("a", "b")] + [("a", "b", "c")] * 7

    callback = EmbeddingProjector(
        modules=["positions"], labels=ragged, logdir=tmp_path, snapshot_at_start=False
    )
    with pytest.warns(RuntimeWarning) as record:
        make_trainer([callback], max_epochs=1).fit(TinyLM(), token_data())
    (message,) = [str(w.message) for w in record if "skipped" in str(w.message)]
    assert message.startswith("EmbeddingProjector skipped 'positions' at step 4: ")
    assert "labels: metadata row 1 has 3 columns but the header has 2" in message
    assert "mat " not in message and "label_img" not in message


# --------------------------------------------------------------------------- probe rows


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"probe_rows": "t3"}, TypeError, r"probe_rows must be a list .*wrap one label"),
        ({"probe_rows": [1.5]}, TypeError, r"entries must be row indices \(int\) or labels"),
        ({"probe_rows": [True]}, TypeError, r"entries must be row indices"),
        ({"probe_rows": {3: [1]}}, TypeError, r"probe_rows keys must be table tags"),
        (
            {"insight": InsightOptions(trajectory=True)},
            ValueError,
            r"trajectory=True\) follows the probe rows, but probe_rows is empty",
        ),
    ],
)
def test_probe_rows_of_the_wrong_type_fail_at_construction(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        EmbeddingProjector(**kwargs)


@pytest.mark.parametrize(
    ("probe_rows", "message"),
    [
        (["t3", "t99"], r"probe_rows for 'tokens': 't99' is not a label .*Close labels: 't9'"),
        ([3, VOCAB], rf"probe_rows for 'tokens': row {VOCAB} is out of range; .*0 to {VOCAB - 1}"),
        ({"tokenz": [1]}, r"probe_rows names 'tokenz', but the tables are 'positions', 'tokens'"),
        ({"positions": ["p1"]}, r"'p1' is a label, but 'positions' has no labels"),
    ],
)
def test_probe_rows_that_name_no_row_fail_at_setup_before_training(
    tmp_path: Path, probe_rows: Any, message: str
) -> None:
    labels = {"tokens": [f"t{i}" for i in range(VOCAB)]}
    callback = EmbeddingProjector(logdir=tmp_path, labels=labels, probe_rows=probe_rows)
    trainer = make_trainer([callback], max_epochs=2)
    with pytest.raises(ValueError, match=message):
        trainer.fit(TinyLM(), token_data())
    assert trainer.global_step == 0 and not list(tmp_path.iterdir())


def test_probe_rows_give_a_trajectory_through_the_run(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    logger, run = tb_logger(shared_tensorboard, shared_run)
    words = [f"t{i}" for i in range(VOCAB)]
    insight = InsightOptions(maps=False, scalars=False, map_budget=None, trajectory=True)
    callback = EmbeddingProjector(
        labels={"tokens": words}, probe_rows={"tokens": ["t3", 7, "t12"]}, insight=insight
    )
    capture = EmbeddingCapture()
    make_trainer([callback, capture], logger, max_epochs=3).fit(TinyLM(), token_data())

    steps = [0, 4, 8, 12]  # the start and three epochs of 4 optimizer steps
    trajectory = f"tokens · trajectory:{steps[-1]:09d}"
    names = wait_names(shared_tensorboard, run, [trajectory])
    assert sum("trajectory" in name for name in names) == 1  # the newest holds every step
    header, rows = parse_metadata(shared_tensorboard.metadata(run, trajectory))
    assert header == ["label", "step"]
    assert rows == [[word, str(step)] for step in steps for word in ("t3", "t7", "t12")]
    states = shared_tensorboard.bookmarks(run, trajectory)
    assert [state["label"] for state in states] == [
        "steps 0–12 · aligned PCA",
        "steps 0–12 · aligned PCA 3-D",
        *(f"step {step} · aligned PCA" for step in steps),
    ]
    assert states[0]["selectedColorOptionName"] == "step"
    assert [state["filteredPoints"] for state in states[2:]] == [
        [3 * i, 3 * i + 1, 3 * i + 2] for i in range(len(steps))
    ]
    # Each step's probe rows sit where that step's own saved state put them.
    path = state_coordinates(states[0])
    for index, step in enumerate(steps):
        name = next(n for n in names if n.startswith(f"tokens:{step:09d}"))
        own = shared_tensorboard.bookmarks(run, name)
        np.testing.assert_allclose(
            path[3 * index : 3 * index + 3], state_coordinates(own[0])[[3, 7, 12]], atol=1e-6
        )
    # Its vectors: the probe rows of each step's table, in the run's aligned frame.
    vectors = shared_tensorboard.tensor(run, trajectory)
    frame = AlignedLayout()
    for index, step in enumerate(steps):
        frame.update(words, capture.tokens[step], step)
        assert frame.aligned_matrix is not None
        expected = frame.aligned_matrix[[3, 7, 12]]
        np.testing.assert_allclose(vectors[3 * index : 3 * index + 3], expected, atol=1e-5)
    assert not np.allclose(vectors[:3], vectors[-3:], atol=1e-3)  # training moved them


class EmbeddingCapture(pl.Callback):  # type: ignore[misc]
    """The tokens table at the start and at every training epoch end, by global step."""

    def __init__(self) -> None:
        self.tokens: dict[int, np.ndarray] = {}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.tokens[trainer.global_step] = pl_module.tokens.weight.detach().numpy().copy()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.tokens[trainer.global_step] = pl_module.tokens.weight.detach().numpy().copy()
