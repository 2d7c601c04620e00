"""The core writer, checked through what a real TensorBoard serves."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import embedding_projector as ep
from embedding_projector import _format
from embedding_projector.errors import ConfigError, InvalidEmbeddingError
from tb_server import TensorBoard, parse_metadata

RNG = np.random.default_rng(0)


def projector_files(logdir: Path) -> list[Path]:
    """Files TensorBoard's projector could read (anything but the lock and event files)."""
    if not logdir.exists():
        return []
    return [
        p
        for p in logdir.rglob("*")
        if p.is_file() and "tfevents" not in p.name and p.name != _format.LOCK_FILENAME
    ]


def test_tensor_and_labels_round_trip_through_tensorboard(shared_tensorboard, shared_run):
    run_dir, run = shared_run()
    matrix = RNG.normal(size=(50, 7)).astype(np.float64)
    hostile = ["a\tb", "line\nbreak", "cr\rhere", "", "   ", "東京", "🦜 emoji", "\ufeff", "x\\ty"]
    labels = [
        f"{i}:{hostile[i % len(hostile)]}" if i % 3 else hostile[i % len(hostile)]
        for i in range(50)
    ]
    snap = ep.add_embedding(str(run_dir), matrix, metadata=labels, global_step=3, tag="words")
    shared_tensorboard.wait_for_run(run)

    served = shared_tensorboard.tensor(run, snap.tensor_name)
    np.testing.assert_array_equal(served, matrix.astype(np.float32))
    text = shared_tensorboard.metadata(run, snap.tensor_name)
    # What the frontend parses, spelled out: the three separators as visible two-character
    # escapes, a backslash kept as it is, a blank label (BOM included) as "(empty)".
    visible = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
    expected_rows = []
    for label in labels:
        shown = "".join(visible.get(char, char) for char in label)
        expected_rows.append(shown if shown.strip(" \ufeff") else "(empty)")
    assert expected_rows[:4] == ["a\\tb", "1:line\\nbreak", "2:cr\\rhere", "(empty)"]
    assert text.split("\n")[:50] == expected_rows
    assert text.split("\n")[50:] in ([], [""])
    header, rows = parse_metadata(text)
    assert header is None
    assert rows == [[row] for row in expected_rows]
    entry = shared_tensorboard.embedding(run, snap.tensor_name)
    assert [int(v) for v in entry["tensorShape"]] == [50, 7]
    assert snap.tensor_path.suffix == ".bin"


def test_multi_column_metadata_has_a_header_and_aligned_rows(shared_tensorboard, shared_run):
    run_dir, run = shared_run()
    rows_in = [[f"w{i}", i, "" if i % 4 == 0 else f"q\t{i}"] for i in range(30)]
    rows_in[4] = ["", "", ""]  # an all-blank row would be skipped by the frontend
    snap = ep.add_embedding(
        run_dir, RNG.random((30, 4)), metadata=rows_in, metadata_header=["word", "rank", "query"]
    )
    shared_tensorboard.wait_for_run(run)
    header, rows = parse_metadata(shared_tensorboard.metadata(run, snap.tensor_name))
    assert header == ["word", "rank", "query"]
    assert len(rows) == 30
    for i, row in enumerate(rows):
        assert len(row) == 3
        if i != 4:
            assert row[0] == f"w{i}" and row[1] == str(i)


