"""Any2VecProjector with real gensim training, checked through TensorBoard's own readers."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import logging
import pickle
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("gensim")

from gensim.models import Doc2Vec, FastText, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.doc2vec import TaggedDocument
from gensim.test.utils import datapath
from gensim.utils import simple_preprocess
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from embedding_projector import ProjectorWriter
from embedding_projector.gensim import (
    DEFAULT_INSIGHT,
    Any2VecProjector,
    Doc2VecOptions,
    default_probe_words,
)
from embedding_projector.sink import SinkOptions
from tb_server import TensorBoard, parse_metadata

ROOT = Path(__file__).resolve().parent.parent
W2V = {"vector_size": 16, "min_count": 5, "workers": 1, "seed": 1, "window": 3}


@pytest.fixture(scope="module")
def lee() -> list[list[str]]:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [simple_preprocess(line) for line in handle]


@pytest.fixture(scope="module")
def small(lee: list[list[str]]) -> list[list[str]]:
    return lee[:120]


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: EventAccumulator, tag: str) -> dict[int, float]:
    return {event.step: event.value for event in accumulator.Scalars(tag)}


def texts(accumulator: EventAccumulator, tag: str) -> dict[int, str]:
    return {
        event.step: event.tensor_proto.string_val[0].decode("utf-8")
        for event in accumulator.Tensors(f"{tag}/text_summary")
    }


def served(tb: TensorBoard, run: str, count: int) -> list[str]:
    """Tensor names TensorBoard serves for ``run`` once it serves ``count`` of them."""
    tb.wait_for_run(run)
    return list(tb.wait_for(lambda: len(tb.tensor_names(run)) == count and tb.tensor_names(run)))


# --------------------------------------------------------------------------- Word2Vec


def test_word2vec_snapshots_every_epoch_with_the_same_words(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]], lee: Any
) -> None:
    run_dir, run = shared_run()
    callback = Any2VecProjector(run_dir, limit=150, probe_rows=["police", "government"])
    model = Word2Vec(lee, epochs=3, compute_loss=True, callbacks=[callback], **W2V)

    names = served(shared_tensorboard, run, 4)
    assert names == [f"words:{step:09d}" for step in range(4)]
    metadata = [parse_metadata(shared_tensorboard.metadata(run, name)) for name in names]
    header, rows = metadata[0]
    assert header == ["word", "rank", "count"]
    assert len(rows) == 150
    assert all(m == metadata[0] for m in metadata)  # the same word in the same row at every step
    words = [row[0] for row in rows]
    assert words[:150] == model.wv.index_to_key[:150]
    assert [int(row[2]) for row in rows[:3]] == [
        model.wv.get_vecattr(w, "count") for w in words[:3]
    ]
    tensors = [shared_tensorboard.tensor(run, name) for name in names]
    assert all(t.shape == (150, 16) for t in tensors)
    assert not np.allclose(tensors[1], tensors[2])  # really evolving
    np.testing.assert_array_equal(tensors[-1], model.wv[words])  # last step = trained model


def test_word2vec_scalars_and_neighbor_tables(tmp_path: Path, lee: Any) -> None:
    callback = Any2VecProjector(tmp_path, limit=300, probe_rows=["police", "government"])
    model = Word2Vec(lee, epochs=4, compute_loss=True, callbacks=[callback], **W2V)

    acc = events(tmp_path)
    loss = scalars(acc, "train/loss")
    assert sorted(loss) == [1, 2, 3, 4]
    assert all(value > 0 for value in loss.values())
    # Per-epoch deltas add up to gensim's cumulative counter (float32: relative tolerance).
    assert sum(loss.values()) == pytest.approx(model.get_latest_training_loss(), rel=1e-4)
    learning_rate = scalars(acc, "train/learning_rate")
    assert list(learning_rate) == [1, 2, 3, 4]
    assert list(learning_rate.values()) == sorted(learning_rate.values(), reverse=True)
    # The last alpha gensim used in the epoch (its linear decay, per job of 10,000 words).
    assert model.min_alpha <= learning_rate[4] < learning_rate[1] <= model.alpha
    assert all(v > 0 for v in scalars(acc, "train/words_per_sec").values())
    drift = scalars(acc, "words/drift")
    overlap = scalars(acc, "words/neighbor_overlap_at_10")
    assert sorted(drift) == sorted(overlap) == [1, 2, 3, 4]
    assert drift[1] > drift[4]  # leaving the random start moves the most
    assert all(0 <= v <= 1 for v in overlap.values())

    tables = texts(acc, "words/neighbors")
    assert sorted(tables) == [0, 1, 2, 3, 4]
    last = tables[4]
    assert "| **police** |" in last and "| **government** |" in last
    # The table at the last step agrees with the true neighbours of the final model, by cosine
    # between mean-centred unit rows (insight's frame: raw cosines are all ~1 on this corpus).
    selection = callback._targets[0].labels  # type: ignore[index]
    vectors = model.wv[selection]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    unit -= unit.mean(axis=0)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    probe = selection.index("police")
    order = [i for i in np.argsort(-(unit @ unit[probe])) if i != probe][:3]
    row = next(line for line in last.splitlines() if line.startswith("| **police** |"))
    cells = [cell.strip().rsplit(" ", 1)[0] for cell in row.strip("| ").split("|")[1:4]]
    assert cells == [selection[i] for i in order]


def test_gensim_norms_are_refreshed_for_other_callbacks(tmp_path: Path, small: Any) -> None:
    """Stale norms: a callback calling most_similar() before ours filled gensim's norm cache."""

    class MostSimilar(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self) -> None:
            self.results: list[list[str]] = []

        def on_epoch_end(self, model: Any) -> None:
            self.results.append([w for w, _ in model.wv.most_similar("said", topn=5)])

    before, after = MostSimilar(), MostSimilar()
    truths: list[list[str]] = []

    class Truth(CallbackAny2Vec):  # type: ignore[misc]
        def on_epoch_end(self, model: Any) -> None:
            v = model.wv.vectors
            unit = v / np.linalg.norm(v, axis=1, keepdims=True)
            index = model.wv.get_index("said")
            order = [i for i in np.argsort(-(unit @ unit[index])) if i != index][:5]
            truths.append([model.wv.index_to_key[i] for i in order])

    callback = Any2VecProjector(tmp_path, limit=50, probe_rows=[])
    Word2Vec(
        small, epochs=3, compute_loss=True, callbacks=[before, callback, after, Truth()], **W2V
    )
    assert after.results == truths  # our hook refreshed the cache other callbacks use
    assert before.results[1:] != truths[1:]  # ... which was stale before it (the trap is real)


