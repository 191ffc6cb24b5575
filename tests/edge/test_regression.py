"""kiln_edge.regression.regression_metrics: closed forms, scikit-learn's definitions, a constant target."""

import math

import numpy as np
import pytest

from kiln_edge.regression import REPORT_LABELS, regression_metrics


def test_closed_form_on_four_rows():
    # residuals (true - pred): 1, -1, 2, 0 -> |r| 1, 1, 2, 0; r² 1, 1, 4, 0; mean of true 2.5, SS_tot 5.
    got = regression_metrics([1.0, 2.0, 3.0, 4.0], [0.0, 3.0, 1.0, 4.0])
    assert got == {"mae": 1.0, "rmse": math.sqrt(1.5), "r2": 1.0 - 6.0 / 5.0, "median_ae": 1.0, "max_error": 2.0,
                   "mean_residual": 0.5}
    assert list(got) == list(REPORT_LABELS)


def test_equals_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    true = rng.normal(size=300) * 50 + 150
    pred = true + rng.normal(size=300) * 10
    got = regression_metrics(true, pred)
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(true, pred), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(metrics.mean_squared_error(true, pred)), rel=1e-12)
    assert got["r2"] == pytest.approx(metrics.r2_score(true, pred), rel=1e-12)
    assert got["median_ae"] == pytest.approx(metrics.median_absolute_error(true, pred), rel=1e-12)
    assert got["max_error"] == pytest.approx(metrics.max_error(true, pred), rel=1e-12)


def test_constant_target_has_no_r2():
    # Nothing to explain: R² is undefined (None, JSON null) rather than a division error or a made-up 0.0.
    got = regression_metrics(np.full(5, 7.0), [7.0, 8.0, 6.0, 7.0, 7.0])
    assert got["r2"] is None and got["mae"] == pytest.approx(0.4) and got["mean_residual"] == 0.0


def test_column_and_row_shapes_agree():
    true, pred = np.arange(6.0), np.arange(6.0)[::-1]
    assert regression_metrics(true.reshape(-1, 1), pred.reshape(-1, 1)) == regression_metrics(true, pred)