def test_prepared_metadata_serves_the_same_labels_at_every_step(shared_tensorboard, shared_run):
    run_dir, run = shared_run()
    rows_in = [[f"w{i}", i, "" if i % 4 == 0 else f"q\t{i}"] for i in range(30)]
    rows_in[4] = ["", "", ""]
    prepared = ep.prepare_metadata(rows_in, ["word", "rank", "query"])
    writer = ep.ProjectorWriter(run_dir)
    snaps = [
        writer.add_embedding(RNG.random((30, 4)), prepared, global_step=step, tag="words")
        for step in (1, 2)
    ]
    header_in = ["word", "rank", "query"]
    direct = writer.add_embedding(
        RNG.random((30, 4)), rows_in, global_step=3, tag="words", metadata_header=header_in
    )
    shared_tensorboard.wait_for_run(run)
    texts = [shared_tensorboard.metadata(run, snap.tensor_name) for snap in [*snaps, direct]]
    assert texts[0] == texts[1] == texts[2]  # the same bytes as labels given directly
    header, rows = parse_metadata(texts[0])
    assert header == ["word", "rank", "query"] and len(rows) == 30
    assert rows[7] == ["w7", "7", "q\\t7"] and rows[4][0] == "(empty)"


def test_prepared_metadata_for_other_rows_is_refused_before_writing(tmp_path):
    prepared = ep.prepare_metadata(["a", "b", "c"])
    writer = ep.ProjectorWriter(tmp_path)
    with pytest.raises(InvalidEmbeddingError, match="prepared metadata has 3 labels but mat has 4"):
        writer.add_embedding(RNG.random((4, 2)), prepared)
    with pytest.raises(InvalidEmbeddingError, match="metadata_header goes to prepare_metadata"):
        writer.add_embedding(RNG.random((3, 2)), prepared, metadata_header=["word"])
    with pytest.raises(InvalidEmbeddingError, match="list of labels"):
        ep.prepare_metadata(42)  # type: ignore[arg-type]
    assert projector_files(tmp_path) == []


def test_coexists_with_tensorboardx_in_one_run(shared_tensorboard, shared_run):
    from tensorboardX import SummaryWriter

    run_dir, run = shared_run()
    theirs = RNG.random((20, 5)).astype(np.float32)
    ours = RNG.random((20, 5)).astype(np.float32)
    with SummaryWriter(str(run_dir)) as tbx:
        tbx.add_embedding(theirs, metadata=[f"t{i}" for i in range(20)], global_step=1)
        snap = ep.add_embedding(tbx, ours, metadata=[f"o{i}" for i in range(20)], global_step=1)
        tbx.add_embedding(theirs * 2, metadata=[f"t{i}" for i in range(20)], global_step=2)
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.tensor_names(run)
    # One entry per step whatever wrote it: ours replaced tensorboardX's step 1 in place.
    assert sorted(names) == sorted([snap.tensor_name, "default:00002"])
    served = shared_tensorboard.tensor(run, "default:00002")
    np.testing.assert_allclose(served, theirs * 2, rtol=1e-6)
    np.testing.assert_array_equal(shared_tensorboard.tensor(run, snap.tensor_name), ours)
    _, rows = parse_metadata(shared_tensorboard.metadata(run, snap.tensor_name))
    assert [r[0] for r in rows] == [f"o{i}" for i in range(20)]
    # tensorboardX's files are untouched next to ours in the same step directory.
    assert (run_dir / "00001" / "default" / "tensors.tsv").exists()


def test_rewriting_a_step_leaves_one_entry_with_fresh_data(shared_tensorboard, shared_run):
    run_dir, run = shared_run()
    writer = ep.ProjectorWriter(run_dir)
    first = writer.add_embedding(RNG.random((10, 3)), metadata=list("abcdefghij"), global_step=5)
    second_data = RNG.random((12, 3)).astype(np.float32)
    second = writer.add_embedding(second_data, global_step=5)
    shared_tensorboard.wait_for_run(run)
    names = shared_tensorboard.tensor_names(run)
    assert names == [second.tensor_name]
    assert second.tensor_name != first.tensor_name  # TensorBoard caches tensors by name
    np.testing.assert_array_equal(shared_tensorboard.tensor(run, second.tensor_name), second_data)
    assert not first.tensor_path.exists() and first.metadata_path is not None
    assert not first.metadata_path.exists()
    assert writer.steps() == [5]