def test_every_n_epochs_keeps_the_last_epoch(tmp_path: Path, small: Any) -> None:
    callback = Any2VecProjector(tmp_path, every_n_epochs=2, limit=40)
    Word2Vec(small, epochs=5, compute_loss=True, callbacks=[callback], **W2V)
    assert ProjectorWriter(tmp_path).steps("words") == [0, 2, 4, 5]
    acc = events(tmp_path)
    assert sorted(scalars(acc, "train/loss")) == [1, 2, 3, 4, 5]  # scalars every epoch
    assert sorted(scalars(acc, "words/drift")) == [2, 4, 5]


def test_word_list_selection_and_missing_words(tmp_path: Path, small: Any) -> None:
    callback = Any2VecProjector(tmp_path, words=["police", "zzzz", "said"], probe_rows=["said"])
    with pytest.warns(UserWarning, match="'zzzz'"):
        Word2Vec(small, epochs=1, compute_loss=True, callbacks=[callback], **W2V)
    config_rows = callback._targets[0].labels  # type: ignore[index]
    assert config_rows == ["police", "said"]


def test_glyph_sprites_for_character_embeddings(tmp_path: Path) -> None:
    from PIL import Image

    from embedding_projector.glyphs import glyph_images

    text = "東京都は日本の首都です。大阪は西にあります。京都も古い都です。" * 20
    sentences = [list(line) for line in text.split("。") if line]
    callback = Any2VecProjector(
        tmp_path,
        sprites="glyphs",
        insight=replace(DEFAULT_INSIGHT, maps=False),
        sink=SinkOptions(background=False),
    )
    Word2Vec(
        sentences,
        vector_size=8,
        min_count=1,
        workers=1,
        seed=1,
        epochs=2,
        compute_loss=True,
        callbacks=[callback],
    )
    entries = ProjectorWriter(tmp_path).entries()
    assert len(entries) == 3 and all(e.sprite.image_path for e in entries)
    labels = callback._targets[0].labels  # type: ignore[index]
    cell = entries[-1].sprite.single_image_dim[0]
    sheet = np.asarray(Image.open(tmp_path / entries[-1].sprite.image_path))
    first = sheet[:cell, :cell]
    np.testing.assert_array_equal(first, glyph_images(labels[:1], size=cell)[0, 0])


