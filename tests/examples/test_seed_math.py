"""examples/seed_math.py runs, passes its own autograd checks and prints the corrected numbers."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_seed_math_runs_and_prints_corrected_values():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "seed_math.py")], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "z^(2) = (0.200000, 0.300000, 0.400000)" in out  # the hidden pre-activations
    assert "z^(3) = 0.660000" in out and "y_hat = sigmoid(z^(3)) = 0.659260" in out
    assert "seed's expression recomputed: 0.3\n" in out  # 0.1*0.5 + 0.2*0.5 + 0.3*0.5, which the seed calls 0.15
    assert "seed's expression recomputed: -0.019125" in out  # 0.15*0.85*(-0.15), which the seed calls -0.01125
    assert "where the seed's §4.3 numbers are wrong" in out and "all checks passed" in out
