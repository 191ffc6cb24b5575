"""Rescaling: ``inputs * scale + offset``, e.g. pixel values from [0, 255] to [0, 1]."""

from __future__ import annotations

import numbers

import torch

from kiln.errors import KilnValueError
from kiln.layers.layer import Layer

__all__ = ["Rescaling"]


def _check_number_or_list(value, name: str):
    """A float, or a list of floats (one per channel, broadcast over the last axis)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    raise KilnValueError(f"Received an invalid value for `{name}`, expected a number or a list of numbers "
                         f"(one per channel). Received: {name}={value!r}")


class Rescaling(Layer):
    """Multiply the inputs by ``scale`` and add ``offset``; integer inputs become floats.

    Args:
        scale: float, or a list of floats broadcast over the last axis (one per channel).
        offset: float or list of floats (default 0.0).

    Shapes: any ``(batch, ...)`` -> the same shape, in the layer's float dtype.

    Example::

        Rescaling(1 / 255)  # uint8 images -> floats in [0, 1]
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _check_number_or_list(scale, "scale")
        self.offset = _check_number_or_list(offset, "offset")

    def call(self, inputs):
        if not inputs.is_floating_point():
            inputs = inputs.to(self.dtype)  # uint8 images and the like
        scale, offset = self.scale, self.offset
        if isinstance(scale, list):
            scale = torch.tensor(scale, dtype=inputs.dtype, device=inputs.device)
        if isinstance(offset, list):
            offset = torch.tensor(offset, dtype=inputs.dtype, device=inputs.device)
        return inputs * scale + offset

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, offset=self.offset)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, scale={self.scale}, offset={self.offset}"