def test_no_start_snapshot_when_turned_off(tmp_path: Path, small: Any) -> None:
    callback = Any2VecProjector(
        tmp_path, limit=30, snapshot_at_start=False, sink=SinkOptions(background=False)
    )
    Word2Vec(small, epochs=2, compute_loss=True, callbacks=[callback], **W2V)
    assert ProjectorWriter(tmp_path).steps("words") == [1, 2]


# --------------------------------------------------------------------------- loss traps


def test_loss_restarts_per_train_call_and_steps_continue(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]], small: Any
) -> None:
    run_dir, run = shared_run()
    model = Word2Vec(**W2V)
    model.build_vocab(small)
    callback = Any2VecProjector(run_dir, limit=40)
    for epochs in (2, 2):
        model.train(
            small,
            total_examples=len(small),
            epochs=epochs,
            compute_loss=True,
            callbacks=[callback],
        )
    # A new callback instance on the same log dir continues after the last step found there.
    again = Any2VecProjector(run_dir, limit=40)
    model.train(small, total_examples=len(small), epochs=1, compute_loss=True, callbacks=[again])
    assert again.steps_written() == [0, 1, 2, 3, 4, 5]
    assert served(shared_tensorboard, run, 6) == [f"words:{s:09d}" for s in range(6)]
    loss = scalars(events(run_dir), "train/loss")
    assert sorted(loss) == [1, 2, 3, 4, 5]
    # Per-epoch values, not gensim's per-call running total (which restarts at each call).
    assert loss[3] < 1.5 * loss[2]
    assert all(value > 0 for value in loss.values())


def test_several_train_calls_write_one_event_file_on_disk_at_each_return(
    tmp_path: Path, small: Any
) -> None:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    model = Word2Vec(**W2V)
    model.build_vocab(small)
    callback = Any2VecProjector(tmp_path, limit=40)
    for call in range(3):
        model.train(
            small, total_examples=len(small), epochs=2, compute_loss=True, callbacks=[callback]
        )
        # Everything logged so far is on disk when train() returns (the file is still open).
        assert sorted(scalars(events(tmp_path), "train/loss")) == list(range(1, 2 * call + 3))
        assert sorted(scalars(events(tmp_path), "words/drift")) == list(range(1, 2 * call + 3))
    callback.close()
    with_summaries = [
        path.name
        for path in tmp_path.glob("events.out.tfevents.*")
        if any(event.HasField("summary") for event in EventFileLoader(str(path)).Load())
    ]
    assert len(with_summaries) == 1, with_summaries
    assert sorted(texts(events(tmp_path), "words/neighbors")) == list(range(7))


def test_loss_float32_ceiling_is_reported(tmp_path: Path, small: Any) -> None:
    class Saturate(CallbackAny2Vec):  # type: ignore[misc]
        epoch = 0

        def on_epoch_end(self, model: Any) -> None:
            self.epoch += 1
            if self.epoch == 2:  # what 2**24 of accumulated loss looks like
                model.running_training_loss = np.float32(2**24)

    callback = Any2VecProjector(tmp_path, limit=30)
    with pytest.warns(RuntimeWarning, match=r"2\*\*24"):
        Word2Vec(small, epochs=3, compute_loss=True, callbacks=[Saturate(), callback], **W2V)
    assert sorted(scalars(events(tmp_path), "train/loss")) == [1]
    assert ProjectorWriter(tmp_path).steps("words") == [0, 1, 2, 3]  # snapshots unaffected


def test_loss_warnings_for_workers_and_missing_compute_loss(tmp_path: Path, small: Any) -> None:
    with pytest.warns(UserWarning, match="compute_loss=True"):
        Word2Vec(small, epochs=1, callbacks=[Any2VecProjector(tmp_path / "a", limit=20)], **W2V)
    settings = {**W2V, "workers": 2}
    with pytest.warns(UserWarning, match="workers=2"):
        Word2Vec(
            small,
            epochs=1,
            compute_loss=True,
            callbacks=[Any2VecProjector(tmp_path / "b", limit=20)],
            **settings,
        )
    # log_loss=False: nothing to warn about.
    Word2Vec(
        small,
        epochs=1,
        callbacks=[Any2VecProjector(tmp_path / "c", limit=20, log_loss=False)],
        **W2V,
    )
    assert "train/loss" not in events(tmp_path / "c").Tags()["scalars"]


