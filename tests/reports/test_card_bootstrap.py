"""Bootstrap intervals: they cover the point estimate and shrink with more rows."""

import numpy as np
import pytest

from kiln.reports.card import bootstrap_ci
from kiln.errors import KilnValueError


def _labels(rows, seed=0):
    g = np.random.default_rng(seed)
    truth = g.integers(0, 2, rows)
    predicted = np.where(g.random(rows) < 0.8, truth, 1 - truth)  # about 80% right
    return truth, predicted


@pytest.mark.parametrize("metric", ["accuracy", "mae", "rmse", "r2"])
def test_the_interval_covers_the_point_estimate_and_shrinks_with_more_rows(metric):
    widths = []
    for rows in (50, 500, 5000):
        truth, predicted = _labels(rows)
        if metric != "accuracy":
            predicted = truth + np.random.default_rng(1).normal(size=rows)
        ci = bootstrap_ci(metric, truth, predicted)
        assert ci["low"] <= ci["value"] <= ci["high"] and ci["rows"] == rows
        widths.append(ci["high"] - ci["low"])
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] > 5  # about sqrt(100) = 10 in theory


def test_the_point_estimate_is_the_metric_on_the_rows_as_they_are():
    ci = bootstrap_ci("accuracy", ["a", "b", "a", "b"], ["a", "b", "b", "b"])
    assert ci["value"] == 0.75
    truth, predicted = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])
    assert bootstrap_ci("mae", truth, predicted)["value"] == pytest.approx(0.5)
    assert bootstrap_ci("rmse", truth, predicted)["value"] == pytest.approx(np.sqrt((0.25 + 1) / 3))


def test_bad_requests_name_the_value():
    with pytest.raises(KilnValueError, match="No bootstrap for metric 'f1'; expected one of"):
        bootstrap_ci("f1", [1], [1])
    with pytest.raises(KilnValueError, match="received 2 and 1"):
        bootstrap_ci("mae", [1, 2], [1])
