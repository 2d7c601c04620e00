"""Property-based checks: any label list stays aligned, any tag stays inside the log dir."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.tensorflow_stub.io.gfile import GFile
from tensorboard.plugins.projector.projector_plugin import _rel_to_abs_asset_path

from embedding_projector import ProjectorWriter, prepare_metadata
from embedding_projector._format import MAX_TAG_DIR_BYTES, metadata_tsv, tag_dirname
from embedding_projector.errors import InvalidEmbeddingError
from embedding_projector.writer import escape_label, prepare_metadata_columns
from tb_server import parse_metadata

CI_SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def served_metadata(path: Path) -> str:
    """Read a metadata file the way TensorBoard's server streams it (text mode, line by line)."""
    with GFile(str(path), "r") as handle:
        return "".join(handle)


@CI_SETTINGS
@given(labels=st.lists(st.text(max_size=20), min_size=2, max_size=40))
def test_any_labels_stay_one_row_per_point(tmp_path_factory, labels):
    path = tmp_path_factory.mktemp("labels") / "metadata.tsv"
    path.write_bytes(metadata_tsv([labels], None).encode("utf-8"))
    header, rows = parse_metadata(served_metadata(path))
    assert header is None
    assert len(rows) == len(labels)
    for label, row in zip(labels, rows, strict=True):
        assert len(row) == 1
        if not any(c in label for c in "\t\n\r") and label.strip() and "\ufeff" not in label:
            assert row[0] == label


@CI_SETTINGS
@given(
    table=st.lists(
        st.tuples(st.text(max_size=8), st.integers(), st.text(max_size=8)), min_size=2, max_size=20
    ),
    header=st.tuples(st.text(max_size=6), st.text(max_size=6), st.text(max_size=6)),
)
def test_any_multi_column_table_keeps_its_shape(tmp_path_factory, table, header):
    path = tmp_path_factory.mktemp("table") / "metadata.tsv"
    rows_in = [[str(cell) for cell in row] for row in table]
    path.write_bytes(
        metadata_tsv([list(c) for c in zip(*rows_in, strict=True)], list(header)).encode("utf-8")
    )
    parsed_header, rows = parse_metadata(served_metadata(path))
    assert parsed_header is not None and len(parsed_header) == 3
    assert len(set(parsed_header)) == 3  # the frontend keys rows by column name
    assert len(rows) == len(table)
    assert all(len(row) == 3 for row in rows)
    for row_in, row in zip(table, rows, strict=True):
        assert row[1] == str(row_in[1])


def per_cell_reference(columns: list[list[str]], header: list[str] | None) -> str:
    """The metadata text by definition: every cell escaped on its own, row by row."""
    lines = [] if header is None else ["\t".join(escape_label(name) for name in header)]
    for row in zip(*columns, strict=True):
        cells = [
            cell.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r") for cell in row
        ]
        if all(not cell.replace("\ufeff", " ").strip() for cell in cells):
            cells[0] = "(empty)"
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


#: Cells made of what the column-wise escaping must get right: separators, NUL, blanks, BOM.
TRICKY_CELLS = st.text(alphabet=st.sampled_from("ab \t\n\r\x00\ufeff\u3000x"), max_size=5)


@CI_SETTINGS
@given(
    table=st.lists(st.lists(TRICKY_CELLS, min_size=3, max_size=3), min_size=1, max_size=25),
    single=st.booleans(),
)
def test_column_wise_escaping_equals_escaping_each_cell(table, single):
    columns = [list(column) for column in zip(*table, strict=True)]
    if single:
        columns, header = columns[:1], None
    else:
        header = ["word", "count", "word"]
    expected = per_cell_reference(columns, header)
    if header is not None:  # duplicate names are numbered, as the frontend keys by name
        expected = expected.replace("word\tcount\tword", "word\tcount\tword (2)", 1)
    assert metadata_tsv(columns, header) == expected


@CI_SETTINGS
@given(
    table=st.lists(
        st.lists(TRICKY_CELLS | st.integers() | st.binary(max_size=3), min_size=2, max_size=2),
        min_size=1,
        max_size=25,
    ),
    single=st.booleans(),
)
def test_labels_prepared_by_column_equal_labels_prepared_by_row(table, single):
    # The exporter hands its columns over as they are; the bytes must be what rows give.
    columns = [list(column) for column in zip(*table, strict=True)]
    if single:
        by_row = prepare_metadata([row[0] for row in table])
        by_column = prepare_metadata_columns(columns[:1])
    else:
        by_row = prepare_metadata(table, ["word", "count"])
        by_column = prepare_metadata_columns(columns, ["word", "count"])
    assert by_column == by_row


def test_labels_by_column_refuse_ragged_columns_or_a_missing_header():
    with pytest.raises(InvalidEmbeddingError, match="equally long; got lengths \\[1, 2\\]"):
        prepare_metadata_columns([["a", "b"], ["1"]], ["word", "rank"])
    with pytest.raises(InvalidEmbeddingError, match="2 metadata columns need as many names"):
        prepare_metadata_columns([["a", "b"], ["1", "2"]])
    with pytest.raises(InvalidEmbeddingError, match="at least one column"):
        prepare_metadata_columns([])


@CI_SETTINGS
@given(tag=st.text(min_size=1, max_size=300))
def test_any_tag_is_one_safe_directory_inside_the_log_dir(tmp_path_factory, tag):
    name = tag_dirname(tag)
    assert name not in ("", ".", "..")
    assert not name.startswith(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name.encode("utf-8")) <= MAX_TAG_DIR_BYTES
    logdir = tmp_path_factory.mktemp("tags")
    writer = ProjectorWriter(logdir, live_refresh=False)
    snap = writer.add_embedding(np.eye(2) + 0.5, metadata=["a", "b"], tag=tag)
    config = str(logdir / "projector_config.pbtxt")
    root = os.path.realpath(logdir)
    for entry in writer.entries():
        resolved = _rel_to_abs_asset_path(entry.tensor_path, config)
        assert resolved.startswith(root + os.sep) and os.path.isfile(resolved)
    assert snap.directory.parent.parent == logdir
    assert writer.steps(tag) == [0]


@given(first=st.text(min_size=1, max_size=40), second=st.text(min_size=1, max_size=40))
@CI_SETTINGS
def test_different_tags_get_different_directories(first, second):
    if first != second:
        assert tag_dirname(first) != tag_dirname(second)
