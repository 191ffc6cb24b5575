"""`kiln` as a user runs it: train, predict, evaluate, info, report, export, validate, init."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln.cli import main
from tests.conftest import write_iris_csv

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, body: str, name="cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def iris_csv(tmp_path):
    return write_iris_csv(tmp_path)


IRIS = """\
    # kiln train cfg.yaml
    name: iris
    seed: 0
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.6, validation: 0.2, test: 0.2, stratify: species}}
    input_features:
      - {{name: sepal_length, type: numeric}}
      - {{name: sepal_width, type: numeric}}
      - {{name: petal_length, type: numeric}}
      - {{name: petal_width, type: numeric}}
    output_features:
      - {{name: species, type: category}}
    training:
      epochs: {epochs}
      batch_size: 16
      optimizer: {{name: adam, learning_rate: 0.01}}
      early_stopping: null
      checkpoint_every_steps: 2
"""


def train_iris(tmp_path, iris_csv, capsys, epochs=30):
    cfg = write_config(tmp_path, IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=epochs))
    assert main(["train", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    return Path(out.strip().splitlines()[-1].split("run: ")[-1])


def test_train_writes_a_complete_run_folder(tmp_path, iris_csv, capsys):
    run = train_iris(tmp_path, iris_csv, capsys)
    for name in ("config.yaml", "metrics.jsonl", "evaluation.json", "report.html", "model/config.json",
                 "model/model.safetensors", "model/features.json", "checkpoints/latest.ckpt"):
        assert (run / name).exists(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 30 and json.loads(lines[0])["epoch"] == 1 and "val_accuracy" in json.loads(lines[-1])
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["test"]["accuracy"] >= 0.85


def test_predict_and_evaluate_on_raw_rows(tmp_path, iris_csv, capsys):
    run = train_iris(tmp_path, iris_csv, capsys)
    rows = pd.read_csv(iris_csv)
    rows.drop(columns=["species"]).to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", str(run), "--data", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "p.csv")]) == 0
    preds = pd.read_csv(tmp_path / "p.csv")
    assert len(preds) == 150 and set(preds["species"]) <= {"setosa", "versicolor", "virginica"}
    probabilities = preds[[c for c in preds if c.startswith("species_probability_")]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (preds["species"] == rows["species"]).mean() > 0.85
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(iris_csv)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.85


def test_info_report_export(tmp_path, iris_csv, capsys):
    run = train_iris(tmp_path, iris_csv, capsys, epochs=3)
    assert main(["info", str(run)]) == 0
    assert "species (category)" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--quiet"]) != 0  # finished: nothing to resume, results kept
    assert f"--resume {run}: the run is finished (it has its model and evaluation.json)" in capsys.readouterr().err
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    onnx_file = run / "export" / "model.onnx"
    assert onnx_file.exists()
    assert main(["export", str(run), "--format", "safetensors"]) == 0


def test_config_errors_exit_2_and_list_every_problem(tmp_path, capsys):
    cfg = write_config(tmp_path, """\
        name: bad
        data: {source: x.csv}
        input_features: [{name: a, type: numerc}]
        output_features: [{name: y, type: category}]
        training: {epcohs: 3, batch_size: 0}
    """)
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "cfg.yaml:3" in err and "cfg.yaml:5" in err and "epochs" in err and "batch_size" in err
    assert main(["train", str(cfg)]) == 2


def test_runtime_errors_exit_1_with_the_column_named(tmp_path, iris_csv, capsys):
    body = IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=1).replace("sepal_width, type", "sepal_widht, type")
    cfg = write_config(tmp_path, body)
    assert main(["train", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "sepal_widht" in err and "sepal_width" in err


def test_init_writes_a_config_that_validates(tmp_path, capsys):
    target = tmp_path / "starter.yaml"
    assert main(["init", str(target), "--kind", "image"]) == 0
    assert main(["validate", str(target)]) == 0
    assert main(["init", str(target)]) == 2  # refuses to overwrite


def test_set_overrides(tmp_path, iris_csv, capsys):
    cfg = write_config(tmp_path, IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=30))
    assert main(["train", str(cfg), "--quiet", "--set", "training.epochs=2"]) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1].split("run: ")[-1])
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_kill_then_resume_gives_the_uninterrupted_weights(tmp_path, iris_csv):
    """SIGKILL `kiln train` mid-epoch, `--resume` it: same weights as a run never stopped."""
    from safetensors.numpy import load_file
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    body = IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=12).replace("batch_size: 16", "batch_size: 8")
    cfg = write_config(tmp_path, body)
    kiln = [sys.executable, "-m", "kiln"]

    straight = subprocess.run(kiln + ["train", str(cfg), "--quiet", "--output", str(tmp_path / "a")],
                              env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    # Kill once the 7th epoch has begun: a checkpoint is written every 2 steps.
    proc = subprocess.Popen(kiln + ["train", str(cfg), "--output", str(tmp_path / "b")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("Epoch 7/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    run_b = next((tmp_path / "b").iterdir())
    assert not (run_b / "report.html").exists() and (run_b / "checkpoints" / "latest.ckpt").exists()
    resumed = subprocess.run(kiln + ["train", "--resume", str(run_b), "--quiet"], env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    run_a = next((tmp_path / "a").iterdir())
    a = load_file(run_a / "model" / "model.safetensors")
    b = load_file(run_b / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert len((run_b / "metrics.jsonl").read_text().splitlines()) == 12


def test_k_fold_cross_validation(tmp_path, iris_csv, capsys):
    cfg = write_config(tmp_path, IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=20).replace(
        "stratify: species}", "stratify: species, k_folds: 3}"))
    assert main(["train", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "fold 3/3" in out and "cross-validation mean" in out
    run = Path(out.strip().splitlines()[-1].split("run: ")[-1])
    summary = json.loads((run / "cross_validation.json").read_text())
    assert len(summary["folds"]) == 3 and 0.7 < summary["mean"]["accuracy"] <= 1.0
    assert (run / "report.html").exists()  # the final model is still trained and reported


def test_learning_rate_schedule_with_warmup(tmp_path, iris_csv, capsys):
    body = IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=3).replace(
        "early_stopping: null", "early_stopping: null\n      schedule: {name: cosine, warmup_steps: 4}")
    cfg = write_config(tmp_path, body)
    from kiln.config import load_config
    from kiln.workflows.train import train
    result = train(load_config(cfg), verbose=0)
    optimizer = result.model.optimizer
    schedule = optimizer._schedule
    assert type(schedule).__name__ == "LinearWarmup"
    assert schedule(0) == pytest.approx(0.01 / 4) and schedule(3) == pytest.approx(0.01)
    assert optimizer.learning_rate == pytest.approx(schedule(optimizer.iterations))
    assert schedule(optimizer.iterations) < 0.01  # decayed by the end (cosine over the run)


def test_evaluation_metrics_from_the_config(tmp_path, iris_csv, capsys):
    body = IRIS.format(out=tmp_path / "runs", csv=iris_csv, epochs=2) + "    evaluation: {metrics: [accuracy, sparse_top_k_categorical_accuracy]}\n"
    cfg = write_config(tmp_path, body)
    assert main(["train", str(cfg), "--quiet"]) == 0, capsys.readouterr().err
    run = Path(capsys.readouterr().out.strip().splitlines()[-1].split("run: ")[-1])
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert set(evaluation["test"]) >= {"loss", "accuracy"} and len(evaluation["test"]) == 3


@pytest.mark.slow
def test_zoo_models_by_name_from_yaml(tmp_path, capsys):
    """A ResNet on digits images and a fusion model on iris-style numbers, by name."""
    cfg = write_config(tmp_path, f"""\
        name: zoo-resnet
        output_dir: {tmp_path / 'runs'}
        data:
          source: sklearn:digits
          split: {{train: 0.7, validation: 0.15, test: 0.15, stratify: label}}
        input_features:
          - {{name: image, type: image, preprocessing: {{height: 8, width: 8, channels: 1}}}}
        output_features:
          - {{name: label, type: category}}
        model:
          zoo: {{name: resnet18, options: {{width: 8}}}}
        training: {{epochs: 3, batch_size: 64, early_stopping: null}}
    """)
    assert main(["train", str(cfg), "--quiet"]) == 0, capsys.readouterr().err
    run = Path(capsys.readouterr().out.strip().splitlines()[-1].split("run: ")[-1])
    assert json.loads((run / "evaluation.json").read_text())["test"]["accuracy"] > 0.5
    rows = tmp_path / "rows.npz"
    from kiln.data import load_bundled
    frame = load_bundled("sklearn:digits").head(5)
    np.savez(rows, image=np.stack(frame["image"].to_list()))
    assert main(["predict", str(run), "--data", str(rows), "--output", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 5


def test_init_and_validate_never_import_torch(tmp_path):
    # They answer at once: torch alone takes seconds to import (the optimizer check used to build one).
    script = textwrap.dedent(f"""
        import sys
        from kiln.cli import main
        assert main(["init", {str(tmp_path / 'c.yaml')!r}]) == 0
        assert main(["validate", {str(tmp_path / 'c.yaml')!r}]) == 0
        (__import__("pathlib").Path({str(tmp_path / 'bad.yaml')!r})
         .write_text(open({str(tmp_path / 'c.yaml')!r}).read().replace("{{name: adam,", "{{name: adam, beta_1: 2,")))
        assert main(["validate", {str(tmp_path / 'bad.yaml')!r}]) != 0
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "expected a float in [0, 1). Received: beta_1=2" in done.stderr
