"""`kiln tune` on the command line: usage and config errors exit 2 before any trial; --timeout."""

import json

import pytest

from kiln.cli import main

from .conftest import iris_config


def test_kiln_tune_without_a_config_is_a_usage_error(capsys):
    assert main(["tune"]) == 2
    assert "kiln tune needs a CONFIG file with a tune: section (or --resume TUNE_FOLDER)" in capsys.readouterr().err


def test_a_bad_space_exits_2_and_names_every_problem(tmp_path, capsys):
    cfg = iris_config(tmp_path, """\
        space:
          training.batchsize: {type: int, low: 8, high: 16}
          training.epochs: {type: int, low: 0, high: 3}
        """)
    assert main(["tune", str(cfg), "--output", str(tmp_path / "tunes")]) == 2
    err = capsys.readouterr().err
    assert "Invalid tune section in" in err and "(2 problems)" in err
    assert "Unknown key 'batchsize' in training. Did you mean 'batch_size'?" in err
    assert "training.epochs: Input should be greater than 0 (got 0) (at value 0)" in err
    assert not (tmp_path / "tunes").exists()


def test_resume_of_a_folder_that_is_not_a_tune_folder(tmp_path, capsys):
    assert main(["tune", "--resume", str(tmp_path)]) == 1
    assert "not a tune folder (no tune.yaml)" in capsys.readouterr().err


@pytest.mark.slow
def test_timeout_stops_starting_trials(tmp_path, capsys):
    cfg = iris_config(tmp_path, """\
        sampler: random
        pruner: none
        space:
          training.batch_size: {type: int, low: 8, high: 16}
        """)
    assert main(["tune", str(cfg), "--trials", "50", "--timeout", "0.5", "--output", str(tmp_path / "t"),
                 "--quiet"]) == 0
    folder = capsys.readouterr().out.strip().split("tune: ")[-1]
    summary = json.loads((tmp_path / "t" / folder.split("/")[-1] / "summary.json").read_text())
    # The first trial always starts; on a quiet machine an iris trial can end within 0.5 s and a
    # second one start, so the bound is "far fewer than 50", not exactly one.
    assert 1 <= len(summary["trials"]) <= 3
