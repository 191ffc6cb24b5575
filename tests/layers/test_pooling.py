"""Pooling layers against a NumPy reference of TensorFlow's rules: padded positions are NaN
and ignored (never the max, not counted in the mean)."""

import json
import math

import numpy as np
import pytest
import torch

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D,
                                 GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D,
                                 GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from kiln.models.summary import count_params


def ref_pool_nhwc(x, pool, strides, padding, mode):
    """x: (B, *spatial, C). Windows over NaN-padded input; nanmax / nanmean per window."""
    rank = x.ndim - 2
    if padding == "same":
        pads = []
        for n, k, s in zip(x.shape[1:-1], pool, strides):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
    else:
        pads = [(0, 0)] * rank
    xp = np.pad(x, [(0, 0)] + pads + [(0, 0)], constant_values=np.nan)
    sizes = [(n - k) // s + 1 for n, k, s in zip(xp.shape[1:-1], pool, strides)]
    out = np.zeros((x.shape[0], *sizes, x.shape[-1]))
    reduce = np.nanmax if mode == "max" else np.nanmean
    for pos in np.ndindex(*sizes):
        window = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, pool))
        patch = xp[(slice(None),) + window]  # (B, *pool, C)
        out[(slice(None),) + pos] = reduce(patch.reshape(x.shape[0], -1, x.shape[-1]), axis=1)
    return out


def roundtrip(layer, x):
    expected = layer(x)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    torch.testing.assert_close(clone(x), expected)


CASES_2D = [((2, 2), None), ((3, 3), (2, 2)), ((2, 3), (1, 2)), ((3, 3), (1, 1)), ((4, 2), (3, 3)), ((1, 1), (2, 2))]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool,strides", CASES_2D)
@pytest.mark.parametrize("cls,mode", [(MaxPooling2D, "max"), (AveragePooling2D, "average")])
def test_pooling2d_matches_reference(cls, mode, pool, strides, padding):
    x = torch.randn(2, 7, 8, 3, dtype=torch.float64)
    y = cls(pool, strides, padding)(x)
    expected = ref_pool_nhwc(x.numpy(), pool, strides or pool, padding, mode)
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-12)
    s = strides or pool
    if padding == "same":
        assert tuple(y.shape) == (2, math.ceil(7 / s[0]), math.ceil(8 / s[1]), 3)
    else:
        assert tuple(y.shape) == (2, (7 - pool[0]) // s[0] + 1, (8 - pool[1]) // s[1] + 1, 3)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool,strides", [(2, None), (3, 2), (3, 1), (5, 3), (4, 4)])
@pytest.mark.parametrize("cls,mode", [(MaxPooling1D, "max"), (AveragePooling1D, "average")])
def test_pooling1d_matches_reference(cls, mode, pool, strides, padding):
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    y = cls(pool, strides, padding)(x)
    expected = ref_pool_nhwc(x.numpy(), (pool,), (strides or pool,), padding, mode)
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("cls,mode", [(MaxPooling3D, "max"), (AveragePooling3D, "average")])
def test_pooling3d_matches_reference(cls, mode):
    x = torch.randn(2, 5, 4, 3, 2, dtype=torch.float64)
    y = cls((2, 3, 2), (2, 2, 1), "same")(x)
    expected = ref_pool_nhwc(x.numpy(), (2, 3, 2), (2, 2, 1), "same", mode)
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-12)


def test_same_average_excludes_padding_from_the_mean():
    x = torch.ones(1, 3, 3, 1)
    y = AveragePooling2D(3, strides=1, padding="same")(x)
    torch.testing.assert_close(y, torch.ones(1, 3, 3, 1))  # with zeros counted the corners would be 4/9


def test_same_max_never_picks_the_padding():
    x = -torch.ones(1, 3, 3, 1)
    y = MaxPooling2D(2, padding="same")(x)
    torch.testing.assert_close(y, -torch.ones(1, 2, 2, 1))


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_channels_first_equals_channels_last(cls):
    x = torch.randn(2, 9, 7, 4)
    last = cls(3, 2, "same")(x)
    first = cls(3, 2, "same", data_format="channels_first")(x.permute(0, 3, 1, 2))
    torch.testing.assert_close(first, last.permute(0, 3, 1, 2))


