"""Convolutions: Conv1D/2D/3D and Conv1D/2D/3DTranspose, with Keras 3's arguments and sizes.

Layout: inputs are channels_last by default, as in Keras — ``(B, L, C)``, ``(B, H, W, C)``,
``(B, D, H, W, C)`` — and are moved to channels_first for torch's ``F.conv*`` and back. The
kernel is stored in torch's layout, ``(filters, in_channels / groups, *kernel_size)`` for a
convolution and ``(in_channels, filters, *kernel_size)`` for a transposed one, so the layer is
an ordinary torch conv underneath. Keras stores ``(*kernel_size, in, out)`` (transposed:
``(*kernel_size, filters, in)``); to load a Keras kernel ``k`` use
``k.permute(rank + 1, rank, *range(rank))`` (NumPy: ``np.transpose``) — a ``(kh, kw, in, out)``
kernel becomes ``(out, in, kh, kw)``.

Padding "same" follows TensorFlow, which Keras's sizes and values come from: the output has
``ceil(n / stride)`` positions and an odd total padding puts the extra row at the end.
Padding "causal" (Conv1D only) pads ``(kernel_size - 1) * dilation_rate`` at the start.

A transposed convolution is the gradient of the matching convolution: its output length is
Keras's ``deconv_output_length`` (valid: ``n * s + max(k - s, 0)``, same: ``n * s``, or with
``output_padding``: ``(n - 1) * s + k - 2 * pad + output_padding``).

The ``normalize_*`` helpers here are shared with pooling, reshape and dropout layers.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from kiln import activations, constraints, initializers, regularizers
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.layer import Layer

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


# ---------------------------------------------------------------------- argument helpers
def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def normalize_positive_int(value, name: str) -> int:
    """Return ``value`` as an int, or raise Keras's message for a non-positive one."""
    if not _is_int(value) or value <= 0:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a positive integer. "
                             f"Received: {name}={value!r}")
    return int(value)


def normalize_tuple(value, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """``3`` -> ``(3, 3)`` for ``n=2``; check a tuple has ``n`` positive (or >= 0) ints."""
    values = (value,) * n if _is_int(value) else value
    kind = "non-negative" if allow_zero else "positive"
    ok = isinstance(values, (tuple, list)) and len(values) == n and all(
        _is_int(v) and (v >= 0 if allow_zero else v > 0) for v in values)
    if not ok:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a {kind} integer or a tuple "
                             f"of {n} {kind} integers. Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def normalize_data_format(value) -> str:
    """None -> "channels_last" (Keras's default); otherwise "channels_last" or "channels_first"."""
    if value is None:
        return "channels_last"
    fmt = str(value).lower()
    if fmt not in ("channels_last", "channels_first"):
        raise KilnValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                             f"Received: data_format={value!r}")
    return fmt


def normalize_padding(value, allowed=("valid", "same")) -> str:
    """Lower-case ``padding`` and check it is one of ``allowed``."""
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise KilnValueError(f"The `padding` argument must be one of {', '.join(map(repr, allowed))}. "
                             f"Received: padding={value!r}")
    return padding


def same_padding(length: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding ``(before, after)`` that gives ``ceil(length / stride)`` outputs.

    ``window`` is the effective (dilated) kernel size; an odd total puts the extra one after.
    """
    out = -(-length // stride)
    total = max((out - 1) * stride + window - length, 0)
    return total // 2, total - total // 2


def pad_or_torch_padding(x: torch.Tensor, pads: list[tuple[int, int]], value: float = 0.0):
    """Return ``(x, padding)`` for torch: symmetric pads go to torch's ``padding=`` argument
    (fused into the op), asymmetric ones are applied here with ``F.pad`` (padding becomes 0)."""
    if all(before == after for before, after in pads):
        return x, tuple(before for before, _ in pads)
    flat = [p for before_after in reversed(pads) for p in before_after]  # F.pad wants last axis first
    return F.pad(x, flat, value=value), 0


def check_no_constraint(**arguments) -> None:
    """Layers whose weights kiln cannot constrain yet refuse the argument rather than ignore it."""
    for name, value in arguments.items():
        if value is not None:
            raise KilnValueError(f"This layer does not support weight constraints yet. Received: {name}={value!r}. "
                                 "Remove the argument; constraints are supported on Dense, Conv1D/2D/3D, "
                                 "Conv*Transpose and Embedding.")


def check_rank(layer: Layer, inputs: torch.Tensor, ndim: int, what: str) -> None:
    if inputs.ndim != ndim:
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) expects inputs of rank {ndim}, "
                         f"{what}, but received shape {tuple(inputs.shape)}.")


def describe_layout(rank: int, data_format: str) -> str:
    spatial = {1: "steps", 2: "height, width", 3: "depth, height, width"}[rank]
    return f"(batch, {spatial}, channels)" if data_format == "channels_last" else f"(batch, channels, {spatial})"


def build_channels(layer: Layer, input_shape, rank: int) -> int:
    """The channel count of a conv layer's ``build`` shape; a ``ShapeError`` for a wrong rank or unknown channels."""
    if len(input_shape) != rank + 2:
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) expects inputs of rank {rank + 2}, "
                         f"{describe_layout(rank, layer.data_format)}, but received shape {input_shape}.")
    channels = input_shape[-1 if layer.data_format == "channels_last" else 1]
    if channels is None:
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) needs a known channel axis; "
                         f"received shape {input_shape} with data_format={layer.data_format!r}.")
    return channels