# --------------------------------------------------------------------------- FastText


class AdjustedVectors(CallbackAny2Vec):  # type: ignore[misc]
    """What gensim's own adjust_vectors() gives mid-training (on a copy of wv)."""

    def __init__(self, rows: int) -> None:
        self.count = rows
        self.rows: list[np.ndarray] = []

    def on_epoch_end(self, model: Any) -> None:
        wv = copy.deepcopy(model.wv)
        wv.adjust_vectors()
        self.rows.append(wv.vectors[: self.count])


def test_fasttext_vectors_evolve_and_save_with_callback_attached(
    shared_tensorboard: TensorBoard,
    shared_run: Callable[[], tuple[Path, str]],
    small: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_dir, run = shared_run()
    callback = Any2VecProjector(run_dir, limit=60)
    adjusted = AdjustedVectors(rows=60)
    with caplog.at_level(logging.WARNING, logger="embedding_projector.gensim"):
        model = FastText(small, epochs=3, callbacks=[callback, adjusted], bucket=5000, **W2V)
    assert "FastText does not report a training loss" in caplog.text

    names = served(shared_tensorboard, run, 4)
    tensors = [shared_tensorboard.tensor(run, name) for name in names]
    # wv.vectors are frozen during FastText training; the callback rebuilds them each epoch.
    for earlier, later in itertools.pairwise(tensors[1:]):
        assert not np.allclose(earlier, later)
    words = [row[0] for row in parse_metadata(shared_tensorboard.metadata(run, names[-1]))[1]]
    np.testing.assert_allclose(tensors[-1], model.wv[words], rtol=1e-6, atol=1e-7)
    for step in (1, 2):
        np.testing.assert_allclose(tensors[step], adjusted.rows[step - 1], rtol=1e-5, atol=1e-7)
    acc = events(run_dir)
    assert "train/loss" not in acc.Tags()["scalars"]
    assert sorted(scalars(acc, "words/drift")) == [1, 2, 3]

    # FastText pickles its constructor callbacks: saving must work with ours attached.
    path = tmp_path / "ft.model"
    model.save(str(path))
    loaded = FastText.load(str(path))
    restored = loaded.callbacks[0]
    assert isinstance(restored, Any2VecProjector)
    loaded.train(small, total_examples=len(small), epochs=2, callbacks=loaded.callbacks)
    assert ProjectorWriter(run_dir).steps("words") == [0, 1, 2, 3, 4, 5]
    # ... and the ignore=["callbacks"] route documented for other callbacks works too.
    model.save(str(tmp_path / "ft2.model"), ignore=["callbacks"])
    assert FastText.load(str(tmp_path / "ft2.model")).wv.vector_size == 16


# --------------------------------------------------------------------------- Doc2Vec


def test_doc2vec_documents_and_words_as_separate_tags(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]], small: Any
) -> None:
    run_dir, run = shared_run()
    docs = [TaggedDocument(words, [index]) for index, words in enumerate(small)]  # int tags
    callback = Any2VecProjector(run_dir, limit=50, docs=Doc2VecOptions(limit=80))
    model = Doc2Vec(docs, dm=1, epochs=2, callbacks=[callback], **W2V)
    assert model.dv.key_to_index == {}  # plain int tags: the trap is live

    served(shared_tensorboard, run, 6)
    names = shared_tensorboard.tensor_names(run)
    assert sorted(names) == sorted(
        [f"docs:{s:09d}" for s in range(3)] + [f"words:{s:09d}" for s in range(3)]
    )
    header, rows = parse_metadata(shared_tensorboard.metadata(run, "docs:000000002"))
    assert header == ["tag", "index"]
    assert [row[0] for row in rows] == [str(i) for i in range(80)]
    docs_1 = shared_tensorboard.tensor(run, "docs:000000001")
    docs_2 = shared_tensorboard.tensor(run, "docs:000000002")
    assert not np.allclose(docs_1, docs_2)
    np.testing.assert_array_equal(docs_2, model.dv.vectors[:80])
    acc = events(run_dir)
    assert sorted(scalars(acc, "docs/drift")) == [1, 2]
    assert sorted(scalars(acc, "words/drift")) == [1, 2]


