"""Dropout and SpatialDropout1D/2D/3D: random zeroing in training, identity at inference.

Kept values are scaled by ``1 / (1 - rate)`` so the expected output equals the input (inverted
dropout, as Keras and torch do). The mode is the ``training`` argument when given, else the
module's ``self.training`` (``model.train()``/``model.eval()``).

With ``seed=`` a layer draws from its own ``torch.Generator`` (one per device), so a freshly
built model drops the same units in the same order on every run, as Keras's seeded layers do.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import check_rank, normalize_data_format
from kiln.layers.random_base import RandomLayer

__all__ = ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]


class Dropout(RandomLayer):
    """Set a random fraction ``rate`` of the inputs to 0 in training and scale the rest up.

    Args:
        rate: float in [0, 1), the fraction of inputs to drop.
        noise_shape: None (independent for every value) or a tuple with the inputs' rank whose
            entries are 1 (share the draw along that axis), the axis' size, or None (the
            axis' size); e.g. ``(None, 1, None)`` drops the same features at every time step
            of ``(batch, steps, features)`` inputs.
        seed: None (torch's global RNG) or an int (the layer's own generator).

    Shapes: any ``(batch, ...)`` -> the same shape.

    Example::

        Dropout(0.5)
    """

    supports_masking = True  # elementwise over features: a timestep mask passes through

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise KilnValueError("Invalid value received for argument `rate`. Expected a float value between 0 "
                                 f"and 1 (1 excluded: nothing would be kept). Received: rate={rate!r}")
        if noise_shape is not None:
            ok = isinstance(noise_shape, (tuple, list)) and all(
                d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0)
                for d in noise_shape)
            if not ok:
                raise KilnValueError("Received an invalid value for `noise_shape`, expected a tuple of positive "
                                     f"integers or None. Received: noise_shape={noise_shape!r}")
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.rate = float(rate)
        self.noise_shape = noise_shape

    def _noise_shape(self, inputs) -> tuple[int, ...] | None:
        """The shape of the keep-mask, broadcast over the inputs (None: the inputs' own shape)."""
        if self.noise_shape is None:
            return None
        if len(self.noise_shape) != inputs.ndim:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) has noise_shape={self.noise_shape} of rank "
                             f"{len(self.noise_shape)}, but received inputs of shape {tuple(inputs.shape)}.")
        shape = tuple(n if d is None else d for d, n in zip(self.noise_shape, inputs.shape))
        if any(d != 1 and d != n for d, n in zip(shape, inputs.shape)):
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) has noise_shape={self.noise_shape}, which "
                             f"does not broadcast to inputs of shape {tuple(inputs.shape)}: each entry must be 1, "
                             "None or the input's size on that axis.")
        return shape

    def call(self, inputs, training=None):
        if not self._is_training(training) or self.rate == 0:
            return inputs
        shape = self._noise_shape(inputs)
        if shape is None and self.seed is None:
            return F.dropout(inputs, self.rate, training=True)  # torch's fused kernel
        keep = 1.0 - self.rate
        mask = torch.empty(shape or inputs.shape, dtype=inputs.dtype, device=inputs.device)
        mask.bernoulli_(keep, generator=self._generator(inputs.device))
        return inputs * (mask / keep)  # mask: 0 or 1/keep, broadcast over the shared axes

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=None if self.noise_shape is None else list(self.noise_shape))
        return config

    def extra_repr(self):
        return f"name={self.name!r}, rate={self.rate}"


class _SpatialDropout(Dropout):
    """Drop whole channels: one draw per (sample, channel), shared over the spatial axes."""

    rank = 0

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = normalize_data_format(data_format)

    def _noise_shape(self, inputs):
        check_rank(self, inputs, self.rank + 2, "(batch, *spatial, channels) or (batch, channels, *spatial)")
        batch, ones = inputs.shape[0], (1,) * self.rank
        if self.data_format == "channels_last":
            return (batch,) + ones + (inputs.shape[-1],)
        return (batch, inputs.shape[1]) + ones

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole feature channels of a sequence (the same features at every step).

    Args:
        rate: float in [0, 1), the fraction of channels to drop.
        data_format: None/"channels_last" (default, ``(batch, steps, channels)``) or "channels_first".
        seed: None or an int.

    Shapes: ``(batch, steps, channels)`` -> the same shape.

    Example::

        SpatialDropout1D(0.2)
    """

    rank = 1


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of an image (better than Dropout after a Conv2D).

    Args:
        rate: float in [0, 1), the fraction of channels to drop.
        data_format: None/"channels_last" (default) or "channels_first".
        seed: None or an int.

    Shapes: ``(batch, height, width, channels)`` -> the same shape (channels_last).

    Example::

        SpatialDropout2D(0.1)
    """

    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole feature volumes.

    Args:
        rate: float in [0, 1), the fraction of channels to drop.
        data_format: None/"channels_last" (default) or "channels_first".
        seed: None or an int.

    Shapes: ``(batch, d, h, w, channels)`` -> the same shape (channels_last).

    Example::

        SpatialDropout3D(0.1)
    """

    rank = 3
