"""Loss functions with Keras 3 names and semantics, on plain torch tensors.

Why it looks this way: a loss runs every training step, so everything here is vectorised,
never calls ``.item()`` and never waits on the device; shape problems are caught from
``.shape`` alone (host-side metadata, free to read) and reported with the likely fix.

Each loss comes in three layers, as in Keras:
  * a private ``_*_elements`` function: the loss at each position, shape (batch, *positions),
    the feature/class axis already reduced;
  * a public function (``mse``, ``binary_crossentropy``, ...): one loss per sample, (batch,);
  * a ``Loss`` class that adds sample weights and the reduction to a scalar.

Example:
    >>> loss = losses.get("sparse_categorical_crossentropy")
    >>> value = loss(labels, probabilities)        # scalar tensor, differentiable
    >>> per_sample = losses.mse(y_true, y_pred)    # (batch,)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from kiln.errors import KilnTypeError, KilnValueError, SerializationError, ShapeError, unknown_name_error

__all__ = [
    "Loss",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Huber",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "squeeze_or_expand_to_same_rank",
    "get",
    "serialize",
    "deserialize",
]

# Keras's backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON] before log.
EPSILON = 1e-7
REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None)


# ----------------------------------------------------------------------------- shape helpers


def squeeze_or_expand_to_same_rank(x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make two tensors whose ranks differ by one (through a trailing 1) the same rank.

    Why: labels of shape (batch,) against a model output of shape (batch, 1) are the most
    common mismatch; Keras silently aligns them, and so do we. A rank-1 tensor is expanded
    (so a (batch,) target becomes (batch, 1)); otherwise the trailing 1 is squeezed.
    """
    r1, r2 = x1.dim(), x2.dim()
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        return (x1, x2.unsqueeze(-1)) if r2 == 1 else (x1.squeeze(-1), x2)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        return (x1.unsqueeze(-1), x2) if r1 == 1 else (x1, x2.squeeze(-1))
    return x1, x2


def _shape_hint(true_shape: tuple, pred_shape: tuple) -> str:
    """Guess the usual cause of a y_true/y_pred mismatch and say how to fix it."""
    pred_last = pred_shape[-1] if pred_shape else 1
    true_last = true_shape[-1] if true_shape else 1
    labels_look_sparse = len(true_shape) < len(pred_shape) or true_last == 1
    if pred_last > 1 and labels_look_sparse:
        return (
            "y_true looks like integer class labels: use sparse_categorical_crossentropy, "
            "or one-hot encode y_true with kiln.utils.to_categorical."
        )
    if pred_last == 1 and true_last > 1:
        return (
            f"The model outputs 1 value per sample but y_true has {true_last}: give the last layer "
            f"{true_last} units (for one-hot labels of {true_last} classes use a softmax output "
            "with categorical_crossentropy)."
        )
    return "Make the model's last layer output the same shape as the targets."


def _shape_error(
    loss_name: str,
    expected: str,
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    hint: str,
) -> ShapeError:
    return ShapeError(
        f"`{loss_name}` expects {expected}. Received: y_true.shape={tuple(y_true.shape)}, "
        f"y_pred.shape={tuple(y_pred.shape)}. {hint}"
    )