def test_default_pool_size_and_strides():
    assert MaxPooling2D().pool_size == (2, 2) and MaxPooling2D().strides == (2, 2)
    assert MaxPooling1D().pool_size == (2,)
    assert MaxPooling2D()(torch.randn(2, 28, 28, 32)).shape == (2, 14, 14, 32)
    assert AveragePooling2D(3, strides=1).strides == (1, 1)


def test_pooling_has_no_weights_and_is_differentiable():
    layer = MaxPooling2D()
    x = torch.randn(1, 4, 4, 2, requires_grad=True)
    layer(x).sum().backward()
    assert count_params(layer) == (0, 0)
    assert x.grad.sum().item() == 8  # one winner per window and channel


# ---------------------------------------------------------------------- global pooling
@pytest.mark.parametrize("cls,rank,fn", [
    (GlobalAveragePooling1D, 1, np.mean), (GlobalAveragePooling2D, 2, np.mean), (GlobalAveragePooling3D, 3, np.mean),
    (GlobalMaxPooling1D, 1, np.max), (GlobalMaxPooling2D, 2, np.max), (GlobalMaxPooling3D, 3, np.max),
])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_matches_numpy(cls, rank, fn, data_format, keepdims):
    x = torch.randn(2, *range(3, 3 + rank), 5)
    if data_format == "channels_first":
        x = x.movedim(-1, 1)
    axes = tuple(range(1, 1 + rank)) if data_format == "channels_last" else tuple(range(2, 2 + rank))
    y = cls(data_format=data_format, keepdims=keepdims)(x)
    np.testing.assert_allclose(y.numpy(), fn(x.numpy(), axis=axes, keepdims=keepdims), rtol=1e-6)


def test_global_average_pooling1d_with_mask_averages_unmasked_steps():
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    y = GlobalAveragePooling1D()(x, mask=mask)
    torch.testing.assert_close(y[0], x[0, :3].mean(0))
    torch.testing.assert_close(y[1], x[1].mean(0))
    with pytest.raises(ShapeError, match="mask"):
        GlobalAveragePooling1D()(x, mask=mask[:, :4])


# ---------------------------------------------------------------------- errors and config
@pytest.mark.parametrize("make,word", [
    (lambda: MaxPooling2D(0), "pool_size"),
    (lambda: MaxPooling2D((2, 2, 2)), "pool_size"),
    (lambda: AveragePooling1D(2, strides=0), "strides"),
    (lambda: MaxPooling2D(padding="causal"), "padding"),
    (lambda: AveragePooling2D(data_format="NCHW"), "data_format"),
    (lambda: GlobalMaxPooling2D(data_format="nope"), "data_format"),
])
def test_invalid_arguments(make, word):
    with pytest.raises(KilnValueError, match=word):
        make()


def test_wrong_rank_is_a_shape_error():
    with pytest.raises(ShapeError, match="rank 4"):
        MaxPooling2D()(torch.randn(2, 8, 3))
    with pytest.raises(ShapeError, match="rank 3"):
        GlobalAveragePooling1D()(torch.randn(2, 8, 8, 3))


@pytest.mark.parametrize("layer,shape", [
    (MaxPooling1D(3, 2, "same", name="p"), (2, 9, 3)),
    (AveragePooling2D((3, 2), (2, 1), "same", "channels_first"), (2, 3, 7, 6)),
    (MaxPooling3D(2), (1, 4, 4, 4, 2)),
    (GlobalAveragePooling2D(keepdims=True), (2, 4, 4, 3)),
    (GlobalMaxPooling1D(data_format="channels_first"), (2, 3, 5)),
])
def test_config_round_trip(layer, shape):
    roundtrip(layer, torch.randn(*shape))


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [MaxPooling1D(), MaxPooling2D(), MaxPooling3D(), AveragePooling1D(), AveragePooling2D(),
                  AveragePooling3D(), GlobalAveragePooling1D(), GlobalAveragePooling2D(), GlobalAveragePooling3D(),
                  GlobalMaxPooling1D(), GlobalMaxPooling2D(), GlobalMaxPooling3D()]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
