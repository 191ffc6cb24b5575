"""BatchNormalization and LayerNormalization with Keras 3's semantics.

BatchNormalization follows Keras exactly rather than ``nn.BatchNorm*``:

- the moving statistics are updated as ``moving = moving * momentum + batch * (1 - momentum)``
  (torch's ``momentum`` is ``1 - momentum`` here);
- the moving variance averages the *biased* batch variance (divided by n, as Keras's
  ``ops.moments``), where torch would use the unbiased one;
- a layer with ``trainable=False`` always runs in inference mode (Keras 3's rule for
  fine-tuning), whatever ``training`` says.

The moving statistics are buffers (``moving_mean``, ``moving_variance``), not parameters: they
are saved in the ``state_dict`` and listed in ``non_trainable_weights``, and they count as
weights, so a layer's weight count equals Keras's total (trainable + non-trainable): 4 * C for
C channels, of which 2 * C are non-trainable.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from kiln import initializers, regularizers
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import check_no_constraint
from kiln.layers.layer import Layer

__all__ = ["BatchNormalization", "LayerNormalization"]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_epsilon(epsilon) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon > 0:
        raise KilnValueError(f"Received an invalid value for `epsilon`, expected a positive float. "
                             f"Received: epsilon={epsilon!r}")
    return float(epsilon)


def _normalize_axis(layer: Layer, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) has axis={axis}, which is out of range "
                         f"for inputs of rank {ndim}.")
    return axis % ndim


class BatchNormalization(Layer):
    """Normalize each feature over the batch (and spatial axes), as Keras does.

    In training mode it uses the batch's mean and (biased) variance and updates the moving
    statistics; in inference mode it uses the moving statistics. The mode is ``training`` when
    given, else the module's ``self.training`` (``model.train()``/``model.eval()``).

    Args:
        axis: the feature axis, int (default -1: channels_last; use 1 for channels_first).
        momentum: moving-average momentum (default 0.99).
        epsilon: added to the variance (default 1e-3).
        center: learn an offset ``beta`` (default True).
        scale: learn a factor ``gamma`` (default True).
        beta_initializer: default "zeros"; gamma_initializer: default "ones".
        moving_mean_initializer: default "zeros"; moving_variance_initializer: default "ones".
        beta_regularizer / gamma_regularizer: penalties added to the loss.

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        BatchNormalization()  # on (B, H, W, 16): 64 weights, 32 of them non-trainable
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(axis):
            raise KilnValueError(f"Received an invalid value for `axis`, expected an integer. Received: axis={axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum <= 1:
            raise KilnValueError(f"Received an invalid value for `momentum`, expected a float between 0 and 1. "
                                 f"Received: momentum={momentum!r}")
        if synchronized:
            raise KilnValueError("kiln's BatchNormalization does not support synchronized=True (statistics "
                                 "shared across devices) yet. Received: synchronized=True; leave it False.")
        check_no_constraint(beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = _check_epsilon(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape):
        axis = _normalize_axis(self, self.axis, len(input_shape))
        if axis == 0:
            raise ShapeError(f"Layer '{self.name}' (BatchNormalization) cannot normalize along the batch axis "
                             f"(axis={self.axis} for inputs of shape {input_shape}); use the feature axis.")
        dim = input_shape[axis]
        if dim is None:
            raise ShapeError(f"Layer '{self.name}' (BatchNormalization) needs a known size on axis {self.axis}; "
                             f"received shape {input_shape}.")
        self.gamma = self.add_weight("gamma", (dim,), self.gamma_initializer, self.gamma_regularizer) \
            if self.scale else None
        self.beta = self.add_weight("beta", (dim,), self.beta_initializer, self.beta_regularizer) \
            if self.center else None
        self.register_buffer("moving_mean", self.moving_mean_initializer((dim,), dtype=self.dtype))
        self.register_buffer("moving_variance", self.moving_variance_initializer((dim,), dtype=self.dtype))
        self.built = True

    def call(self, inputs, training=None):
        ndim = inputs.ndim
        axis = _normalize_axis(self, self.axis, ndim)
        dim = self.moving_mean.shape[0]
        if axis == 0 or inputs.shape[axis] != dim:
            raise ShapeError(f"Layer '{self.name}' (BatchNormalization) was built for {dim} features on axis "
                             f"{self.axis}, but received shape {tuple(inputs.shape)}.")
        training = self.training if training is None else bool(training)
        # Half-precision inputs are normalized in float32, as Keras does, then cast back.
        x = inputs.float() if inputs.dtype in (torch.float16, torch.bfloat16) else inputs
        broadcast = [1] * ndim
        broadcast[axis] = dim  # per-feature vectors as (1, .., C, .., 1)
        if training and self.trainable:
            reduce_axes = [a for a in range(ndim) if a != axis]
            # Two passes (mean, then mean of squared deviations): exact, and on CPU much faster
            # than torch.var_mean over leading axes. Biased variance, as Keras's ops.moments.
            mean = x.mean(dim=reduce_axes)  # (C,)
            variance = (x - mean.view(broadcast)).square().mean(dim=reduce_axes)  # (C,)
            with torch.no_grad():
                m = self.momentum
                self.moving_mean.mul_(m).add_(mean.detach().to(self.moving_mean.dtype), alpha=1 - m)
                self.moving_variance.mul_(m).add_(variance.detach().to(self.moving_variance.dtype), alpha=1 - m)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        # y = (x - mean) / sqrt(var + eps) * gamma + beta, folded into one multiply-add on x.
        inv = torch.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta
        outputs = torch.addcmul(shift.view(broadcast).to(x.dtype), x, inv.view(broadcast).to(x.dtype))
        return outputs.to(inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            center=self.center,
            scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
            beta_regularizer=regularizers.serialize(self.beta_regularizer),
            gamma_regularizer=regularizers.serialize(self.gamma_regularizer),
            beta_constraint=None,  # constraints are refused in __init__
            gamma_constraint=None,
            synchronized=False,
        )
        return config

    def extra_repr(self):
        dim = self.moving_mean.shape[0] if self.built else "?"
        return f"name={self.name!r}, features={dim}, axis={self.axis}, momentum={self.momentum}, epsilon={self.epsilon}"


class LayerNormalization(Layer):
    """Normalize each sample over ``axis`` (the features), then scale and shift, as Keras does.

    Uses the biased variance, like Keras and ``F.layer_norm`` (which it calls when ``axis``
    names the trailing axes).

    Args:
        axis: int or list of ints, the axes to normalize over (default -1).
        epsilon: added to the variance (default 1e-3, Keras's; torch's default is 1e-5).
        center: learn an offset ``beta`` (default True).
        scale: learn a factor ``gamma`` (default True).
        beta_initializer: default "zeros"; gamma_initializer: default "ones".
        beta_regularizer / gamma_regularizer: penalties added to the loss.

    Shapes: any ``(batch, ...)`` -> the same shape; ``gamma``/``beta`` have the shape of the
    normalized axes.

    Example::

        LayerNormalization(epsilon=1e-6)  # on (B, T, 64): 128 weights
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or not all(_is_int(a) for a in axes):
            raise KilnValueError(f"Received an invalid value for `axis`, expected an integer or a list of integers. "
                                 f"Received: axis={axis!r}")
        check_no_constraint(beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.axis = [int(a) for a in axes] if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = _check_epsilon(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _axes(self, ndim: int) -> list[int]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        normalized = sorted({_normalize_axis(self, a, ndim) for a in axes})
        if 0 in normalized:
            raise ShapeError(f"Layer '{self.name}' (LayerNormalization) cannot normalize along the batch axis "
                             f"(axis={self.axis} for inputs of rank {ndim}).")
        return normalized

    def build(self, input_shape):
        axes = self._axes(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if None in shape:
            raise ShapeError(f"Layer '{self.name}' (LayerNormalization) needs known sizes on axis={self.axis}; "
                             f"received shape {input_shape}.")
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer) \
            if self.center else None
        self._normalized_shape = shape
        self.built = True

    def call(self, inputs):
        ndim = inputs.ndim
        axes = self._axes(ndim)
        shape = tuple(inputs.shape[a] for a in axes)
        if shape != self._normalized_shape:
            raise ShapeError(f"Layer '{self.name}' (LayerNormalization) was built for sizes {self._normalized_shape} "
                             f"on axis={self.axis}, but received shape {tuple(inputs.shape)}.")
        if axes == list(range(ndim - len(axes), ndim)):  # trailing axes: torch's fused kernel
            return F.layer_norm(inputs, shape, self.gamma, self.beta, self.epsilon)
        broadcast = [inputs.shape[a] if a in axes else 1 for a in range(ndim)]
        variance, mean = torch.var_mean(inputs, dim=axes, correction=0, keepdim=True)
        outputs = (inputs - mean) * torch.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * self.gamma.view(broadcast)
        if self.beta is not None:
            outputs = outputs + self.beta.view(broadcast)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis,
            epsilon=self.epsilon,
            center=self.center,
            scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            beta_regularizer=regularizers.serialize(self.beta_regularizer),
            gamma_regularizer=regularizers.serialize(self.gamma_regularizer),
            beta_constraint=None,  # constraints are refused in __init__
            gamma_constraint=None,
        )
        return config

    def extra_repr(self):
        shape = self._normalized_shape if self.built else "?"
        return f"name={self.name!r}, normalized_shape={shape}, axis={self.axis}, epsilon={self.epsilon}"
