"""UpSampling1D/2D: nearest against NumPy's repeat, bilinear against torch's half-pixel interpolate."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.symbolic import Input
from kiln.layers.upsampling import UpSampling1D, UpSampling2D


def test_upsampling_1d_repeats_steps():
    x = torch.randn(2, 3, 4)
    np.testing.assert_array_equal(UpSampling1D()(x).numpy(), np.repeat(x.numpy(), 2, axis=1))
    np.testing.assert_array_equal(UpSampling1D(size=3)(x).numpy(), np.repeat(x.numpy(), 3, axis=1))


@pytest.mark.parametrize("size", [2, (2, 3), (1, 2)])
def test_upsampling_2d_nearest_repeats_pixels(size):
    x = torch.randn(2, 3, 4, 5)
    sh, sw = (size, size) if isinstance(size, int) else size
    expected = np.repeat(np.repeat(x.numpy(), sh, axis=1), sw, axis=2)
    np.testing.assert_array_equal(UpSampling2D(size)(x).numpy(), expected)
    y_first = UpSampling2D(size, data_format="channels_first")(x.permute(0, 3, 1, 2))
    np.testing.assert_array_equal(y_first.permute(0, 2, 3, 1).numpy(), expected)


def bilinear_half_pixel(img, sh, sw):
    """NumPy reference of TF/JAX resize (half-pixel centres, edge clamping) for (H, W) images."""
    h, w = img.shape
    def coords(n_out, n_in, s):
        src = np.clip((np.arange(n_out) + 0.5) / s - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo
    r0, r1, fr = coords(h * sh, h, sh)
    c0, c1, fc = coords(w * sw, w, sw)
    top = img[r0][:, c0] * (1 - fc) + img[r0][:, c1] * fc
    bottom = img[r1][:, c0] * (1 - fc) + img[r1][:, c1] * fc
    return top * (1 - fr)[:, None] + bottom * fr[:, None]


@pytest.mark.parametrize("size", [(2, 2), (3, 2)])
def test_upsampling_2d_bilinear_matches_half_pixel_reference_and_torch(size):
    x = torch.randn(2, 4, 5, 3, dtype=torch.float64)
    y = UpSampling2D(size, interpolation="bilinear")(x)
    assert y.shape == (2, 4 * size[0], 5 * size[1], 3)
    reference = F.interpolate(x.permute(0, 3, 1, 2), scale_factor=size, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(y.numpy(), reference.permute(0, 2, 3, 1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(y[1, :, :, 2].numpy(), bilinear_half_pixel(x[1, :, :, 2].numpy(), *size), rtol=1e-12)


def test_interpolation_is_case_insensitive_and_checked():
    assert UpSampling2D(interpolation="Bilinear").interpolation == "bilinear"
    with pytest.raises(KilnValueError, match="`interpolation`"):
        UpSampling2D(interpolation="cubic")


@pytest.mark.parametrize("size", [0, (2, 0), (2, 2, 2), 1.5])
def test_upsampling_2d_invalid_size(size):
    with pytest.raises(KilnValueError, match="`size`"):
        UpSampling2D(size)


@pytest.mark.parametrize("size", [0, -1, (2,), "2"])
def test_upsampling_1d_invalid_size(size):
    with pytest.raises(KilnValueError, match="`size`"):
        UpSampling1D(size)


def test_rank_errors_and_symbolic_shapes():
    with pytest.raises(ShapeError, match="rank 4"):
        UpSampling2D()(torch.randn(2, 3, 4))
    with pytest.raises(ShapeError, match="rank 3"):
        UpSampling1D()(torch.randn(2, 3))
    assert UpSampling2D()(Input(shape=(7, 7, 16))).shape == (None, 14, 14, 16)
    assert UpSampling1D(4)(Input(shape=(5, 2))).shape == (None, 20, 2)


@pytest.mark.parametrize("layer", [UpSampling1D(3), UpSampling2D((2, 3), "channels_first", "bilinear")])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
