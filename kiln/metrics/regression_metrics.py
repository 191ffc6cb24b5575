"""Regression metrics: mean absolute and squared error, their root, and R2.

Part of ``kiln.metrics``; import the metrics from there (``from kiln import metrics``).
"""

from __future__ import annotations

from typing import Any

import torch

from kiln import losses
from kiln.errors import KilnValueError
from kiln.metrics._base import _divide_no_nan, _float_pred, _one_value_per_sample, _same_shape, _sample_weights
from kiln.metrics.base import MeanMetricWrapper, Metric

__all__ = [
    "MeanAbsoluteError", "MeanSquaredError", "RootMeanSquaredError", "R2Score",
]


# ============================================================================ mean-based metrics
class MeanAbsoluteError(MeanMetricWrapper):
    """Mean absolute error over the epoch (sklearn's mean_absolute_error)."""

    default_name = "mean_absolute_error"

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(losses.mean_absolute_error, name=name, dtype=dtype)

    def _fast(self, y_true, y_pred):
        if _one_value_per_sample(y_true, y_pred):
            return (y_pred - y_true).abs().sum(), y_pred.numel()
        return None


class MeanSquaredError(MeanMetricWrapper):
    """Mean squared error over the epoch (sklearn's mean_squared_error)."""

    default_name = "mean_squared_error"

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(losses.mean_squared_error, name=name, dtype=dtype)

    def _fast(self, y_true, y_pred):
        if _one_value_per_sample(y_true, y_pred):
            return (y_pred - y_true).square().sum(), y_pred.numel()
        return None


class RootMeanSquaredError(MeanSquaredError):
    """Square root of the epoch's mean squared error (not the mean of per-batch roots)."""

    default_name = "root_mean_squared_error"

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def _result(self, state):
        return torch.sqrt(super()._result(state))


# ============================================================================ R2
class R2Score(Metric):
    """Coefficient of determination over the epoch, as sklearn's r2_score.

    Keeps per-output sums of w, w*y, w*y^2 and w*(y - y_pred)^2, so the result is exact
    however the epoch is batched. y of shape (batch,) is one output; (batch, outputs) many.

    Args:
        class_aggregation: ("uniform_average") also "variance_weighted_average", or None for
            one score per output.
        num_regressors: (0) when > 0, the adjusted R2 for that many regressors.
    """

    default_name = "r2_score"
    _AGGREGATIONS = ("uniform_average", "variance_weighted_average", None)

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in self._AGGREGATIONS:
            raise KilnValueError(
                f"Received an invalid value for `class_aggregation`, expected one of {list(self._AGGREGATIONS)}. "
                f"Received: class_aggregation={class_aggregation!r}"
            )
        if not (isinstance(num_regressors, int) and num_regressors >= 0):
            raise KilnValueError(
                f"Received an invalid value for `num_regressors`, expected an integer >= 0. Received: num_regressors={num_regressors!r}"
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors

    @staticmethod
    def _columns(y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: Any) -> tuple[torch.Tensor, ...]:
        """(batch,) or (batch, ..., outputs) -> (samples, outputs) labels, predictions and weights."""
        y_true, y_pred = _same_shape(y_true, y_pred, "r2_score")
        weight = _sample_weights(sample_weight, y_pred)
        if weight is None:
            weight = torch.ones_like(y_pred)
        outputs = y_pred.shape[-1] if y_pred.dim() > 1 else 1
        return tuple(t.reshape(-1, outputs) for t in (y_true, y_pred, weight))

    def _new_state(self, y_true, y_pred):
        outputs = y_pred.shape[-1] if y_pred.dim() > 1 else 1
        return {key: self._zeros(outputs) for key in ("count", "sum", "squared_sum", "residual")}

    def _update(self, state, y_true, y_pred, sample_weight):
        dtype = self._state_dtype()
        columns = self._columns(y_true, _float_pred(y_pred), sample_weight)
        y_true, y_pred, w = (t.to(dtype) for t in columns)  # (N, outputs) each
        state["count"].add_(w.sum(dim=0))
        state["sum"].add_((w * y_true).sum(dim=0))
        state["squared_sum"].add_((w * y_true.square()).sum(dim=0))
        state["residual"].add_((w * (y_true - y_pred).square()).sum(dim=0))

    def _result(self, state):
        mean = _divide_no_nan(state["sum"], state["count"])
        total = state["squared_sum"] - state["sum"] * mean  # weighted sum of (y - mean)^2
        # sklearn: a constant target scores 1.0 if predicted perfectly, else 0.0.
        perfect = torch.where(state["residual"] == 0, torch.ones_like(total), torch.zeros_like(total))
        scores = torch.where(total == 0, perfect, 1.0 - _divide_no_nan(state["residual"], total))
        if self.class_aggregation == "uniform_average":
            r2 = scores.mean()
        elif self.class_aggregation == "variance_weighted_average":
            r2 = _divide_no_nan((total * scores).sum(), total.sum())
        else:
            r2 = scores
        if self.num_regressors:
            n = state["count"][0]
            r2 = 1.0 - (1.0 - r2) * _divide_no_nan(n - 1.0, n - self.num_regressors - 1.0)
        return r2

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation, "num_regressors": self.num_regressors}
