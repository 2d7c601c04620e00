"""Exports of different sources into one log dir never replace each other (issue #28).

Checked through TensorBoard itself: both snapshots are served afterwards; replacing one needs
``--overwrite``; without it the CLI fails with a message and not one file changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from disk_checks import tree_digest
from embedding_projector import ProjectorWriter, SnapshotExistsError
from embedding_projector.cli import main
from tb_server import TensorBoard


def _vector_file(path: Path, words: list[str], seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(len(words), 6)).astype(np.float32)
    lines = [f"{len(words)} 6"] + [
        f"{word} " + " ".join(f"{value:.6f}" for value in row)
        for word, row in zip(words, vectors, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return np.array([[float(f"{v:.6f}") for v in row] for row in vectors], dtype=np.float32)


def test_two_exports_both_served_and_overwrite_needs_the_flag(tmp_path: Path, capsys) -> None:
    words = ["東京", "tokyo", "大阪", "osaka", "cat", "dog"]
    first = _vector_file(tmp_path / "lee.vec", words, seed=1)
    second = _vector_file(tmp_path / "seed2.txt", words[::-1], seed=2)
    runs = tmp_path / "runs"
    assert main(["export", str(tmp_path / "lee.vec"), "--logdir", str(runs), "--quiet"]) == 0
    assert main(["export", str(tmp_path / "seed2.txt"), "--logdir", str(runs), "--quiet"]) == 0
    # The same file again is a clean rewrite, no flag needed.
    assert main(["export", str(tmp_path / "lee.vec"), "--logdir", str(runs), "--quiet"]) == 0

    before = tree_digest(runs)
    code = main(["export", str(tmp_path / "seed2.txt"), "--logdir", str(runs), "--tag", "lee"])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert tree_digest(runs) == before  # nothing written
    with pytest.raises(SnapshotExistsError):
        ProjectorWriter(runs).check_overwrite("lee", 0, "file elsewhere")

    with TensorBoard(runs) as tb:
        names = tb.wait_for(
            lambda: tb.tensor_names(".") if len(tb.tensor_names(".")) == 2 else None
        )
        by_tag = {name.split(":")[0]: name for name in names}
        assert set(by_tag) == {"lee", "seed2"}
        np.testing.assert_allclose(tb.tensor(".", by_tag["lee"]), first, atol=1e-6)
        np.testing.assert_allclose(tb.tensor(".", by_tag["seed2"]), second, atol=1e-6)

    replace = ["export", str(tmp_path / "seed2.txt"), "--logdir", str(runs), "--tag", "lee"]
    assert main([*replace, "--overwrite", "--quiet"]) == 0
    with TensorBoard(runs) as tb:
        names = tb.wait_for(lambda: tb.tensor_names(".") or None)
        lee = [name for name in names if name.startswith("lee:")]
        assert len(lee) == 1 and len(names) == 2
        np.testing.assert_allclose(tb.tensor(".", lee[0]), second, atol=1e-6)


def test_tensorboardx_steps_and_ours_are_one_entry_per_step(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    rng = np.random.default_rng(0)
    labels = ["東京", "tokyo", "cat", "dog"]
    with SummaryWriter(str(tmp_path)) as tbx:
        for step in (0, 1):
            tbx.add_embedding(
                rng.normal(size=(4, 3)), metadata=labels, tag="words", global_step=step
            )
    rewritten = rng.normal(size=(4, 3)).astype(np.float32)
    with ProjectorWriter(tmp_path) as writer:
        assert writer.steps("words") == [0, 1]
        assert writer.read("words", 0).matrix.shape == (4, 3)
        writer.add_embedding(rewritten, metadata=labels, global_step=1, tag="words")
        writer.add_embedding(rng.normal(size=(4, 3)), metadata=labels, global_step=2, tag="words")
        assert writer.steps("words") == [0, 1, 2]
    with TensorBoard(tmp_path) as tb:
        names = tb.wait_for(lambda: tb.tensor_names(".") or None)
        assert names == ["words:000000000", "words:000000001", "words:000000002"]
        np.testing.assert_allclose(tb.tensor(".", names[1]), rewritten, atol=1e-6)
