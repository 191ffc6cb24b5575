"""A callback that reports the tuned metric to an Optuna trial after each epoch and stops
the fit when the pruner says the trial is not promising.

Why stop instead of raising ``optuna.TrialPruned`` inside ``fit``: a stopped fit still
evaluates, saves the model and writes the report, so a pruned trial is a complete kiln run
folder like any other; ``kiln.tune.objective`` raises ``TrialPruned`` after ``train`` returns.
"""

from __future__ import annotations

from kiln.callbacks.callback import Callback

__all__ = ["PruningCallback"]


class PruningCallback(Callback):
    """Report ``logs[metric]`` at each epoch end as step ``epoch + 1``; stop training when pruned.

    Args:
        trial: the ``optuna.Trial`` being run.
        metric: the logged name reported (e.g. ``"val_accuracy"``).

    After ``fit``: ``pruned_at`` is the epoch (1-based) the pruner stopped at, or None;
    ``missing`` lists the logged names when ``metric`` was not among them (training stops at
    once, since the trial cannot be judged), else None; ``epochs`` counts epochs reported.
    """

    def __init__(self, trial, metric: str):
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.pruned_at: int | None = None
        self.missing: list[str] | None = None
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.metric not in logs:
            self.missing = sorted(logs)
            self.model.stop_training = True
            return
        self.epochs = epoch + 1
        self.trial.report(float(logs[self.metric]), step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True
