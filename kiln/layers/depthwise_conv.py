"""Depthwise and depthwise-separable 2-D convolutions: DepthwiseConv2D and SeparableConv2D.

A depthwise convolution filters every input channel on its own with ``depth_multiplier``
kernels (torch: a grouped convolution with ``groups = channels``); a separable convolution
follows it with a 1x1 "pointwise" convolution that mixes the channels. The pair costs far
fewer weights than a full Conv2D (MobileNet, Xception): SeparableConv2D(8, 3) on 4 channels
has ``3*3*4 + 4*8 + 8 = 76`` parameters against Conv2D's ``3*3*4*8 + 8 = 296``.

Layout: as in conv.py, inputs are channels_last by default and the kernels are stored in
torch's layout: depthwise ``(channels * depth_multiplier, 1, kh, kw)`` and pointwise
``(filters, channels * depth_multiplier, 1, 1)``. Output channel ``c * depth_multiplier + m``
is input channel ``c``'s ``m``-th filter, the order Keras (TensorFlow) uses. Keras stores the
depthwise kernel as ``(kh, kw, channels, depth_multiplier)``: to load ``k`` use
``k.permute(2, 3, 0, 1).reshape(-1, 1, kh, kw)``. Initial values are drawn in Keras's layout
so the initializers see Keras's fans (fan_in ``kh*kw*channels``, fan_out ``kh*kw*depth_multiplier``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kiln import activations, initializers, regularizers
from kiln.errors import ShapeError
from kiln.layers.conv import (build_channels, check_no_constraint, check_rank, conv_pads, describe_layout,
                              normalize_data_format, normalize_padding, normalize_positive_int, normalize_tuple,
                              pad_or_torch_padding)
from kiln.layers.layer import Layer

__all__ = ["DepthwiseConv2D", "SeparableConv2D"]


class _DepthwiseBase(Layer):
    """Shared code: the spatial arguments, the depthwise kernel and the depthwise step."""

    def _init_spatial(self, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate,
                      depthwise_initializer, depthwise_regularizer):
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.depth_multiplier = normalize_positive_int(depth_multiplier, "depth_multiplier")
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)

    def _add_depthwise_kernel(self, name: str, channels: int) -> torch.nn.Parameter:
        kh, kw = self.kernel_size
        dm = self.depth_multiplier
        kernel = self.add_weight(name, (channels * dm, 1, kh, kw), "zeros", self.depthwise_regularizer,
                                 layout="torch")
        # Drawn as Keras's (kh, kw, C, dm) for Keras's fans, then laid out as (C * dm, 1, kh, kw).
        keras_value = self.depthwise_initializer((kh, kw, channels, dm), dtype=self.dtype, layout="keras")
        with torch.no_grad():
            kernel.copy_(keras_value.permute(2, 3, 0, 1).reshape(channels * dm, 1, kh, kw))
        return kernel

    def _depthwise(self, inputs, kernel, bias) -> torch.Tensor:
        """Channels-first result ``(B, C * dm, new_h, new_w)`` of the depthwise step."""
        check_rank(self, inputs, 4, describe_layout(2, self.data_format))
        x = inputs.movedim(-1, 1) if self.data_format == "channels_last" else inputs  # (B, C, H, W)
        channels = kernel.shape[0] // self.depth_multiplier
        if x.shape[1] != channels:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) was built for {channels} input channels, "
                             f"but received shape {tuple(inputs.shape)}.")
        x, padding = pad_or_torch_padding(x, conv_pads(self, inputs, x.shape[2:]))
        return F.conv2d(x, kernel, bias, self.strides, padding, self.dilation_rate, groups=channels)

    def _to_data_format(self, y: torch.Tensor) -> torch.Tensor:
        return y.movedim(1, -1) if self.data_format == "channels_last" else y

    def _spatial_config(self) -> dict:
        return dict(
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            padding=self.padding,
            depth_multiplier=self.depth_multiplier,
            data_format=self.data_format,
            dilation_rate=list(self.dilation_rate),
            depthwise_initializer=initializers.serialize(self.depthwise_initializer),
            depthwise_regularizer=regularizers.serialize(self.depthwise_regularizer),
            depthwise_constraint=None,  # constraints are refused in __init__
        )


class DepthwiseConv2D(_DepthwiseBase):
    """2-D depthwise convolution: each input channel filtered on its own by ``depth_multiplier`` kernels.

    Args:
        kernel_size: int or tuple of 2 ints, window height and width.
        strides: int or tuple of 2 ints (default ``(1, 1)``).
        padding: "valid" (default) or "same" (output size ``ceil(size / strides)``, TF-style).
        depth_multiplier: positive int (default 1), output channels per input channel.
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 2 ints (default ``(1, 1)``).
        activation: name or callable (default None: linear).
        use_bias: add a bias vector (default True).
        depthwise_initializer: default "glorot_uniform"; bias_initializer: default "zeros".
        depthwise_regularizer / bias_regularizer / activity_regularizer: penalties added to the loss.
        depthwise_constraint / bias_constraint: not supported (must be None).

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, new_height, new_width,
    channels * depth_multiplier)`` (channels_last).

    Example::

        DepthwiseConv2D(3, padding="same")  # on 32 channels: 3*3*32 + 32 = 320 parameters
    """

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_spatial(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate,
                           depthwise_initializer, depthwise_regularizer)
        check_no_constraint(depthwise_constraint=depthwise_constraint, bias_constraint=bias_constraint)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        channels = build_channels(self, input_shape, 2)
        self.kernel = self._add_depthwise_kernel("kernel", channels)  # (C * dm, 1, kh, kw)
        if self.use_bias:
            self.bias = self.add_weight("bias", (channels * self.depth_multiplier,), self.bias_initializer,
                                        self.bias_regularizer)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        y = self._depthwise(inputs, self.kernel, self.bias)  # (B, C * dm, new_h, new_w)
        return self.activation(self._to_data_format(y))

    def get_config(self):
        config = super().get_config()
        config.update(self._spatial_config())
        config.update(
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            bias_initializer=initializers.serialize(self.bias_initializer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            bias_constraint=None,
        )
        return config

    def extra_repr(self):
        return (f"name={self.name!r}, kernel_size={self.kernel_size}, depth_multiplier={self.depth_multiplier}, "
                f"strides={self.strides}, padding={self.padding!r}, data_format={self.data_format!r}")


class SeparableConv2D(_DepthwiseBase):
    """2-D depthwise-separable convolution: a depthwise convolution, then a 1x1 convolution to ``filters``.

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 2 ints, the depthwise window.
        strides: int or tuple of 2 ints (default ``(1, 1)``).
        padding: "valid" (default) or "same" (output size ``ceil(size / strides)``, TF-style).
        data_format: None/"channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 2 ints (default ``(1, 1)``).
        depth_multiplier: positive int (default 1), depthwise channels per input channel.
        activation: name or callable (default None: linear).
        use_bias: add a bias vector after the pointwise step (default True).
        depthwise_initializer / pointwise_initializer: default "glorot_uniform"; bias_initializer: "zeros".
        depthwise_regularizer / pointwise_regularizer / bias_regularizer / activity_regularizer: penalties.
        depthwise_constraint / pointwise_constraint / bias_constraint: not supported (must be None).

    Shapes: ``(batch, height, width, channels)`` -> ``(batch, new_height, new_width, filters)``
    (channels_last).

    Example::

        SeparableConv2D(8, 3)  # on 4 channels: 3*3*4 + 4*8 + 8 = 76 parameters
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = normalize_positive_int(filters, "filters")
        self._init_spatial(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate,
                           depthwise_initializer, depthwise_regularizer)
        check_no_constraint(depthwise_constraint=depthwise_constraint, pointwise_constraint=pointwise_constraint,
                            bias_constraint=bias_constraint)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        channels = build_channels(self, input_shape, 2)
        self.depthwise_kernel = self._add_depthwise_kernel("depthwise_kernel", channels)  # (C * dm, 1, kh, kw)
        # torch layout (filters, C * dm, 1, 1): layout="torch" gives Keras's fans (C * dm in, filters out).
        self.pointwise_kernel = self.add_weight("pointwise_kernel",
                                                (self.filters, channels * self.depth_multiplier, 1, 1),
                                                self.pointwise_initializer, self.pointwise_regularizer,
                                                layout="torch")
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        y = self._depthwise(inputs, self.depthwise_kernel, None)  # (B, C * dm, new_h, new_w)
        y = F.conv2d(y, self.pointwise_kernel, self.bias)         # (B, filters, new_h, new_w)
        return self.activation(self._to_data_format(y))

    def get_config(self):
        config = super().get_config()
        config["filters"] = self.filters
        config.update(self._spatial_config())
        config.update(
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            pointwise_initializer=initializers.serialize(self.pointwise_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            pointwise_regularizer=regularizers.serialize(self.pointwise_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            pointwise_constraint=None,
            bias_constraint=None,
        )
        return config

    def extra_repr(self):
        return (f"name={self.name!r}, filters={self.filters}, kernel_size={self.kernel_size}, "
                f"depth_multiplier={self.depth_multiplier}, strides={self.strides}, padding={self.padding!r}")
