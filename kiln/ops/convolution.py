"""Convolution and pooling ops in Keras's layout: channels_last by default, kernels shaped
``(*kernel_size, in_channels, out_channels)``.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import pad_or_torch_padding, same_padding
from kiln.ops._base import _op, _promote, _t

__all__ = [
    "conv", "depthwise_conv", "max_pool", "average_pool",
]


# ============================================================================ convolution and pooling
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _tuple(value: Any, n: int, arg: str) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, numbers.Integral) else value
    if (not isinstance(values, (tuple, list)) or len(values) != n
            or not builtins.all(isinstance(v, numbers.Integral) and v > 0 for v in values)):
        raise KilnValueError(f"Received an invalid value for `{arg}`, expected a positive integer or a tuple of "
                             f"{n} positive integers. Received: {arg}={value!r}")
    return tuple(int(v) for v in values)


def _image_args(inputs: Any, data_format: Any, padding: Any, op: str) -> tuple[torch.Tensor, int, bool, str]:
    """Check the common image-op arguments; return channels-first inputs, the rank, and the rest."""
    x = _t(inputs)
    if not 3 <= x.ndim <= 5:
        raise ShapeError(f"`{op}` expects inputs of rank 3, 4 or 5 (batch, spatial axes, channels). Received: "
                         f"inputs.shape={tuple(x.shape)}")
    if data_format not in (None, "channels_last", "channels_first"):
        raise KilnValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                             f"Received: data_format={data_format!r}")
    pad_mode = padding.lower() if isinstance(padding, str) else padding
    if pad_mode not in ("valid", "same"):
        raise KilnValueError(f"The `padding` argument must be one of 'valid', 'same'. Received: padding={padding!r}")
    channels_last = data_format != "channels_first"
    if channels_last:
        x = torch.movedim(x, -1, 1)  # (B, *spatial, C) -> (B, C, *spatial)
    return x, x.ndim - 2, channels_last, pad_mode


def _same_pads(sizes: Sequence[int], windows: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int]]:
    """TensorFlow's "same" padding per axis: ``ceil(n / stride)`` outputs, an odd extra one at the end."""
    return [same_padding(n, window, stride) for n, window, stride in zip(sizes, windows, strides)]


def _flat_pads(pads: list[tuple[int, int]]) -> list[int]:
    return [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first


def _conv(x, weight, rank, strides, pad_mode, dilation, groups, channels_last):
    if pad_mode == "same":
        windows = [(k - 1) * d + 1 for k, d in zip(weight.shape[2:], dilation)]
        x, padding = pad_or_torch_padding(x, _same_pads(x.shape[2:], windows, strides))
    else:
        padding = 0
    y = _CONV[rank](x, weight, None, strides, padding, dilation, groups)
    return torch.movedim(y, 1, -1) if channels_last else y


@_op
def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid", data_format: str | None = None,
         dilation_rate: Any = 1) -> torch.Tensor:
    """N-D convolution (1-D, 2-D or 3-D from the input's rank) with Keras's layouts.

    Args:
        inputs: (B, *spatial, C) channels_last (default), or (B, C, *spatial).
        kernel: (*kernel_size, C // groups, filters), Keras's layout; C // kernel.shape[-2] groups.
        strides, dilation_rate: (1) an int or one per spatial axis.
        padding: ("valid") or "same" (``ceil(n / stride)`` outputs, TensorFlow's padding).
    Returns (B, *out_spatial, filters) (channels_first: (B, filters, *out_spatial)).
    Example: ``conv(images, ops.ones((3, 3, 3, 8)), padding="same")`` on (B, 32, 32, 3) -> (B, 32, 32, 8).
    """
    x, rank, channels_last, pad_mode = _image_args(inputs, data_format, padding, "conv")
    w = _t(kernel, device=x.device)
    if w.ndim != rank + 2:
        raise ShapeError(f"`conv` on inputs of rank {rank + 2} expects a kernel of rank {rank + 2}, "
                         f"(*kernel_size, in_channels, filters). Received: kernel.shape={tuple(w.shape)}")
    in_channels, kernel_in = x.shape[1], w.shape[-2]
    if in_channels % kernel_in:
        raise ShapeError(f"`conv`: the input has {in_channels} channels, which the kernel's input channels "
                         f"({kernel_in}, kernel.shape[-2]) must divide. Received: inputs.shape="
                         f"{tuple(_t(inputs).shape)}, kernel.shape={tuple(w.shape)}")
    weight = w.permute(rank + 1, rank, *range(rank))  # (*k, in, out) -> (out, in, *k)
    x, weight = _promote(x, weight)
    return _conv(x, weight, rank, _tuple(strides, rank, "strides"), pad_mode,
                 _tuple(dilation_rate, rank, "dilation_rate"), in_channels // kernel_in, channels_last)


@_op
def depthwise_conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
                   data_format: str | None = None, dilation_rate: Any = 1) -> torch.Tensor:
    """Depthwise convolution: each input channel convolved with its own ``multiplier`` filters.

    Args:
        kernel: (*kernel_size, C, multiplier), Keras's layout. Output channel ``c * multiplier + m``
            comes from input channel ``c``.
        strides, padding, data_format, dilation_rate: as in ``conv``.
    Returns (B, *out_spatial, C * multiplier) (channels_last).
    """
    x, rank, channels_last, pad_mode = _image_args(inputs, data_format, padding, "depthwise_conv")
    w = _t(kernel, device=x.device)
    if w.ndim != rank + 2 or w.shape[-2] != x.shape[1]:
        raise ShapeError(f"`depthwise_conv` expects a kernel of shape (*kernel_size, {x.shape[1]}, multiplier) "
                         f"for these inputs. Received: kernel.shape={tuple(w.shape)}")
    channels = x.shape[1]
    weight = w.reshape(*w.shape[:rank], 1, -1)  # (*k, C, m) -> (*k, 1, C * m): channel-major order
    weight = weight.permute(rank + 1, rank, *range(rank))  # -> (C * m, 1, *k)
    x, weight = _promote(x, weight)
    return _conv(x, weight, rank, _tuple(strides, rank, "strides"), pad_mode,
                 _tuple(dilation_rate, rank, "dilation_rate"), channels, channels_last)


