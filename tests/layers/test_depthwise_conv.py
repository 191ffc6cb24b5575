"""DepthwiseConv2D and SeparableConv2D against per-channel NumPy convolutions and torch's grouped conv."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.depthwise_conv import DepthwiseConv2D, SeparableConv2D
from kiln.models.summary import count_params


def np_correlate_valid(img, k):
    """2-D cross-correlation (what deep-learning 'convolution' means), valid padding, stride 1."""
    kh, kw = k.shape
    out = np.zeros((img.shape[0] - kh + 1, img.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (img[i:i + kh, j:j + kw] * k).sum()
    return out


def test_depthwise_matches_per_channel_numpy_with_keras_channel_order():
    layer = DepthwiseConv2D(3, depth_multiplier=2, bias_initializer="random_normal", dtype="float64")
    x = torch.randn(2, 6, 5, 3, dtype=torch.float64)
    y = layer(x).detach().numpy()
    assert y.shape == (2, 4, 3, 6)
    kernel = layer.kernel.detach().numpy()  # (C * dm, 1, kh, kw)
    bias = layer.bias.detach().numpy()
    for c in range(3):
        for m in range(2):
            out = c * 2 + m  # Keras/TF order: input channel c's m-th filter
            expected = np_correlate_valid(x[1, :, :, c].numpy(), kernel[out, 0]) + bias[out]
            np.testing.assert_allclose(y[1, :, :, out], expected, rtol=1e-10)


def tf_same_pads(n, k, s, d):
    """TensorFlow's "same" padding (before, after): ceil(n / s) outputs, the odd one at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("kwargs", [
    {"strides": 2}, {"padding": "same"}, {"padding": "same", "strides": 2}, {"dilation_rate": 2},
    {"depth_multiplier": 3, "padding": "same", "dilation_rate": (1, 2)}])
def test_depthwise_matches_grouped_conv2d(kwargs):
    layer = DepthwiseConv2D(3, **kwargs)
    x = torch.randn(2, 9, 8, 4)
    y = layer(x)
    x_first = x.permute(0, 3, 1, 2)  # (B, C, H, W)
    strides = kwargs.get("strides", 1)
    dilation = kwargs.get("dilation_rate", 1)
    dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
    if kwargs.get("padding") == "same":
        (top, bottom), (left, right) = (tf_same_pads(n, 3, strides, d) for n, d in zip((9, 8), dilation))
        x_first = F.pad(x_first, [left, right, top, bottom])
    reference = F.conv2d(x_first, layer.kernel, layer.bias, strides, 0, dilation, groups=4)
    torch.testing.assert_close(y, reference.permute(0, 2, 3, 1))


def test_depthwise_channels_first():
    layer = DepthwiseConv2D(2, data_format="channels_first")
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.kernel, layer.bias, groups=3))


def test_separable_is_depthwise_then_pointwise_and_counts_like_keras():
    layer = SeparableConv2D(8, 3, bias_initializer="random_normal")
    x = torch.randn(2, 6, 6, 4)
    y = layer(x)
    assert y.shape == (2, 4, 4, 8)
    assert sum(count_params(layer)) == 3 * 3 * 4 + 4 * 8 + 8 == 76
    depth = F.conv2d(x.permute(0, 3, 1, 2), layer.depthwise_kernel, None, groups=4)
    point = F.conv2d(depth, layer.pointwise_kernel, layer.bias)
    torch.testing.assert_close(y, point.permute(0, 2, 3, 1))


def test_separable_depth_multiplier_and_no_bias():
    layer = SeparableConv2D(5, (3, 2), depth_multiplier=2, use_bias=False, padding="same")
    y = layer(torch.randn(1, 7, 7, 3))
    assert y.shape == (1, 7, 7, 5)
    assert sum(count_params(layer)) == 3 * 2 * 3 * 2 + 3 * 2 * 5


def test_initial_kernel_uses_keras_fans():
    # glorot_uniform draws from +-sqrt(6 / (fan_in + fan_out)). Keras's fans for its (3, 3, 64, 4) kernel:
    # 9 * 64 in, 9 * 4 out (limit 0.099); torch's (256, 1, 3, 3) layout would give 9 and 9 * 256 (limit 0.051).
    layer = DepthwiseConv2D(3, depth_multiplier=4)
    layer(torch.zeros(1, 5, 5, 64))
    limit = np.sqrt(6 / (9 * 64 + 9 * 4))
    kernel = layer.kernel.detach()
    assert kernel.abs().max() <= limit and kernel.abs().max() > 0.9 * limit


def test_seeded_initializer_gives_keras_values_in_torch_layout():
    init = kiln.initializers.GlorotUniform(seed=1)
    layer = DepthwiseConv2D(3, depth_multiplier=2, depthwise_initializer=init)
    layer(torch.zeros(1, 4, 4, 3))
    keras_kernel = init((3, 3, 3, 2))  # what Keras would hold: (kh, kw, C, dm)
    torch.testing.assert_close(layer.kernel.detach(), keras_kernel.permute(2, 3, 0, 1).reshape(6, 1, 3, 3))


def test_learns_in_a_model():
    torch.manual_seed(0)
    model = kiln.Sequential([kiln.Input(shape=(8, 8, 2)), SeparableConv2D(4, 3, activation="relu"),
                             DepthwiseConv2D(3), kiln.layers.GlobalAveragePooling2D(), kiln.layers.Dense(1)])
    x = np.random.rand(32, 8, 8, 2).astype("float32")
    y = x.mean(axis=(1, 2, 3))[:, None]
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_errors():
    with pytest.raises(KilnValueError, match="`depth_multiplier`"):
        DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(KilnValueError, match="`kernel_size`"):
        DepthwiseConv2D((3, 3, 3))
    with pytest.raises(KilnValueError, match="`filters`"):
        SeparableConv2D(0, 3)
    with pytest.raises(KilnValueError, match="padding"):
        SeparableConv2D(4, 3, padding="causal")
    with pytest.raises(KilnValueError, match="constraint"):
        SeparableConv2D(4, 3, pointwise_constraint="max_norm")
    with pytest.raises(ShapeError, match="rank 4"):
        DepthwiseConv2D(3)(torch.randn(2, 5, 5))
    with pytest.raises(ShapeError, match="smaller than its"):
        DepthwiseConv2D(5)(torch.randn(2, 3, 3, 1))
    layer = DepthwiseConv2D(3)
    layer(torch.randn(1, 5, 5, 2))
    with pytest.raises(ShapeError, match="built for 2 input channels"):
        layer(torch.randn(1, 5, 5, 3))


@pytest.mark.parametrize("layer", [
    DepthwiseConv2D((3, 2), strides=2, padding="same", depth_multiplier=2, data_format="channels_first",
                    activation="relu", use_bias=False, depthwise_regularizer="l2"),
    SeparableConv2D(6, 3, dilation_rate=2, depth_multiplier=3, pointwise_initializer="he_normal",
                    bias_regularizer="l1")])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