def test_doc2vec_dbow_word_vectors_are_not_shown_unless_asked(tmp_path: Path, small: Any) -> None:
    docs = [TaggedDocument(words, [f"d{index}"]) for index, words in enumerate(small)]
    quiet = Any2VecProjector(tmp_path / "auto", limit=20, docs=Doc2VecOptions(limit=20))
    Doc2Vec(docs, dm=0, epochs=1, callbacks=[quiet], **W2V)
    assert ProjectorWriter(tmp_path / "auto").steps("docs") == [0, 1]
    assert ProjectorWriter(tmp_path / "auto").steps("words") == []

    asked = Any2VecProjector(
        tmp_path / "asked", limit=20, docs=Doc2VecOptions(limit=20, show_words=True)
    )
    with pytest.warns(UserWarning, match="never trained"):
        Doc2Vec(docs, dm=0, epochs=1, callbacks=[asked], **W2V)
    assert ProjectorWriter(tmp_path / "asked").steps("words") == [0, 1]


# --------------------------------------------------------------------------- robustness


def test_nan_vectors_skip_the_snapshot_and_training_goes_on(tmp_path: Path, small: Any) -> None:
    saved: dict[str, np.ndarray] = {}

    class Diverge(CallbackAny2Vec):  # type: ignore[misc]
        epoch = 0

        def on_epoch_end(self, model: Any) -> None:
            self.epoch += 1
            if self.epoch == 2:
                saved["row"] = model.wv.vectors[3].copy()
                model.wv.vectors[3] = np.nan

    class Recover(CallbackAny2Vec):  # type: ignore[misc]
        def on_epoch_end(self, model: Any) -> None:
            if "row" in saved:
                model.wv.vectors[3] = saved.pop("row")

    callback = Any2VecProjector(tmp_path, limit=30)
    with pytest.warns(RuntimeWarning, match="NaN or infinite at step 2"):
        model = Word2Vec(
            small, epochs=3, compute_loss=True, callbacks=[Diverge(), callback, Recover()], **W2V
        )
    assert np.isfinite(model.wv.vectors).all()
    assert ProjectorWriter(tmp_path).steps("words") == [0, 1, 3]
    acc = events(tmp_path)
    assert sorted(scalars(acc, "train/loss")) == [1, 2, 3]  # scalars still logged


def test_training_on_another_thread(tmp_path: Path, small: Any) -> None:
    callback = Any2VecProjector(tmp_path, limit=30)
    errors: list[BaseException] = []

    def train() -> None:
        try:
            Word2Vec(small, epochs=2, compute_loss=True, callbacks=[callback], **W2V)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=train, name="trainer")
    thread.start()
    thread.join(timeout=120)
    assert not errors
    assert ProjectorWriter(tmp_path).steps("words") == [0, 1, 2]
    assert sorted(scalars(events(tmp_path), "words/drift")) == [1, 2]


def test_callback_pickles_and_keeps_its_selection(tmp_path: Path, small: Any) -> None:
    callback = Any2VecProjector(tmp_path, limit=25, probe_rows=["said"])
    model = Word2Vec(small, epochs=1, compute_loss=True, callbacks=[callback], **W2V)
    copy = pickle.loads(pickle.dumps(callback))
    assert copy._targets[0].labels == callback._targets[0].labels
    model.train(small, total_examples=len(small), epochs=1, compute_loss=True, callbacks=[copy])
    assert ProjectorWriter(tmp_path).steps("words") == [0, 1, 2]


def test_user_summary_writers_receive_the_scalars(tmp_path: Path, small: Any) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tbx"))
    callback = Any2VecProjector(writer, limit=20)
    Word2Vec(small, epochs=2, compute_loss=True, callbacks=[callback], **W2V)
    pickle.dumps(callback)  # a user's writer holds queues and threads; it is not pickled
    writer.close()
    assert sorted(scalars(events(tmp_path / "tbx"), "train/loss")) == [1, 2]
    assert ProjectorWriter(tmp_path / "tbx").steps("words") == [0, 1, 2]

    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    torch_writer = torch_tb.SummaryWriter(str(tmp_path / "torch"))
    callback = Any2VecProjector(torch_writer, limit=20)
    Word2Vec(small, epochs=2, compute_loss=True, callbacks=[callback], **W2V)
    pickle.dumps(callback)
    torch_writer.close()
    assert sorted(scalars(events(tmp_path / "torch"), "words/drift")) == [1, 2]


