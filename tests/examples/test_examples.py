"""The README's main job and the seed's Keras example run as a user would run them."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script, *args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_seed_keras_example_runs_with_only_the_import_changed(tmp_path):
    source = (ROOT / "examples" / "seed_keras_example.py").read_text()
    assert "import kiln as keras" in source and "tensorflow" not in source.split("\n", 3)[-1]
    result = run("seed_keras_example.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Epoch 10/10" in result.stdout
    mae = float(re.search(r"MAE: ([\d.]+)", result.stdout).group(1))
    assert 0 < mae < 1
    assert "Predictions:" in result.stdout


@pytest.mark.slow
def test_digits_cnn_main_job(tmp_path):
    result = run("digits_cnn.py", "--epochs", "30", "--output", str(tmp_path / "m.keras"), "--verbose", "0",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test accuracy ([\d.]+)", result.stdout).group(1))
    assert accuracy >= 0.97, result.stdout
    assert "reloaded model predicts the same: True" in result.stdout
    assert (tmp_path / "m.keras").exists()