def _same_shape(
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    loss_name: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Align ranks, check the shapes are equal, cast y_true to y_pred's dtype."""
    t, p = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if t.shape != p.shape:
        hint = _shape_hint(tuple(y_true.shape), tuple(y_pred.shape))
        raise _shape_error(loss_name, "y_true and y_pred of the same shape", y_true, y_pred, hint)
    return t.to(p.dtype), p


def _prepare(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn arrays into tensors on y_pred's device, with y_pred in a float dtype.

    Why float32 for half precision: float16 cannot hold 1 - 1e-7, so the clipped log would be
    log(0); the cast is free next to the model and keeps the gradient flowing.
    """
    y_pred = torch.as_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.get_default_dtype())
    elif y_pred.dtype in (torch.float16, torch.bfloat16):
        y_pred = y_pred.float()
    return torch.as_tensor(y_true, device=y_pred.device), y_pred


def _last_axis_mean(values: torch.Tensor) -> torch.Tensor:
    """(batch, ..., features) -> (batch, ...); a rank-1 tensor already holds one value per sample."""
    return values.mean(dim=-1) if values.dim() > 1 else values


def _divide_no_nan(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, and 0 where the denominator is 0 (no host sync, unlike an `if`)."""
    safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    return torch.where(denominator == 0, torch.zeros_like(numerator), numerator / safe)


def _per_sample(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, *positions) -> (batch,): the mean over every non-batch position (valid ones if masked)."""
    if values.dim() == 0:
        return values.reshape(1)
    if values.dim() == 1:
        return values
    dims = tuple(range(1, values.dim()))
    if mask is None:
        return values.mean(dim=dims)
    return _divide_no_nan((values * mask).sum(dim=dims), mask.sum(dim=dims))


# ----------------------------------------------------------------------------- per-position losses


def _mse_elements(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    y_true, y_pred = _same_shape(y_true, y_pred, "mean_squared_error")
    return _last_axis_mean(torch.square(y_pred - y_true))


def _mae_elements(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    y_true, y_pred = _same_shape(y_true, y_pred, "mean_absolute_error")
    return _last_axis_mean(torch.abs(y_pred - y_true))


def _huber_elements(y_true: torch.Tensor, y_pred: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    y_true, y_pred = _same_shape(y_true, y_pred, "huber")
    # Keras: 0.5 * e^2 where |e| <= delta, else delta * (|e| - 0.5 * delta); torch's is identical.
    return _last_axis_mean(F.huber_loss(y_pred, y_true, reduction="none", delta=delta))


def _binary_crossentropy_elements(
    y_true: torch.Tensor, y_pred: torch.Tensor, from_logits: bool = False, label_smoothing: float = 0.0
) -> torch.Tensor:
    y_true, y_pred = _same_shape(y_true, y_pred, "binary_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        # Hand-written rather than F.binary_cross_entropy, which CUDA autocast refuses to run.
        p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
        values = -(y_true * torch.log(p) + (1.0 - y_true) * torch.log1p(-p))
    return _last_axis_mean(values)


def _log_probabilities(y_pred: torch.Tensor, from_logits: bool, axis: int) -> torch.Tensor:
    """Log-probabilities along `axis`; Keras normalises probabilities to sum to 1, then clips."""
    if from_logits:
        return F.log_softmax(y_pred, dim=axis)
    p = y_pred / y_pred.sum(dim=axis, keepdim=True)
    return torch.log(p.clamp(EPSILON, 1.0 - EPSILON))


def _categorical_crossentropy_elements(
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    name = "categorical_crossentropy"
    if y_pred.dim() < 2:
        hint = "For a single sigmoid output use binary_crossentropy."
        raise _shape_error(name, "y_pred of shape (batch, classes)", y_true, y_pred, hint)
    if y_true.shape != y_pred.shape:
        hint = _shape_hint(tuple(y_true.shape), tuple(y_pred.shape))
        raise _shape_error(name, "one-hot y_true of the same shape as y_pred", y_true, y_pred, hint)
    y_true = y_true.to(y_pred.dtype)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[axis]
    return -(y_true * _log_probabilities(y_pred, from_logits, axis)).sum(dim=axis)


def _sparse_labels(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Class ids of shape y_pred.shape[:-1] as int64; raises ShapeError when they cannot be."""
    name = "sparse_categorical_crossentropy"
    if y_pred.dim() < 2:
        hint = "For a single sigmoid output use binary_crossentropy."
        raise _shape_error(name, "y_pred of shape (batch, classes)", y_true, y_pred, hint)
    labels = y_true
    if labels.dim() == y_pred.dim() and labels.shape[-1] == 1:
        labels = labels.squeeze(-1)  # (batch, 1) -> (batch,)
    if labels.shape != y_pred.shape[:-1]:
        if y_true.shape == y_pred.shape:
            hint = "y_true looks one-hot: use categorical_crossentropy, or pass integer class ids."
        else:
            hint = "Pass one integer class id per sample (per position for sequences)."
        expected = "integer labels of shape y_pred.shape[:-1] (or with a trailing 1)"
        raise _shape_error(name, expected, y_true, y_pred, hint)
    return labels.long()


def _check_label_range(labels: torch.Tensor, num_classes: int) -> None:
    """A clear error for class ids outside [0, num_classes), checked on CPU only.

    Why CPU only: reading min/max back from a GPU would stall every step; there an
    out-of-range id still fails, as a device-side assert.
    """
    if labels.device.type != "cpu" or labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise KilnValueError(
            f"`sparse_categorical_crossentropy` received the class id {bad}, but y_pred has {num_classes} "
            f"classes (ids 0 to {num_classes - 1}). Give the last layer more units, or remap the labels "
            "(use ignore_class for a padding id)."
        )


def _sparse_categorical_crossentropy_elements(
    y_true: torch.Tensor, y_pred: torch.Tensor, from_logits: bool = False, ignore_class: int | None = None
) -> torch.Tensor:
    labels = _sparse_labels(y_true, y_pred)  # (batch, *positions)
    if ignore_class is not None:
        valid = labels != ignore_class
        labels = labels.masked_fill(~valid, 0)  # gather needs an in-range index; zeroed below
    _check_label_range(labels, y_pred.shape[-1])
    log_prob = _log_probabilities(y_pred, from_logits, -1)  # (batch, *positions, classes)
    values = -log_prob.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if ignore_class is not None:
        values = values.masked_fill(~valid, 0.0)
    return values


def _ignore_mask(y_true: torch.Tensor, y_pred: torch.Tensor, ignore_class: int | None) -> torch.Tensor | None:
    """1.0 where the label counts, 0.0 where it equals ignore_class; None when nothing is ignored."""
    if ignore_class is None:
        return None
    return (_sparse_labels(y_true, y_pred) != ignore_class).to(y_pred.dtype)


# ----------------------------------------------------------------------------- public functions


def mean_squared_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Mean over the last axis of (y_pred - y_true)^2. Shapes (batch, ...) -> (batch,)."""
    return _per_sample(_mse_elements(*_prepare(y_true, y_pred)))


def mean_absolute_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Mean over the last axis of |y_pred - y_true|. Shapes (batch, ...) -> (batch,)."""
    return _per_sample(_mae_elements(*_prepare(y_true, y_pred)))


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> torch.Tensor:
    """Huber loss: quadratic for errors up to `delta`, linear beyond. (batch, ...) -> (batch,)."""
    return _per_sample(_huber_elements(*_prepare(y_true, y_pred), delta=delta))


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Binary crossentropy averaged over the last axis. (batch, ...) -> (batch,).

    Args:
        from_logits: (False) y_pred holds logits rather than sigmoid probabilities.
        label_smoothing: (0.0) targets become y * (1 - ls) + 0.5 * ls.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return _per_sample(_binary_crossentropy_elements(y_true, y_pred, from_logits, label_smoothing))


def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> torch.Tensor:
    """Crossentropy between one-hot y_true and y_pred along `axis`. (batch, ..., classes) -> (batch,).

    Args:
        from_logits: (False) y_pred holds logits rather than softmax probabilities.
        label_smoothing: (0.0) targets become y * (1 - ls) + ls / num_classes.
        axis: (-1) the class axis.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return _per_sample(_categorical_crossentropy_elements(y_true, y_pred, from_logits, label_smoothing, axis))


def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, ignore_class: int | None = None
) -> torch.Tensor:
    """Crossentropy between integer labels and y_pred. (batch, ...), (batch, ..., classes) -> (batch,).

    Args:
        from_logits: (False) y_pred holds logits rather than softmax probabilities.
        ignore_class: (None) a label id (e.g. a padding id) that adds no loss; a sample's loss
            is the mean over its other positions.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    values = _sparse_categorical_crossentropy_elements(y_true, y_pred, from_logits, ignore_class)
    return _per_sample(values, _ignore_mask(y_true, y_pred, ignore_class))


mse = mean_squared_error
mae = mean_absolute_error


# ----------------------------------------------------------------------------- Loss classes


def _check_reduction(reduction: str | None) -> None:
    if reduction not in REDUCTIONS:
        raise KilnValueError(
            f"Received an invalid value for `reduction`, expected one of {list(REDUCTIONS)}. "
            f"Received: reduction={reduction!r}"
        )


def _broadcast_weights(sample_weight: Any, values: torch.Tensor) -> torch.Tensor:
    """Shape sample_weight so it multiplies `values` (batch, *positions) element by element.

    A (batch,) weight weighs every position of a sample; a (batch, T) weight weighs each
    position of a sequence (Keras's temporal sample weights).
    """
    w = torch.as_tensor(sample_weight, device=values.device, dtype=values.dtype)
    while w.dim() > values.dim() and w.shape[-1] == 1:
        w = w.squeeze(-1)
    while 0 < w.dim() < values.dim():
        w = w.unsqueeze(-1)
    try:
        fits = torch.broadcast_shapes(w.shape, values.shape) == values.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ShapeError(
            f"`sample_weight` must have shape (batch,) or broadcast to the loss's shape "
            f"{tuple(values.shape)}. Received: sample_weight.shape={tuple(torch.as_tensor(sample_weight).shape)}. "
            "Pass one weight per sample."
        )
    return w


def _reduce(
    values: torch.Tensor,
    weights: torch.Tensor | None,
    mask: torch.Tensor | None,
    reduction: str | None,
) -> torch.Tensor:
    """Weigh (batch, *positions) losses and reduce them as `reduction` says."""
    if mask is not None:
        weights = mask if weights is None else weights * mask
    weighted = values if weights is None else values * weights
    if reduction in (None, "none"):
        return _per_sample(weighted, mask)
    if reduction == "sum":
        return _per_sample(weighted, mask).sum()
    total = weighted.sum()
    if reduction == "mean_with_sample_weight" and weights is not None:
        return _divide_no_nan(total, torch.broadcast_to(weights, values.shape).sum())
    if mask is not None:
        # Keras: with ignored labels the mean is over the valid positions only.
        return _divide_no_nan(total, mask.sum())
    return total / values.numel()  # Keras's sum_over_batch_size: divide by the count, not the weights


class Loss:
    """Base class of losses: per-sample values, sample weights, then a reduction to a scalar.

    Subclass it like Keras: override `call(y_true, y_pred)` to return one loss per sample
    (or per position), and `get_config` if `__init__` takes arguments.

    Args:
        name: (None) defaults to the class's Keras name, e.g. "mean_squared_error".
        reduction: ("sum_over_batch_size") how `__call__` reduces: "sum_over_batch_size"/"mean"
            (sum of weighted losses / batch size), "sum", "mean_with_sample_weight" (/ sum of
            weights), or "none"/None (the (batch,) weighted losses).

    Example:
        >>> loss = MeanSquaredError()
        >>> loss(y_true, y_pred, sample_weight=w)  # scalar tensor
    """

    default_name = "loss"

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size"):
        _check_reduction(reduction)
        self.name = name or self.default_name
        self.reduction = reduction

    def _elementwise(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """Loss at each position, (batch, *positions); built-ins override this, users `call`."""
        if type(self).call is Loss.call:
            raise NotImplementedError(f"{type(self).__name__} must implement `call(y_true, y_pred)`.")
        return torch.as_tensor(self.call(y_true, y_pred))

    def _mask(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor | None:
        """Positions that count (1.0) or not (0.0); None when all count."""
        return None

    def call(self, y_true: Any, y_pred: Any) -> torch.Tensor:
        """Unweighted loss per sample, shape (batch,)."""
        y_true, y_pred = _prepare(y_true, y_pred)
        return _per_sample(self._elementwise(y_true, y_pred), self._mask(y_true, y_pred))

    def _fast(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor | None:
        """The unweighted mean loss in one fused torch op, or None when this case needs the
        general path. Why: the loss runs every step, and for small models the handful of
        extra elementwise ops of the general path is a visible share of the step time."""
        return None

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """The reduced loss: a scalar tensor (or (batch,) for reduction "none")."""
        if (sample_weight is None and self.reduction == "sum_over_batch_size" and type(y_pred) is torch.Tensor
                and type(y_true) is torch.Tensor and y_pred.dtype == torch.float32):
            fast = self._fast(y_true, y_pred)
            if fast is not None:
                return fast
        y_true, y_pred = _prepare(y_true, y_pred)
        values = self._elementwise(y_true, y_pred)  # (batch, *positions)
        if values.dim() == 0:  # a custom `call` that already averaged the batch
            values = values.expand(y_pred.shape[0] if y_pred.dim() else 1)
        weights = None if sample_weight is None else _broadcast_weights(sample_weight, values)
        return _reduce(values, weights, self._mask(y_true, y_pred), self.reduction)

    def get_config(self) -> dict:
        """Constructor arguments, JSON-serialisable, so `from_config` can rebuild the loss."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MeanSquaredError(Loss):
    """Mean of squared errors over the last axis, then over the batch."""

    default_name = "mean_squared_error"

    def _fast(self, y_true, y_pred):
        if y_true.shape == y_pred.shape and y_true.dtype == y_pred.dtype:
            return F.mse_loss(y_pred, y_true)  # mean over every element == Keras's mean of per-sample means
        return None

    def _elementwise(self, y_true, y_pred):
        return _mse_elements(y_true, y_pred)


class MeanAbsoluteError(Loss):
    """Mean of absolute errors over the last axis, then over the batch."""

    default_name = "mean_absolute_error"

    def _fast(self, y_true, y_pred):
        if y_true.shape == y_pred.shape and y_true.dtype == y_pred.dtype:
            return F.l1_loss(y_pred, y_true)
        return None

    def _elementwise(self, y_true, y_pred):
        return _mae_elements(y_true, y_pred)


class Huber(Loss):
    """Huber loss: squared error for |error| <= delta, linear beyond (robust to outliers).

    Args:
        delta: (1.0) where the loss turns from quadratic to linear.
    """

    default_name = "huber_loss"

    def __init__(
        self,
        delta: float = 1.0,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        if not delta > 0:
            raise KilnValueError(
                f"Received an invalid value for `delta`, expected a positive number. Received: delta={delta}"
            )
        self.delta = float(delta)

    def _elementwise(self, y_true, y_pred):
        return _huber_elements(y_true, y_pred, self.delta)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


def _check_label_smoothing(label_smoothing: float) -> float:
    if not 0.0 <= label_smoothing <= 1.0:
        raise KilnValueError(
            "Received an invalid value for `label_smoothing`, expected a number in [0, 1]. "
            f"Received: label_smoothing={label_smoothing}"
        )
    return float(label_smoothing)


class BinaryCrossentropy(Loss):
    """Crossentropy for 0/1 targets (binary or multi-label), one sigmoid output per label.

    Args:
        from_logits: (False) y_pred holds logits; uses the stable log-sum-exp form.
        label_smoothing: (0.0) targets become y * (1 - ls) + 0.5 * ls.
    """

    default_name = "binary_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)

    def _elementwise(self, y_true, y_pred):
        return _binary_crossentropy_elements(y_true, y_pred, self.from_logits, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(Loss):
    """Crossentropy for one-hot targets against a softmax output.

    Args:
        from_logits: (False) y_pred holds logits; uses log_softmax.
        label_smoothing: (0.0) targets become y * (1 - ls) + ls / num_classes.
        axis: (-1) the class axis.
    """

    default_name = "categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)
        self.axis = int(axis)

    def _elementwise(self, y_true, y_pred):
        return _categorical_crossentropy_elements(y_true, y_pred, self.from_logits, self.label_smoothing, self.axis)

    def get_config(self):
        config = super().get_config()
        return {**config, "from_logits": self.from_logits, "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy for integer class ids against a softmax output (also per time step).

    Args:
        from_logits: (False) y_pred holds logits; uses log_softmax.
        ignore_class: (None) a label id (e.g. padding) that adds no loss; with the default
            reduction the mean is over the remaining positions, as in Keras.
    """

    default_name = "sparse_categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def _fast(self, y_true, y_pred):
        if (self.ignore_class is not None or y_pred.dim() != 2 or y_true.dim() != 1
                or y_true.dtype != torch.int64 or y_true.device.type != "cpu"):
            return None  # on accelerators the general path keeps its label check
        try:
            if self.from_logits:
                return F.cross_entropy(y_pred, y_true)
            probs = y_pred / y_pred.sum(dim=-1, keepdim=True)  # Keras normalises, then clips
            return F.nll_loss(torch.log(probs.clamp(EPSILON, 1.0 - EPSILON)), y_true)
        except IndexError:
            return None  # an out-of-range label: the general path names it

    def _elementwise(self, y_true, y_pred):
        return _sparse_categorical_crossentropy_elements(y_true, y_pred, self.from_logits, self.ignore_class)

    def _mask(self, y_true, y_pred):
        return _ignore_mask(y_true, y_pred, self.ignore_class)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}


class LossFunctionWrapper(Loss):
    """Turn any `fn(y_true, y_pred) -> per-sample (or per-position) tensor` into a Loss.

    Args:
        fn: the function; a scalar result is read as the batch's mean.
        name: (None) defaults to fn.__name__.
        reduction: ("sum_over_batch_size") as for `Loss`.
        **kwargs: extra keyword arguments passed to fn on every call.
    """

    def __init__(
        self,
        fn: Callable,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        **kwargs,
    ):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn = fn
        self.fn_kwargs = kwargs

    def _elementwise(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.to(y_pred.dtype), y_pred)
        return torch.as_tensor(self.fn(y_true, y_pred, **self.fn_kwargs))

    def get_config(self):
        return {**super().get_config(), "fn": getattr(self.fn, "__name__", repr(self.fn)), **self.fn_kwargs}


# ----------------------------------------------------------------------------- lookup and serialization

_CLASSES = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        Huber,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}
_FUNCTIONS = {
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
    "huber": huber,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
}
# The class a function name stands for; `get("mse")` builds the class so it can be serialized.
_NAMES = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def _class_for_name(name: str) -> type[Loss] | None:
    key = name.lower()
    if key in _NAMES:
        return _NAMES[key]
    return next((cls for cls_name, cls in _CLASSES.items() if cls_name.lower() == key), None)


def get(identifier: Any) -> Loss:
    """Resolve a loss identifier to a `Loss` instance.

    Args:
        identifier: a name ("mse", "binary_crossentropy", "MeanSquaredError"; any case), a
            `Loss` instance (returned as is) or subclass, a dict {"class_name", "config"},
            or a callable `f(y_true, y_pred)` returning per-sample losses.

    Raises:
        KilnValueError: unknown name (the nearest valid one is suggested).
        KilnTypeError: any other type.

    Example:
        >>> get("mse")(y_true, y_pred)
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _class_for_name(identifier)
        if cls is None:
            raise unknown_name_error("loss", identifier, [*_NAMES, *_CLASSES])
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise KilnTypeError(
        "Could not interpret a loss identifier: expected a name, a Loss, a dict or a callable. "
        f"Received: {identifier!r} of type {type(identifier).__name__}"
    )


def serialize(loss: Any) -> dict:
    """{"class_name", "config"} for a loss (or anything `get` accepts), ready for JSON.

    Raises:
        SerializationError: a wrapped lambda, which no name can find again.
    """
    loss = get(loss)
    config = loss.get_config()
    if isinstance(loss, LossFunctionWrapper) and config["fn"] == "<lambda>":
        raise SerializationError(
            "Cannot serialize a loss made from a lambda: use a named function (def) and pass it "
            "to deserialize(..., custom_objects={name: fn})."
        )
    return {"class_name": type(loss).__name__, "config": config}


def deserialize(config: dict, custom_objects: dict | None = None) -> Loss:
    """Rebuild a loss from `serialize`'s output.

    Args:
        config: {"class_name": ..., "config": {...}}.
        custom_objects: (None) {name: class or function} for losses defined outside kiln.

    Raises:
        SerializationError: malformed dict, or a class/function name that cannot be found.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise SerializationError(
            f'A serialized loss is a dict {{"class_name": ..., "config": ...}}. Received: {config!r}'
        )
    custom_objects = custom_objects or {}
    class_name, kwargs = config["class_name"], dict(config.get("config") or {})
    if class_name == "LossFunctionWrapper":
        fn_name = kwargs.pop("fn", None)
        fn = custom_objects.get(fn_name) or _FUNCTIONS.get(fn_name)
        if fn is None:
            raise SerializationError(
                f"Unknown loss function {fn_name!r}: pass it with custom_objects={{{fn_name!r}: fn}}."
            )
        return LossFunctionWrapper(fn, **kwargs)
    cls = custom_objects.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise SerializationError(
            f"Unknown loss class {class_name!r}: pass it with custom_objects={{{class_name!r}: cls}}. "
            f"Built-in classes: {', '.join(sorted(_CLASSES))}."
        )
    return cls.from_config(kwargs)
