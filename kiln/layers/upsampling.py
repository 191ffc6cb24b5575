"""Upsampling by whole factors: UpSampling1D (repeat steps) and UpSampling2D (nearest or bilinear).

"nearest" repeats every row/column ``size`` times (``repeat_interleave``, exact). "bilinear"
matches Keras (TensorFlow/JAX ``resize`` with half-pixel centres), which is torch's
``F.interpolate(mode="bilinear", align_corners=False)``: output pixel ``i`` samples the input
at ``(i + 0.5) / size - 0.5``, clamped at the borders.
"""

from __future__ import annotations

import torch.nn.functional as F

from kiln.errors import KilnValueError
from kiln.layers.conv import check_rank, describe_layout, normalize_data_format, normalize_positive_int, normalize_tuple
from kiln.layers.layer import Layer

__all__ = ["UpSampling1D", "UpSampling2D"]

_INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling1D(Layer):
    """Repeat every time step ``size`` times along the time axis.

    Args:
        size: positive int (default 2), the upsampling factor.

    Shapes: ``(batch, steps, features)`` -> ``(batch, steps * size, features)``.

    Example::

        UpSampling1D(size=2)  # [a, b] -> [a, a, b, b] along the steps
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_positive_int(size, "size")

    def call(self, inputs):
        check_rank(self, inputs, 3, "(batch, steps, features)")
        return inputs.repeat_interleave(self.size, dim=1)

    def get_config(self):
        config = super().get_config()
        config["size"] = self.size
        return config

    def extra_repr(self):
        return f"name={self.name!r}, size={self.size}"


class UpSampling2D(Layer):
    """Enlarge images by whole factors along height and width.

    Args:
        size: int or tuple of 2 positive ints ``(rows, cols)`` (default ``(2, 2)``).
        data_format: None/"channels_last" (default) or "channels_first".
        interpolation: "nearest" (default, repeat pixels) or "bilinear" (half-pixel centres,
            as Keras; torch's ``align_corners=False``).

    Shapes: ``(batch, rows, cols, channels)`` -> ``(batch, rows * size[0], cols * size[1], channels)``
    (channels_last).

    Example::

        UpSampling2D(size=(2, 2), interpolation="bilinear")  # (B, 7, 7, 16) -> (B, 14, 14, 16)
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 2, "size")
        self.data_format = normalize_data_format(data_format)
        mode = interpolation.lower() if isinstance(interpolation, str) else interpolation
        if mode not in _INTERPOLATIONS:
            raise KilnValueError(f"Received an invalid value for `interpolation`, expected one of "
                                 f"{', '.join(map(repr, _INTERPOLATIONS))}. Received: interpolation={interpolation!r}")
        self.interpolation = mode

    def call(self, inputs):
        check_rank(self, inputs, 4, describe_layout(2, self.data_format))
        channels_last = self.data_format == "channels_last"
        if self.interpolation == "nearest":
            rows = 1 if channels_last else 2  # the height axis
            return inputs.repeat_interleave(self.size[0], dim=rows).repeat_interleave(self.size[1], dim=rows + 1)
        x = inputs.movedim(-1, 1) if channels_last else inputs  # (B, C, H, W): torch's layout for interpolate
        out_size = (x.shape[2] * self.size[0], x.shape[3] * self.size[1])
        y = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
        return y.movedim(1, -1) if channels_last else y  # (B, H * sh, W * sw, C)

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), data_format=self.data_format, interpolation=self.interpolation)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, size={self.size}, interpolation={self.interpolation!r}"
