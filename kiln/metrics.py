"""Stateful metrics with Keras 3 names, exact over the whole epoch.

Why it looks this way: `update_state` runs every training step, so it only does in-place
tensor ops on state that lives on the inputs' device, under `torch.no_grad()`, and never
reads a value back to the host. The one host sync happens in `result()`, once per log.
State is kept in float64 (float32 on Apple's MPS, which has no float64) so sums over an
epoch stay exact, and results equal scikit-learn's on the concatenated data: AUC keeps
every prediction of the epoch instead of Keras's 200-threshold approximation.

Example:
    >>> m = metrics.get("accuracy", y_true=labels, y_pred=probabilities)
    >>> for y, p in batches: m.update_state(y, p)
    >>> m.result()          # a Python float
    >>> m.reset_state()     # at the start of the next epoch
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from kiln import losses
from kiln.errors import KilnTypeError, KilnValueError, SerializationError, ShapeError, unknown_name_error
from kiln.losses import squeeze_or_expand_to_same_rank

__all__ = [
    "Metric",
    "Mean",
    "MeanMetricWrapper",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "R2Score",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "FBetaScore",
    "F1Score",
    "AUC",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "get",
    "serialize",
    "deserialize",
]


# ----------------------------------------------------------------------------- helpers


def _as_tensor(x: Any, device: torch.device | None = None) -> torch.Tensor:
    """A detached tensor (arrays are wrapped without a copy), moved to `device` if given."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t if device is None else t.to(device)