def test_accepts_torch_writer_and_tensors(shared_tensorboard, shared_run):
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    run_dir, run = shared_run()
    weights = torch.randn(16, 8, requires_grad=True)
    half = torch.randn(16, 8).to(torch.bfloat16)
    with SummaryWriter(str(run_dir)) as writer:
        a = ep.add_embedding(writer, weights * 2, global_step=0, tag="grad")
        b = ep.add_embedding(writer, half, global_step=0, tag="bf16")
        c = ep.add_embedding(writer, [[1.0, 2.0], [3.0, 4.5]], global_step=0, tag="lists")
    shared_tensorboard.wait_for_run(run)
    np.testing.assert_array_equal(
        shared_tensorboard.tensor(run, a.tensor_name), (weights * 2).detach().numpy()
    )
    np.testing.assert_array_equal(
        shared_tensorboard.tensor(run, b.tensor_name), half.float().numpy()
    )
    np.testing.assert_array_equal(
        shared_tensorboard.tensor(run, c.tensor_name), [[1.0, 2.0], [3.0, 4.5]]
    )


def test_tensor_names_sort_chronologically_past_99999(shared_tensorboard, shared_run):
    run_dir, run = shared_run()
    writer = ep.ProjectorWriter(run_dir)
    steps = [100_000, 7, 99_999, 0, 1_234_567]
    names = {writer.add_embedding(RNG.random((4, 2)), global_step=s).tensor_name: s for s in steps}
    shared_tensorboard.wait_for_run(run)
    served = shared_tensorboard.tensor_names(run)
    assert sorted(served) == sorted(names)
    # The frontend orders same-sized tensors by name: that order must be step order.
    assert [names[n] for n in sorted(served)] == sorted(steps)
    assert all(":" in n and str(names[n]) in n for n in served)


@pytest.mark.parametrize(
    "matrix",
    [
        np.zeros((40, 6)),
        np.array([[0.0, 0.0], [0.0, 0.0]]),
        # 0x41414141 and friends: every byte is printable ASCII
        np.frombuffer(b"AAAABBBBCCCCDDDD", dtype="<f4").reshape(2, 2),
    ],
    ids=["zeros", "tiny-zeros", "ascii-bytes"],
)
def test_matrix_whose_bytes_are_valid_utf8_is_written_as_tsv(
    shared_tensorboard, shared_run, matrix
):
    run_dir, run = shared_run()
    snap = ep.add_embedding(run_dir, matrix)
    assert snap.tensor_path.suffix == ".tsv"
    shared_tensorboard.wait_for_run(run)
    np.testing.assert_array_equal(
        shared_tensorboard.tensor(run, snap.tensor_name), matrix.astype(np.float32)
    )


def test_sprites_square_padded_and_served(shared_tensorboard, shared_run):
    run_dir, run = shared_run()
    count = 10
    images = np.zeros((count, 3, 6, 4), dtype=np.float32)  # non-square, float in [0, 1]
    for i in range(count):
        images[i, i % 3] = (i + 1) / count
    snap = ep.add_embedding(run_dir, RNG.random((count, 3)), label_img=images)
    shared_tensorboard.wait_for_run(run)
    entry = shared_tensorboard.embedding(run, snap.tensor_name)
    assert [int(v) for v in entry["sprite"]["singleImageDim"]] == [6, 6]
    sheet = np.asarray(Image.open(io.BytesIO(shared_tensorboard.sprite(run, snap.tensor_name))))
    per_row = 4  # ceil(sqrt(10))
    assert sheet.shape == (3 * 6, per_row * 6, 3)
    for i in range(count):
        r, c = divmod(i, per_row)
        cell = sheet[r * 6 : (r + 1) * 6, c * 6 : (c + 1) * 6]
        expected = round((i + 1) / count * 255)
        assert cell[:, 1:5, i % 3].min() == expected  # image centred, 1 px padding each side
        assert cell[:, 0, :].max() == 0


