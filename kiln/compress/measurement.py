"""One table for fp32 and every compressed variant: test metric, agreement with fp32, file size,
parameters, CPU latency at batch 1 and 32, throughput — measured in one process.

Why alternating rounds: on a shared or throttling machine the load drifts over seconds, so timing
variant A for a minute and then B would compare two different machines. Each round times every
variant once, back to back, and the table keeps each variant's median over rounds; ratios to the
reference row (fp32) are what to read.

Example::

    rows = measure([Variant("fp32", f32), Variant("int8", q8)], x_test, score)
    print(format_table(rows))
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = ["Variant", "measure", "format_table", "batch_of"]


@dataclass
class Variant:
    """A model to measure: ``predict`` maps a batch (dict of tensors) to outputs ``(B, ...)`` (NumPy)."""

    name: str
    predict: Callable
    backend: str = "torch"
    file_bytes: int | None = None
    params: int | None = None


def _rows(x) -> int:
    return len(next(iter(x.values())))


def batch_of(x: dict, size: int, start: int = 0) -> dict:
    """``size`` rows of ``x`` from ``start`` (cycling when ``x`` has fewer)."""
    n = _rows(x)
    index = torch.arange(start, start + size) % n
    return {k: torch.as_tensor(v)[index] for k, v in x.items()}


def predict_all(variant: Variant, x: dict, batch_size: int = 256) -> np.ndarray:
    n = _rows(x)
    return np.concatenate([np.asarray(variant.predict(batch_of(x, min(batch_size, n - s), s)))
                           for s in range(0, n, batch_size)])


def _time(fn, batch, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(batch)
    return (time.perf_counter() - start) / calls


def measure(variants: list[Variant], x: dict, score: Callable, *, rounds: int = 7, batch_sizes=(1, 32),
            calls=(20, 4)) -> list[dict]:
    """Measure every variant; the first is the reference for agreement and speed-up.

    Args:
        variants: fp32 first.
        x: encoded test inputs ``{name: (N, ...)}``.
        score: ``outputs (N, ...) -> {metric: value}`` on the test split.
        rounds: alternating timing rounds (default 7; medians are kept).
        batch_sizes, calls: batch sizes timed and calls per timing at each (defaults (1, 32), (20, 4)).
    """
    outputs = [predict_all(v, x) for v in variants]
    reference = outputs[0]
    timings = {(v.name, b): [] for v in variants for b in batch_sizes}
    batches = {b: batch_of(x, b) for b in batch_sizes}
    with torch.inference_mode():
        for v in variants:  # warm up: first calls allocate and pick kernels
            for b in batch_sizes:
                v.predict(batches[b])
        for _ in range(rounds):
            for v in variants:
                for b, n in zip(batch_sizes, calls):
                    timings[(v.name, b)].append(_time(v.predict, batches[b], n))
    rows = []
    for v, out in zip(variants, outputs):
        row = {"variant": v.name, "backend": v.backend, **score(out)}
        if out.ndim == 2 and out.shape[1] > 1:
            row["agreement"] = float(np.mean(out.argmax(1) == reference.argmax(1)))
        row["max_abs_diff"] = float(np.max(np.abs(out.astype(np.float64) - reference)))
        row["file_mb"] = None if v.file_bytes is None else v.file_bytes / 1e6
        row["params"] = v.params
        for b in batch_sizes:
            row[f"latency_b{b}_ms"] = statistics.median(timings[(v.name, b)]) * 1e3
        big = max(batch_sizes)
        row["throughput_rows_s"] = big / (row[f"latency_b{big}_ms"] / 1e3)
        rows.append(row)
    for row in rows:
        for b in batch_sizes:
            row[f"speedup_b{b}"] = rows[0][f"latency_b{b}_ms"] / row[f"latency_b{b}_ms"]
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as an aligned text table (the CLI prints it; compression.json keeps the numbers)."""
    if not rows:
        return ""
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
        return str(value)
    table = [columns] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table)
