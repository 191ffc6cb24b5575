"""Run commands as a process group with a bounded time; on timeout the whole group is killed,
so a hung torchrun leaves no worker behind."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fit_worker.py")


@pytest.fixture
def run_group():
    def run(args, timeout=240, cwd=None):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([str(a) for a in args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            try:  # whatever is left of the group (there should be nothing) goes too
                os.killpg(proc.pid, signal.SIGKILL)
                leftover = True
            except ProcessLookupError:
                leftover = False
        return subprocess.CompletedProcess(args, proc.returncode, out, err), leftover
    return run

