"""TPE + ASHA against random search, and trial throughput with --jobs 2 vs 1 (issue 13).

    python bench/tune.py                        # the figures in bench/RESULTS.md
    python bench/tune.py --seeds 0 --random-trials 16 --tpe-trials 8   # a quick look

For each recipe (breast cancer: recipes/breast_cancer.yaml; digits: 8x8 images, an MLP) and
seed: a random-search study of ``--random-trials`` trials without pruning (each trains every
epoch) sets the target, its best val_accuracy; then a TPE + ASHA study runs trials in order
until one reaches the target (at most ``--tpe-trials``), and the epochs it trained until then
(pruned trials count the epochs they ran) are compared with the random study's total epochs.
The claim checked: the mean over seeds of that share is <= 25%.

Throughput: the same TPE + ASHA study of ``--throughput-trials`` trials with --jobs 1 and
--jobs 2, trials per minute from wall time. Every trial is a full kiln run folder (report,
model, checkpoints), as `kiln tune` writes it: the per-trial overhead is part of the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = {
    "training.optimizer.learning_rate": {"type": "float", "low": 1.0e-4, "high": 0.3, "log": True},
    "training.batch_size": {"type": "categorical", "choices": [16, 32, 64, 128]},
}


def breast_cancer(epochs: int) -> dict:
    import yaml
    data = yaml.safe_load((ROOT / "recipes" / "breast_cancer.yaml").read_text())
    data["model"] = {"layers": [{"Dense": {"units": 32, "activation": "relu"}}]}
    data["training"].update(epochs=epochs, early_stopping=None, checkpoint_every_steps=None)
    space = dict(SPACE, **{"model.layers.0.Dense.units": {"type": "int", "low": 2, "high": 256, "log": True}})
    return data, space


def digits(epochs: int) -> dict:
    data = {
        "name": "digits", "seed": 0,
        "data": {"source": "sklearn:digits",
                 "split": {"train": 0.7, "validation": 0.15, "test": 0.15, "stratify": "label"}},
        "input_features": [{"name": "image", "type": "image",
                            "preprocessing": {"height": 8, "width": 8, "channels": 1}}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": {"layers": ["Flatten", {"Dense": {"units": 32, "activation": "relu"}}]},
        "training": {"epochs": epochs, "batch_size": 32, "early_stopping": None, "checkpoint_every_steps": None},
    }
    space = dict(SPACE, **{"model.layers.1.Dense.units": {"type": "int", "low": 2, "high": 256, "log": True}})
    return data, space


RECIPES = {"breast_cancer": breast_cancer, "digits": digits}


def study(recipe: str, epochs: int, sampler: str, pruner: str, trials: int, seed: int, jobs: int, out: Path):
    import kiln
    data, space = RECIPES[recipe](epochs)
    data["tune"] = {"metric": "val_accuracy", "sampler": sampler, "pruner": pruner, "trials": trials,
                    "jobs": jobs, "seed": seed, "space": space}
    started = time.perf_counter()
    summary = kiln.tune(data, output_dir=out, verbose=0)
    wall = time.perf_counter() - started
    return summary, wall


def epochs_to_reach(trials: list[dict], target: float) -> tuple[int | None, int]:
    """Epochs trained until the first completed trial with value >= target (trials in order)."""
    used = 0
    for t in sorted(trials, key=lambda t: t["number"]):
        used += t["epochs"] or 0
        if t["state"] == "complete" and t["value"] is not None and t["value"] >= target - 1e-12:
            return used, t["number"]
    return None, used


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--random-trials", type=int, default=64)
    parser.add_argument("--tpe-trials", type=int, default=40)
    parser.add_argument("--throughput-trials", type=int, default=12)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", default=None, help="write every figure here too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kiln-bench-tune-"))
    results = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "rows": [], "throughput": []}
    try:
        for recipe in args.recipes:
            for seed in args.seeds:
                rnd, rnd_wall = study(recipe, args.epochs, "random", "none", args.random_trials, seed, 1, work)
                target = rnd.best_value
                tpe, tpe_wall = study(recipe, args.epochs, "tpe", "asha", args.tpe_trials, seed, 1, work)
                used, at = epochs_to_reach(tpe.trials, target)
                row = {"recipe": recipe, "seed": seed, "random_best": target, "random_epochs": rnd.epochs,
                       "random_wall_s": rnd_wall, "tpe_best": tpe.best_value, "tpe_epochs_to_target": used,
                       "tpe_trial_reaching": at, "tpe_pruned": tpe.states["pruned"], "tpe_total_epochs": tpe.epochs,
                       "tpe_wall_s": tpe_wall,
                       "share": None if used is None else used / rnd.epochs}
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
        if not args.skip_throughput:
            for jobs in (1, 2):
                summary, wall = study(args.recipes[0], args.epochs, "tpe", "asha", args.throughput_trials, 0, jobs,
                                      work)
                row = {"recipe": args.recipes[0], "jobs": jobs, "trials": len(summary.trials), "wall_s": wall,
                       "trials_per_min": 60 * len(summary.trials) / wall, "epochs": summary.epochs,
                       "load": os.getloadavg()}
                results["throughput"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    print("\n| recipe | seed | random best (64 trials) | random epochs | TPE+ASHA epochs to reach it | share |")
    print("|---|---|---|---|---|---|")
    for r in results["rows"]:
        share = "not reached" if r["share"] is None else f"{100 * r['share']:.1f}%"
        print(f"| {r['recipe']} | {r['seed']} | {r['random_best']:.4f} | {r['random_epochs']} | "
              f"{r['tpe_epochs_to_target']} (trial {r['tpe_trial_reaching']}) | {share} |")
    for recipe in args.recipes:
        shares = [r["share"] for r in results["rows"] if r["recipe"] == recipe]
        if shares and None not in shares:
            print(f"{recipe}: mean share {100 * sum(shares) / len(shares):.1f}%")
        else:
            print(f"{recipe}: target not reached in {sum(s is None for s in shares)} of {len(shares)} seeds")
    for t in results["throughput"]:
        print(f"jobs {t['jobs']}: {t['trials']} trials in {t['wall_s']:.0f} s = {t['trials_per_min']:.1f} trials/min")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
