"""kiln.compress.measure: one row per variant, scored and compared with the first (fp32) row."""

import numpy as np
import torch

from kiln.compress import Variant, format_table, measure


def test_rows_score_agreement_and_ratios_against_the_reference():
    x = {"x": torch.arange(40, dtype=torch.float32).reshape(10, 4)}
    y = np.array([0, 1] * 5)
    weights = torch.tensor([[1.0, -1.0]] * 4)
    calls = []

    def make(flip_last: bool):
        def predict(batch):
            calls.append(flip_last)
            out = batch["x"] @ weights  # column 0 always larger
            if flip_last:
                out = out.clone()
                out[-1] = torch.tensor([-1.0, 1.0])  # the last row of every batch disagrees
            return out.numpy()
        return predict
    score = lambda out: {"accuracy": float(np.mean(out.argmax(1) == y))}  # noqa: E731
    rows = measure([Variant("fp32", make(False), params=8, file_bytes=2_000_000),
                    Variant("int8", make(True), params=8, file_bytes=500_000)], x, score, rounds=2, calls=(1, 1))
    fp32, int8 = rows
    assert fp32["accuracy"] == 0.5 and int8["accuracy"] == 0.6  # argmax 0 everywhere, but row 9 says 1
    assert fp32["agreement"] == 1.0 and int8["agreement"] == 0.9
    assert fp32["speedup_b1"] == 1.0 and fp32["speedup_b32"] == 1.0
    assert (fp32["file_mb"], int8["file_mb"]) == (2.0, 0.5)
    assert int8["throughput_rows_s"] == 32 / (int8["latency_b32_ms"] / 1e3)
    # alternating: after the scoring and warm-up calls, the rounds interleave the two variants
    timed = calls[-8:]
    assert timed == [False, False, True, True] * 2
    table = format_table(rows).splitlines()
    assert table[0].split()[:3] == ["variant", "backend", "accuracy"] and table[2].startswith("int8")
