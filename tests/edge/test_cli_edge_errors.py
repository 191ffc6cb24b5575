"""``kiln predict --backend onnx``: kiln_edge's errors are KilnErrors, so the CLI prints them in one
line and exits 1, as for every other user error (no test of the exception's module any more)."""

from kiln.cli import main


def test_a_folder_that_is_no_run_is_one_line_and_exit_1(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    data.write_text("size\n1\n")
    code = main(["predict", str(tmp_path), "--data", str(data), "--output", str(tmp_path / "p.csv"),
                 "--backend", "onnx"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (f"error: {tmp_path} is not a kiln run folder (no model/roles.json). Pass the folder "
                   f"`kiln train` printed, e.g. runs/my-model-20261129-101500.\n")


def test_data_without_a_feature_column_is_one_line_and_exit_1(run_dir, tmp_path, capsys):
    data = tmp_path / "rows.csv"
    data.write_text("colour,note\nred,hi\n")  # no `size` column
    code = main(["predict", str(run_dir), "--data", str(data), "--output", str(tmp_path / "p.csv"),
                 "--backend", "onnx"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: The data has no column 'size' (feature 'size').") and err.count("\n") == 1
