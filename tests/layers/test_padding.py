"""ZeroPadding1D/2D and Cropping1D/2D against NumPy's pad and slicing."""

import json

import numpy as np
import pytest
import torch

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.padding import Cropping1D, Cropping2D, ZeroPadding1D, ZeroPadding2D
from kiln.layers.symbolic import Input


def test_zero_padding_1d_matches_keras_example():
    x = torch.arange(12.0).reshape(2, 2, 3)
    y = ZeroPadding1D(padding=2)(x)
    np.testing.assert_array_equal(y.numpy(), np.pad(x.numpy(), ((0, 0), (2, 2), (0, 0))))
    np.testing.assert_array_equal(ZeroPadding1D((1, 3))(x).numpy(), np.pad(x.numpy(), ((0, 0), (1, 3), (0, 0))))


def test_zero_padding_1d_channels_first():
    x = torch.randn(2, 3, 5)  # (B, C, steps)
    np.testing.assert_array_equal(ZeroPadding1D(1, data_format="channels_first")(x).numpy(),
                                  np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1))))


@pytest.mark.parametrize("padding,pairs", [
    (1, ((1, 1), (1, 1))), ((1, 2), ((1, 1), (2, 2))), (((1, 0), (2, 3)), ((1, 0), (2, 3))),
    ([[0, 1], [1, 0]], ((0, 1), (1, 0)))])
def test_zero_padding_2d_matches_numpy(padding, pairs):
    x = torch.randn(2, 4, 5, 3)
    expected = np.pad(x.numpy(), ((0, 0), pairs[0], pairs[1], (0, 0)))
    np.testing.assert_array_equal(ZeroPadding2D(padding)(x).numpy(), expected)
    x_first = x.permute(0, 3, 1, 2)
    y_first = ZeroPadding2D(padding, data_format="channels_first")(x_first)
    np.testing.assert_array_equal(y_first.permute(0, 2, 3, 1).numpy(), expected)


def test_zero_padding_2d_default_and_symbolic_shape():
    assert ZeroPadding2D()(Input(shape=(28, 28, 1))).shape == (None, 30, 30, 1)


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), ((1, 2), 3), ((1, 2, 3), (1, 1)), "same", 1.5, (True, 1)])
def test_zero_padding_2d_invalid(padding):
    with pytest.raises(KilnValueError, match="Received an invalid value for `padding`"):
        ZeroPadding2D(padding)


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), "1"])
def test_zero_padding_1d_invalid(padding):
    with pytest.raises(KilnValueError, match="Received an invalid value for `padding`"):
        ZeroPadding1D(padding)


def test_cropping_1d_matches_slicing():
    x = torch.randn(2, 10, 3)
    np.testing.assert_array_equal(Cropping1D()(x).numpy(), x.numpy()[:, 1:-1])
    np.testing.assert_array_equal(Cropping1D((2, 0))(x).numpy(), x.numpy()[:, 2:])
    np.testing.assert_array_equal(Cropping1D(3)(x).numpy(), x.numpy()[:, 3:7])


@pytest.mark.parametrize("cropping,slices", [
    (((0, 0), (0, 0)), (slice(None), slice(None))), (1, (slice(1, -1), slice(1, -1))),
    ((2, 1), (slice(2, -2), slice(1, -1))), (((1, 0), (0, 2)), (slice(1, None), slice(0, -2)))])
def test_cropping_2d_matches_slicing(cropping, slices):
    x = torch.randn(2, 6, 7, 3)
    expected = x.numpy()[(slice(None),) + slices]
    np.testing.assert_array_equal(Cropping2D(cropping)(x).numpy(), expected)
    y_first = Cropping2D(cropping, data_format="channels_first")(x.permute(0, 3, 1, 2))
    np.testing.assert_array_equal(y_first.permute(0, 2, 3, 1).numpy(), expected)


def test_cropping_too_much_is_a_shape_error():
    with pytest.raises(ShapeError, match="cropping"):
        Cropping1D((3, 3))(torch.randn(2, 6, 1))
    with pytest.raises(ShapeError, match="cropping"):
        Cropping2D(((0, 0), (4, 4)))(torch.randn(2, 6, 8, 1))


def test_wrong_rank_is_a_shape_error():
    with pytest.raises(ShapeError, match="rank 4"):
        ZeroPadding2D()(torch.randn(2, 5, 3))
    with pytest.raises(ShapeError, match="rank 3"):
        Cropping1D()(torch.randn(2, 5))


def test_padding_then_cropping_is_the_identity_and_passes_gradients():
    x = torch.randn(2, 5, 5, 3, requires_grad=True)
    y = Cropping2D(((1, 2), (3, 0)))(ZeroPadding2D(((1, 2), (3, 0)))(x))
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("layer", [ZeroPadding1D((1, 2), data_format="channels_first"), ZeroPadding2D(((1, 0), (2, 3))),
                                   Cropping1D(2), Cropping2D((1, 2), data_format="channels_first")])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
