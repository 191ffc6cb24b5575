"""ImageFeature: Pillow decoding, scaling, channel conversion and resizing against PIL itself."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kiln.data.features import ImageFeature
from kiln.errors import DataError, KilnValueError


def _png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture
def rgb_files(tmp_path):
    g = np.random.default_rng(0)
    arrays = [g.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    return [_png(tmp_path / f"im{i}.png", a) for i, a in enumerate(arrays)], arrays


def test_files_are_decoded_and_scaled_by_255(rgb_files):
    paths, arrays = rgb_files
    f = ImageFeature("image").fit(pd.Series(paths))
    out = f.transform(pd.Series(paths))
    assert out.dtype == torch.float32 and out.shape == (3, 30, 40, 3)
    np.testing.assert_allclose(out.numpy(), np.stack(arrays) / 255.0, rtol=1e-6)
    assert f.spec() == {"shape": (30, 40, 3), "dtype": "float32", "channels": 3, "height": 30, "width": 40}


def test_resize_and_grayscale_match_pillow(rgb_files):
    paths, _ = rgb_files
    f = ImageFeature("image", height=20, width=16, channels=1).fit(pd.Series(paths))
    out = f.transform(pd.Series(paths))
    assert out.shape == (3, 20, 16, 1)
    for i, path in enumerate(paths):
        expected = np.asarray(Image.open(path).convert("L").resize((16, 20), Image.Resampling.BILINEAR)) / 255.0
        np.testing.assert_allclose(out[i, :, :, 0].numpy(), expected, rtol=1e-6)
    nearest = ImageFeature("image", height=15, width=20, resize="nearest").fit(pd.Series(paths))
    expected = np.asarray(Image.open(paths[0]).resize((20, 15), Image.Resampling.NEAREST)) / 255.0
    np.testing.assert_allclose(nearest.transform(pd.Series(paths[:1]))[0].numpy(), expected, rtol=1e-6)


def test_gray_file_to_rgb_repeats_the_channel(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = _png(tmp_path / "g.png", gray)
    out = ImageFeature("image", channels=3).fit(pd.Series([path])).transform(pd.Series([path]))
    assert out.shape == (1, 3, 4, 3)
    for c in range(3):
        np.testing.assert_allclose(out[0, :, :, c].numpy(), gray / 255.0, rtol=1e-6)


def test_float_arrays_are_divided_by_the_training_max():
    g = np.random.default_rng(1)
    train = [g.integers(0, 17, (8, 8)).astype(np.float64) for _ in range(5)]  # sklearn digits: 0..16
    train[0][0, 0] = 16.0
    f = ImageFeature("image").fit(pd.Series(train))
    assert f.divisor == 16.0 and f.spec()["shape"] == (8, 8, 1)
    valid = [np.full((8, 8), 32.0)]  # a larger validation value does not change the divisor
    assert f.transform(pd.Series(valid)).max().item() == 2.0
    assert f.divisor == 16.0


def test_uint8_arrays_and_a_stacked_array():
    stack = np.random.default_rng(2).integers(0, 256, (4, 28, 28), dtype=np.uint8)  # mnist-like
    f = ImageFeature("image").fit(stack)
    np.testing.assert_allclose(f.transform(stack)[..., 0].numpy(), stack / 255.0, rtol=1e-6)
    small = ImageFeature("image", height=14, width=14).fit(stack).transform(stack[:1])
    expected = np.asarray(Image.fromarray(stack[0]).resize((14, 14), Image.Resampling.BILINEAR)) / 255.0
    np.testing.assert_allclose(small[0, :, :, 0].numpy(), expected, rtol=1e-6)


def test_scale_none_keeps_pixel_values(rgb_files):
    paths, arrays = rgb_files
    out = ImageFeature("image", scale="none").fit(pd.Series(paths)).transform(pd.Series(paths[:1]))
    np.testing.assert_array_equal(out[0].numpy(), arrays[0].astype(np.float32))


def test_an_image_of_another_size_names_the_file_and_the_fix(tmp_path, rgb_files):
    paths, _ = rgb_files
    odd = _png(tmp_path / "odd.png", np.zeros((32, 28, 3), np.uint8))
    f = ImageFeature("photo").fit(pd.Series(paths))
    with pytest.raises(DataError) as info:
        f.transform(pd.DataFrame({"photo": paths + [odd]}))
    message = str(info.value)
    assert "'photo'" in message and "row 3" in message and "odd.png" in message and "32x28" in message
    assert "30x40" in message and "`height` and `width`" in message
    resized = ImageFeature("photo", height=30, width=40).fit(pd.Series(paths)).transform(pd.Series([odd]))
    assert resized.shape == (1, 30, 40, 3)


def test_corrupt_and_missing_files_are_named(tmp_path, rgb_files):
    paths, _ = rgb_files
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    f = ImageFeature("image").fit(pd.Series(paths))
    with pytest.raises(DataError, match=r"'image'.*row 1 \(file '.*broken\.png'\): cannot be read as an image"):
        f.transform(pd.Series([paths[0], str(broken)]))
    with pytest.raises(DataError, match=r"nowhere\.png'\): the file does not exist"):
        f.transform(pd.Series([str(tmp_path / "nowhere.png")]))
    with pytest.raises(DataError, match=r"row 0 has no image"):
        f.transform(pd.Series([None]))


def test_bad_array_shape_is_named():
    f = ImageFeature("image").fit(pd.Series([np.zeros((4, 4))]))
    with pytest.raises(DataError, match=r"row 0 holds an array of shape \(4, 4, 7\)"):
        f.transform(pd.Series([np.zeros((4, 4, 7))]))


@pytest.mark.parametrize("options, option", [({"height": 0, "width": 4}, "height"), ({"channels": 2}, "channels"),
                                             ({"scale": "unit8"}, "scale"), ({"resize": "cubic"}, "resize")])
def test_invalid_options_name_the_option(options, option):
    with pytest.raises(KilnValueError, match=f"`{option}`"):
        ImageFeature("image", **options)
    with pytest.raises(KilnValueError, match="both `height` and `width`"):
        ImageFeature("image", height=4)
