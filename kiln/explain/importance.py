"""Global permutation importance: how much the run's metric drops when one feature is shuffled.

Breiman (2001): shuffle one input feature's rows (breaking its link to the label, keeping its
distribution), evaluate again, and credit the feature with the loss in the metric; repeated
``n_repeats`` times with different shuffles, the mean and the spread are reported. It is
model-agnostic and needs no baseline, which is why `kiln train` computes it on the test split
by default. Shuffling the encoded tensor's rows is the same as shuffling the raw column and
encoding it again (every kiln feature encodes row by row), and much faster.

Which metric: the model's own (compiled) metrics, as ``evaluate`` returns them; by default the
first of accuracy, r2, auc found, else the loss. Higher is better except for losses and errors
(loss, mae, mse, rmse, ...), whose sign is flipped so that an important feature always scores
above zero.
"""

from __future__ import annotations

import numpy as np
import torch

from kiln.errors import KilnValueError

__all__ = ["permutation_importance", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "mean_absolute_error", "mean_squared_error", "crossentropy",
                   "log_loss")
_PREFERRED = ("accuracy", "r2", "auc")


def _pick_metric(scores: dict, metric: str | None) -> str:
    if metric is not None:
        if metric not in scores:
            raise KilnValueError(f"The model does not report metric {metric!r}; it reports {sorted(scores)}. "
                                 f"Pass one of them.")
        return metric
    for name in _PREFERRED:
        if name in scores:
            return name
    return "loss"


def permutation_importance(model, x: dict, y, *, metric: str | None = None, n_repeats: int = 5, seed: int = 0,
                           batch_size: int = 256) -> dict:
    """Permutation importance of each input of a compiled model.

    Args:
        model: a compiled kiln model (``evaluate`` gives its metrics).
        x: name -> ``(rows, ...)`` encoded inputs; y: the encoded targets.
        metric: the metric to use (default: accuracy, r2 or auc if reported, else the loss).
        n_repeats: shuffles per feature (default 5). seed: the shuffles' seed.

    Returns:
        ``{"metric": name, "baseline": score, "importances": {feature: {"mean", "std"}}}``,
        features ordered from the most important.

    Example::

        imp = permutation_importance(model, x_test, y_test)
        imp["importances"]["age"]["mean"]   # accuracy lost when age is shuffled
    """
    if n_repeats < 1:
        raise KilnValueError(f"`n_repeats` must be a positive integer. Received: n_repeats={n_repeats!r}")
    def evaluate(inputs):
        return model.evaluate(inputs, y, batch_size=batch_size, verbose=0, return_dict=True)

    scores = evaluate(x)
    name = _pick_metric(scores, metric)
    sign = -1.0 if any(part in name for part in LOWER_IS_BETTER) else 1.0
    baseline = float(scores[name])
    generator = torch.Generator().manual_seed(seed)
    rows = len(next(iter(x.values())))
    result = {}
    for feature in x:
        drops = []
        for _ in range(n_repeats):
            order = torch.randperm(rows, generator=generator)
            shuffled = {**x, feature: x[feature][order]}
            drops.append(sign * (baseline - float(evaluate(shuffled)[name])))
        result[feature] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    ranked = dict(sorted(result.items(), key=lambda kv: -kv[1]["mean"]))
    return {"metric": name, "baseline": baseline, "higher_is_better": sign > 0, "importances": ranked}
