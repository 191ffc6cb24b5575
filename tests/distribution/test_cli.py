"""`kiln train cfg.yaml --nproc 2`: the one-process run folder, written once, by rank 0."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.workflows.test_cli import IRIS, iris_csv, write_config  # noqa: F401 (iris_csv is a fixture)

pytestmark = pytest.mark.slow

KILN = [sys.executable, "-m", "kiln"]


def iris_config(tmp_path, csv, epochs=4):
    # A model without Dropout (the automatic one has some: masks differ per rank), batch 7 for
    # uneven slices (90 training rows: 12 batches of 7, then 6).
    body = IRIS.format(out=tmp_path / "runs", csv=csv, epochs=epochs).replace(
        "output_features:", "model:\n      layers:\n        - Dense: {units: 8, activation: tanh}\n    output_features:"
    ).replace("batch_size: 16", "batch_size: 7")
    return write_config(tmp_path, body)


def test_nproc_2_writes_the_one_process_run_folder(tmp_path, iris_csv, run_group):  # noqa: F811
    from safetensors.numpy import load_file
    cfg = iris_config(tmp_path, iris_csv)
    one, leftover = run_group(KILN + ["train", cfg, "--output", tmp_path / "one"])
    assert one.returncode == 0, one.stderr
    two, leftover = run_group(KILN + ["train", cfg, "--output", tmp_path / "two", "--nproc", "2"])
    assert two.returncode == 0, two.stderr
    assert not leftover
    (run_one,), (run_two,) = list((tmp_path / "one").iterdir()), list((tmp_path / "two").iterdir())
    assert f"run: {run_two}" in two.stdout and two.stdout.count("Epoch 1/4") == 1  # rank 0 alone prints

    a, b = load_file(run_one / "model" / "model.safetensors"), load_file(run_two / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=key)
    lines_one = [json.loads(line) for line in (run_one / "metrics.jsonl").read_text().splitlines()]
    lines_two = [json.loads(line) for line in (run_two / "metrics.jsonl").read_text().splitlines()]
    assert len(lines_two) == 4  # written once, not once per rank
    for want, got in zip(lines_one, lines_two):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-6), key
    eval_one = json.loads((run_one / "evaluation.json").read_text())
    eval_two = json.loads((run_two / "evaluation.json").read_text())
    for split, metrics in eval_one.items():
        for key, value in metrics.items():
            assert eval_two[split][key] == pytest.approx(value, rel=1e-6), (split, key)
    assert (run_two / "report.html").exists()


def test_an_error_names_its_rank_and_leaves_the_run_folder(tmp_path, iris_csv, run_group):  # noqa: F811
    cfg = iris_config(tmp_path, iris_csv)
    cfg.write_text(cfg.read_text().replace("sepal_width, type", "sepal_widht, type"))
    failed, leftover = run_group(KILN + ["train", cfg, "--nproc", "2"])
    assert failed.returncode != 0 and not leftover
    # Every rank that got to print says which it is (torchrun may stop the slower one first).
    assert "error: rank 0: Feature 'sepal_widht'" in failed.stderr or \
        "error: rank 1: Feature 'sepal_widht'" in failed.stderr
    assert "error: Feature" not in failed.stderr
    (run,) = list((tmp_path / "runs").iterdir())  # rank 0's folder stays, with its config
    assert (run / "config.yaml").exists()


def test_a_killed_distributed_run_resumes_with_the_same_or_another_nproc(tmp_path, iris_csv, run_group):  # noqa: F811
    """SIGKILL every process of an --nproc 2 run at an epoch's start; --resume it on 2 and on 1
    process: both end with the weights of a run never stopped.

    30 epochs, killed when epoch 4 starts: iris epochs take milliseconds, so with only a few
    epochs left the workers could finish (and write evaluation.json, making the run "finished")
    before the kill arrives."""
    import os
    import shutil
    import signal
    import subprocess
    from safetensors.numpy import load_file
    cfg = iris_config(tmp_path, iris_csv, epochs=30)
    cfg.write_text(cfg.read_text().replace("checkpoint_every_steps: 2", "checkpoint_every_steps: null"))
    straight, _ = run_group(KILN + ["train", cfg, "--quiet", "--output", tmp_path / "a"])
    assert straight.returncode == 0, straight.stderr

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(KILN + ["train", str(cfg), "--output", str(tmp_path / "b"), "--nproc", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("Epoch 4/"):  # the checkpoint after epoch 3 is written before this line
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    (run_b,) = list((tmp_path / "b").iterdir())
    assert not (run_b / "report.html").exists() and (run_b / "checkpoints" / "latest.ckpt").exists()
    run_c = tmp_path / "c" / run_b.name
    shutil.copytree(run_b, run_c)

    same, leftover = run_group(KILN + ["train", "--resume", run_b, "--nproc", "2"])
    assert same.returncode == 0, same.stderr
    assert not leftover
    other, _ = run_group(KILN + ["train", "--resume", run_c])
    assert other.returncode == 0, other.stderr
    for resumed in (same, other):  # continued from a checkpoint (epoch 4's or later), not from scratch
        assert "Epoch 30/30" in resumed.stdout and "Epoch 1/30" not in resumed.stdout

    (run_a,) = list((tmp_path / "a").iterdir())
    want = load_file(run_a / "model" / "model.safetensors")
    for run in (run_b, run_c):
        got = load_file(run / "model" / "model.safetensors")
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-6, err_msg=f"{run} {key}")
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [line["epoch"] for line in lines] == list(range(1, 31))