def _divide_no_nan(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, 0 where the denominator is 0 (sklearn's zero_division=0)."""
    safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    return torch.where(denominator == 0, torch.zeros_like(numerator), numerator / safe)


def _to_python(value: Any) -> float | list[float]:
    """The one host sync: a scalar tensor becomes a float, a vector a list of floats."""
    if isinstance(value, torch.Tensor):
        return float(value) if value.dim() == 0 else value.tolist()
    return float(value)


def _shape_error(
    metric: str,
    expected: str,
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    hint: str,
) -> ShapeError:
    return ShapeError(
        f"`{metric}` expects {expected}. Received: y_true.shape={tuple(y_true.shape)}, "
        f"y_pred.shape={tuple(y_pred.shape)}. {hint}"
    )


def _same_shape(y_true: torch.Tensor, y_pred: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Align (batch,) against (batch, 1) and check the shapes then match."""
    t, p = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if t.shape != p.shape:
        hint = "Make the model's output the same shape as the targets."
        if p.shape[-1:] != (1,) and (t.dim() < p.dim() or t.shape[-1:] == (1,)):
            hint = "y_true looks like integer class labels: use a sparse_* metric."
        raise _shape_error(metric, "y_true and y_pred of the same shape", y_true, y_pred, hint)
    return t, p


def _sparse_labels(y_true: torch.Tensor, y_pred: torch.Tensor, metric: str) -> torch.Tensor:
    """Class ids of shape y_pred.shape[:-1] as int64, from (batch,) or (batch, 1) labels."""
    if y_pred.dim() < 2:
        hint = "Use binary_accuracy for a single output."
        raise _shape_error(metric, "y_pred of shape (batch, classes)", y_true, y_pred, hint)
    labels = y_true.squeeze(-1) if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1 else y_true
    if labels.shape != y_pred.shape[:-1]:
        hint = "y_true looks one-hot: use the categorical metric." if y_true.shape == y_pred.shape else ""
        raise _shape_error(metric, "integer labels of shape y_pred.shape[:-1]", y_true, y_pred, hint)
    return labels.long()


def _one_hot_labels(y_true: torch.Tensor, y_pred: torch.Tensor, metric: str) -> torch.Tensor:
    """Check y_true is one-hot shaped like y_pred, with the fix when it holds class ids."""
    if y_pred.dim() < 2:
        hint = "Use binary_accuracy for a single output."
        raise _shape_error(metric, "y_pred of shape (batch, classes)", y_true, y_pred, hint)
    if y_true.shape != y_pred.shape:
        hint = "Make y_true one-hot (kiln.utils.to_categorical)."
        if y_true.dim() < y_pred.dim() or y_true.shape[-1] == 1:
            hint = "y_true looks like integer class labels: use the sparse_* metric."
        raise _shape_error(metric, "one-hot y_true of the same shape as y_pred", y_true, y_pred, hint)
    return y_true


def _sample_weights(sample_weight: Any, like: torch.Tensor) -> torch.Tensor | None:
    """Shape sample_weight to broadcast against `like` (batch, ...); None stays None."""
    if sample_weight is None:
        return None
    w = _as_tensor(sample_weight, like.device).to(like.dtype if like.is_floating_point() else torch.float64)
    while w.dim() > like.dim() and w.shape[-1] == 1:
        w = w.squeeze(-1)
    while 0 < w.dim() < like.dim():
        w = w.unsqueeze(-1)
    try:
        return torch.broadcast_to(w, like.shape)
    except RuntimeError:
        raise ShapeError(
            f"`sample_weight` must have shape (batch,) or broadcast to {tuple(like.shape)}. "
            f"Received: sample_weight.shape={tuple(w.shape)}. Pass one weight per sample."
        ) from None


def _dtype_name(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).removeprefix("torch.")


def _as_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise KilnValueError(
            f"Received an invalid value for `dtype`, expected a torch dtype such as 'float64'. Received: dtype={dtype!r}"
        )
    return resolved


# ----------------------------------------------------------------------------- base classes


class Metric:
    """Base class of stateful metrics.

    Subclasses implement `_new_state(y_true, y_pred) -> dict of tensors`,
    `_update(state, y_true, y_pred, sample_weight)` (in-place ops only, no `.item()`) and
    `_result(state) -> tensor`. State is created lazily on the first update, on the
    inputs' device, so a metric needs no device of its own.

    Args:
        name: (None) the name in logs; defaults to Keras's name for the class.
        dtype: (None) dtype of the state; float64 by default (float32 on MPS).
    """

    default_name = "metric"

    def __init__(self, name: str | None = None, dtype: Any = None):
        self.name = name or self.default_name
        self.dtype = _as_dtype(dtype)
        self._state: dict | None = None
        self._device: torch.device | None = None

    def _state_dtype(self) -> torch.dtype:
        if self.dtype is not None:
            return self.dtype
        return torch.float32 if self._device is not None and self._device.type == "mps" else torch.float64

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(shape, dtype=self._state_dtype(), device=self._device)

    def _new_state(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> dict:
        raise NotImplementedError

    def _update(self, state: dict, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: Any) -> None:
        raise NotImplementedError

    def _result(self, state: dict) -> torch.Tensor:
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate one batch. y_true/y_pred: tensors or arrays; sample_weight: (batch,) or None."""
        with torch.no_grad():
            y_pred = _as_tensor(y_pred, self._device)
            y_true = _as_tensor(y_true, y_pred.device)
            if self._state is None:
                self._device = y_pred.device
                self._state = self._new_state(y_true, y_pred)
            self._update(self._state, y_true, y_pred, sample_weight)

    def result(self) -> float | list[float]:
        """The metric over everything seen since the last reset (0.0 before any update)."""
        if self._state is None:
            return 0.0
        with torch.no_grad():
            return _to_python(self._result(self._state))

    def reset_state(self) -> None:
        """Forget every update (called at the start of each epoch)."""
        self._state = None
        self._device = None

    def __call__(self, *args: Any, **kwargs: Any) -> float | list[float]:
        """Update with one batch, then return the result (Keras's metric(y_true, y_pred))."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": _dtype_name(self.dtype)}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _samplewise(
    values: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reduce (batch, ...) values and weights to one per sample, as Keras's Mean does."""
    if weights is not None:
        values = values * weights
    if values.dim() > 1:
        dims = tuple(range(1, values.dim()))
        values = values.mean(dim=dims)
        weights = None if weights is None else weights.mean(dim=dims)
    return values, weights


class Mean(Metric):
    """Weighted running mean of values (the trainer tracks the loss with it).

    `update_state(values, sample_weight=None)`: values is a scalar, (batch,) or (batch, ...);
    the result is sum(values * w) / sum(w).

    Example:
        >>> m = Mean("loss"); m.update_state(loss, sample_weight=batch_size)
    """

    default_name = "mean"

    def _new_state(self, y_true, y_pred):
        return {"total": self._zeros(), "count": self._zeros()}

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        with torch.no_grad():
            values = _as_tensor(values, self._device)
            if self._state is None:
                self._device = values.device
                self._state = self._new_state(None, values)
            self._accumulate(values, sample_weight)

    def _accumulate(self, values: torch.Tensor, sample_weight: Any) -> None:
        values = values.to(self._device, self._state_dtype())  # float64 sums stay exact over an epoch
        values, weights = _samplewise(values, _sample_weights(sample_weight, values))
        self._state["total"].add_(values.sum())
        self._state["count"].add_(values.numel() if weights is None else weights.sum())

    def _result(self, state):
        return _divide_no_nan(state["total"], state["count"])


class MeanMetricWrapper(Mean):
    """Mean over the epoch of `fn(y_true, y_pred, **kwargs)`, a per-sample (or per-element) value.

    Args:
        fn: the function, e.g. `kiln.losses.mae` or your own.
        name: (None) defaults to fn.__name__.
        dtype: (None) state dtype.
        **kwargs: passed to fn on every update.
    """

    default_name = None  # subclasses name themselves; a bare wrapper takes fn's name

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name or self.default_name or getattr(fn, "__name__", "metric"), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def _fast(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """``(sum of per-element values, element count)`` in one or two torch ops for the
        common unweighted case, or None for the general path. Why: update_state runs every
        training step; for small models the general path's checks cost as much as the step's
        matrix products. The epoch result is the same: with equal shapes, the mean of
        per-sample means equals the mean over all elements."""
        return None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if (sample_weight is None and self._state is not None and type(y_pred) is torch.Tensor
                and type(y_true) is torch.Tensor):
            fast = self._fast(y_true, y_pred)
            if fast is not None:
                total, count = fast
                self._state["total"].add_(total.detach())
                self._state["count"].add_(count)
                return
        with torch.no_grad():
            y_pred = _as_tensor(y_pred, self._device)
            y_true = _as_tensor(y_true, y_pred.device)
            values = _as_tensor(self._fn(y_true, y_pred, **self._fn_kwargs))
            if self._state is None:
                self._device = values.device
                self._state = self._new_state(y_true, y_pred)
            self._accumulate(values, sample_weight)

    def get_config(self):
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = getattr(self._fn, "__name__", repr(self._fn))
        return config


# ----------------------------------------------------------------------------- per-sample functions


def _float_pred(y_pred: torch.Tensor) -> torch.Tensor:
    return y_pred if y_pred.is_floating_point() else y_pred.to(torch.get_default_dtype())


def accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where y_pred equals y_true exactly, else 0.0, per element."""
    y_true, y_pred = _same_shape(torch.as_tensor(y_true), torch.as_tensor(y_pred), "accuracy")
    return (y_true == y_pred.to(y_true.dtype)).to(torch.float32)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> torch.Tensor:
    """1.0 where (y_pred > threshold) equals the 0/1 label, per element."""
    y_true, y_pred = _same_shape(torch.as_tensor(y_true), _float_pred(torch.as_tensor(y_pred)), "binary_accuracy")
    return (y_true.to(y_pred.dtype) == (y_pred > threshold).to(y_pred.dtype)).to(torch.float32)


def categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where argmax(y_pred) equals argmax(one-hot y_true). (batch, ..., classes) -> (batch, ...)."""
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    y_true = _one_hot_labels(y_true, y_pred, "categorical_accuracy")
    return (y_true.argmax(dim=-1) == y_pred.argmax(dim=-1)).to(torch.float32)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where argmax(y_pred) equals the integer label. y_pred (batch, ..., classes) -> (batch, ...)."""
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    labels = _sparse_labels(y_true, y_pred, "sparse_categorical_accuracy")
    return (labels == y_pred.argmax(dim=-1)).to(torch.float32)


def _in_top_k(labels: torch.Tensor, y_pred: torch.Tensor, k: int) -> torch.Tensor:
    """1.0 where the true class's score is at least the k-th largest (ties count as hits)."""
    k = min(k, y_pred.shape[-1])
    kth_largest = y_pred.topk(k, dim=-1).values[..., -1:]  # (batch, ..., 1)
    true_score = y_pred.gather(-1, labels.unsqueeze(-1))  # (batch, ..., 1)
    return (true_score >= kth_largest).squeeze(-1).to(torch.float32)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> torch.Tensor:
    """1.0 where the one-hot label's class is among the k highest scores."""
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    y_true = _one_hot_labels(y_true, y_pred, "top_k_categorical_accuracy")
    return _in_top_k(y_true.argmax(dim=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> torch.Tensor:
    """1.0 where the integer label is among the k highest scores."""
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    return _in_top_k(_sparse_labels(y_true, y_pred, "sparse_top_k_categorical_accuracy"), y_pred, k)


# ----------------------------------------------------------------------------- mean-based metrics


def _one_value_per_sample(y_true: torch.Tensor, y_pred: torch.Tensor) -> bool:
    """Same-shaped float tensors of shape (batch,) or (batch, 1): there, per-element sums and
    counts are per-sample ones, so a metric's fast path agrees with its general path."""
    return (y_true.shape == y_pred.shape and y_pred.is_floating_point() and y_true.dtype == y_pred.dtype
            and (y_pred.dim() == 1 or (y_pred.dim() == 2 and y_pred.shape[1] == 1)))


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


class Accuracy(MeanMetricWrapper):
    """How often y_pred equals y_true exactly (for predicted labels, not probabilities)."""

    default_name = "accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often (y_pred > threshold) matches 0/1 labels.

    Args:
        threshold: (0.5) use 0.0 when y_pred holds logits.
    """

    default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=float(threshold))

    def _fast(self, y_true, y_pred):
        if _one_value_per_sample(y_true, y_pred):
            threshold = self._fn_kwargs["threshold"]
            return ((y_pred > threshold).to(y_true.dtype) == y_true).sum(), y_pred.numel()
        return None


class CategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_pred) matches the one-hot label."""

    default_name = "categorical_accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_pred) matches the integer label."""

    default_name = "sparse_categorical_accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def _fast(self, y_true, y_pred):
        if y_true.dim() == 1 and y_pred.dim() == 2 and y_true.dtype == torch.int64:
            return (y_pred.argmax(dim=-1) == y_true).sum(), y_true.shape[0]
        return None


def _check_k(k: int) -> int:
    if not (isinstance(k, int) and k > 0):
        raise KilnValueError(
            f"Received an invalid value for `k`, expected a positive integer. Received: k={k!r}"
        )
    return k


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the k highest scores.

    Args:
        k: (5) how many top scores count as a hit.
    """

    default_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=_check_k(k))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the k highest scores.

    Args:
        k: (5) how many top scores count as a hit.
    """

    default_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=_check_k(k))


# ----------------------------------------------------------------------------- R2


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


# ----------------------------------------------------------------------------- precision / recall / F


def _thresholds_list(thresholds: float | Sequence[float] | None) -> list[float]:
    values = [0.5] if thresholds is None else [thresholds] if isinstance(thresholds, (int, float)) else list(thresholds)
    bad = [t for t in values if not 0.0 <= float(t) <= 1.0]
    if not values or bad:
        raise KilnValueError(
            f"Received an invalid value for `thresholds`, expected numbers in [0, 1]. Received: thresholds={thresholds!r}"
        )
    return [float(t) for t in values]


class _ConfusionCounts(Metric):
    """Weighted true/false positive/negative counts at one or more thresholds.

    y_pred > threshold counts as a positive prediction; a non-zero label is a positive.
    Multi-label outputs are flattened (sklearn's "micro" average) unless class_id picks one.
    """

    def __init__(
        self,
        thresholds: float | Sequence[float] | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self._thresholds = _thresholds_list(thresholds)
        self.thresholds = thresholds
        self.class_id = class_id

    def _new_state(self, y_true, y_pred):
        n = len(self._thresholds)
        state = {key: self._zeros(n) for key in ("tp", "fp", "fn")}
        state["thresholds"] = torch.tensor(self._thresholds, dtype=_float_pred(y_pred).dtype, device=self._device)
        return state

    def _update(self, state, y_true, y_pred, sample_weight):
        y_true, y_pred = _same_shape(y_true, _float_pred(y_pred), self.name)
        w = _sample_weights(sample_weight, y_pred)
        if self.class_id is not None:
            if not 0 <= self.class_id < y_pred.shape[-1]:
                raise KilnValueError(
                    f"`class_id`={self.class_id} is out of range for y_pred.shape={tuple(y_pred.shape)}."
                )
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
            w = None if w is None else w[..., self.class_id]
        dtype = self._state_dtype()
        predicted = (y_pred.reshape(-1, 1) > state["thresholds"]).to(dtype)  # (N, thresholds)
        actual = (y_true.reshape(-1, 1) != 0).to(dtype)  # (N, 1)
        weight = torch.ones_like(actual) if w is None else w.reshape(-1, 1).to(dtype)
        state["tp"].add_((predicted * actual * weight).sum(dim=0))
        state["fp"].add_((predicted * (1 - actual) * weight).sum(dim=0))
        state["fn"].add_(((1 - predicted) * actual * weight).sum(dim=0))

    def _one_or_many(self, values: torch.Tensor) -> torch.Tensor:
        """A float for a single threshold, a list for a list of thresholds (as Keras)."""
        return values[0] if isinstance(self.thresholds, (int, float)) or self.thresholds is None else values

    def get_config(self):
        return {**super().get_config(), "thresholds": self.thresholds, "class_id": self.class_id}


class Precision(_ConfusionCounts):
    """tp / (tp + fp) over the epoch (sklearn's precision_score, zero_division=0).

    Args:
        thresholds: (0.5) a float, or a list for one precision per threshold.
        class_id: (None) score a single column of a multi-label output.
    """

    default_name = "precision"

    def _result(self, state):
        return self._one_or_many(_divide_no_nan(state["tp"], state["tp"] + state["fp"]))


class Recall(_ConfusionCounts):
    """tp / (tp + fn) over the epoch (sklearn's recall_score, zero_division=0).

    Args:
        thresholds: (0.5) a float, or a list for one recall per threshold.
        class_id: (None) score a single column of a multi-label output.
    """

    default_name = "recall"

    def _result(self, state):
        return self._one_or_many(_divide_no_nan(state["tp"], state["tp"] + state["fn"]))


class FBetaScore(Metric):
    """F-beta score over the epoch (Keras 3 semantics; equals sklearn's fbeta_score).

    y_pred (batch, classes) holds probabilities; with threshold=None the highest class of each
    sample is the prediction (argmax), otherwise every class above threshold. A single
    sigmoid output (batch, 1) is the binary case: threshold None means 0.5 there.
    y_true is one-hot, or integer class ids (one-hot encoded here).

    Args:
        average: (None) None for one score per class, "micro", "macro" or "weighted".
        beta: (1.0) weight of recall against precision.
        threshold: (None) see above.
    """

    default_name = "fbeta_score"
    _AVERAGES = (None, "micro", "macro", "weighted")

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        if average not in self._AVERAGES:
            raise KilnValueError(
                f"Received an invalid value for `average`, expected one of {list(self._AVERAGES)}. Received: average={average!r}"
            )
        if not beta > 0:
            raise KilnValueError(
                f"Received an invalid value for `beta`, expected a positive number. Received: beta={beta!r}"
            )
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise KilnValueError(
                f"Received an invalid value for `threshold`, expected a number in (0, 1]. Received: threshold={threshold!r}"
            )
        self.average, self.beta, self.threshold = average, float(beta), threshold

    def _columns(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: Any = None,
    ) -> tuple[torch.Tensor, ...]:
        """(samples, classes) one-hot labels and float predictions, and (samples, 1) weights."""
        y_pred = _float_pred(y_pred)
        classes = y_pred.shape[-1] if y_pred.dim() > 1 else 1
        sparse = y_pred.dim() > 1 and classes > 1 and (y_true.dim() < y_pred.dim() or y_true.shape[-1] == 1)
        if sparse:  # integer ids -> one-hot, by comparison (F.one_hot may sync to check the range)
            labels = _sparse_labels(y_true, y_pred, self.name)
            y_true = labels.unsqueeze(-1) == torch.arange(classes, device=labels.device)
        else:
            y_true, y_pred = _same_shape(y_true, y_pred, self.name)
        per_sample = y_pred[..., 0] if y_pred.dim() > 1 else y_pred  # one weight per row of classes
        weight = _sample_weights(sample_weight, per_sample)
        weight = torch.ones_like(per_sample) if weight is None else weight
        return y_true.reshape(-1, classes), y_pred.reshape(-1, classes), weight.reshape(-1, 1)

    def _new_state(self, y_true, y_pred):
        classes = y_pred.shape[-1] if y_pred.dim() > 1 else 1
        shape = () if self.average == "micro" else (classes,)
        return {key: self._zeros(*shape) for key in ("tp", "fp", "fn", "support")}

    def _update(self, state, y_true, y_pred, sample_weight):
        y_true, y_pred, weight = self._columns(y_true, y_pred, sample_weight)  # (N, classes), (N, 1)
        threshold = 0.5 if self.threshold is None and y_pred.shape[-1] == 1 else self.threshold
        if threshold is None:
            # Keras: the top class is the prediction; an all-zero row predicts nothing.
            predicted = (y_pred >= y_pred.max(dim=-1, keepdim=True).values) & (y_pred.abs() > 1e-9)
        else:
            predicted = y_pred > threshold
        dtype = self._state_dtype()
        predicted, actual, weight = predicted.to(dtype), (y_true != 0).to(dtype), weight.to(dtype)
        dims = None if self.average == "micro" else 0
        counts = {
            "tp": predicted * actual,
            "fp": predicted * (1 - actual),
            "fn": (1 - predicted) * actual,
            "support": actual,
        }
        for key, value in counts.items():
            state[key].add_((value * weight).sum(dim=dims))

    def _result(self, state):
        b2 = self.beta**2
        tp = state["tp"]
        scores = _divide_no_nan((1 + b2) * tp, (1 + b2) * tp + b2 * state["fn"] + state["fp"])
        if self.average == "weighted":
            return _divide_no_nan((scores * state["support"]).sum(), state["support"].sum())
        if self.average == "macro":
            return scores.mean()
        if scores.dim() == 1 and scores.shape[0] == 1:
            return scores[0]  # a single sigmoid output: one number, not a list of one
        return scores

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score over the epoch: FBetaScore with beta=1 (sklearn's f1_score).

    Args:
        average: (None) None for one score per class, "micro", "macro" or "weighted".
        threshold: (None) None: argmax for multi-class, 0.5 for a single sigmoid output.

    Example:
        >>> F1Score(average="macro").update_state(one_hot_labels, probabilities)
    """

    default_name = "f1_score"

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.pop("beta")
        return config


# ----------------------------------------------------------------------------- AUC


def _cumulative_counts(
    y_true: torch.Tensor,
    score: torch.Tensor,
    weight: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted true/false positives above each distinct score, highest score first. (N,) -> (D,)."""
    order = torch.argsort(score, descending=True, stable=True)
    score, y_true, weight = score[order], y_true[order], weight[order]
    tps = (y_true * weight).cumsum(0)
    fps = ((1 - y_true) * weight).cumsum(0)
    last_of_run = torch.ones_like(score, dtype=torch.bool)
    last_of_run[:-1] = score[1:] != score[:-1]  # tied scores form one threshold
    return tps[last_of_run], fps[last_of_run]


def _roc_auc(tps: torch.Tensor, fps: torch.Tensor) -> torch.Tensor:
    zero = tps.new_zeros(1)
    tpr = torch.cat([zero, tps]) / tps[-1]
    fpr = torch.cat([zero, fps]) / fps[-1]
    return torch.trapezoid(tpr, fpr)


def _average_precision(tps: torch.Tensor, fps: torch.Tensor) -> torch.Tensor:
    precision = _divide_no_nan(tps, tps + fps)
    recall = tps / tps[-1]
    return (torch.diff(recall, prepend=recall.new_zeros(1)) * precision).sum()


class AUC(Metric):
    """Exact area under the ROC curve or average precision, over every prediction of the epoch.

    Equals sklearn's roc_auc_score (curve="ROC") or average_precision_score (curve="PR").
    Keeps all labels and scores seen since the last reset (memory grows with the epoch),
    which Keras approximates with 200 thresholds instead.

    Args:
        curve: ("ROC") or "PR".
        multi_label: (False) False flattens multi-label outputs into one problem (sklearn
            average="micro"); True averages one AUC per label (sklearn average="macro").
        from_logits: (False) accepted for Keras compatibility; AUC only depends on the order
            of scores, so logits and probabilities give the same value.
    """

    default_name = "auc"

    def __init__(
        self,
        curve: str = "ROC",
        multi_label: bool = False,
        from_logits: bool = False,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        if str(curve).upper() not in ("ROC", "PR"):
            raise KilnValueError(
                f'Received an invalid value for `curve`, expected "ROC" or "PR". Received: curve={curve!r}'
            )
        self.curve, self.multi_label, self.from_logits = str(curve).upper(), bool(multi_label), bool(from_logits)

    def _new_state(self, y_true, y_pred):
        return {"y_true": [], "y_pred": [], "weight": []}

    def _update(self, state, y_true, y_pred, sample_weight):
        y_true, y_pred = _same_shape(y_true, _float_pred(y_pred), self.name)
        dtype = self._state_dtype()
        columns = y_pred.shape[-1] if self.multi_label and y_pred.dim() > 1 else 1
        w = _sample_weights(sample_weight, y_pred)
        w = torch.ones_like(y_pred, dtype=dtype) if w is None else w
        # copy=True: the caller may reuse its buffers for the next batch.
        state["y_true"].append(y_true.reshape(-1, columns).to(dtype, copy=True))
        state["y_pred"].append(y_pred.reshape(-1, columns).to(dtype, copy=True))
        state["weight"].append(w.reshape(-1, columns).to(dtype, copy=True))

    def _result(self, state):
        y_true, y_pred, weight = (torch.cat(state[key]) for key in ("y_true", "y_pred", "weight"))
        area = _roc_auc if self.curve == "ROC" else _average_precision
        scores = []
        for column in range(y_pred.shape[1]):  # one column unless multi_label
            tps, fps = _cumulative_counts(y_true[:, column], y_pred[:, column], weight[:, column])
            undefined = tps[-1] <= 0 or (self.curve == "ROC" and fps[-1] <= 0)
            scores.append(tps.new_zeros(()) if undefined else area(tps, fps))  # Keras gives 0 when undefined
        return torch.stack(scores).mean()

    def result(self) -> float:
        if self._state is None or not self._state["y_pred"]:
            return 0.0
        return super().result()

    def get_config(self):
        return {**super().get_config(), "curve": self.curve, "multi_label": self.multi_label, "from_logits": self.from_logits}


# ----------------------------------------------------------------------------- lookup and serialization

_CLASSES = {
    cls.__name__: cls
    for cls in (
        Mean, MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError, R2Score, Accuracy, BinaryAccuracy,
        CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
        Precision, Recall, FBetaScore, F1Score, AUC,
    )
}
# Names that build a class; the metric is then named after the string the user passed.
_NAMES = {
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "r2": R2Score, "r2_score": R2Score,
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision, "recall": Recall, "f1_score": F1Score, "f1": F1Score, "fbeta_score": FBetaScore,
    "auc": AUC,
}
# Per-sample functions, for MeanMetricWrapper names and the crossentropy metrics.
_FUNCTIONS = {
    "binary_crossentropy": losses.binary_crossentropy,
    "categorical_crossentropy": losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": losses.sparse_categorical_crossentropy,
    "accuracy": accuracy, "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "mean_absolute_error": losses.mean_absolute_error, "mean_squared_error": losses.mean_squared_error,
}
_AUTO = ("accuracy", "acc", "crossentropy", "ce")


def _loss_kind(loss: Any) -> str | None:
    """"binary", "sparse" or "categorical" when the loss tells the label format, else None."""
    if isinstance(loss, str):
        try:
            loss = losses.get(loss)
        except KilnValueError:
            return None
    if isinstance(loss, losses.LossFunctionWrapper):
        loss = loss.fn
    kinds = {
        "binary": (losses.BinaryCrossentropy, losses.binary_crossentropy),
        "sparse": (losses.SparseCategoricalCrossentropy, losses.sparse_categorical_crossentropy),
        "categorical": (losses.CategoricalCrossentropy, losses.categorical_crossentropy),
    }
    for kind, (cls, fn) in kinds.items():
        if isinstance(loss, cls) or loss is fn:
            return kind
    return None


def _shape_of(x: Any) -> tuple | None:
    """The shape of a sample batch, or a shape given as a tuple/torch.Size."""
    if x is None:
        return None
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return tuple(x) if isinstance(x, (tuple, torch.Size)) else tuple(torch.as_tensor(x).shape)


def _label_kind(y_true: Any, y_pred: Any, loss: Any) -> str | None:
    """Keras 3's compile_utils rule: binary, sparse or categorical labels; None if unknowable yet."""
    kind = _loss_kind(loss)
    if kind is not None:
        return kind
    pred_shape, true_shape = _shape_of(y_pred), _shape_of(y_true)
    if pred_shape is None:
        return None
    if len(pred_shape) < 2 or pred_shape[-1] == 1:
        return "binary"
    if true_shape is None:
        return None
    if len(true_shape) < len(pred_shape) or true_shape[-1] == 1:
        return "sparse"
    return "categorical"


def _auto_metric(identifier: str, kind: str) -> Metric:
    """The accuracy/crossentropy metric for `kind` of labels, named as the user wrote it."""
    if identifier.lower() in ("accuracy", "acc"):
        classes = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy, "categorical": CategoricalAccuracy}
        return classes[kind](name=identifier)
    functions = {
        "binary": losses.binary_crossentropy,
        "sparse": losses.sparse_categorical_crossentropy,
        "categorical": losses.categorical_crossentropy,
    }
    return MeanMetricWrapper(functions[kind], name=identifier)


class _ResolveOnFirstBatch(Metric):
    """"accuracy" or "crossentropy" asked for before any data or loss says which kind: decided
    from the shapes of the first batch, then every call goes to that metric."""

    def __init__(self, identifier: str):
        super().__init__(name=identifier)
        self.identifier = identifier
        self.metric: Metric | None = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.metric is None:
            kind = _label_kind(y_true, y_pred, None) or "categorical"
            self.metric = _auto_metric(self.identifier, kind)
        self.metric.update_state(y_true, y_pred, sample_weight)

    def result(self):
        return 0.0 if self.metric is None else self.metric.result()

    def reset_state(self):
        if self.metric is not None:
            self.metric.reset_state()

    def get_config(self):
        return {"name": self.name}


def get(identifier: Any, *, y_true: Any = None, y_pred: Any = None, loss: Any = None) -> Metric:
    """Resolve a metric identifier to a `Metric` instance.

    Args:
        identifier: a name ("mae", "accuracy", "AUC", ...; any case), a Metric instance
            (returned as is) or class, a dict {"class_name", "config"}, or a callable
            `f(y_true, y_pred)` returning per-sample values (becomes a MeanMetricWrapper).
        y_true, y_pred: (None) a sample batch or its shape; with `loss`, they pick the kind of
            "accuracy"/"acc"/"crossentropy"/"ce" as Keras's compile does (binary when y_pred
            has one column, sparse for integer labels, else categorical). Without them the
            choice is made on the first update.
        loss: (None) the compiled loss; a crossentropy loss decides the kind directly.

    Raises:
        KilnValueError: unknown name (the nearest valid one is suggested).
        KilnTypeError: any other type.

    Example:
        >>> get("accuracy", loss="sparse_categorical_crossentropy")   # SparseCategoricalAccuracy
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _AUTO:
            kind = _label_kind(y_true, y_pred, loss)
            return _ResolveOnFirstBatch(identifier) if kind is None else _auto_metric(identifier, kind)
        if key in _NAMES:
            # Keras logs the string the user wrote ("mae"); a class name ("AUC") keeps the default.
            return _NAMES[key](name=identifier if identifier in _NAMES else None)
        if key in _FUNCTIONS:
            return MeanMetricWrapper(_FUNCTIONS[key], name=identifier)
        cls = next((c for name, c in _CLASSES.items() if name.lower() == key), None)
        if cls is None:
            raise unknown_name_error("metric", identifier, [*_AUTO, *_NAMES, *_FUNCTIONS, *_CLASSES])
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise KilnTypeError(
        "Could not interpret a metric identifier: expected a name, a Metric, a dict or a callable. "
        f"Received: {identifier!r} of type {type(identifier).__name__}"
    )


def serialize(metric: Metric) -> dict:
    """{"class_name", "config"} for a metric, ready for JSON."""
    if isinstance(metric, _ResolveOnFirstBatch):
        return {"class_name": "auto", "config": {"name": metric.identifier}}
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> Metric:
    """Rebuild a metric from `serialize`'s output.

    Args:
        config: {"class_name": ..., "config": {...}}.
        custom_objects: (None) {name: class or function} for metrics defined outside kiln.

    Raises:
        SerializationError: malformed dict, or a name that cannot be found.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise SerializationError(
            f'A serialized metric is a dict {{"class_name": ..., "config": ...}}. Received: {config!r}'
        )
    custom_objects = custom_objects or {}
    class_name, kwargs = config["class_name"], dict(config.get("config") or {})
    if class_name == "auto":
        return _ResolveOnFirstBatch(kwargs["name"])
    if class_name == "MeanMetricWrapper":
        fn_name = kwargs.pop("fn", None)
        fn = custom_objects.get(fn_name) or _FUNCTIONS.get(fn_name)
        if fn is None:
            raise SerializationError(
                f"Unknown metric function {fn_name!r}: pass it with custom_objects={{{fn_name!r}: fn}}."
            )
        return MeanMetricWrapper(fn, **kwargs)
    cls = custom_objects.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise SerializationError(
            f"Unknown metric class {class_name!r}: pass it with custom_objects={{{class_name!r}: cls}}."
        )
    return cls.from_config(kwargs)