def test_oversized_sprite_is_downscaled_with_a_warning(tmp_path):
    count = 20  # 5 per row; 5 * 2000 px > 8192
    images = np.full((count, 1, 2000, 2000), 200, dtype=np.uint8)
    with pytest.warns(UserWarning, match="downscaling each to 1638x1638"):
        snap = ep.add_embedding(tmp_path, RNG.random((count, 2)), label_img=images)
    assert snap.sprite_path is not None
    with Image.open(snap.sprite_path) as sheet:
        assert sheet.size == (5 * 1638, 4 * 1638)
        assert max(sheet.size) <= ep.MAX_SPRITE_SIDE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mat": np.array([[1.0, np.nan], [2.0, 3.0], [np.inf, 1.0]])}, r"2 row.*NaN or Inf.*0, 2"),
        ({"mat": np.array([[1e39, 1.0], [2.0, 3.0]])}, "overflow float32"),
        ({"mat": np.ones(5)}, "must be 2-D"),
        ({"mat": np.ones((1, 5))}, "at least 2 rows and 2 columns"),
        ({"mat": np.ones((5, 1))}, "at least 2 rows and 2 columns"),
        ({"mat": np.ones((0, 5))}, "at least 2 rows"),
        ({"mat": [[1, 2], [3]]}, "rectangular"),
        ({"mat": np.ones((3, 2)), "metadata": ["a", "b"]}, "2 labels but mat has 3 rows"),
        ({"mat": np.ones((3, 2)), "metadata": "abc"}, "not a single string"),
        ({"mat": np.ones((3, 2)), "label_img": np.ones((3, 2, 4, 4))}, "1, 3 or 4 channels"),
        ({"mat": np.ones((3, 2)), "label_img": np.ones((2, 1, 4, 4))}, "2 images but mat has 3"),
        ({"mat": np.ones((3, 2)), "label_img": np.full((3, 1, 4, 4), 255.0)}, r"in \[0, 1\]"),
        ({"mat": np.ones((3, 2)), "global_step": -1}, "global_step must be >= 0"),
        ({"mat": np.ones((3, 2)), "global_step": 1.5}, "non-negative integer"),
        ({"mat": np.ones((3, 2)), "tag": ""}, "non-empty string"),
        (
            {
                "mat": np.ones((3, 2)),
                "metadata": [["a", 1], ["b", 2], ["c"]],
                "metadata_header": ["w", "n"],
            },
            "row 2 has 1 columns",
        ),
    ],
)
def test_bad_input_is_refused_before_any_file_is_touched(tmp_path, kwargs, message):
    logdir = tmp_path / "logs"
    with pytest.raises(InvalidEmbeddingError, match=message):
        ep.add_embedding(logdir, **kwargs)
    assert not logdir.exists()


def test_bad_input_leaves_existing_snapshots_untouched(tmp_path):
    good = ep.add_embedding(tmp_path, RNG.random((4, 3)), metadata=list("abcd"))
    before = {p: p.read_bytes() for p in projector_files(tmp_path)}
    with pytest.raises(InvalidEmbeddingError):
        ep.add_embedding(tmp_path, np.full((4, 3), np.nan), metadata=list("abcd"))
    assert {p: p.read_bytes() for p in projector_files(tmp_path)} == before
    assert good.tensor_path.exists()


def test_more_rows_than_the_projector_loads_warns(tmp_path):
    with pytest.warns(UserWarning, match="loads only the first 100000"):
        snap = ep.add_embedding(tmp_path, np.ones((100_001, 2), dtype=np.float32) * 0.5)
    assert snap.shape == (100_001, 2)


def test_malformed_existing_config_is_reported_and_left_alone(tmp_path):
    config = tmp_path / "projector_config.pbtxt"
    config.write_text("embeddings { tensor_name: ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid projector config") as info:
        ep.add_embedding(tmp_path, RNG.random((3, 3)))
    assert info.value.path == str(config)
    assert config.read_text(encoding="utf-8") == "embeddings { tensor_name: "
    assert not (tmp_path / "00000").exists() or not any((tmp_path / "00000").rglob("*.bin"))


