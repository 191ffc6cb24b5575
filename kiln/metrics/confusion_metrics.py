"""Threshold metrics from confusion counts: precision, recall and the F-beta/F1 scores.

Part of ``kiln.metrics``; import the metrics from there (``from kiln import metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.metrics._base import _divide_no_nan, _float_pred, _same_shape, _sample_weights, _sparse_labels
from kiln.metrics.base import Metric

__all__ = [
    "Precision", "Recall", "FBetaScore", "F1Score",
]


# ============================================================================ precision / recall / F
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
