"""Pooling: Max/AveragePooling1D/2D/3D and GlobalAverage/GlobalMaxPooling1D/2D/3D.

Sizes and values follow Keras (TensorFlow): "valid" gives ``floor((n - pool) / strides) + 1``
positions, "same" gives ``ceil(n / strides)`` with the extra padding at the end; padded
positions are never picked by a max and are left out of an average's count (the mean is over
the real inputs in each window only).

Inputs are channels_last by default, ``(B, *spatial, C)``, moved to channels_first for torch's
``F.max_pool*d``/``F.avg_pool*d`` and back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kiln.errors import ShapeError
from kiln.layers.conv import (check_rank, describe_layout, normalize_data_format, normalize_padding,
                              normalize_tuple, same_padding)
from kiln.layers.layer import Layer

__all__ = [
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
]

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class _Pooling(Layer):
    """Shared code of the windowed pooling layers; ``rank`` spatial axes, ``mode`` "max"/"average"."""

    rank = 0
    mode = ""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, describe_layout(self.rank, self.data_format))
        channels_last = self.data_format == "channels_last"
        x = inputs.movedim(-1, 1) if channels_last else inputs  # (B, C, *spatial)
        if self.padding == "same":
            pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], self.pool_size, self.strides)]
        else:
            pads = [(0, 0)] * self.rank
        if self.mode == "max":
            y = self._max(x, pads)
        else:
            y = self._average(x, pads)
        return y.movedim(1, -1) if channels_last else y  # (B, *new_spatial, C)

    def _max(self, x, pads):
        # -inf padding can never win a max, which is how TF treats the padded positions.
        if any(p for pair in pads for p in pair):
            flat = [p for pair in reversed(pads) for p in pair]
            x = F.pad(x, flat, value=float("-inf"))
        return _MAX_POOL[self.rank](x, self.pool_size, self.strides)

    def _average(self, x, pads):
        if not any(p for pair in pads for p in pair):
            return _AVG_POOL[self.rank](x, self.pool_size, self.strides)
        torch_ok = all(b == a and 2 * b <= k for (b, a), k in zip(pads, self.pool_size))
        if torch_ok:  # symmetric: torch can leave the padding out of the count itself
            return _AVG_POOL[self.rank](x, self.pool_size, self.strides, tuple(b for b, _ in pads),
                                        count_include_pad=False)
        # Otherwise: average the zero-padded input, then divide by the share of real inputs in
        # each window (the same pooling over a zero-padded map of ones, shape (1, 1, *spatial)).
        flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
        ones = x.new_ones((1, 1) + tuple(x.shape[2:]))
        pool = _AVG_POOL[self.rank]
        return pool(F.pad(x, flat), self.pool_size, self.strides) / pool(F.pad(ones, flat), self.pool_size, self.strides)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding,
                      data_format=self.data_format)
        return config

    def extra_repr(self):
        return (f"name={self.name!r}, pool_size={self.pool_size}, strides={self.strides}, "
                f"padding={self.padding!r}, data_format={self.data_format!r}")


class MaxPooling1D(_Pooling):
    """Max pooling over steps.

    Args:
        pool_size: int or tuple of 1 int, the window (default 2).
        strides: int, tuple of 1 int or None (default: ``pool_size``).
        padding: "valid" (default) or "same" (output length ``ceil(steps / strides)``).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, steps, channels)`` -> ``(batch, new_steps, channels)`` (channels_last).

    Example::

        MaxPooling1D(2)
    """

    rank, mode = 1, "max"


class MaxPooling2D(_Pooling):
    """Max pooling over height and width.

    Args:
        pool_size: int or tuple of 2 ints, the window (default (2, 2)).
        strides: int, tuple of 2 ints or None (default: ``pool_size``).
        padding: "valid" (default) or "same" (output size ``ceil(size / strides)``).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, new_height, new_width, channels)``
    (channels_last).

    Example::

        MaxPooling2D((2, 2))  # (B, 28, 28, 32) -> (B, 14, 14, 32)
    """

    rank, mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(_Pooling):
    """Max pooling over depth, height and width.

    Args:
        pool_size: int or tuple of 3 ints, the window (default (2, 2, 2)).
        strides: int, tuple of 3 ints or None (default: ``pool_size``).
        padding: "valid" (default) or "same".
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, d, h, w, channels)`` -> ``(batch, new_d, new_h, new_w, channels)`` (channels_last).

    Example::

        MaxPooling3D(2)
    """

    rank, mode = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Average pooling over steps ("same" padding is left out of each mean).

    Args:
        pool_size: int or tuple of 1 int, the window (default 2).
        strides: int, tuple of 1 int or None (default: ``pool_size``).
        padding: "valid" (default) or "same" (output length ``ceil(steps / strides)``).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, steps, channels)`` -> ``(batch, new_steps, channels)`` (channels_last).

    Example::

        AveragePooling1D(2)
    """

    rank, mode = 1, "average"