def conv_pads(layer: Layer, inputs: torch.Tensor, spatial) -> list[tuple[int, int]]:
    """``(before, after)`` per spatial axis for ``layer.padding`` ("valid", "same" or "causal").

    Reads the layer's ``kernel_size``, ``strides`` and ``dilation_rate``; a ``ShapeError`` when
    an axis is shorter than the (dilated) kernel even after padding.
    """
    windows = [(k - 1) * d + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)]
    if layer.padding == "same":
        pads = [same_padding(n, w, s) for n, w, s in zip(spatial, windows, layer.strides)]
    elif layer.padding == "causal":
        pads = [(windows[0] - 1, 0)]  # only the past: output t sees inputs <= t
    else:
        pads = [(0, 0)] * len(windows)
    if any(n + b + a < w for n, (b, a), w in zip(spatial, pads, windows)):
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) received an input of shape "
                         f"{tuple(inputs.shape)}, smaller than its (dilated) kernel {tuple(windows)} with "
                         f"padding={layer.padding!r}. Use padding='same' or a larger input.")
    return pads


# ---------------------------------------------------------------------- convolution
class _Conv(Layer):
    """Shared code of Conv1D/2D/3D; ``rank`` is the number of spatial axes."""

    rank = 0

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        self.filters = normalize_positive_int(filters, "filters")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = normalize_padding(padding, ("valid", "same", "causal") if rank == 1 else ("valid", "same"))
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.groups = normalize_positive_int(groups, "groups")
        if self.filters % self.groups:
            raise KilnValueError("The number of filters must be evenly divisible by the number of groups. "
                                 f"Received: groups={self.groups}, filters={self.filters}.")
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        channels = build_channels(self, input_shape, self.rank)
        if channels % self.groups:
            raise ShapeError("The number of input channels must be evenly divisible by the number of groups. "
                             f"Received groups={self.groups}, but the input has {channels} channels "
                             f"(full input shape is {input_shape}).")
        # torch layout (out, in / groups, *k); layout="torch" gives Keras's fans for it.
        self.kernel = self.add_weight("kernel", (self.filters, channels // self.groups) + self.kernel_size,
                                      self.kernel_initializer, self.kernel_regularizer, layout="torch",
                                      constraint=constraints.for_torch_conv_kernel(self.kernel_constraint))
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, describe_layout(self.rank, self.data_format))
        channels_last = self.data_format == "channels_last"
        x = inputs.movedim(-1, 1) if channels_last else inputs  # (B, C, *spatial)
        expected = self.kernel.shape[1] * self.groups
        if x.shape[1] != expected:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) was built for {expected} input channels, "
                             f"but received shape {tuple(inputs.shape)} ({x.shape[1]} channels on the "
                             f"{'last' if channels_last else 'second'} axis).")
        x, padding = pad_or_torch_padding(x, conv_pads(self, inputs, x.shape[2:]))
        y = _CONV[self.rank](x, self.kernel, self.bias, self.strides, padding, self.dilation_rate, self.groups)
        y = y.movedim(1, -1) if channels_last else y  # back to (B, *spatial, filters)
        return self.activation(y)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=list(self.dilation_rate),
            groups=self.groups,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
        )
        return config

    def extra_repr(self):
        in_ch = self.kernel.shape[1] * self.groups if self.built else "?"
        return (f"name={self.name!r}, in={in_ch}, filters={self.filters}, kernel_size={self.kernel_size}, "
                f"strides={self.strides}, padding={self.padding!r}, data_format={self.data_format!r}")


