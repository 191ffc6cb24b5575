"""`kiln train` writes global importance by default; `kiln explain RUN --data rows.csv` explains rows."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln.cli import main

CONFIG = """\
    # kiln train cfg.yaml
    name: three-of-ten
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.7, validation: 0.1, test: 0.2}}
    input_features:
{inputs}
    output_features:
      - {{name: label, type: category}}
    training:
      epochs: 25
      batch_size: 64
      optimizer: {{name: adam, learning_rate: 0.02}}
      early_stopping: null
    explain: {{n_repeats: 3}}
"""


def _table(rows=600, seed=0) -> pd.DataFrame:
    """Ten features, of which only n2, color and flag drive the label."""
    g = np.random.default_rng(seed)
    frame = pd.DataFrame({f"n{i}": g.standard_normal(rows) for i in range(8)})
    frame["color"] = g.choice(["red", "green", "blue"], rows)
    frame["flag"] = g.choice(["no", "yes"], rows)
    score = 1.5 * frame["n2"] + 2.5 * (frame["color"] == "red") - 2.5 * (frame["color"] == "blue") \
        + 2.5 * (frame["flag"] == "yes") - 1.25
    frame["label"] = np.where(score > 0, "up", "down")
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain")
    csv = tmp / "table.csv"
    _table().to_csv(csv, index=False)
    inputs = "\n".join([f"      - {{name: n{i}, type: numeric}}" for i in range(8)]
                       + ["      - {name: color, type: category}", "      - {name: flag, type: binary}"])
    cfg = tmp / "cfg.yaml"
    cfg.write_text(textwrap.dedent(CONFIG.format(out=tmp / "runs", csv=csv, inputs=textwrap.indent(inputs, ""))))
    assert main(["train", str(cfg), "--quiet"]) == 0
    run = next((tmp / "runs").iterdir())
    return run, csv


@pytest.mark.slow
def test_train_ranks_the_three_driving_features_first_and_reports_them(trained):
    run, _ = trained
    explanations = json.loads((run / "explanations.json").read_text())
    importance = explanations["global_importance"]
    assert importance["split"] == "test" and importance["metric"] == "accuracy"
    assert set(list(importance["importances"])[:3]) == {"n2", "color", "flag"}
    report = (run / "report.html").read_text()
    assert '<section id="explanations">' in report and "Global permutation importance" in report


@pytest.mark.slow
def test_kiln_explain_attributes_category_and_binary_features_and_checks_completeness(trained, tmp_path, capsys):
    run, csv = trained
    rows = tmp_path / "rows.csv"
    pd.read_csv(csv).head(60).to_csv(rows, index=False)
    assert main(["explain", str(run), "--data", str(rows), "--output", str(tmp_path / "out")]) == 0
    explanations = json.loads((tmp_path / "out" / "explanations.json").read_text())
    assert explanations["checks"]["completeness"]["passed"]
    assert explanations["checks"]["completeness"]["max_relative_error"] < 0.01
    assert explanations["checks"]["randomisation"]["passed"]
    # category (through its embedding) and binary (against 0.5) features get attributions on every row
    assert all(abs(r["attributions"]["color"]) > 0 and abs(r["attributions"]["flag"]) > 0
               for r in explanations["per_row"])
    assert set(list(explanations["mean_abs_attribution"])[:3]) == {"n2", "color", "flag"}
    assert (tmp_path / "out" / "explanations" / "mean_abs_attribution.png").read_bytes()[:4] == b"\x89PNG"
    assert "added an Explanations section" in capsys.readouterr().out


@pytest.mark.slow
def test_kiln_explain_shap_adds_up_to_the_prediction_minus_the_expected_value(trained, tmp_path):
    run, csv = trained
    rows = tmp_path / "rows.csv"
    pd.read_csv(csv).head(20).to_csv(rows, index=False)
    assert main(["explain", str(run), "--data", str(rows), "--method", "shap", "--no-checks",
                 "--output", str(tmp_path)]) == 0
    explanations = json.loads((tmp_path / "explanations.json").read_text())
    assert len(explanations["expected_value"]) == 20
    assert set(list(explanations["mean_abs_attribution"])[:3]) == {"n2", "color", "flag"}


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--feature", "colour"], "error: The model has no input feature 'colour'; did you mean 'color'?"),
    (["--target", "sideways"], "error: Target class 'sideways' does not exist in output 'label'; its classes: "
                               "['down', 'up']"),
    (["--method", "occlusion"], "error: Method 'occlusion' slides a window over an image, spectrogram or text"),
])
def test_kiln_explain_bad_requests_name_the_value_and_the_fix(trained, tmp_path, capsys, args, message):
    run, csv = trained
    assert main(["explain", str(run), "--data", str(csv), "--output", str(tmp_path), *args]) == 1
    assert message in capsys.readouterr().err


def test_explain_enabled_false_writes_no_explanations(tmp_path, capsys):
    csv = tmp_path / "table.csv"
    _table(rows=80).to_csv(csv, index=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(textwrap.dedent(CONFIG.format(out=tmp_path / "runs", csv=csv,
                                                 inputs="      - {name: n2, type: numeric}"))
                   .replace("epochs: 25", "epochs: 1").replace("explain: {n_repeats: 3}", "explain: {enabled: false}"))
    assert main(["train", str(cfg), "--quiet"]) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1].split("run: ")[-1])
    assert not (run / "explanations.json").exists()
    assert '<section id="explanations">' not in (run / "report.html").read_text()
