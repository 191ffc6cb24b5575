"""Activation layers with their own arguments: Softmax, ReLU, LeakyReLU, ELU, PReLU (and Identity).

``Activation("relu")`` covers plain named activations; these layers exist because Keras
programs use them directly (``layers.LeakyReLU(0.2)`` after a Conv2D in a GAN,
``Sequential([model, layers.Softmax()])`` to turn logits into probabilities), and because
their arguments (a ReLU's ``max_value``, a PReLU's learned slopes) do not fit a name.

Every one is elementwise (Softmax: along ``axis``) and keeps the input's shape.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from kiln import initializers, regularizers
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import check_no_constraint
from kiln.layers.layer import Layer

__all__ = ["Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU", "Identity"]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _non_negative(value, name: str, layer: str) -> float:
    if not _is_real(value) or value < 0:
        raise KilnValueError(f"Received an invalid value for `{name}` of a {layer} layer, expected a non-negative "
                             f"float. Received: {name}={value!r}")
    return float(value)


class Softmax(Layer):
    """Softmax along ``axis``: turns logits into probabilities that sum to 1.

    Args:
        axis: int or tuple of ints (default -1), the axis (axes) normalised over.

    Call: ``layer(inputs, mask=None)``; ``mask`` (bool or 0/1, broadcastable to the inputs) marks
    the entries that take part: masked-out entries get probability 0, as in Keras.

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        probability_model = Sequential([model, Softmax()])
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        ints = isinstance(axis, (tuple, list)) and axis and all(
            isinstance(a, int) and not isinstance(a, bool) for a in axis)
        if not (isinstance(axis, int) and not isinstance(axis, bool)) and not ints:
            raise KilnValueError(f"Received an invalid value for `axis`, expected an integer or a tuple of "
                                 f"integers. Received: axis={axis!r}")
        self.axis = axis if isinstance(axis, int) else tuple(axis)

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = torch.as_tensor(mask, device=inputs.device).bool()
            # The most negative finite number, not -inf: a fully masked row stays finite (it is zeroed below).
            inputs = inputs.masked_fill(~mask, torch.finfo(inputs.dtype).min)
        if isinstance(self.axis, int):
            outputs = torch.softmax(inputs, dim=self.axis)
        else:
            outputs = torch.exp(inputs - torch.logsumexp(inputs, dim=self.axis, keepdim=True))
        if mask is not None:
            outputs = outputs * mask.to(outputs.dtype)
        return outputs

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis if isinstance(self.axis, int) else list(self.axis)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, axis={self.axis}"


