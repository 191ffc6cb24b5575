"""Exact area under the ROC or precision-recall curve over every prediction of the epoch.

Part of ``kiln.metrics``; import the metrics from there (``from kiln import metrics``).
"""

from __future__ import annotations

from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.metrics._base import _divide_no_nan, _float_pred, _same_shape, _sample_weights
from kiln.metrics.base import Metric

__all__ = [
    "AUC",
]


# ============================================================================ AUC
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
