"""Conv1D/2D/3D and the transposed convolutions against references written from Keras's rules:
a direct NumPy convolution with TensorFlow's "same" padding, and the transposed convolution as
the gradient (adjoint) of the forward one."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.conv import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose
from kiln.layers.symbolic import Input
from kiln.models.summary import count_params

ATOL = 1e-10  # the layers run in float64 here


# ---------------------------------------------------------------------- references
def tf_same_pads(n, k, s, d):
    """TensorFlow's "same" padding (before, after) for length n: ceil(n / s) outputs."""
    window = (k - 1) * d + 1
    out = math.ceil(n / s)
    total = max((out - 1) * s + window - n, 0)
    return total // 2, total - total // 2


def ref_conv_nhwc(x, kernel, strides, dilation, padding):
    """Direct channels_last convolution. x: (B, *spatial, C) array, kernel: Keras layout
    (*k, C, filters). Loops over output positions and kernel taps only."""
    rank = x.ndim - 2
    ks = kernel.shape[:rank]
    if padding == "same":
        pads = [tf_same_pads(n, k, s, d) for n, k, s, d in zip(x.shape[1:-1], ks, strides, dilation)]
    elif padding == "causal":
        pads = [((ks[0] - 1) * dilation[0], 0)]
    else:
        pads = [(0, 0)] * rank
    xp = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    out_sizes = [(n - ((k - 1) * d + 1)) // s + 1 for n, k, s, d in zip(xp.shape[1:-1], ks, strides, dilation)]
    out = np.zeros((x.shape[0], *out_sizes, kernel.shape[-1]))
    for pos in np.ndindex(*out_sizes):
        for tap in np.ndindex(*ks):
            idx = tuple(p * s + t * d for p, t, s, d in zip(pos, tap, strides, dilation))
            out[(slice(None),) + pos] += xp[(slice(None),) + idx] @ kernel[tap]
    return out


def keras_kernel(layer):
    """kiln's torch-layout kernel (out, in, *k) as Keras's (*k, in, out)."""
    rank = layer.kernel.ndim - 2
    return layer.kernel.detach().permute(*range(2, 2 + rank), 1, 0).numpy()


def deconv_length(n, k, s, d, padding, output_padding):
    """Keras's deconv_output_length."""
    window = (k - 1) * d + 1
    if output_padding is None:
        return n * s + max(window - s, 0) if padding == "valid" else n * s
    pad = window // 2 if padding == "same" else 0
    return (n - 1) * s + window - 2 * pad + output_padding


def ref_conv_transpose_nchw(x, kernel, strides, dilation, padding, out_sizes):
    """TF's conv_transpose: the gradient w.r.t. z of conv(z) for z of shape out_sizes."""
    rank = x.ndim - 2
    z = torch.zeros((x.shape[0], kernel.shape[1], *out_sizes), dtype=x.dtype, requires_grad=True)
    if padding == "same":
        # The forward conv maps out_sizes -> x's sizes; its "same" padding is what TF trims.
        pads = []
        for L, n, k, s, d in zip(out_sizes, x.shape[2:], kernel.shape[2:], strides, dilation):
            total = max((n - 1) * s + (k - 1) * d + 1 - L, 0)
            pads.append((total // 2, total - total // 2))
        zp = F.pad(z, [p for pair in reversed(pads) for p in pair])
    else:
        zp = z
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    y = conv(zp, kernel, stride=strides, dilation=dilation)
    assert tuple(y.shape[2:]) == tuple(x.shape[2:]), "reference conv must map back to the input size"
    (grad,) = torch.autograd.grad(y, z, grad_outputs=x)
    return grad


def roundtrip(layer, x):
    """get_config -> JSON -> from_config rebuilds an equivalent layer (same weights, same outputs)."""
    expected = layer(x)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    torch.testing.assert_close(clone(x), expected)


# ---------------------------------------------------------------------- Conv1D / Conv2D / Conv3D
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides,dilation", [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("kernel_size", [1, 2, 3, (3, 2)])
def test_conv2d_matches_direct_convolution(padding, strides, dilation, kernel_size):
    x = torch.randn(2, 9, 8, 3, dtype=torch.float64)
    layer = Conv2D(4, kernel_size, strides=strides, padding=padding, dilation_rate=dilation,
                   bias_initializer="random_normal", dtype="float64")
    y = layer(x)
    ks = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    expected = ref_conv_nhwc(x.numpy(), keras_kernel(layer), (strides,) * 2, (dilation,) * 2, padding)
    expected += layer.bias.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=ATOL)
    if padding == "same":
        assert tuple(y.shape) == (2, math.ceil(9 / strides), math.ceil(8 / strides), 4)
    else:
        windows = [(k - 1) * dilation + 1 for k in ks]
        assert tuple(y.shape) == (2, (9 - windows[0]) // strides + 1, (8 - windows[1]) // strides + 1, 4)


@pytest.mark.parametrize("n", range(1, 12))
@pytest.mark.parametrize("k,s", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (2, 5)])
def test_same_padding_output_length_is_ceil_n_over_stride(n, k, s):
    y = Conv1D(2, k, strides=s, padding="same")(torch.randn(1, n, 3))
    assert y.shape[1] == math.ceil(n / s)


def test_conv2d_channels_last_equals_torch_conv_on_permuted_data():
    x = torch.randn(4, 10, 12, 3)
    layer = Conv2D(8, 3, strides=2, bias_initializer="random_normal")
    y = layer(x)
    expected = F.conv2d(x.permute(0, 3, 1, 2), layer.kernel, layer.bias, stride=2).permute(0, 2, 3, 1)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("strides,dilation", [(1, 1), (2, 1), (1, 3)])
def test_conv1d_matches_direct_convolution(padding, strides, dilation):
    x = torch.randn(3, 11, 2, dtype=torch.float64)
    layer = Conv1D(5, 3, strides=strides, padding=padding, dilation_rate=dilation, dtype="float64")
    y = layer(x)
    expected = ref_conv_nhwc(x.numpy(), keras_kernel(layer), (strides,), (dilation,), padding)
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=ATOL)


def test_causal_conv1d_never_sees_the_future():
    x = torch.randn(2, 10, 3)
    layer = Conv1D(4, 3, padding="causal", dilation_rate=2)
    y = layer(x)
    assert y.shape == (2, 10, 4)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(2, 4, 3)  # change the future from step 6 on
    torch.testing.assert_close(layer(x2)[:, :6], y[:, :6])


def test_conv3d_matches_direct_convolution():
    x = torch.randn(2, 5, 6, 4, 2, dtype=torch.float64)
    layer = Conv3D(3, (2, 3, 1), strides=(1, 2, 2), padding="same", dtype="float64")
    y = layer(x)
    expected = ref_conv_nhwc(x.numpy(), keras_kernel(layer), (1, 2, 2), (1, 1, 1), "same")
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=ATOL)