class ReLU(Layer):
    """Rectified linear unit with an optional cap, leak and threshold.

    ``f(x) = max_value`` for ``x >= max_value``; ``x`` for ``threshold <= x < max_value``;
    ``negative_slope * (x - threshold)`` otherwise.

    Args:
        max_value: None (default, no cap) or a non-negative float; ``ReLU(6.0)`` is ReLU6.
        negative_slope: non-negative float (default 0.0), the slope below the threshold.
        threshold: non-negative float (default 0.0), where the unit switches on.

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        ReLU(max_value=6.0)
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and (not _is_real(max_value) or max_value < 0):
            raise KilnValueError("Received an invalid value for `max_value` of a ReLU layer, expected None or a "
                                 f"non-negative float. Received: max_value={max_value!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = _non_negative(negative_slope, "negative_slope", "ReLU")
        self.threshold = _non_negative(threshold, "threshold", "ReLU")

    def call(self, inputs):
        if self.negative_slope == 0 and self.threshold == 0:
            # The common cases map to single fused ops.
            return F.relu(inputs) if self.max_value is None else inputs.clamp(0.0, self.max_value)
        outputs = torch.where(inputs >= self.threshold, inputs, self.negative_slope * (inputs - self.threshold))
        if self.max_value is not None:
            outputs = outputs.clamp(max=self.max_value)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(max_value=self.max_value, negative_slope=self.negative_slope, threshold=self.threshold)
        return config

    def extra_repr(self):
        return (f"name={self.name!r}, max_value={self.max_value}, negative_slope={self.negative_slope}, "
                f"threshold={self.threshold}")


class LeakyReLU(Layer):
    """Leaky ReLU: ``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: non-negative float (default 0.3, Keras 3's default). Keras 2's name
            ``alpha=`` is accepted too.

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        LeakyReLU(negative_slope=0.2)
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2 spelling, still accepted (with a warning) by Keras 3
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or not _is_real(negative_slope) or negative_slope < 0:
            raise KilnValueError("The negative_slope value of a Leaky ReLU layer cannot be None or a negative value. "
                                 f"Expected a float. Received: negative_slope={negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return F.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config

    def extra_repr(self):
        return f"name={self.name!r}, negative_slope={self.negative_slope}"


class ELU(Layer):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: float (default 1.0), the value the unit saturates to for large negative inputs is ``-alpha``.

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        ELU(alpha=1.0)
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if not _is_real(alpha):
            raise KilnValueError(f"Received an invalid value for `alpha`, expected a float. Received: alpha={alpha!r}")
        self.alpha = float(alpha)

    def call(self, inputs):
        return F.elu(inputs, self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config

    def extra_repr(self):
        return f"name={self.name!r}, alpha={self.alpha}"


class PReLU(Layer):
    """Parametric ReLU: ``x`` for ``x >= 0``, ``alpha * x`` otherwise, with ``alpha`` learned.

    ``alpha`` has one entry per input value (shape ``input_shape[1:]``) except along
    ``shared_axes``, where it has size 1 and is shared: for ``(batch, h, w, channels)`` feature
    maps, ``shared_axes=[1, 2]`` learns one slope per channel.

    Args:
        alpha_initializer: default "zeros" (starts as a plain ReLU).
        alpha_regularizer: penalty on ``alpha`` (default None).
        alpha_constraint: not supported (must be None).
        shared_axes: None (default), an int or a list of ints, axes counted with the batch axis as 0.

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        PReLU(shared_axes=[1, 2])  # on (B, 28, 28, 32): 32 parameters
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_no_constraint(alpha_constraint=alpha_constraint)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if shared_axes is None:
            axes = ()
        elif isinstance(shared_axes, int) and not isinstance(shared_axes, bool):
            axes = (shared_axes,)
        else:
            axes = tuple(shared_axes) if isinstance(shared_axes, (list, tuple)) else None
        if axes is None or not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in axes):
            raise KilnValueError("Received an invalid value for `shared_axes`, expected None, a positive integer or a "
                                 "list of positive integers (axis 0 is the batch axis). "
                                 f"Received: shared_axes={shared_axes!r}")
        self.shared_axes = None if shared_axes is None else list(axes)

    def build(self, input_shape):
        shape = list(input_shape[1:])  # alpha: one slope per value of a sample
        for axis in self.shared_axes or []:
            if axis >= len(input_shape):
                raise ShapeError(f"Layer '{self.name}' (PReLU) has shared_axes={self.shared_axes}, but its inputs of "
                                 f"shape {input_shape} have no axis {axis}.")
            shape[axis - 1] = 1
        if any(d is None for d in shape):
            raise ShapeError(f"Layer '{self.name}' (PReLU) needs every non-shared axis known; received shape "
                             f"{input_shape}. Add the variable axes to `shared_axes`.")
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer, self.alpha_regularizer)
        self.built = True

    def call(self, inputs):
        return F.relu(inputs) - self.alpha * F.relu(-inputs)  # alpha broadcasts over the shared axes

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha_initializer=initializers.serialize(self.alpha_initializer),
            alpha_regularizer=regularizers.serialize(self.alpha_regularizer),
            alpha_constraint=None,  # constraints are refused in __init__
            shared_axes=self.shared_axes,
        )
        return config

    def extra_repr(self):
        return f"name={self.name!r}, shared_axes={self.shared_axes}"


class Identity(Layer):
    """Return the inputs unchanged (a placeholder, e.g. an optional block switched off).

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: anything -> the same.

    Example::

        head = Dense(10) if use_head else Identity()
    """

    def call(self, inputs):
        return inputs
