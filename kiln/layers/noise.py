"""Regularisation by noise and by penalty: GaussianNoise, GaussianDropout, ActivityRegularization.

The two noise layers act only in training (the ``training`` argument when given, else the
module's ``self.training``) and are the identity at inference, like Dropout. With ``seed=``
a layer draws from its own ``torch.Generator`` (one per device), as the seeded Dropout does.

ActivityRegularization has no computation of its own: it is the identity with an
``activity_regularizer`` (an ``L1L2``), so the base Layer adds its penalty on the outputs to
the training loss.
"""

from __future__ import annotations

import math
import numbers

import torch

from kiln import regularizers
from kiln.errors import KilnValueError
from kiln.layers.layer import Layer
from kiln.layers.random_base import RandomLayer

__all__ = ["GaussianNoise", "GaussianDropout", "ActivityRegularization"]


class _SeededNoise(RandomLayer):
    """Shared code: standard normal noise from the layer's generator (see ``random_base.py``)."""

    def _normal_like(self, inputs: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of the inputs' shape, dtype and device."""
        return torch.randn(inputs.shape, generator=self._generator(inputs.device), dtype=inputs.dtype,
                           device=inputs.device)


class GaussianNoise(_SeededNoise):
    """Add zero-centred Gaussian noise in training (a form of data augmentation).

    Args:
        stddev: float in [0, 1], the noise's standard deviation (Keras's range).
        seed: None (torch's global RNG) or an int (the layer's own generator).

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        GaussianNoise(0.1)
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, numbers.Real) or not 0 <= stddev <= 1:
            raise KilnValueError("Invalid value received for argument `stddev`. Expected a float value between 0 "
                                 f"and 1. Received: stddev={stddev!r}")
        self.stddev = float(stddev)

    def call(self, inputs, training=None):
        if not self._is_training(training) or self.stddev == 0:
            return inputs
        return inputs + self.stddev * self._normal_like(inputs)

    def get_config(self):
        config = super().get_config()
        config["stddev"] = self.stddev
        return config

    def extra_repr(self):
        return f"name={self.name!r}, stddev={self.stddev}"


class GaussianDropout(_SeededNoise):
    """Multiply by 1-centred Gaussian noise in training, of standard deviation ``sqrt(rate / (1 - rate))``.

    Args:
        rate: float in [0, 1), the drop probability of the matching Dropout.
        seed: None (torch's global RNG) or an int (the layer's own generator).

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        GaussianDropout(0.2)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise KilnValueError("Invalid value received for argument `rate`. Expected a float value between 0 and 1 "
                                 f"(1 excluded: the noise would be infinite). Received: rate={rate!r}")
        self.rate = float(rate)

    def call(self, inputs, training=None):
        if not self._is_training(training) or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return inputs * (1.0 + stddev * self._normal_like(inputs))

    def get_config(self):
        config = super().get_config()
        config["rate"] = self.rate
        return config

    def extra_repr(self):
        return f"name={self.name!r}, rate={self.rate}"


class ActivityRegularization(Layer):
    """The identity, plus an L1/L2 penalty on its inputs added to the training loss.

    The penalty ``l1 * sum(|x|) + l2 * sum(x ** 2)`` is divided by the batch size, as every
    activity regularizer in kiln (and Keras 3) is; it reaches the loss through the base
    Layer's ``activity_regularizer``, so ``layer.losses`` shows it after a call.

    Args:
        l1: non-negative float (default 0.0).
        l2: non-negative float (default 0.0).

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        ActivityRegularization(l1=1e-4)  # a sparse code in an autoencoder
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1 = self.activity_regularizer.l1
        self.l2 = self.activity_regularizer.l2

    def call(self, inputs):
        return inputs

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)  # rebuilt from l1 and l2
        config.update(l1=self.l1, l2=self.l2)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, l1={self.l1}, l2={self.l2}"
