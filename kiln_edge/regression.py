"""Regression metrics in the data's own units: the one definition every kiln surface shares.

    regression_metrics([3.0, 5.0], [2.5, 5.5])
    # {'mae': 0.5, 'rmse': 0.5, 'r2': 0.75, 'median_ae': 0.5, 'max_error': 0.5, 'mean_residual': 0.0}

``kiln train``'s evaluation.json, ``kiln evaluate`` (both backends, through
``kiln_edge.run.LoadedRun``) and report.html's regression table all call this function, so one
run shows one MAE wherever a user reads it. Why in kiln_edge: the torch-free run object needs it,
and kiln_edge must not import kiln (which imports torch); kiln imports it from here.

A constant target (every true value the same) has no variance to explain, so R² is undefined:
``r2`` is ``None`` then (JSON ``null``; report.html shows "—"), never a division error and never
a made-up 0.0 or 1.0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["regression_metrics", "REPORT_LABELS"]

# How report.html titles each metric (its table head and cards), in the order shown.
REPORT_LABELS = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "median_ae": "median AE", "max_error": "max error",
                 "mean_residual": "mean residual"}


def regression_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE, R², median and max absolute error and mean residual of ``y_pred`` against ``y_true``.

    Args:
        y_true: the true values, in the data's units, shape ``(rows,)`` (any array-like of numbers).
        y_pred: the predictions, same shape and units (decoded from the model's standardised output).

    Returns:
        ``{"mae", "rmse", "r2", "median_ae", "max_error", "mean_residual"}`` as Python floats, in
        the data's units (R² is unit-free); ``r2`` is ``None`` for a constant ``y_true`` (undefined).
        The residual is ``true - pred``. Non-finite values are not filtered here: the caller
        decides (report.html leaves such rows out and says how many).

    Example:
        >>> regression_metrics([1.0, 1.0], [1.0, 2.0])["r2"] is None  # a constant target
        True
    """
    true = np.asarray(y_true, dtype=float).reshape(-1)
    pred = np.asarray(y_pred, dtype=float).reshape(-1)
    residual = true - pred  # (rows,)
    squared = float(np.sum(residual ** 2))
    total = float(np.sum((true - true.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual ** 2))),
        "r2": 1.0 - squared / total if total > 0 else None,
        "median_ae": float(np.median(np.abs(residual))),
        "max_error": float(np.max(np.abs(residual))),
        "mean_residual": float(np.mean(residual)),
    }