def test_event_file_created_once_so_the_run_is_listed(tmp_path):
    ep.add_embedding(tmp_path, RNG.random((3, 3)), global_step=0)
    ep.add_embedding(tmp_path, RNG.random((3, 3)), global_step=1)
    events = [p for p in tmp_path.iterdir() if "tfevents" in p.name]
    assert len(events) == 1


def test_event_file_passes_tensorboards_checksums(tmp_path):
    # The TFRecord framing and masked CRC-32C are ours; TensorBoard's reader checks both.
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    ep.add_embedding(tmp_path, RNG.random((3, 3)))
    (event_file,) = [p for p in tmp_path.iterdir() if "tfevents" in p.name]
    events = list(EventFileLoader(str(event_file)).Load())
    assert [event.file_version for event in events] == ["brain.Event:2"]
    data = event_file.read_bytes()
    data = data[:-1] + bytes([data[-1] ^ 1])  # one flipped bit in the record's checksum
    event_file.write_bytes(data)
    assert list(EventFileLoader(str(event_file)).Load()) == []


def test_steps_lists_every_writers_entries_for_the_tag(tmp_path):
    from tensorboardX import SummaryWriter

    writer = ep.ProjectorWriter(tmp_path)
    for step in (3, 1, 2):
        writer.add_embedding(RNG.random((3, 2)), global_step=step, tag="a/b")
    writer.add_embedding(RNG.random((3, 2)), global_step=9, tag="other")
    with SummaryWriter(str(tmp_path)) as tbx:
        tbx.add_embedding(RNG.random((3, 2)), global_step=50, tag="a/b")
    assert writer.steps("a/b") == [1, 2, 3, 50]  # tensorboardX's step too (issue #28)
    assert writer.steps("other") == [9]
    assert len(writer.entries()) == 5


def test_metadata_text_matches_what_the_frontend_parses():
    labels = ["a\tb", "", " ", "\n", "ok", "\ufeff"]
    text = _format.metadata_tsv([labels], None)
    header, rows = parse_metadata(text)
    assert header is None
    assert len(rows) == len(labels)
    assert [r[0] for r in rows] == ["a\\tb", "(empty)", "(empty)", "\\n", "ok", "(empty)"]
    # TensorBoard serves the file as UTF-8: no lone surrogates, and JSON round-trips it exactly.
    text.encode("utf-8")
    assert json.loads(json.dumps(text, ensure_ascii=False)) == text


def test_live_tensorboard_shows_new_snapshots_without_restart(tmp_path, start_tensorboard):
    logdir = tmp_path / "logs"
    live = logdir / "live"
    frozen = logdir / "frozen"
    ep.ProjectorWriter(live).add_embedding(RNG.random((5, 3)), global_step=0)
    ep.ProjectorWriter(frozen, live_refresh=False).add_embedding(RNG.random((5, 3)), global_step=0)
    tb: TensorBoard = start_tensorboard(logdir)
    tb.wait_for(lambda: {"live", "frozen"} <= set(tb.runs()))
    assert len(tb.tensor_names("live")) == 1

    # Without a change in the set of runs, TensorBoard never re-reads the config.
    ep.ProjectorWriter(frozen, live_refresh=False).add_embedding(RNG.random((5, 3)), global_step=1)
    tb.wait_for(lambda: len(tb.all_runs()) >= 3)  # (it has noticed the live run's marker)
    # The default writer changes the set of runs, so the next request re-reads every config.
    snap = ep.ProjectorWriter(live).add_embedding(RNG.random((5, 3)), global_step=1)
    tb.wait_for(lambda: snap.tensor_name in tb.tensor_names("live"), timeout=30)
    assert len(tb.tensor_names("live")) == 2