def test_too_few_rows_warns_instead_of_failing(tmp_path: Path, small: Any) -> None:
    callback = Any2VecProjector(tmp_path, words=["police"], probe_rows=[])
    with pytest.warns(UserWarning, match="at least 2"):
        Word2Vec(small, epochs=1, compute_loss=True, callbacks=[callback], **W2V)
    assert ProjectorWriter(tmp_path).steps("words") == []
    assert sorted(scalars(events(tmp_path), "train/loss")) == [1]


def test_arguments_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every_n_epochs"):
        Any2VecProjector(tmp_path, every_n_epochs=0)
    with pytest.raises(TypeError, match=r"wrap one label in a list"):
        Any2VecProjector(tmp_path, probe_rows="king")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must differ"):
        Any2VecProjector(tmp_path, tag="x", docs=Doc2VecOptions(tag="x"))
    with pytest.raises(TypeError, match="SummaryWriter"):
        Any2VecProjector(42)


def test_default_probe_words_skip_stop_words() -> None:
    keys = ["the", "said", "of", "s", "12", "police", "and", "government", "fire", "they"]
    assert default_probe_words(keys, 3) == ["said", "police", "government"]


# --------------------------------------------------------------------------- example


@pytest.mark.slow
def test_example_script_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "word2vec_gensim_example", ROOT / "examples" / "word2vec_gensim.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--logdir", str(tmp_path / "run"), "--epochs", "2"]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    # --epochs 2, then 2 more in a second train() call: the steps continue.
    assert ProjectorWriter(tmp_path / "run").steps("words") == [0, 1, 2, 3, 4]
    assert sorted(scalars(events(tmp_path / "run"), "train/loss")) == [1, 2, 3, 4]


# --------------------------------------------------------------------------- first-run behaviour


def test_url_log_dir_fails_at_construction() -> None:
    from embedding_projector.errors import LogDirError

    with pytest.raises(LogDirError, match=r"s3:// URL.*local log dir"):
        Any2VecProjector("s3://bucket/logs")


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_unwritable_log_dir_fails_before_training(tmp_path: Path, small: Any, where: str) -> None:
    from embedding_projector.errors import LogDirError

    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    callback = Any2VecProjector(blocker if where == "file" else blocker / "run", limit=20)
    model = Word2Vec(epochs=2, **W2V)
    model.build_vocab(small)
    before = model.wv.vectors.copy()
    with pytest.raises(LogDirError, match="blocker"):
        model.train(small, total_examples=model.corpus_count, epochs=2, callbacks=[callback])
    np.testing.assert_array_equal(model.wv.vectors, before)  # not one epoch trained
    assert blocker.read_text() == "x"


def test_train_end_snapshots_the_trained_vectors_once(tmp_path: Path, small: Any) -> None:
    """Each train() call ends with its trained vectors written, once, whether or not its last
    step was due (2 is not due, 6 is)."""
    callback = Any2VecProjector(tmp_path, every_n_epochs=3, limit=40, log_loss=False)
    model = Word2Vec(epochs=5, **W2V)
    model.build_vocab(small)
    model.train(small, total_examples=model.corpus_count, epochs=2, callbacks=[callback])
    model.train(small, total_examples=model.corpus_count, epochs=4, callbacks=[callback])
    writer = ProjectorWriter(tmp_path)
    assert writer.steps("words") == [0, 2, 3, 6]
    selection = callback._targets[0].labels  # type: ignore[index]
    np.testing.assert_array_equal(writer.read("words", 6).matrix, model.wv[selection])


def test_scalars_at_every_snapshot_when_the_map_budget_skips_drawings(
    tmp_path: Path, small: Any
) -> None:
    insight = replace(DEFAULT_INSIGHT, map_budget=1e-6)
    callback = Any2VecProjector(tmp_path, limit=40, insight=insight, log_loss=False)
    Word2Vec(small, epochs=4, callbacks=[callback], **W2V)
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    assert [image.step for image in acc.Images("words/map")] == [0, 4]  # the final one too
    assert sorted(scalars(acc, "words/drift")) == [1, 2, 3, 4]
    assert sorted(scalars(acc, "words/neighbor_overlap_at_10")) == [1, 2, 3, 4]