class Conv1D(_Conv):
    """1-D convolution over steps (temporal convolution).

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 1 int, window length.
        strides: int or tuple of 1 int (default 1).
        padding: "valid" (default), "same" (output length ``ceil(steps / strides)``) or "causal"
            (left padding only, so output ``t`` depends on inputs ``<= t``).
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 1 int (default 1).
        groups: positive int dividing both input channels and ``filters`` (default 1).
        activation: name or callable (default None: linear).
        use_bias: add a bias vector (default True).
        kernel_initializer: default "glorot_uniform"; bias_initializer: default "zeros".
        kernel_regularizer / bias_regularizer / activity_regularizer: penalties added to the loss.

    Shapes: ``(batch, steps, channels)`` -> ``(batch, new_steps, filters)`` (channels_last);
    ``(batch, channels, steps)`` -> ``(batch, filters, new_steps)`` (channels_first).

    Example::

        Conv1D(32, 3, padding="causal", activation="relu")
    """

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over images.

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 2 ints, window height and width.
        strides: int or tuple of 2 ints (default 1).
        padding: "valid" (default) or "same" (output size ``ceil(size / strides)``, TF-style
            padding with the extra row/column at the end).
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 2 ints (default 1).
        groups: positive int dividing both input channels and ``filters`` (default 1).
        activation: name or callable (default None: linear).
        use_bias: add a bias vector (default True).
        kernel_initializer: default "glorot_uniform"; bias_initializer: default "zeros".
        kernel_regularizer / bias_regularizer / activity_regularizer: penalties added to the loss.

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, new_height, new_width, filters)``
    (channels_last); ``(batch, channels, height, width)`` -> ``(batch, filters, new_height,
    new_width)`` (channels_first).

    Example::

        Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1))  # 320 parameters
    """

    rank = 2


class Conv3D(_Conv):
    """3-D convolution over volumes (or video).

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 3 ints.
        strides: int or tuple of 3 ints (default 1).
        padding: "valid" (default) or "same" (output size ``ceil(size / strides)``).
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 3 ints (default 1).
        groups: positive int dividing both input channels and ``filters`` (default 1).
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, activity_regularizer: as in Conv2D.

    Shapes: ``(batch, depth, height, width, channels)`` -> ``(batch, new_depth, new_height,
    new_width, filters)`` (channels_last).

    Example::

        Conv3D(8, 3, padding="same")
    """

    rank = 3


# ---------------------------------------------------------------------- transposed convolution
def deconv_output_length(length: int, kernel_size: int, padding: str, output_padding: int | None,
                         stride: int, dilation: int) -> int:
    """Keras's output length of a transposed convolution along one axis."""
    window = (kernel_size - 1) * dilation + 1
    if output_padding is None:
        return length * stride + max(window - stride, 0) if padding == "valid" else length * stride
    pad = window // 2 if padding == "same" else 0
    return (length - 1) * stride + window - 2 * pad + output_padding