def _pool_args(inputs, pool_size, strides, padding, data_format, op):
    x, rank, channels_last, pad_mode = _image_args(inputs, data_format, padding, op)
    window = _tuple(pool_size, rank, "pool_size")
    step = window if strides is None else _tuple(strides, rank, "strides")
    pads = _same_pads(x.shape[2:], window, step) if pad_mode == "same" else [(0, 0)] * rank
    return x, rank, channels_last, window, step, pads


@_op
def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str | None = None) -> torch.Tensor:
    """Max pooling over windows of ``pool_size`` (1-D, 2-D or 3-D from the input's rank).

    Args:
        inputs: (B, *spatial, C) channels_last (default), or (B, C, *spatial).
        strides: (None: ``pool_size``) an int or one per spatial axis.
        padding: ("valid") or "same": ``ceil(n / strides)`` outputs; padding never wins the max.
    """
    x, rank, channels_last, window, step, pads = _pool_args(inputs, pool_size, strides, padding, data_format,
                                                            "max_pool")
    if builtins.any(p for pair in pads for p in pair):
        x = F.pad(x, _flat_pads(pads), value=float("-inf"))
    y = _MAX_POOL[rank](x, window, step)
    return torch.movedim(y, 1, -1) if channels_last else y


@_op
def average_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None) -> torch.Tensor:
    """Average pooling over windows of ``pool_size``; "same" padding is left out of each average."""
    x, rank, channels_last, window, step, pads = _pool_args(inputs, pool_size, strides, padding, data_format,
                                                            "average_pool")
    if not builtins.any(p for pair in pads for p in pair):
        y = _AVG_POOL[rank](x, window, step)
    elif builtins.all(b == a and 2 * b <= k for (b, a), k in zip(pads, window)):
        y = _AVG_POOL[rank](x, window, step, tuple(b for b, _ in pads), count_include_pad=False)
    else:
        # Asymmetric padding: average the zero-padded input, then divide by the share of real
        # inputs in each window (the same pooling over a padded map of ones, shape (1, 1, *spatial)).
        flat = _flat_pads(pads)
        ones_ = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        y = _AVG_POOL[rank](F.pad(x, flat), window, step) / _AVG_POOL[rank](F.pad(ones_, flat), window, step)
    return torch.movedim(y, 1, -1) if channels_last else y
