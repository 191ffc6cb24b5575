"""2-process gloo runs against one process: same weights, same logs, uneven shards, no orphans.

The data (203 rows) splits evenly neither over 2 ranks nor into batches: with batch 8 the
last global batch has 3 rows (1 on rank 0, 2 on rank 1: the loss rescaling matters), with
batch 2 it has 1 row (rank 1 runs a zero-weight placeholder); validation (37 rows) ends with 5
rows (batch 8) or 1 (batch 2: rank 1 evaluates nothing there). Tolerance, stated: float32 weights agree to 1e-6 absolute (measured ~2e-7: the
only difference is the order of float sums in DDP's all-reduce), logs to 1e-6 relative.
"""

import json
import sys

import numpy as np
import pytest

from tests.distribution.conftest import WORKER

pytestmark = pytest.mark.slow


def torchrun(nproc, *args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(nproc), *map(str, args)]


def assert_logs_close(single: dict, other: dict) -> None:
    assert single["history"].keys() == other["history"].keys()
    for key, values in single["history"].items():
        np.testing.assert_allclose(other["history"][key], values, rtol=1e-6, err_msg=key)
    assert single["evaluation"].keys() == other["evaluation"].keys()
    for key, value in single["evaluation"].items():
        assert other["evaluation"][key] == pytest.approx(value, rel=1e-6), key


def test_two_processes_train_the_one_process_model(tmp_path, run_group):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    alone, leftover = run_group([sys.executable, str(WORKER), one, 203, 8])
    assert alone.returncode == 0, alone.stderr
    both, leftover = run_group(torchrun(2, WORKER, two, 203, 8, "--distributed"))
    assert both.returncode == 0, both.stderr
    assert not leftover  # torchrun and its workers are all gone

    for kind in ("sequential", "module"):  # fit on a kiln model; kiln.Trainer on a plain nn.Module
        a, b = np.load(one / f"{kind}.npz"), np.load(two / f"{kind}.npz")
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=f"{kind} {key}")
        single = json.loads((one / f"{kind}-rank0.json").read_text())
        rank0 = json.loads((two / f"{kind}-rank0.json").read_text())
        rank1 = json.loads((two / f"{kind}-rank1.json").read_text())
        assert_logs_close(single, rank0)
        assert rank0 == rank1  # reduced logs: every rank decides on the same numbers
    # Only rank 0 prints: one progress line per epoch, as a single process prints.
    assert both.stdout.count("Epoch 1/3") == 1 and both.stdout.count("Epoch 3/3") == 1
