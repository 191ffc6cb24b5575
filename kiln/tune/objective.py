"""One trial: sample the space, train a normal kiln run inside the tune folder, score it.

Every trial is a ``kiln train`` run folder (config, metrics, model, report) under
``<tune folder>/trials/trial-NNNN-<timestamp>``; its path is kept in the trial's user
attributes (``run_dir``), beside the epochs it ran and, for a failed trial, the error.

The score: for a ``val_`` metric, the saved model's value on the validation split (from the
run's ``evaluation.json``, the model ``best.yaml`` reproduces); for another metric, its last
logged value.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import ConfigError
from kiln.tune.pruning import PruningCallback
from kiln.tune.space import apply_params, suggest

__all__ = ["TrialOutcome", "MetricNotLoggedError", "run_trial", "score"]


class MetricNotLoggedError(ConfigError):
    """The tuned metric is not among the values ``fit`` logs: no trial can be judged, so the study stops."""


@dataclass
class TrialOutcome:
    """What one trial ended as: ``state`` is "complete", "pruned" or "fail"."""

    state: str
    value: float | None = None
    error: str | None = None


def run_trial(trial, data: dict, tune, tune_dir: Path, verbose: int = 0) -> TrialOutcome:
    """Run ``trial`` (an ``optuna.Trial``): apply its sampled values to ``data`` and train.

    Raises:
        MetricNotLoggedError: ``tune.metric`` was not logged after the first epoch.
    """
    from kiln.workflows.train import train

    name = f"trial-{trial.number:04d}"
    trials_dir = tune_dir / "trials"
    trial.set_user_attr("pid", os.getpid())  # which worker process ran it
    try:
        params = suggest(trial, tune.space)
        config = apply_params(dict(data, name=name), params, source=name)
        callback = PruningCallback(trial, tune.metric)
        result = train(config, output_dir=trials_dir, verbose=verbose, callbacks=[callback])
    except Exception as error:  # a failed trial is recorded and the study goes on
        _record_run_dir(trial, trials_dir, name)
        text = f"{type(error).__name__}: {error}"
        trial.set_user_attr("error", text)
        trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
        return TrialOutcome("fail", error=text)
    trial.set_user_attr("run_dir", str(result.run_dir))
    trial.set_user_attr("epochs", callback.epochs)
    if callback.missing is not None:
        raise MetricNotLoggedError(f"tune.metric {tune.metric!r} is not logged by this config's runs "
                                   f"(trial {trial.number} logged: {', '.join(callback.missing)}); "
                                   "set tune.metric to one of them")
    if callback.pruned_at is not None:
        trial.set_user_attr("pruned_at", callback.pruned_at)
        return TrialOutcome("pruned")
    return TrialOutcome("complete", value=score(result.test_metrics, result.history, tune.metric))


def score(evaluation: dict, history: dict, metric: str) -> float:
    """The trial's value of ``metric`` (see the module docstring)."""
    validation = evaluation.get("validation") or {}
    if metric.startswith("val_") and metric[4:] in validation:
        return float(validation[metric[4:]])
    return float(history[metric][-1])


def _record_run_dir(trial, trials_dir: Path, name: str) -> None:
    found = sorted(trials_dir.glob(f"{name}-*"))
    if found:
        trial.set_user_attr("run_dir", str(found[-1]))

