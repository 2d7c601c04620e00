"""The Lightning examples run (on small settings) and TensorBoard serves what they promise."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")

from example_modules import load_example
from tb_server import TensorBoard, parse_metadata

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
]


@pytest.mark.slow
def test_lightning_text_example_shows_the_vocabulary(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    pytest.importorskip("gensim")
    example = load_example("lightning_text")
    run_dir, name = shared_run()
    argv = ["--logdir", str(run_dir), "--epochs", "2", "--max-vocab", "300", "--dim", "8"]
    assert example.main([*argv, "--limit-batches", "5"]) == 0

    run = f"{name}/lee-cbow/version_0"
    expected = ["embeddings:000000005 epoch 0", "embeddings:000000010 epoch 1"]
    shared_tensorboard.wait_for_run(run)
    shared_tensorboard.wait_for(lambda: set(expected) <= set(shared_tensorboard.tensor_names(run)))
    assert shared_tensorboard.tensor(run, expected[-1]).shape == (300, 8)
    header, rows = parse_metadata(shared_tensorboard.metadata(run, expected[-1]))
    assert header == ["word", "count"]
    assert rows[0][0] == "the"  # most frequent first
    counts = [int(row[1]) for row in rows]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.slow
def test_lightning_digits_example_shows_features_with_digit_sprites(
    shared_tensorboard: TensorBoard, shared_run: Callable[[], tuple[Path, str]]
) -> None:
    pytest.importorskip("sklearn")
    from PIL import Image

    example = load_example("lightning_digits")
    run_dir, name = shared_run()
    assert example.main(["--logdir", str(run_dir), "--epochs", "2", "--val-size", "100"]) == 0

    run = f"{name}/digits/version_0"
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.wait_for(
        lambda: (found := shared_tensorboard.tensor_names(run)) and len(found) == 3 and found
    )
    assert all(n.startswith("validation features:") for n in names)
    assert names[0].endswith(" start") and "epoch 1" in names[-1]  # the random start first
    assert shared_tensorboard.tensor(run, names[-1]).shape == (100, 32)
    header, rows = parse_metadata(shared_tensorboard.metadata(run, names[-1]))
    assert header == ["digit", "ink"]
    assert {row[0] for row in rows} <= {str(d) for d in range(10)}
    info = shared_tensorboard.embedding(run, names[-1])
    assert [int(v) for v in info["sprite"]["singleImageDim"]] == [8, 8]
    sprite = np.asarray(Image.open(io.BytesIO(shared_tensorboard.sprite(run, names[-1]))))
    assert sprite.shape[:2] == (80, 80)  # 100 digits: 10 x 10 cells of 8 px
    assert sprite.max() > 200  # real ink, not a blank sheet
