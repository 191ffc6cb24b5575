"""Zero-padding and cropping of the spatial axes: ZeroPadding1D/2D, Cropping1D/2D.

Amounts are ``(before, after)`` pairs per spatial axis — ``(left, right)`` for a sequence,
``((top, bottom), (left, right))`` for an image — as Keras writes them. A 1-D layer's int
``n`` means ``(n, n)``; a 2-D layer's int means the same on all four sides and a pair of ints
``(h, w)`` means ``((h, h), (w, w))``.

Typical use: pad before a "valid" convolution to keep sizes (``ZeroPadding2D(1)`` then a 3x3
Conv2D), or crop a U-Net's skip connection to the decoder's size.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import check_rank, describe_layout, normalize_data_format, normalize_tuple
from kiln.layers.layer import Layer

__all__ = ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D"]


def _is_count(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def normalize_pairs_2d(value, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``1`` -> ``((1, 1), (1, 1))``; ``(1, 2)`` -> ``((1, 1), (2, 2))``; pairs of pairs as given."""
    if _is_count(value):
        return (int(value),) * 2, (int(value),) * 2
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(_is_count(v) for v in value):
            return (int(value[0]),) * 2, (int(value[1]),) * 2
        if all(isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_count(n) for n in v) for v in value):
            return tuple(int(n) for n in value[0]), tuple(int(n) for n in value[1])
    raise KilnValueError(f"Received an invalid value for `{name}`, expected a non-negative integer, a tuple of 2 "
                         "non-negative integers (symmetric height and width amounts), or a tuple of 2 tuples of 2 "
                         f"non-negative integers ((top, bottom), (left, right)). Received: {name}={value!r}")


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    """Tensor axes of the spatial dimensions: (1, ..., rank) channels_last, (2, ..., rank + 1) first."""
    start = 1 if data_format == "channels_last" else 2
    return list(range(start, start + rank))


def _zero_pad(x: torch.Tensor, pairs, data_format: str) -> torch.Tensor:
    per_axis = [(0, 0)] * x.ndim
    for axis, pair in zip(_spatial_axes(len(pairs), data_format), pairs):
        per_axis[axis] = pair
    flat = [p for pair in reversed(per_axis[1:]) for p in pair]  # F.pad wants the last axis first
    return F.pad(x, flat)


def _crop(layer: Layer, x: torch.Tensor, pairs, data_format: str) -> torch.Tensor:
    index = [slice(None)] * x.ndim
    for axis, (before, after) in zip(_spatial_axes(len(pairs), data_format), pairs):
        if before + after >= x.shape[axis]:
            raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) with cropping={layer.cropping} needs "
                             "every cropped axis longer than its total cropping; received an input of shape "
                             f"{tuple(x.shape)}.")
        index[axis] = slice(before, x.shape[axis] - after)
    return x[tuple(index)]


class ZeroPadding1D(Layer):
    """Add zeros at the start and end of a sequence (axis 1).

    Args:
        padding: int (default 1, the same at both ends) or a tuple ``(left, right)``.
        data_format: None/"channels_last" (default, ``(batch, steps, features)``) or "channels_first".

    Shapes: ``(batch, steps, features)`` -> ``(batch, left + steps + right, features)``.

    Example::

        ZeroPadding1D(padding=2)  # (B, 10, 8) -> (B, 14, 8)
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = normalize_tuple(padding, 2, "padding", allow_zero=True)
        self.data_format = normalize_data_format(data_format)

    def call(self, inputs):
        check_rank(self, inputs, 3, describe_layout(1, self.data_format))
        return _zero_pad(inputs, [self.padding], self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(padding=list(self.padding), data_format=self.data_format)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, padding={self.padding}"


class ZeroPadding2D(Layer):
    """Add rows and columns of zeros around an image.

    Args:
        padding: int (all four sides), a tuple of 2 ints ``(h, w)`` (symmetric), or a tuple of 2
            tuples ``((top, bottom), (left, right))``; default ``(1, 1)``.
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, rows, cols, channels)`` -> ``(batch, top + rows + bottom, left + cols + right,
    channels)`` (channels_last).

    Example::

        ZeroPadding2D(padding=((1, 0), (1, 0)))  # (B, 28, 28, 3) -> (B, 29, 29, 3)
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = normalize_pairs_2d(padding, "padding")
        self.data_format = normalize_data_format(data_format)

    def call(self, inputs):
        check_rank(self, inputs, 4, describe_layout(2, self.data_format))
        return _zero_pad(inputs, self.padding, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(padding=[list(p) for p in self.padding], data_format=self.data_format)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, padding={self.padding}, data_format={self.data_format!r}"


class Cropping1D(Layer):
    """Remove steps at the start and end of a sequence (axis 1).

    Args:
        cropping: int (the same at both ends) or a tuple ``(start, end)``; default ``(1, 1)``.

    Shapes: ``(batch, steps, features)`` -> ``(batch, steps - start - end, features)``.

    Example::

        Cropping1D(cropping=(2, 0))  # (B, 10, 8) -> (B, 8, 8)
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = normalize_tuple(cropping, 2, "cropping", allow_zero=True)

    def call(self, inputs):
        check_rank(self, inputs, 3, "(batch, steps, features)")
        return _crop(self, inputs, [self.cropping], "channels_last")

    def get_config(self):
        config = super().get_config()
        config["cropping"] = list(self.cropping)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, cropping={self.cropping}"


class Cropping2D(Layer):
    """Remove rows and columns at the edges of an image.

    Args:
        cropping: int (all four sides), a tuple of 2 ints ``(h, w)`` (symmetric), or a tuple of 2
            tuples ``((top, bottom), (left, right))``; default ``((0, 0), (0, 0))``.
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, rows, cols, channels)`` -> ``(batch, rows - top - bottom, cols - left - right,
    channels)`` (channels_last).

    Example::

        Cropping2D(cropping=((2, 2), (4, 4)))  # (B, 28, 28, 3) -> (B, 24, 20, 3)
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = normalize_pairs_2d(cropping, "cropping")
        self.data_format = normalize_data_format(data_format)

    def call(self, inputs):
        check_rank(self, inputs, 4, describe_layout(2, self.data_format))
        return _crop(self, inputs, self.cropping, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(cropping=[list(p) for p in self.cropping], data_format=self.data_format)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, cropping={self.cropping}, data_format={self.data_format!r}"
