"""`training.privacy` in a YAML run: privacy.json, epsilon in metrics.jsonl and the report, refusals
that leave no run folder, and a SIGKILLed private run that resumes to the uninterrupted result."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kiln.cli import main
from kiln.config import load_config
from kiln.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
    # kiln train cfg.yaml
    name: cancer
    seed: 0
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.8, validation: 0.0, test: 0.2, stratify: label}}
    input_features:
      - {{name: a, type: numeric}}
      - {{name: b, type: numeric}}
      - {{name: c, type: numeric}}
    output_features:
      - {{name: label, type: binary}}
    training:
      epochs: {epochs}
      batch_size: 32
      optimizer: {{name: sgd, learning_rate: 0.5}}
      checkpoint_every_steps: 3
      privacy: {privacy}
"""


@pytest.fixture
def csv(tmp_path):
    import pandas as pd
    g = np.random.default_rng(0)
    x = g.normal(size=(300, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = np.where(x @ np.array([1.0, -1.0, 0.5]) > 0, "yes", "no")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def write(tmp_path, csv, privacy="{epsilon: 3, delta: 1.0e-4, accountant: rdp}", epochs=2) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(out=tmp_path / "runs", csv=csv, epochs=epochs, privacy=privacy)))
    return path


@pytest.mark.slow
def test_private_run_records_its_privacy(tmp_path, csv, capsys):
    assert main(["train", str(write(tmp_path, csv)), "--quiet"]) == 0
    run = next((tmp_path / "runs").iterdir())
    record = json.loads((run / "privacy.json").read_text())
    assert record["epsilon_target"] == 3 and record["delta"] == 1e-4 and record["training_samples"] == 240
    assert 0 < record["epsilon_per_epoch"][0] < record["epsilon_spent"] <= 3 and record["steps"] == 2 * 8
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epsilon"] for line in lines] == record["epsilon_per_epoch"]
    assert "Differentially private training (DP-SGD)" in (run / "report.html").read_text()
    card = (run / "MODEL_CARD.md").read_text()
    assert f"epsilon {record['epsilon_spent']:.3g} spent of 3" in card and "not private" not in card


@pytest.mark.parametrize("privacy, problem", [
    ("{epsilon: 0}", "training.privacy.epsilon"),
    ("{epsilon: three}", "training.privacy.epsilon"),
    ("{epsilon: 3, delta: 1}", "training.privacy.delta"),
    ("{epsilon: 3, max_grad_norm: -1}", "training.privacy.max_grad_norm"),
    ("{epsilon: 3, fix_layers: maybe}", "training.privacy.fix_layers"),
    ("{epsilon: 3, epsilonn: 2}", "training.privacy.epsilonn"),
])
def test_bad_privacy_keys_are_config_errors(tmp_path, csv, privacy, problem):
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        load_config(write(tmp_path, csv, privacy=privacy))


def test_a_refused_private_fit_leaves_no_run_folder(tmp_path, csv, capsys):
    code = main(["train", str(write(tmp_path, csv, privacy="{epsilon: 3, delta: 0.01}")), "--quiet"])
    assert code != 0
    assert "privacy delta=0.01 is not below 1/n = 0.00417 for the 240 training samples" in capsys.readouterr().err
    assert not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_sigkill_then_resume_spends_the_uninterrupted_epsilon(tmp_path, csv):
    """SIGKILL a private `kiln train` in epoch 2 of 3 and `--resume` it: the same epsilon, per epoch and
    in total, and the same weights as a run never stopped."""
    from safetensors.numpy import load_file
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cfg = write(tmp_path, csv, epochs=3)
    kiln = [sys.executable, "-m", "kiln"]
    straight = subprocess.run(kiln + ["train", str(cfg), "--quiet", "--output", str(tmp_path / "a")], env=env,
                              capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    proc = subprocess.Popen(kiln + ["train", str(cfg), "--output", str(tmp_path / "b")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("Epoch 2/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    run_b = next((tmp_path / "b").iterdir())
    assert not (run_b / "privacy.json").exists() and (run_b / "checkpoints" / "latest.ckpt").exists()
    resumed = subprocess.run(kiln + ["train", "--resume", str(run_b), "--quiet"], env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    run_a = next((tmp_path / "a").iterdir())
    assert json.loads((run_b / "privacy.json").read_text()) == json.loads((run_a / "privacy.json").read_text())
    a, b = load_file(run_a / "model" / "model.safetensors"), load_file(run_b / "model" / "model.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
