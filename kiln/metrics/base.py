"""The stateful-metric contract (``Metric``) and the weighted running means the other metrics build on.

Part of ``kiln.metrics``; import the metrics from there (``from kiln import metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from kiln.metrics._base import _as_dtype, _as_tensor, _divide_no_nan, _dtype_name, _sample_weights, _to_python

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper",
]


# ============================================================================ base classes
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