class _ConvTranspose(Layer):
    """Shared code of Conv1D/2D/3DTranspose; ``rank`` is the number of spatial axes."""

    rank = 0

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        self.filters = normalize_positive_int(filters, "filters")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = normalize_padding(padding)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise KilnValueError(f"Strides {self.strides} must be greater than output padding "
                                     f"{self.output_padding}. Received: strides={strides!r}, "
                                     f"output_padding={output_padding!r}")
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        channels = build_channels(self, input_shape, self.rank)
        # torch's transposed layout (in, out, *k): dim 0 is what the forward conv would output, so
        # layout="torch" computes fan_in = filters * prod(k), fan_out = in * prod(k), as Keras does.
        self.kernel = self.add_weight("kernel", (channels, self.filters) + self.kernel_size,
                                      self.kernel_initializer, self.kernel_regularizer, layout="torch",
                                      constraint=constraints.for_torch_conv_kernel(self.kernel_constraint))
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, describe_layout(self.rank, self.data_format))
        channels_last = self.data_format == "channels_last"
        x = inputs.movedim(-1, 1) if channels_last else inputs  # (B, C, *spatial)
        if x.shape[1] != self.kernel.shape[0]:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) was built for {self.kernel.shape[0]} "
                             f"input channels, but received shape {tuple(inputs.shape)}.")
        output_padding = self.output_padding or (None,) * self.rank
        # Per axis: `full` = untrimmed length (torch, padding 0), `target` = Keras's length, and
        # `before` = what TF trims at the start: the "same" padding of the forward conv.
        full, target, before = [], [], []
        for n, k, s, d, p in zip(x.shape[2:], self.kernel_size, self.strides, self.dilation_rate, output_padding):
            full.append((n - 1) * s + (k - 1) * d + 1)
            target.append(deconv_output_length(n, k, self.padding, p, s, d))
            before.append(0 if self.padding == "valid" else max(full[-1] - target[-1], 0) // 2)
        # torch trims `padding` at both ends and adds `output_padding` (< max(stride, dilation)) at the end.
        torch_output_padding = [t - f + 2 * b for t, f, b in zip(target, full, before)]
        conv_t = _CONV_TRANSPOSE[self.rank]
        if all(0 <= op < max(s, d) for op, s, d in zip(torch_output_padding, self.strides, self.dilation_rate)):
            y = conv_t(x, self.kernel, self.bias, self.strides, tuple(before), tuple(torch_output_padding),
                       1, self.dilation_rate)
        else:
            # Otherwise trim/extend by hand: F.pad with a negative amount crops.
            y = conv_t(x, self.kernel, None, self.strides, 0, 0, 1, self.dilation_rate)
            flat = [p for b, f, t in reversed(list(zip(before, full, target))) for p in (-b, t - (f - b))]
            y = F.pad(y, flat)
            if self.bias is not None:
                y = y + self.bias.view((-1,) + (1,) * self.rank)
        y = y.movedim(1, -1) if channels_last else y  # (B, *spatial, filters)
        return self.activation(y)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            padding=self.padding,
            output_padding=None if self.output_padding is None else list(self.output_padding),
            data_format=self.data_format,
            dilation_rate=list(self.dilation_rate),
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
        )
        return config

    def extra_repr(self):
        in_ch = self.kernel.shape[0] if self.built else "?"
        return (f"name={self.name!r}, in={in_ch}, filters={self.filters}, kernel_size={self.kernel_size}, "
                f"strides={self.strides}, padding={self.padding!r}, data_format={self.data_format!r}")


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution (the gradient of Conv1D; upsamples by ``strides``).

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 1 int.
        strides: int or tuple of 1 int (default 1).
        padding: "valid" (default; length ``n * s + max(k - s, 0)``) or "same" (length ``n * s``).
        output_padding: None (default) or int/tuple, each smaller than its stride; fixes the
            length to ``(n - 1) * s + k - 2 * pad + output_padding`` (pad = k // 2 for "same").
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 1 int (default 1).
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, activity_regularizer: as in Conv1D.

    Shapes: ``(batch, steps, channels)`` -> ``(batch, new_steps, filters)`` (channels_last).

    Example::

        Conv1DTranspose(16, 3, strides=2, padding="same")
    """

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution (the gradient of Conv2D; upsamples by ``strides``).

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 2 ints.
        strides: int or tuple of 2 ints (default 1).
        padding: "valid" (default; size ``n * s + max(k - s, 0)``) or "same" (size ``n * s``).
        output_padding: None (default) or int/tuple of 2, each smaller than its stride; fixes the
            size to ``(n - 1) * s + k - 2 * pad + output_padding`` (pad = k // 2 for "same").
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 2 ints (default 1).
        activation: name or callable (default None: linear).
        use_bias: add a bias vector (default True).
        kernel_initializer: default "glorot_uniform"; bias_initializer: default "zeros".
        kernel_regularizer / bias_regularizer / activity_regularizer: penalties added to the loss.

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, new_height, new_width, filters)``
    (channels_last). The kernel is stored as ``(channels, filters, kh, kw)`` (torch's layout).

    Example::

        Conv2DTranspose(32, 3, strides=2, padding="same")  # (B, 7, 7, C) -> (B, 14, 14, 32)
    """

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """3-D transposed convolution (the gradient of Conv3D; upsamples by ``strides``).

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 3 ints.
        strides, padding, output_padding, data_format, dilation_rate, activation, use_bias,
            kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            activity_regularizer: as in Conv2DTranspose, with tuples of 3.

    Shapes: ``(batch, depth, height, width, channels)`` -> ``(batch, new_depth, new_height,
    new_width, filters)`` (channels_last).

    Example::

        Conv3DTranspose(8, 2, strides=2)
    """

    rank = 3