@pytest.mark.parametrize("cls,shape", [(Conv1D, (2, 9, 3)), (Conv2D, (2, 9, 7, 3)), (Conv3D, (2, 5, 6, 4, 3))])
def test_channels_first_equals_channels_last(cls, shape):
    x = torch.randn(*shape)
    last = cls(4, 2, strides=2, padding="same")
    first = cls(4, 2, strides=2, padding="same", data_format="channels_first")
    y_last = last(x)
    first(x.movedim(-1, 1))
    first.set_weights(last.get_weights())
    torch.testing.assert_close(first(x.movedim(-1, 1)), y_last.movedim(-1, 1))


def test_groups_equal_separate_convolutions_per_group():
    x = torch.randn(2, 8, 8, 6)
    layer = Conv2D(4, 3, groups=2, padding="same")
    y = layer(x)
    assert layer.kernel.shape == (4, 3, 3, 3)  # (filters, in / groups, kh, kw)
    for g in range(2):
        part = Conv2D(2, 3, padding="same")
        part(x[..., 3 * g:3 * g + 3])
        part.set_weights([layer.kernel.detach()[2 * g:2 * g + 2].numpy(), layer.bias.detach()[2 * g:2 * g + 2].numpy()])
        torch.testing.assert_close(part(x[..., 3 * g:3 * g + 3]), y[..., 2 * g:2 * g + 2])


def test_activation_and_no_bias():
    x = torch.randn(2, 6, 6, 2)
    layer = Conv2D(3, 3, activation="relu", use_bias=False)
    y = layer(x)
    assert layer.bias is None and len(layer.get_weights()) == 1
    torch.testing.assert_close(y, F.relu(F.conv2d(x.permute(0, 3, 1, 2), layer.kernel)).permute(0, 2, 3, 1))


# ---------------------------------------------------------------------- weights, parameter counts, build
@pytest.mark.parametrize("layer,input_shape,params", [
    (Conv2D(32, 3), (1, 28, 28, 1), 320),            # Keras: 3*3*1*32 + 32
    (Conv2D(64, 3), (1, 13, 13, 32), 18496),         # 3*3*32*64 + 64
    (Conv2D(8, 3, groups=4, use_bias=False), (1, 5, 5, 4), 72),
    (Conv1D(16, 5), (1, 20, 4), 336),                # 5*4*16 + 16
    (Conv3D(4, 2), (1, 3, 3, 3, 2), 68),             # 2*2*2*2*4 + 4
    (Conv2DTranspose(16, 3), (1, 7, 7, 8), 1168),    # 3*3*16*8 + 16
    (Conv1DTranspose(4, 3), (1, 5, 2), 28),
    (Conv3DTranspose(2, 2), (1, 2, 2, 2, 3), 50),
])
def test_parameter_counts_equal_keras(layer, input_shape, params):
    layer(torch.randn(*input_shape))
    assert count_params(layer) == (params, 0)


