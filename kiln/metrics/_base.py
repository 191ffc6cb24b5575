"""Private helpers the metric families share: tensor conversion without a host sync, shape checks
with the fix in the message, sample-weight broadcasting and dtype names.
"""

from __future__ import annotations

from typing import Any

import torch

from kiln.errors import KilnValueError, ShapeError
from kiln.losses import squeeze_or_expand_to_same_rank


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


def _float_pred(y_pred: torch.Tensor) -> torch.Tensor:
    return y_pred if y_pred.is_floating_point() else y_pred.to(torch.get_default_dtype())


def _one_value_per_sample(y_true: torch.Tensor, y_pred: torch.Tensor) -> bool:
    """Same-shaped float tensors of shape (batch,) or (batch, 1): there, per-element sums and
    counts are per-sample ones, so a metric's fast path agrees with its general path."""
    return (y_true.shape == y_pred.shape and y_pred.is_floating_point() and y_true.dtype == y_pred.dtype
            and (y_pred.dim() == 1 or (y_pred.dim() == 2 and y_pred.shape[1] == 1)))