def test_tag_directories_stay_inside_the_log_dir_and_tensorboard_accepts_paths(tmp_path):
    from tensorboard.plugins.projector.projector_plugin import _rel_to_abs_asset_path

    tags = [
        "../../etc",
        "/abs/path",
        "..",
        ".",
        "a/../../b",
        "C:\\windows\\system32",
        "CON",
        "nul.txt",
        "x" * 1000,
        "null\x00byte",
        "rtl\u202etxt.exe",
        "zero\u200bwidth",
        "日本語/タグ",
        "emoji 🦜 tag ",
        "trailing.",
    ]
    writer = ep.ProjectorWriter(tmp_path)
    for index, tag in enumerate(tags):
        writer.add_embedding(
            RNG.random((3, 2)), metadata=["a", "b", "c"], global_step=index, tag=tag
        )
    config = tmp_path / "projector_config.pbtxt"
    entries = writer.entries()
    assert len(entries) == len(tags)
    root = os.path.realpath(tmp_path)
    for entry in entries:
        for path in (entry.tensor_path, entry.metadata_path):
            resolved = _rel_to_abs_asset_path(path, str(config))
            assert resolved.startswith(root + os.sep)
            assert os.path.isfile(resolved)
    for tag in tags:
        assert writer.steps(tag) == [tags.index(tag)]


# -- retention ----------------------------------------------------------------------------------


def test_retain_keeps_step_0_and_the_last_three_and_tensorboard_serves_only_those(
    shared_tensorboard, shared_run
):
    logdir, run = shared_run()
    writer = ep.ProjectorWriter(logdir)
    snapshots = {}
    for step in range(10):
        snapshots[step] = writer.add_embedding(
            RNG.random((6, 3)), metadata=list("abcdef"), global_step=step, tag="words"
        )
        writer.add_embedding(RNG.random((6, 3)), global_step=step, tag="other")
        writer.retain("words", keep=3)
    kept = [0, 7, 8, 9]
    assert writer.steps("words") == kept
    assert writer.steps("other") == list(range(10))  # other tags untouched
    expected = sorted(snapshots[step].tensor_name for step in kept)
    shared_tensorboard.wait_for(
        lambda: sorted(n for n in shared_tensorboard.tensor_names(run) if "words" in n) == expected
    )
    served = shared_tensorboard.tensor(run, snapshots[8].tensor_name)
    np.testing.assert_array_equal(
        served, np.fromfile(snapshots[8].tensor_path, "<f4").reshape(6, 3)
    )
    for step in range(1, 7):
        assert not snapshots[step].directory.exists()  # pruned files and their directory gone
        assert (logdir / _format.step_dirname(step) / "other").is_dir()
    assert writer.remove_steps("other", range(1, 7)) == [1, 2, 3, 4, 5, 6]
    assert not any((logdir / _format.step_dirname(step)).exists() for step in range(1, 7))


def test_remove_steps_keeps_tensorboardx_snapshots_and_ignores_unknown_steps(tmp_path):
    from tensorboardX import SummaryWriter

    writer = ep.ProjectorWriter(tmp_path)
    for step in range(3):
        writer.add_embedding(RNG.random((4, 2)), global_step=step, tag="words")
    with SummaryWriter(str(tmp_path)) as tbx:
        tbx.add_embedding(RNG.random((4, 2)), global_step=1, tag="words")
    assert writer.remove_steps("words", [1, 5]) == [1]
    assert writer.steps("words") == [0, 1, 2]  # tensorboardX's step 1 stays
    tbx_entries = [e for e in writer.entries() if e.tensor_path.endswith("tensors.tsv")]
    assert len(tbx_entries) == 1
    assert (tmp_path / tbx_entries[0].tensor_path).is_file()  # its shared directory stays
    assert writer.retain("words", keep=1, always_keep=()) == [0]
    assert writer.steps("words") == [1, 2]  # tensorboardX's step 1 is never removed
    assert ep.ProjectorWriter(tmp_path / "empty").retain("words", keep=1) == []


@pytest.mark.parametrize("keep", [0, -1, 1.5, True, None])
def test_retain_refuses_a_keep_below_one(tmp_path, keep):
    with pytest.raises(ValueError, match="keep must be an integer >= 1"):
        ep.ProjectorWriter(tmp_path).retain("words", keep=keep)