class AveragePooling2D(_Pooling):
    """Average pooling over height and width ("same" padding is left out of each mean).

    Args:
        pool_size: int or tuple of 2 ints, the window (default (2, 2)).
        strides: int, tuple of 2 ints or None (default: ``pool_size``).
        padding: "valid" (default) or "same" (output size ``ceil(size / strides)``).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, new_height, new_width, channels)``
    (channels_last).

    Example::

        AveragePooling2D(2, padding="same")
    """

    rank, mode = 2, "average"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(_Pooling):
    """Average pooling over depth, height and width ("same" padding is left out of each mean).

    Args:
        pool_size: int or tuple of 3 ints, the window (default (2, 2, 2)).
        strides: int, tuple of 3 ints or None (default: ``pool_size``).
        padding: "valid" (default) or "same".
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, d, h, w, channels)`` -> ``(batch, new_d, new_h, new_w, channels)`` (channels_last).

    Example::

        AveragePooling3D(2)
    """

    rank, mode = 3, "average"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


# ---------------------------------------------------------------------- global pooling
class _GlobalPooling(Layer):
    """Shared code of the global pooling layers: reduce every spatial axis."""

    rank = 0
    mode = ""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.keepdims = bool(keepdims)

    def _spatial_axes(self) -> tuple[int, ...]:
        start = 1 if self.data_format == "channels_last" else 2
        return tuple(range(start, start + self.rank))

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, describe_layout(self.rank, self.data_format))
        axes = self._spatial_axes()
        if self.mode == "max":
            return inputs.amax(dim=axes, keepdim=self.keepdims)
        return inputs.mean(dim=axes, keepdim=self.keepdims)

    def get_config(self):
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, data_format={self.data_format!r}, keepdims={self.keepdims}"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps axis; with ``mask`` (B, steps), only over the unmasked steps.

    Args:
        data_format: None/"channels_last" (default) or "channels_first".
        keepdims: keep the steps axis with length 1 (default False).

    Shapes: ``(batch, steps, channels)`` -> ``(batch, channels)`` (``(batch, 1, channels)`` with keepdims).

    Example::

        GlobalAveragePooling1D()(x, mask=token_ids != 0)
    """

    rank, mode = 1, "average"

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        axis = _checked_steps_axis(self, inputs, mask)
        weights = mask.to(inputs.dtype).unsqueeze(-1 if axis == 1 else 1)  # (B, steps, 1) or (B, 1, steps)
        total = (inputs * weights).sum(dim=axis, keepdim=self.keepdims)
        return total / weights.sum(dim=axis, keepdim=self.keepdims)


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width.

    Args:
        data_format: None/"channels_last" (default) or "channels_first".
        keepdims: keep the spatial axes with length 1 (default False).

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, channels)`` (channels_last).

    Example::

        GlobalAveragePooling2D()
    """

    rank, mode = 2, "average"


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over depth, height and width.

    Args:
        data_format: None/"channels_last" (default) or "channels_first".
        keepdims: keep the spatial axes with length 1 (default False).

    Shapes: ``(batch, d, h, w, channels)`` -> ``(batch, channels)`` (channels_last).

    Example::

        GlobalAveragePooling3D()
    """

    rank, mode = 3, "average"


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps axis.

    Args:
        data_format: None/"channels_last" (default) or "channels_first".
        keepdims: keep the steps axis with length 1 (default False).

    Shapes: ``(batch, steps, channels)`` -> ``(batch, channels)`` (channels_last).

    Example::

        GlobalMaxPooling1D()
        GlobalMaxPooling1D()(x, mask=token_ids != 0)  # max over the real steps only
    """

    rank, mode = 1, "max"

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        axis = _checked_steps_axis(self, inputs, mask)
        keep = mask.bool().unsqueeze(-1 if axis == 1 else 1)  # (B, steps, 1) or (B, 1, steps)
        lowest = torch.finfo(inputs.dtype).min if inputs.is_floating_point() else torch.iinfo(inputs.dtype).min
        return inputs.masked_fill(~keep, lowest).amax(dim=axis, keepdim=self.keepdims)


def _checked_steps_axis(layer, inputs, mask) -> int:
    """The steps axis of a 1-D global pooling's input, after checking ``mask`` is (batch, steps)."""
    check_rank(layer, inputs, 3, describe_layout(1, layer.data_format))
    axis = layer._spatial_axes()[0]
    expected = (inputs.shape[0], inputs.shape[axis])
    if tuple(mask.shape) != tuple(expected):
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) expects a mask of shape (batch, steps) = "
                         f"{tuple(expected)}, but received {tuple(mask.shape)}. Pass the mask of the sequence "
                         f"(e.g. ids != 0), one entry per step.")
    return axis


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width.

    Args:
        data_format: None/"channels_last" (default) or "channels_first".
        keepdims: keep the spatial axes with length 1 (default False).

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, channels)`` (channels_last).

    Example::

        GlobalMaxPooling2D(keepdims=True)  # (B, 7, 7, 64) -> (B, 1, 1, 64)
    """

    rank, mode = 2, "max"


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over depth, height and width.

    Args:
        data_format: None/"channels_last" (default) or "channels_first".
        keepdims: keep the spatial axes with length 1 (default False).

    Shapes: ``(batch, d, h, w, channels)`` -> ``(batch, channels)`` (channels_last).

    Example::

        GlobalMaxPooling3D()
    """

    rank, mode = 3, "max"
