"""`kiln explain` on 1,000 tabular rows against `kiln predict` on the same rows (issue 12).

Run: python bench/explain.py [--repeats 3] [--rows 1000]

A run is trained first (in a temporary folder) on a synthetic table of ten features of which
three (n2, color, flag) drive the label: eight numeric columns, one category (through its
embedding) and one binary. Then, alternately, --repeats times each:

  CLI   `kiln predict RUN --data rows.csv` and `kiln explain RUN --data rows.csv` (IG, the
        default, with its completeness and randomisation checks and the permutation importance
        the labelled rows allow), as separate processes: what a user waits for.
  API   in one process, the model already loaded: ``run.predict_frame(frame)`` against
        ``feature_attributions(run, frame, "ig")`` (attributions alone) and against
        ``explain_run(run, frame, ...)`` (everything `kiln explain` writes).

Printed: median seconds and the ratios explain / predict. The issue's goal: under 10x.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    frame = pd.DataFrame({f"n{i}": g.standard_normal(rows) for i in range(8)})
    frame["color"] = g.choice(["red", "green", "blue"], rows)
    frame["flag"] = g.choice(["no", "yes"], rows)
    score = 1.5 * frame["n2"] + 2.5 * (frame["color"] == "red") - 2.5 * (frame["color"] == "blue") \
        + 2.5 * (frame["flag"] == "yes") - 1.25
    frame["label"] = np.where(score > 0, "up", "down")
    return frame


def train(folder: Path) -> Path:
    from kiln.cli import main
    (folder / "train.csv").write_text(table(2000).to_csv(index=False))
    inputs = "\n".join([f"  - {{name: n{i}, type: numeric}}" for i in range(8)]
                       + ["  - {name: color, type: category}", "  - {name: flag, type: binary}"])
    (folder / "cfg.yaml").write_text(textwrap.dedent(f"""\
        name: bench-explain
        output_dir: {folder / 'runs'}
        data: {{source: {folder / 'train.csv'}, split: {{train: 0.7, validation: 0.1, test: 0.2}}}}
        output_features: [{{name: label, type: category}}]
        training: {{epochs: 10, batch_size: 64, early_stopping: null}}
        """) + "input_features:\n" + inputs + "\n")
    assert main(["train", str(folder / "cfg.yaml"), "--quiet"]) == 0
    return next((folder / "runs").iterdir())


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def cli(*args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "kiln", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    from kiln.explain.folder import explain_run
    from kiln.explain.tabular import feature_attributions
    from kiln.workflows.run import load_run

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_dir = train(folder)
        rows = folder / "rows.csv"
        frame = table(args.rows, seed=1)
        frame.to_csv(rows, index=False)
        run = load_run(run_dir)
        times = {k: [] for k in ("cli predict", "cli explain", "api predict", "api attributions", "api explain_run")}
        for _ in range(args.repeats):
            times["cli predict"].append(timed(lambda: cli("predict", str(run_dir), "--data", str(rows),
                                                          "--output", str(folder / "p.csv"))))
            times["cli explain"].append(timed(lambda: cli("explain", str(run_dir), "--data", str(rows),
                                                          "--output", str(folder / "cli"))))
            times["api predict"].append(timed(lambda: run.predict_frame(frame)))
            times["api attributions"].append(timed(lambda: feature_attributions(run, frame, "ig")))
            times["api explain_run"].append(timed(lambda: explain_run(run, frame, folder / "api")))
        median = {k: statistics.median(v) for k, v in times.items()}
        for k, v in median.items():
            print(f"{k:18s} {v:8.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times[k])})")
        print(f"ratio CLI  explain / predict:           {median['cli explain'] / median['cli predict']:.2f}x")
        print(f"ratio API  attributions / predict_frame: {median['api attributions'] / median['api predict']:.1f}x")
        print(f"ratio API  explain_run / predict_frame:  {median['api explain_run'] / median['api predict']:.1f}x")


if __name__ == "__main__":
    main()