def test_builds_lazily_with_torch_layout_kernel():
    layer = Conv2D(16, (3, 5))
    assert not layer.built and not list(layer.parameters())
    layer(torch.randn(1, 10, 10, 7))
    assert layer.built and layer.kernel.shape == (16, 7, 3, 5) and layer.bias.shape == (16,)
    transposed = Conv2DTranspose(16, (3, 5))
    transposed(torch.randn(1, 4, 4, 7))
    assert transposed.kernel.shape == (7, 16, 3, 5)  # torch's (in, out, kh, kw)


def test_glorot_fans_are_keras_fans():
    layer = Conv2D(64, 3)
    layer(torch.randn(1, 5, 5, 32))
    limit = math.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 64))  # fan_in = k*k*in, fan_out = k*k*filters
    biggest = layer.kernel.abs().max().item()
    assert 0.95 * limit < biggest <= limit


def test_symbolic_input_gives_output_shape():
    x = Input(shape=(28, 28, 1))
    y = Conv2D(32, 3, strides=2, padding="same")(x)
    assert y.shape == (None, 14, 14, 32)
    z = Conv2DTranspose(8, 3, strides=2, padding="same")(y)
    assert z.shape == (None, 28, 28, 8)


def test_gradients_reach_kernel_and_bias():
    layer = Conv2D(2, 3)
    layer(torch.randn(2, 5, 5, 1)).sum().backward()
    assert layer.kernel.grad is not None and layer.bias.grad is not None


# ---------------------------------------------------------------------- transposed convolution
TRANSPOSE_CASES = [
    # kernel, strides, dilation, padding, output_padding
    (3, 1, 1, "valid", None), (3, 2, 1, "valid", None), (2, 2, 1, "valid", None), (1, 3, 1, "valid", None),
    (3, 2, 1, "same", None), (4, 2, 1, "same", None), (5, 3, 1, "same", None), (1, 2, 1, "same", None),
    (2, 1, 1, "same", None), (4, 1, 1, "same", None), (6, 2, 1, "same", None),  # odd total: trimmed by hand
    (3, 1, 2, "same", None), (3, 1, 2, "valid", None), (3, 2, 2, "same", None),
    (3, 2, 1, "same", 1), (3, 2, 1, "same", 0), (5, 3, 1, "same", 2), (3, 3, 1, "valid", 1), (3, 2, 1, "valid", 0),
]