# -- reading a snapshot back --------------------------------------------------------------------


def test_read_round_trips_binary_and_tsv_tensors_with_their_labels(tmp_path):
    writer = ep.ProjectorWriter(tmp_path)
    matrix = RNG.random((5, 4)).astype(np.float32)
    rows = [["a\tb", "1"], ["", " "], ["c", "3"], ["日本", "4"], ["e", "5"]]  # a blank row
    writer.add_embedding(matrix, metadata=rows, metadata_header=["word", "n"], global_step=3)
    zeros = np.zeros((3, 2), dtype=np.float32)  # valid UTF-8 as bytes: written as TSV
    snap = writer.add_embedding(zeros, metadata=["x", "y", "z"], global_step=3, tag="zeros")
    assert snap.tensor_path.suffix == ".tsv"

    stored, columns, header = writer.read("default", 3)
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, matrix)
    assert header == ["word", "n"]
    assert columns == [["a\\tb", "(empty)", "c", "日本", "e"], ["1", " ", "3", "4", "5"]]

    again = writer.read("zeros", 3)
    np.testing.assert_array_equal(again.matrix, zeros)
    assert again.columns == [["x", "y", "z"]] and again.header is None


def test_read_gives_the_current_revision_and_works_without_labels(tmp_path):
    writer = ep.ProjectorWriter(tmp_path)
    writer.add_embedding(RNG.random((4, 3)), global_step=1)
    newer = RNG.random((4, 3)).astype(np.float32)
    writer.add_embedding(newer, global_step=1)  # a rewrite: revision 2
    matrix, columns, header = writer.read("default", 1)
    np.testing.assert_array_equal(matrix, newer)
    assert columns == [] and header is None


def test_read_reads_tensorboardx_snapshots(tmp_path):
    from tensorboardX import SummaryWriter

    matrix = RNG.random((6, 3)).astype(np.float32)
    with SummaryWriter(str(tmp_path)) as tbx:
        tbx.add_embedding(matrix, metadata=list("uvwxyz"), global_step=7, tag="tbx")
    stored, columns, header = ep.ProjectorWriter(tmp_path).read("tbx", 7)
    np.testing.assert_allclose(stored, matrix, rtol=1e-6)
    assert columns == [list("uvwxyz")] and header is None


def test_read_of_a_missing_snapshot_names_what_there_is(tmp_path):
    writer = ep.ProjectorWriter(tmp_path)
    writer.add_embedding(RNG.random((4, 3)), global_step=2, tag="words")
    with pytest.raises(ep.SnapshotNotFoundError, match=r"'words' at step 5.*steps \[2\]") as info:
        writer.read("words", 5)
    assert isinstance(info.value, LookupError)
    with pytest.raises(ep.SnapshotNotFoundError, match=r"Other tags: \['words'\]"):
        writer.read("nothing", 2)


def test_read_config_reuses_a_parse_only_for_the_same_text(tmp_path):
    from embedding_projector._format.config import read_config

    writer = ep.ProjectorWriter(tmp_path)
    writer.add_embedding(np.eye(3, dtype=np.float32), global_step=1, tag="a")
    path = tmp_path / "projector_config.pbtxt"
    first = read_config(path)
    first.embeddings[0].tensor_name = "edited by a caller"  # callers edit what they get
    assert read_config(path).embeddings[0].tensor_name != "edited by a caller"
    writer.add_embedding(np.eye(3, dtype=np.float32), global_step=2, tag="a")
    assert [e.tensor_name for e in read_config(path).embeddings] == [
        e.tensor_name for e in ep.ProjectorWriter(tmp_path).entries()
    ]
    assert len(read_config(path).embeddings) == 2
    path.write_text(path.read_text().replace("a:000000002", "renamed"), encoding="utf-8")
    assert "renamed" in [e.tensor_name for e in read_config(path).embeddings]
