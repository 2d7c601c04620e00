"""``embedding-projector export``: flags in sync with the Python API, output, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedding_projector.cli import EXPORT_FLAG_TO_PARAMETER, build_parser, main
from embedding_projector.export import export_embeddings
from embedding_projector.readers import SourceOptions
from embedding_projector.readers.selection import RowSelection, select_keys
from tb_server import TensorBoard, parse_metadata
from vector_files import japanese_words, random_vectors, word2vec_bytes, write


def _export_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["export"]  # type: ignore[no-any-return]
    raise AssertionError("no export subcommand")


def _api_parameters() -> dict[str, object]:
    """export_embeddings' parameters, with its option objects expanded into their fields."""
    parameters: dict[str, object] = {
        name: parameter.default
        for name, parameter in inspect.signature(export_embeddings).parameters.items()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    assert parameters.pop("selection") is None and parameters.pop("source_options") is None
    for options in (RowSelection, SourceOptions):
        for option in dataclasses.fields(options):
            assert option.name not in parameters, option.name
            parameters[option.name] = option.default
    return parameters


def test_every_flag_maps_to_an_export_parameter_and_back() -> None:
    parameters = set(_api_parameters())
    destinations = {
        action.dest
        for action in _export_parser()._actions
        if not isinstance(action, argparse._HelpAction)
    }
    mapped = {EXPORT_FLAG_TO_PARAMETER.get(dest, dest) for dest in destinations}
    assert mapped == parameters, (
        f"flags without a parameter: {sorted(mapped - parameters)}; "
        f"parameters without a flag: {sorted(parameters - mapped)}"
    )


def test_export_signature_stays_small() -> None:
    assert len(inspect.signature(export_embeddings).parameters) <= 12


def test_glyph_sprites_from_the_command_line(tmp_path: Path) -> None:
    from embedding_projector import ProjectorWriter
    from embedding_projector.glyphs import glyph_images

    chars = ["東", "京", "大", "阪", "あ", "A"]
    source = tmp_path / "chars.txt"
    write(source, word2vec_bytes(chars, random_vectors(len(chars), 4), binary=False))
    logdir = tmp_path / "run"
    assert (
        main(["export", str(source), "--logdir", str(logdir), "--sprites", "glyphs", "--quiet"])
        == 0
    )
    (entry,) = ProjectorWriter(logdir).entries()
    from PIL import Image

    cell = entry.sprite.single_image_dim[0]
    sheet = np.asarray(Image.open(logdir / entry.sprite.image_path))
    np.testing.assert_array_equal(sheet[:cell, :cell], glyph_images(chars[:1], size=cell)[0, 0])


def test_flag_defaults_match_the_api() -> None:
    parameters = _api_parameters()
    # An appended flag starts from None (argparse cannot append to the field's empty tuple).
    parameters["label_columns"] = None
    for action in _export_parser()._actions:
        if action.dest in parameters and action.dest not in ("source", "logdir", "words"):
            assert action.default == parameters[action.dest], action.dest


@pytest.fixture
def vector_file(tmp_path: Path) -> tuple[Path, list[str], np.ndarray]:
    words, vectors = japanese_words(300), random_vectors(300, 6, seed=4)
    return write(tmp_path / "v.bin", word2vec_bytes(words, vectors, binary=True)), words, vectors


def test_export_prints_summary_and_tensorboard_command(
    vector_file: tuple[Path, list[str], np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shared_tensorboard: TensorBoard,
    shared_run: object,
) -> None:
    path, words, vectors = vector_file
    word_file = tmp_path / "words.txt"
    word_file.write_text(f"{words[200]}\n見つからない\n", encoding="utf-8")
    run_dir, run = shared_run()  # type: ignore[operator]
    code = main(
        [
            "export",
            str(path),
            "--logdir",
            str(run_dir),
            "--words",
            str(word_file),
            "--near",
            words[7],
            "無し",
            "--near-k",
            "3",
            "--limit",
            "5",
            "--tag",
            "cli",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    expected = select_keys(
        words,
        words=[words[200], "見つからない"],
        near=[words[7], "無し"],
        near_k=3,
        limit=5,
        vectors=vectors,
    )
    assert f"Wrote {len(expected)} rows x 6 dims" in out
    assert "missing words (1): 見つからない" in out
    assert "missing near words (1): 無し" in out
    assert f"tensorboard --logdir {run_dir}" in out.splitlines()[-1]
    assert "metadata:" in out and "tensor:" in out
    shared_tensorboard.wait_for_run(run)
    header, rows = parse_metadata(shared_tensorboard.metadata(run, "cli:000000000"))
    assert header == ["word", "rank", "near", "selected by"]
    assert [row[0] for row in rows] == expected.keys
    tensor = shared_tensorboard.tensor(run, "cli:000000000")
    np.testing.assert_array_equal(tensor[0], vectors[200])


@pytest.mark.parametrize(
    ("make_args", "pattern"),
    [
        (lambda p, d: ["export", str(d / "nope.bin"), "--logdir", str(d / "o")], "no such file"),
        (lambda p, d: ["export", str(d), "--logdir", str(d / "o")], "is a directory"),
        (
            lambda p, d: ["export", str(p), "--logdir", str(d / "o"), "--words", str(d / "x.txt")],
            "--words .*no such file",
        ),
        (
            lambda p, d: ["export", str(p), "--logdir", str(d / "o"), "--words", str(d / "w")],
            r"1 row\(s\)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    vector_file: tuple[Path, list[str], np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_args: object,
    pattern: str,
) -> None:
    path, words, _ = vector_file
    (tmp_path / "w").write_text(words[0] + "\n", encoding="utf-8")
    code = main(make_args(path, tmp_path))  # type: ignore[operator]
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embedding-projector export: error: ")
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "o").exists()


def test_truncated_file_names_row_and_offset(
    vector_file: tuple[Path, list[str], np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, _ = vector_file
    cut = write(tmp_path / "cut.bin", path.read_bytes()[:-5])
    assert main(["export", str(cut), "--logdir", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "row 299" in err and "byte offset" in err


def test_usage_errors_return_2_and_help_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "x.bin"]) == 2  # --logdir missing
    assert "--logdir" in capsys.readouterr().err
    assert main(["export", "x.bin", "--logdir", "o", "--limit", "-3"]) == 2
    assert main(["export", "x.bin", "--logdir", "o", "--binary", "--text"]) == 2
    assert main(["--help"]) == 0
    assert "export" in capsys.readouterr().out
    assert main(["export", "--help"]) == 0
    assert "selection order" in capsys.readouterr().out


def test_quiet_prints_nothing_on_success(
    vector_file: tuple[Path, list[str], np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, _ = vector_file
    assert (
        main(["export", str(path), "--logdir", str(tmp_path / "o"), "--limit", "4", "--quiet"]) == 0
    )
    out, err = capsys.readouterr()
    assert out == "" and err == ""


@pytest.mark.slow
def test_progress_bar_goes_to_stderr_on_long_reads(
    vector_file: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    # A real process with a slow progress: the bar (tqdm, delayed 0.5 s) must reach stderr.
    path, _, _ = vector_file
    script = (
        "import sys, time\n"
        "import embedding_projector.readers as r\n"
        "original = r.VectorFileReader._report\n"
        "def slow(self, stream):\n"
        "    time.sleep(0.1)\n"
        "    original(self, stream)\n"
        "r.VectorFileReader._report = slow\n"
        "r.select_from_file.__kwdefaults__['buffer_size'] = 1024\n"
        "from embedding_projector.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "export", str(path), "--logdir", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert result.returncode == 0, result.stderr
    assert "reading" in result.stderr and "B/s" in result.stderr
    assert "tensorboard --logdir" in result.stdout


def test_quiet_missing_words_name_their_case_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = ["australia", "the", "of", "King"]
    source = write(tmp_path / "v.txt", word2vec_bytes(words, random_vectors(4, 3), binary=False))
    args = ["export", str(source), "--logdir", str(tmp_path / "o"), "--limit", "3", "--quiet"]
    assert main([*args, "--near", "Australia", "king"]) == 0
    err = capsys.readouterr().err
    assert (
        "missing words: Australia (did you mean 'australia'?), king (did you mean 'King'?)" in err
    )