@pytest.mark.parametrize("k,s,d,padding,op", TRANSPOSE_CASES)
def test_conv2d_transpose_is_the_gradient_of_conv2d(k, s, d, padding, op):
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    layer = Conv2DTranspose(4, k, strides=s, dilation_rate=d, padding=padding, output_padding=op,
                            bias_initializer="random_normal", dtype="float64")
    y = layer(x)
    sizes = [deconv_length(n, k, s, d, padding, op) for n in (5, 4)]
    assert tuple(y.shape) == (2, *sizes, 4)
    expected = ref_conv_transpose_nchw(x.permute(0, 3, 1, 2), layer.kernel.detach(), (s, s), (d, d), padding, sizes)
    expected = expected + layer.bias.detach().view(1, -1, 1, 1)
    torch.testing.assert_close(y.detach(), expected.permute(0, 2, 3, 1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("k,s,padding,op", [(3, 2, "same", None), (4, 3, "valid", 2), (2, 3, "same", 1)])
def test_conv1d_and_conv3d_transpose_follow_the_same_rules(k, s, padding, op):
    x1 = torch.randn(2, 6, 3, dtype=torch.float64)
    layer1 = Conv1DTranspose(2, k, strides=s, padding=padding, output_padding=op, dtype="float64")
    y1 = layer1(x1)
    L = deconv_length(6, k, s, 1, padding, op)
    assert tuple(y1.shape) == (2, L, 2)
    ref = ref_conv_transpose_nchw(x1.permute(0, 2, 1), layer1.kernel.detach(), (s,), (1,), padding, [L])
    torch.testing.assert_close(y1.detach(), ref.permute(0, 2, 1), atol=ATOL, rtol=0)
    x3 = torch.randn(1, 3, 2, 4, 2, dtype=torch.float64)
    layer3 = Conv3DTranspose(2, k, strides=s, padding=padding, output_padding=op, dtype="float64",
                             data_format="channels_first")
    sizes = [deconv_length(n, k, s, 1, padding, op) for n in (2, 4, 2)]
    y3 = layer3(x3)
    ref3 = ref_conv_transpose_nchw(x3, layer3.kernel.detach(), (s,) * 3, (1,) * 3, padding, sizes)
    torch.testing.assert_close(y3.detach(), ref3, atol=ATOL, rtol=0)


def test_conv2d_transpose_upsamples_by_stride():
    assert Conv2DTranspose(32, 3, strides=2, padding="same")(torch.randn(2, 7, 7, 5)).shape == (2, 14, 14, 32)
    assert Conv2DTranspose(32, 3, strides=2)(torch.randn(2, 7, 7, 5)).shape == (2, 15, 15, 32)
    assert Conv2DTranspose(8, 2, strides=2)(torch.randn(2, 7, 7, 5)).shape == (2, 14, 14, 8)


# ---------------------------------------------------------------------- errors
def test_invalid_filters_message():
    with pytest.raises(KilnValueError) as err:
        Conv2D(0, 3)
    assert str(err.value) == ("Received an invalid value for `filters`, expected a positive integer. "
                              "Received: filters=0")
    with pytest.raises(KilnValueError, match="filters"):
        Conv2DTranspose(2.5, 3)


@pytest.mark.parametrize("kwargs,word", [
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(kernel_size=3, strides=(1, -1)), "strides"),
    (dict(kernel_size=3, dilation_rate=0), "dilation_rate"),
    (dict(kernel_size=3, padding="causal"), "padding"),
    (dict(kernel_size=3, padding="full"), "padding"),
    (dict(kernel_size=3, data_format="NHWC"), "data_format"),
    (dict(kernel_size=3, groups=3), "groups"),
    (dict(kernel_size=3, activation="relux"), "relux"),
    (dict(kernel_size=3, kernel_constraint="max_nrom"), "Unknown constraint"),
])
def test_invalid_conv2d_arguments(kwargs, word):
    with pytest.raises(KilnValueError, match=word):
        Conv2D(4, **kwargs)


def test_output_padding_must_be_smaller_than_strides():
    with pytest.raises(KilnValueError, match="must be greater than output padding"):
        Conv2DTranspose(4, 3, strides=2, output_padding=2)


def test_input_errors_are_shape_errors():
    with pytest.raises(ShapeError, match="groups"):
        Conv2D(4, 3, groups=2)(torch.randn(1, 5, 5, 3))
    with pytest.raises(ShapeError, match="rank 4"):
        Conv2D(4, 3)(torch.randn(5, 5, 3))
    layer = Conv2D(4, 3)
    layer(torch.randn(1, 5, 5, 3))
    with pytest.raises(ShapeError, match="built for 3 input channels"):
        layer(torch.randn(1, 5, 5, 2))
    with pytest.raises(ShapeError):
        Conv2D(4, 3)(torch.randn(1, 2, 2, 3))  # smaller than the kernel with "valid"


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("layer,shape", [
    (Conv1D(4, 3, strides=2, padding="causal", dilation_rate=1, activation="relu", name="c1"), (2, 9, 3)),
    (Conv2D(6, (3, 2), padding="same", groups=3, use_bias=False, kernel_initializer="he_normal"), (2, 8, 8, 3)),
    (Conv2D(4, 3, data_format="channels_first", dilation_rate=2), (2, 3, 9, 9)),
    (Conv3D(2, 2), (1, 3, 3, 3, 1)),
    (Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1, activation="tanh"), (2, 4, 5, 3)),
    (Conv1DTranspose(2, 4, strides=3), (2, 5, 3)),
    (Conv3DTranspose(2, 2, strides=2, data_format="channels_first"), (1, 3, 2, 2, 2)),
])
def test_config_round_trip(layer, shape):
    roundtrip(layer, torch.randn(*shape))


def test_config_holds_every_constructor_argument():
    import inspect
    for cls in (Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose):
        config = cls(2, 3).get_config()
        skip = {"self", "kwargs", "activity_regularizer"}  # the base config has it when it is set
        missing = set(inspect.signature(cls.__init__).parameters) - skip - set(config)
        assert not missing, f"{cls.__name__} config lacks {missing}"


def test_kernel_and_bias_regularizers_add_losses_and_survive_the_config():
    from kiln.regularizers import L1, L2
    layer = Conv2D(3, 2, kernel_regularizer=L2(0.1), bias_regularizer=L1(0.5), bias_initializer="ones")
    x = torch.randn(2, 4, 4, 2)
    layer(x)
    penalties = layer.losses
    assert len(penalties) == 2
    torch.testing.assert_close(penalties[0], 0.1 * layer.kernel.pow(2).sum())
    torch.testing.assert_close(penalties[1], 0.5 * layer.bias.abs().sum())
    roundtrip(layer, x)
