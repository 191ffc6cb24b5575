"""Accuracy metrics: the per-sample functions and the ``MeanMetricWrapper`` classes over them.

Part of ``kiln.metrics``; import the metrics from there (``from kiln import metrics``).
"""

from __future__ import annotations

from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.metrics._base import _float_pred, _one_hot_labels, _one_value_per_sample, _same_shape, _sparse_labels
from kiln.metrics.base import MeanMetricWrapper

__all__ = [
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "Accuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
]


# ============================================================================ per-sample functions
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


# ============================================================================ mean-based metrics
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
