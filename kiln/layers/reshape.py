"""Reshaping layers that keep the batch axis: Flatten, Reshape, Permute.

All three are views or a single copy in torch; none has weights.
"""

from __future__ import annotations

import math
import numbers

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import normalize_data_format
from kiln.layers.layer import Layer

__all__ = ["Flatten", "Reshape", "Permute"]


class Flatten(Layer):
    """Flatten every axis but the batch axis.

    With ``data_format="channels_first"`` the channel axis is first moved last, as Keras does,
    so a model flattens in the same order whichever layout it runs in (weights of a following
    Dense layer stay interchangeable).

    Args:
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, ...)`` -> ``(batch, prod(...))``; ``(batch,)`` -> ``(batch, 1)``.

    Example::

        Flatten()  # (B, 7, 7, 64) -> (B, 3136)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = inputs.movedim(1, -1)  # (B, C, *spatial) -> (B, *spatial, C)
        return inputs.reshape(inputs.shape[0], math.prod(inputs.shape[1:]))

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (the batch axis is kept).

    Args:
        target_shape: tuple of positive ints, without the batch axis; one entry may be -1,
            inferred from the input's size.

    Shapes: ``(batch, ...)`` -> ``(batch, *target_shape)``.

    Example::

        Reshape((-1, 4))  # (B, 12) -> (B, 3, 4)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_shape, numbers.Integral) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        valid = isinstance(target_shape, (tuple, list)) and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and (d > 0 or d == -1) for d in target_shape)
        if not valid or list(target_shape).count(-1) > 1:
            raise KilnValueError("Received an invalid value for `target_shape`, expected a tuple of positive "
                                 f"integers with at most one -1. Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        size = math.prod(inputs.shape[1:])
        known = math.prod(d for d in self.target_shape if d != -1)
        fits = size % known == 0 if -1 in self.target_shape else size == known
        if not fits:
            raise ShapeError(f"Layer '{self.name}' (Reshape) cannot reshape a sample of shape {tuple(inputs.shape[1:])} "
                             f"({size} values) to target_shape={self.target_shape}: the total size must be unchanged.")
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, target_shape={self.target_shape}"


class Permute(Layer):
    """Permute the non-batch axes; ``dims`` counts them from 1, as in Keras.

    Args:
        dims: a permutation of ``1..n`` for inputs of rank ``n + 1``; e.g. ``(2, 1)`` swaps the
            two axes after the batch axis.

    Shapes: ``(batch, d1, ..., dn)`` -> ``(batch, d_dims[0], ..., d_dims[n-1])``.

    Example::

        Permute((2, 1))  # (B, 10, 64) -> (B, 64, 10)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        ints = isinstance(dims, (tuple, list)) and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims)
        if not ints or sorted(dims) != list(range(1, len(dims) + 1)):
            raise KilnValueError("Invalid permutation argument `dims` for Permute Layer. The set of indices in "
                                 f"`dims` must be consecutive and start from 1. Received dims={dims!r}")
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        if inputs.ndim != len(self.dims) + 1:
            raise ShapeError(f"Layer '{self.name}' (Permute) with dims={self.dims} expects inputs of rank "
                             f"{len(self.dims) + 1} (batch + {len(self.dims)} axes), but received shape "
                             f"{tuple(inputs.shape)}.")
        return inputs.permute((0,) + self.dims)

    def get_config(self):
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, dims={self.dims}"
