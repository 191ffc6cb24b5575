"""kiln and kiln_edge run one preprocessing implementation: bad data and bad model outputs get the same
message on both backends (kiln's DataError / ShapeError / SerializationError, kiln_edge's EdgeDataError /
EdgeError), and the fitted files are read by one reader."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.data.features import (BinaryFeature, CategoryFeature, NumericFeature, SequenceFeature, TextFeature,
                                load_features, save_features)
from kiln.errors import DataError, SerializationError, ShapeError
from kiln_edge import EdgeDataError, EdgeError
from kiln_edge import load_features as edge_load_features

TRAIN = pd.DataFrame({"n": [1.0, 2.0, 4.0], "c": ["a", "b", "a"], "y": ["x", "y", "x"], "b": ["no", "yes", "no"],
                      "s": ["1 2", "3", [4, 5, 6]], "t": ["good film", "bad film", "ok"]})


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """``(kiln features, kiln_edge features)``: the same fitted features on both backends."""
    folder = tmp_path_factory.mktemp("features")
    fitted = [NumericFeature("n").fit(TRAIN["n"]), NumericFeature("target", column="n", output=True).fit(TRAIN["n"]),
              CategoryFeature("c").fit(TRAIN["c"]), CategoryFeature("y", output=True).fit(TRAIN["y"]),
              BinaryFeature("b").fit(TRAIN["b"]), BinaryFeature("by", column="b", output=True).fit(TRAIN["b"]),
              SequenceFeature("s").fit(TRAIN["s"]), TextFeature("t").fit(TRAIN["t"])]
    save_features(fitted, folder)
    return {f.name: f for f in fitted}, edge_load_features(folder)


@pytest.mark.parametrize("name, column, expected", [
    ("n", ["1", "x", "y"], "row 1 holds 'x', which is not a number (2 such rows: rows 1, 2)"),
    ("n", [1.0, np.inf], "infinite values in row 1"),
    ("target", [1.0, None], "no target value in row 1"),
    ("y", ["x", "z"], "row 1 holds 'z', a class the training split does not have"),
    ("y", ["x", None], "no label (NaN/None) in row 1"),
    ("b", ["yes", "maybe"], "row 1 holds 'maybe', which is neither 'no' nor 'yes'"),
    ("by", ["yes", None], "no label (NaN/None) in row 1"),
    ("s", ["1 2", "3 x"], "row 1 holds '3 x', whose item 'x' is not a number"),
    ("s", [[1.0, float("nan")]], "row 0 holds NaN or infinite values"),
])
def test_bad_data_gets_the_same_message_on_both_backends(both, name, column, expected):
    ours, edge = both
    series = pd.Series(column, dtype=object)
    with pytest.raises(DataError) as kiln_error:
        ours[name].transform(series)
    with pytest.raises(EdgeDataError) as edge_error:
        edge[name].transform(series)
    assert str(kiln_error.value) == str(edge_error.value)
    assert expected in str(kiln_error.value) and str(kiln_error.value).startswith(f"Column {ours[name].column!r}")


@pytest.mark.parametrize("name, outputs, expected", [
    ("target", np.zeros((2, 3)), "decodes outputs of shape (rows, 1) or (rows,); received (2, 3)"),
    ("y", np.zeros((2, 5)), "decodes scores of shape (rows, 2) or integer indices (rows,)"),
    ("by", np.zeros((2, 2)), "decodes probabilities of shape (rows, 1) or (rows,); received (2, 2)"),
    ("s", np.zeros(3), "decodes outputs of shape (rows, 3); received (3,)"),
    ("t", np.zeros((2, 3)), "decodes integer ids (rows, length) or scores (rows, length, 6); received float64"),
])
def test_bad_outputs_get_the_same_message_on_both_backends(both, name, outputs, expected):
    ours, edge = both
    with pytest.raises(ShapeError) as kiln_error:
        ours[name].decode(outputs)
    with pytest.raises(EdgeError) as edge_error:
        edge[name].decode(outputs)
    assert str(kiln_error.value) == str(edge_error.value)
    assert expected in str(kiln_error.value)


@pytest.mark.parametrize("name, outputs", [
    ("target", [[0.5], [-1.0]]), ("y", [[0.2, 0.8], [0.6, 0.4]]), ("y", [1, 0]), ("by", [[0.5], [0.2]]),
    ("s", [[0.0, 1.0, 2.0]]), ("t", [[2, 3, 0, 1]]),
])
def test_decodes_agree(both, name, outputs):
    ours, edge = both
    kiln_out, edge_out = ours[name].decode(torch.tensor(outputs)), edge[name].decode(np.array(outputs))
    if isinstance(kiln_out, np.ndarray):
        assert kiln_out.dtype == edge_out.dtype and np.array_equal(kiln_out, edge_out)
    else:
        assert kiln_out == edge_out


def _corrupt(folder, change):
    document = json.loads((folder / "features.json").read_text())
    change(document)
    (folder / "features.json").write_text(json.dumps(document))


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(format="other"), 'is not a kiln features file (no "format": "kiln.features")'),
    (lambda d: d.update(format_version=9), "has format_version 9; this kiln reads up to 1. Upgrade kiln."),
    (lambda d: d.update(safetensors_sha256="0"), "(its SHA-256 differs): the two files come from different saves"),
    (lambda d: d["features"][0].update(type="colour"), "feature 'n' has unknown type 'colour'; known: numeric"),
])
def test_one_reader_one_message(tmp_path, change, expected):
    save_features([NumericFeature("n").fit(TRAIN["n"])], tmp_path)
    _corrupt(tmp_path, change)
    with pytest.raises(SerializationError) as kiln_error:
        load_features(tmp_path)
    with pytest.raises(EdgeError) as edge_error:
        edge_load_features(tmp_path)
    assert str(kiln_error.value) == str(edge_error.value)
    assert expected in str(kiln_error.value)


def test_a_missing_column_gets_the_same_message_on_both_backends(both):
    ours, edge = both
    frame = pd.DataFrame({"nn": [1.0], "other": [2.0]})
    with pytest.raises(DataError) as kiln_error:
        ours["n"].transform(frame)
    with pytest.raises(EdgeDataError) as edge_error:
        edge["n"].transform(frame)
    assert str(kiln_error.value) == str(edge_error.value) == (
        "The data has no column 'n' for input numeric feature 'n'. Did you mean 'nn'? Columns: nn, other. Fix the "
        "feature's `column`, or rename the column in the data.")
