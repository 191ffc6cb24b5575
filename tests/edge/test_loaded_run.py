"""kiln_edge.run.LoadedRun with a hand-made backend: encoding, predictions, metrics in data units, which
metrics stay standardised, and the missing-column error. No torch, no onnxruntime: the object is
backend-agnostic, so a NumPy stand-in exercises all of it."""

import numpy as np
import pandas as pd
import pytest

from kiln_edge.errors import EdgeDataError
from kiln_edge.run import LoadedRun, data_unit_names, metrics_in_data_units, standardised_metrics


class Scaled:
    """A numeric feature standardised with a fixed mean and std (kiln's contract: transform/decode)."""

    type = "numeric"

    def __init__(self, name, mean, std, output=False, normalization="standard"):
        self.name = self.column = name
        self.mean, self.std, self.output, self.normalization = mean, std, output, normalization

    def transform(self, column):
        return ((np.asarray(column, dtype=float) - self.mean) / self.std).astype(np.float32).reshape(-1, 1)

    def decode(self, outputs):
        return np.asarray(outputs, dtype=np.float64).reshape(-1) * self.std + self.mean


class Doubling:
    """Predicts 2 * x (standardised) and a loss, like a model's own evaluate, on standardised targets."""

    name, model = "numpy", "2x"

    def predict(self, encoded, batch_size):
        return 2.0 * encoded["x"]  # (rows, 1): one output, unnamed, as a kiln model returns it

    def probabilities(self, feature, raw, kind):
        return np.asarray(raw, dtype=np.float32)

    def evaluate(self, x, y, batch_size):
        error = 2.0 * x["x"] - y
        return {"loss": float(np.mean(error ** 2)), "mae": float(np.mean(np.abs(error)))}


@pytest.fixture
def run(tmp_path):
    inputs, outputs = [Scaled("x", 1.0, 2.0)], [Scaled("y", 100.0, 10.0, output=True)]
    return LoadedRun(tmp_path, inputs, outputs, Doubling(), {"y": "logits"}, "name: doubling\n")


def test_predict_frame_decodes_to_data_units(run):
    frame = pd.DataFrame({"x": [1.0, 3.0, -1.0]})  # standardised x: 0, 1, -1 -> y_std 0, 2, -2
    assert run.predict_frame(frame)["y"].tolist() == [100.0, 120.0, 80.0]
    assert (run.name, run.backend_name, run.model, run.roles) == ("doubling", "numpy", "2x", {"x": "input", "y": "output"})


def test_evaluate_frame_reports_mae_rmse_r2_in_data_units(run):
    frame = pd.DataFrame({"x": [1.0, 3.0, -1.0, 5.0], "y": [101.0, 118.0, 80.0, 150.0]})
    pred = np.array([100.0, 120.0, 80.0, 140.0])
    error = frame["y"].to_numpy() - pred  # 1, -2, 0, 10
    total = np.sum((frame["y"] - frame["y"].mean()) ** 2)
    got = run.evaluate_frame(frame)
    assert got["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-12)  # 3.25, not the standardised 0.325
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-12)
    assert got["r2"] == pytest.approx(1 - np.sum(error ** 2) / total, rel=1e-12)
    assert got["loss"] == pytest.approx(np.mean((error / 10.0) ** 2), rel=1e-6)  # the backend's: standardised
    assert run.standardised(got) == ["loss"]


def test_missing_column_names_it_and_the_nearest(run):
    with pytest.raises(EdgeDataError, match=r"no column 'x' \(feature 'x'\); did you mean 'xx'\? Columns: \['xx'\]"):
        run.predict_frame(pd.DataFrame({"xx": [1.0]}))


def test_which_names_are_standardised():
    numeric, label = Scaled("price", 0.0, 1.0, output=True), Scaled("kind", 0.0, 1.0, output=True)
    label.type = "category"
    assert standardised_metrics([numeric], ["loss", "mae", "rmse", "r2", "mse"]) == ["loss", "mae", "rmse", "mse"]
    assert standardised_metrics([label], ["loss", "accuracy"]) == []
    assert standardised_metrics([numeric, label], ["loss", "price_mae", "price_r2", "kind_accuracy", "kind_loss"]) \
        == ["loss", "price_mae"]
    assert standardised_metrics([Scaled("v", 0.0, 1.0, output=True, normalization=None)], ["loss", "mae"]) == []
    assert data_unit_names([numeric]) == ["mae", "rmse", "r2"]
    assert data_unit_names([numeric, label]) == ["price_mae", "price_rmse", "price_r2"]


def test_metrics_in_data_units_of_two_outputs_are_prefixed():
    a, b = Scaled("a", 0.0, 1.0, output=True), Scaled("b", 10.0, 2.0, output=True)
    frame = pd.DataFrame({"a": [0.0, 1.0], "b": [10.0, 14.0]})
    got = metrics_in_data_units([a, b], frame, {"a": np.array([0.0, 1.0]), "b": np.array([0.0, 1.0])})
    assert got == {"a_mae": 0.0, "a_rmse": 0.0, "a_r2": 1.0, "b_mae": 1.0, "b_rmse": np.sqrt(2.0), "b_r2": 0.5}


def test_cli_evaluate_with_onnx_refuses_class_outputs(run_dir, raw_rows, tmp_path, capsys):
    # An ONNX graph has no loss and a classifier's metrics are the model's own: say so, exit 2, run nothing.
    from kiln.cli import main
    rows = tmp_path / "rows.csv"
    raw_rows.to_csv(rows, index=False)
    assert main(["evaluate", str(run_dir), "--data", str(rows), "--backend", "onnx"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: kiln evaluate --backend onnx gives the metrics of numeric outputs only (an ONNX graph has no loss, "
        "and class metrics come from the model's own); evaluate kind with the torch backend: drop --backend onnx.")


def test_a_value_that_overflows_once_standardised_is_refused_naming_feature_and_row(run):
    # 1e308 is finite, but (1e308 - 1) / 2 as float32 is inf: the model would answer NaN.
    frame = pd.DataFrame({"x": [1.0, 1e308, 3.0]}, index=[10, 11, 12])
    with pytest.raises(EdgeDataError) as info:
        run.predict_frame(frame)
    assert str(info.value) == (
        "Input 'x' (column 'x'): row 11 holds a value that is too large for the model (row 11: 1e+308): once "
        "normalised with the training data's statistics it overflows float32 to infinity. Send values within the "
        "range the model was trained on, or leave them empty (a missing value is filled as in training).")
    assert "before training" not in str(info.value)
