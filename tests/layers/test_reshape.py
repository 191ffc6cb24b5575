"""Flatten, Reshape, Permute against NumPy's reshape/transpose."""

import json

import numpy as np
import pytest
import torch

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.reshape import Flatten, Permute, Reshape
from kiln.layers.symbolic import Input


def roundtrip(layer, x):
    expected = layer(x)
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    torch.testing.assert_close(clone(x), expected)


# ---------------------------------------------------------------------- Flatten
def test_flatten_channels_last_is_a_row_major_reshape():
    x = torch.randn(2, 3, 4, 5)
    np.testing.assert_array_equal(Flatten()(x).numpy(), x.numpy().reshape(2, 60))


def test_flatten_channels_first_flattens_in_channels_last_order():
    x_last = torch.randn(2, 3, 4, 5)                 # (B, H, W, C)
    x_first = x_last.permute(0, 3, 1, 2)             # the same data as (B, C, H, W)
    y = Flatten(data_format="channels_first")(x_first)
    np.testing.assert_array_equal(y.numpy(), x_last.numpy().reshape(2, 60))


def test_flatten_small_ranks():
    assert Flatten()(torch.randn(4)).shape == (4, 1)
    assert Flatten()(torch.randn(4, 7)).shape == (4, 7)
    assert Flatten(data_format="channels_first")(torch.randn(4, 7)).shape == (4, 7)
    assert Flatten()(torch.randn(0, 3, 2)).shape == (0, 6)


def test_flatten_symbolic_shape():
    assert Flatten()(Input(shape=(7, 7, 64))).shape == (None, 3136)


# ---------------------------------------------------------------------- Reshape
@pytest.mark.parametrize("target", [(3, 4), (-1, 4), (12,), (2, -1, 2), (1, 12, 1)])
def test_reshape_matches_numpy(target):
    x = torch.randn(5, 12)
    np.testing.assert_array_equal(Reshape(target)(x).numpy(), x.numpy().reshape((5,) + target))


def test_reshape_accepts_an_int_and_a_list():
    assert Reshape(6)(torch.randn(2, 2, 3)).shape == (2, 6)
    assert Reshape([3, 2])(torch.randn(2, 6)).shape == (2, 3, 2)


@pytest.mark.parametrize("target", [(-1, -1), (0, 4), (2, -2), "34", (2.0, 3), None, (True, 2)])
def test_reshape_invalid_target_shape(target):
    with pytest.raises(KilnValueError, match="target_shape"):
        Reshape(target)


@pytest.mark.parametrize("target", [(5,), (-1, 5), (2, 2, 2)])
def test_reshape_size_mismatch_is_a_shape_error(target):
    with pytest.raises(ShapeError, match="total size must be unchanged"):
        Reshape(target)(torch.randn(3, 12))


# ---------------------------------------------------------------------- Permute
@pytest.mark.parametrize("dims", [(2, 1), (1, 2)])
def test_permute_rank3(dims):
    x = torch.randn(2, 3, 4)
    np.testing.assert_array_equal(Permute(dims)(x).numpy(), np.transpose(x.numpy(), (0,) + dims))


def test_permute_rank4():
    x = torch.randn(2, 3, 4, 5)
    np.testing.assert_array_equal(Permute((3, 1, 2))(x).numpy(), np.transpose(x.numpy(), (0, 3, 1, 2)))


@pytest.mark.parametrize("dims", [(0, 1), (1, 3), (1, 1), "21", (2.0, 1.0), 2])
def test_permute_invalid_dims(dims):
    with pytest.raises(KilnValueError) as err:
        Permute(dims)
    assert "The set of indices in `dims` must be consecutive and start from 1" in str(err.value)


def test_permute_rank_mismatch_is_a_shape_error():
    with pytest.raises(ShapeError, match="rank 3"):
        Permute((2, 1))(torch.randn(2, 3, 4, 5))


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("layer,shape", [
    (Flatten(data_format="channels_first", name="f"), (2, 3, 4, 5)),
    (Reshape((-1, 2)), (2, 6)),
    (Permute((2, 3, 1)), (2, 3, 4, 5)),
])
def test_config_round_trip(layer, shape):
    roundtrip(layer, torch.randn(*shape))


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [Flatten(), Reshape((2, 3)), Permute((2, 1))]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
