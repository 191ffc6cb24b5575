"""Numbers a user reads by name are in the data's units (or say they are standardised): a numeric
target trains standardised, yet `kiln evaluate`, evaluation.json and report.html give one MAE/RMSE/R²,
the one numpy gives on the predictions and the true column."""

import contextlib
import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln.cli import main

COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
DIABETES = """\
    name: diabetes
    seed: 0
    output_dir: {out}
    data:
      source: sklearn:diabetes
      split: {{train: 0.7, validation: 0.15, test: 0.15, seed: 3}}
    input_features: [{inputs}]
    output_features:
      - {{name: target, type: numeric}}
    training:
      epochs: 2
      batch_size: 32
      optimizer: {{name: adam, learning_rate: 0.01}}
      early_stopping: null
"""


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """A 2-epoch regression run, its training log, and its test rows (as a CSV)."""
    from kiln.data import read_source, split_frame
    folder = tmp_path_factory.mktemp("units")
    inputs = ", ".join(f"{{name: {c}, type: numeric}}" for c in COLUMNS)
    cfg = folder / "cfg.yaml"
    cfg.write_text(textwrap.dedent(DIABETES.format(out=folder / "runs", inputs=inputs)))
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["train", str(cfg)]) == 0
    run = Path(log.getvalue().strip().splitlines()[-1].split("run: ")[-1])
    # The rows `kiln train` held out: the split the config names, drawn by kiln.data.split_frame.
    test = split_frame(read_source("sklearn:diabetes"), train=0.7, validation=0.15, test=0.15, seed=3)["test"]
    test.to_csv(folder / "test.csv", index=False)
    return run, log.getvalue(), folder / "test.csv"


def _by_hand(predictions, truth) -> dict:
    error = truth - predictions
    return {"mae": np.mean(np.abs(error)), "rmse": np.sqrt(np.mean(error ** 2)),
            "r2": 1 - np.sum(error ** 2) / np.sum((truth - truth.mean()) ** 2)}


def _evaluate(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(["evaluate", *argv]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_evaluate_equals_evaluation_json_equals_numpy_in_data_units(diabetes, capsys, tmp_path):
    run, _, test_csv = diabetes
    assert main(["predict", str(run), "--data", str(test_csv), "--output", str(tmp_path / "p.csv")]) == 0
    truth = pd.read_csv(test_csv)["target"].to_numpy(dtype=float)
    by_hand = _by_hand(pd.read_csv(tmp_path / "p.csv")["target"].to_numpy(dtype=float), truth)
    evaluated, note = _evaluate(capsys, str(run), "--data", str(test_csv))
    recorded = json.loads((run / "evaluation.json").read_text())["test"]
    assert by_hand["mae"] > 20  # the target spans 25..346: a data-unit MAE, not a z-score's (~0.7)
    for name in ("mae", "rmse", "r2"):
        assert evaluated[name] == pytest.approx(by_hand[name], rel=1e-6), name
        assert recorded[name] == pytest.approx(by_hand[name], rel=1e-6), name
    assert set(evaluated) == set(recorded) == {"loss", "mae", "rmse", "r2"}
    assert note.strip() == "note: loss on the standardised target; the other metrics in the data's units."


def test_training_log_and_report_say_what_is_standardised(diabetes):
    run, log, _ = diabetes
    assert ("note: the per-epoch loss, mae, rmse below are on the standardised target ((value - mean) / std of "
            "the training split); the final test metrics are in the data's units.") in log
    assert "(loss: on the standardised target; the rest in the data's units)" in log
    page = (run / "report.html").read_text(encoding="utf-8")
    assert 'aria-label="learning curve: mae (standardised)"' in page and "<th>loss (standardised)</th>" in page
    assert "<th>mae</th>" in page  # the final MAE is in data units: not marked
    # report.html's regression table computes its MAE with the same function, on the same predictions.
    mae = json.loads((run / "evaluation.json").read_text())["test"]["mae"]
    table = page[page.index('id="regression-table"'):]
    assert f'title="{mae!r}"' in table[:table.index("</table>")]


@pytest.mark.slow
def test_onnx_backend_evaluates_in_the_same_units(diabetes, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run, _, test_csv = diabetes
    assert main(["export", str(run), "--format", "onnx"]) == 0
    torch_metrics, _ = _evaluate(capsys, str(run), "--data", str(test_csv))
    onnx_metrics, note = _evaluate(capsys, str(run), "--data", str(test_csv), "--backend", "onnx")
    assert set(onnx_metrics) == {"mae", "rmse", "r2"} and note == ""  # an ONNX graph has no loss
    for name, value in onnx_metrics.items():
        assert value == pytest.approx(torch_metrics[name], rel=1e-5), name
