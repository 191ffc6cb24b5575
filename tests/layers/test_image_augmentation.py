"""Image augmentation layers: identity at inference, per-sample draws, seeds, and exact geometry."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.image_augmentation import (RandomBrightness, RandomContrast, RandomCrop, RandomFlip,
                                            RandomRotation, RandomTranslation, RandomZoom, affine_transform)

# One factory per layer, each set so that a training call always changes a random image.
FACTORIES = {
    "RandomFlip": lambda **kw: RandomFlip(**kw),
    "RandomRotation": lambda **kw: RandomRotation(0.2, **kw),
    "RandomTranslation": lambda **kw: RandomTranslation(0.3, 0.3, **kw),
    "RandomZoom": lambda **kw: RandomZoom(0.3, **kw),
    "RandomCrop": lambda **kw: RandomCrop(6, 6, **kw),
    "RandomContrast": lambda **kw: RandomContrast(0.5, **kw),
    "RandomBrightness": lambda **kw: RandomBrightness(0.3, **kw),
}
IDENTITY_AT_INFERENCE = sorted(set(FACTORIES) - {"RandomCrop"})


def _images(batch=16, size=8, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, size, size, channels, generator=g) * 200 + 20  # inside (0, 255)


def _same_image_batch(batch=16, size=8):
    return _images(1, size).expand(batch, -1, -1, -1).contiguous()


# ---------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("name", IDENTITY_AT_INFERENCE)
def test_identity_at_inference(name):
    layer, x = FACTORIES[name](), _images()
    assert layer(x, training=False) is x
    layer.eval()
    assert layer(x) is x


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_changes_in_training(name):
    layer, x = FACTORIES[name](), _images()
    assert not torch.equal(layer(x, training=True), x if name != "RandomCrop" else x[:, 1:7, 1:7])
    layer.train()  # the module flag decides when training is not given
    out = layer(x)
    assert out.shape == (x.shape if name != "RandomCrop" else (16, 6, 6, 3))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_reproducible_under_set_random_seed(name):
    x = _images()
    kiln.utils.set_random_seed(3)
    a = FACTORIES[name]()(x, training=True)
    kiln.utils.set_random_seed(3)
    b = FACTORIES[name]()(x, training=True)
    kiln.utils.set_random_seed(4)
    c = FACTORIES[name]()(x, training=True)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_seed_argument_uses_a_layer_generator(name):
    x = _images()
    state = torch.random.get_rng_state()
    a = FACTORIES[name](seed=5)(x, training=True)
    assert torch.equal(torch.random.get_rng_state(), state), "a seeded layer must not draw from the global RNG"
    b = FACTORIES[name](seed=5)(x, training=True)
    c = FACTORIES[name](seed=6)(x, training=True)
    assert torch.equal(a, b) and not torch.equal(a, c)
    layer = FACTORIES[name](seed=5)  # seeded once: successive calls differ
    assert not torch.equal(layer(x, training=True), layer(x, training=True))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_one_draw_per_sample(name):
    out = FACTORIES[name]()(_same_image_batch(), training=True)
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 1, "every sample got the same transform"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_channels_first_matches_channels_last(name):
    x = _images()
    last = FACTORIES[name](seed=9)(x, training=True)
    first = FACTORIES[name](seed=9, data_format="channels_first")(x.permute(0, 3, 1, 2), training=True)
    torch.testing.assert_close(first.permute(0, 2, 3, 1), last)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_one_unbatched_image(name):
    x = _images(1)
    batched = FACTORIES[name](seed=2)(x, training=True)
    single = FACTORIES[name](seed=2)(x[0], training=True)
    torch.testing.assert_close(single, batched[0])


def test_integer_images_become_floats():
    x = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    for training in (True, False):
        out = RandomFlip()(x, training=training)
        assert out.dtype == torch.float32
    torch.testing.assert_close(RandomFlip()(x, training=False), x.float())


def test_rank_error_names_the_layout():
    with pytest.raises(ShapeError, match=r"\(batch, height, width, channels\)"):
        RandomFlip()(torch.zeros(2, 3), training=True)


# ---------------------------------------------------------------------- RandomFlip
@pytest.mark.parametrize("mode,candidates", [
    ("horizontal", lambda x: [x, x.flip(1)]),
    ("vertical", lambda x: [x, x.flip(0)]),
    ("horizontal_and_vertical", lambda x: [x, x.flip(1), x.flip(0), x.flip(0).flip(1)]),
])
def test_random_flip_gives_torch_flips(mode, candidates):
    x = _images(64)
    out = RandomFlip(mode)(x, training=True)
    seen = set()
    for image, flipped in zip(x, out):
        options = candidates(image)
        matches = [i for i, option in enumerate(options) if torch.equal(flipped, option)]
        assert matches, "each output is the image or one of its flips"
        seen.add(matches[0])
    assert seen == set(range(len(candidates(x[0])))), "every flip occurs in 64 samples"


def test_horizontal_flip_equals_torch_flip_on_the_width_axis():
    x = _images(32)
    out = RandomFlip("horizontal")(x, training=True)
    flipped = torch.tensor([not torch.equal(o, i) for o, i in zip(out, x)])
    assert 0 < int(flipped.sum()) < 32
    assert torch.equal(out[flipped], torch.flip(x[flipped], dims=[2]))
    assert torch.equal(out[~flipped], x[~flipped])


# ---------------------------------------------------------------------- geometry
@pytest.mark.parametrize("fill_mode", ["reflect", "constant", "nearest", "wrap"])
def test_rotation_by_a_quarter_turn_is_rot90(fill_mode):
    x = _images(4, size=7) / 255
    out = RandomRotation((0.25, 0.25), fill_mode=fill_mode)(x, training=True)
    torch.testing.assert_close(out, torch.rot90(x, 1, dims=(1, 2)), atol=1e-4, rtol=0)  # counter-clockwise
    out = RandomRotation((-0.25, -0.25), fill_mode=fill_mode)(x, training=True)
    torch.testing.assert_close(out, torch.rot90(x, -1, dims=(1, 2)), atol=1e-4, rtol=0)


def test_rotation_by_a_half_turn_on_a_rectangle():
    x = torch.rand(2, 5, 8, 2)
    out = RandomRotation((0.5, 0.5))(x, training=True)
    torch.testing.assert_close(out, x.flip(1).flip(2), atol=1e-4, rtol=0)


def test_rotation_constant_fill_fills_the_corners():
    x = torch.ones(1, 9, 9, 1)
    out = RandomRotation((0.125, 0.125), fill_mode="constant", fill_value=-3.0)(x, training=True)[0, ..., 0]
    assert out[0, 0] == -3.0 and out[-1, -1] == -3.0  # a 45-degree turn empties the corners
    assert out[4, 4] == 1.0


def test_rotation_angles_cover_the_factor_range():
    # A single bright pixel right of the centre: its angle after rotation is the drawn angle.
    x = torch.zeros(256, 21, 21, 1)
    x[:, 10, 18] = 1.0
    out = RandomRotation((-0.1, 0.1), fill_mode="constant")(x, training=True)[..., 0]  # (B, 21, 21)
    grid = torch.arange(21.0) - 10
    mass = out.sum(dim=(1, 2))
    rows = (out * grid.view(1, 21, 1)).sum(dim=(1, 2)) / mass  # the pixel's centre after bilinear sampling
    cols = (out * grid.view(1, 1, 21)).sum(dim=(1, 2)) / mass
    angles = torch.atan2(-rows, cols) / (2 * torch.pi)  # counter-clockwise on screen
    assert angles.min() > -0.11 and angles.max() < 0.11
    assert angles.min() < -0.07 and angles.max() > 0.07


def test_translation_by_whole_pixels_shifts_and_fills():
    x = _images(2, size=8)
    out = RandomTranslation((0.25, 0.25), (-0.125, -0.125), fill_mode="constant", fill_value=7.0)(x, training=True)
    expected = torch.full_like(x, 7.0)
    expected[:, 2:, :7] = x[:, :6, 1:]  # down by 2 rows, left by 1 column
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_translation_wrap_is_torch_roll():
    x = _images(2, size=8)
    out = RandomTranslation((0.25, 0.25), (0.5, 0.5), fill_mode="wrap")(x, training=True)
    torch.testing.assert_close(out, torch.roll(x, shifts=(2, 4), dims=(1, 2)), atol=1e-4, rtol=0)


def test_translation_reflect_and_nearest_fills():
    row = torch.arange(4.0).view(1, 1, 4, 1).expand(1, 4, 4, 1)  # columns 0 1 2 3
    right = {"reflect": [1.0, 0.0, 0.0, 1.0], "nearest": [0.0, 0.0, 0.0, 1.0]}  # shifted right by 2
    for mode, expected in right.items():
        out = RandomTranslation(0.0, (0.5, 0.5), fill_mode=mode, interpolation="nearest")(row, training=True)
        assert out[0, 0, :, 0].tolist() == expected, mode


def test_zoom_on_a_linear_ramp_is_exact():
    # Bilinear sampling of a linear ramp is exact, so a zoom in by 2 maps v -> c + (v - c) / 2.
    ramp = torch.arange(9.0)
    x = (ramp.view(1, 9, 1, 1) * 10 + ramp.view(1, 1, 9, 1)).expand(2, 9, 9, 1)
    out = RandomZoom((-0.5, -0.5))(x, training=True)
    zoomed = 4 + (ramp - 4) / 2
    torch.testing.assert_close(out[0, ..., 0], zoomed.view(9, 1) * 10 + zoomed.view(1, 9))


def test_zoom_width_factor_zooms_the_width_alone():
    ramp = torch.arange(9.0)
    x = (ramp.view(1, 9, 1, 1) * 10 + ramp.view(1, 1, 9, 1)).expand(1, 9, 9, 1)
    out = RandomZoom(0.0, width_factor=(-0.5, -0.5))(x, training=True)
    zoomed = 4 + (ramp - 4) / 2
    torch.testing.assert_close(out[0, ..., 0], ramp.view(9, 1) * 10 + zoomed.view(1, 9))


def test_zoom_out_fills_the_border():
    out = RandomZoom((1.0, 1.0), fill_mode="constant", fill_value=-1.0)(torch.ones(1, 8, 8, 1), training=True)
    assert out[0, 0, 0, 0] == -1.0 and out[0, 4, 4, 0] == 1.0


def test_affine_identity_is_exact():
    x = _images(3, size=6)
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(3, 2, 3)
    for mode in ("reflect", "constant", "nearest", "wrap"):
        torch.testing.assert_close(affine_transform(x, eye, fill_mode=mode), x, atol=1e-4, rtol=0)


# ---------------------------------------------------------------------- RandomCrop
def test_random_crop_training_takes_a_window_per_sample():
    x = torch.arange(10 * 10.0).view(1, 10, 10, 1).repeat(32, 1, 1, 1)
    out = RandomCrop(4, 6)(x, training=True)
    assert out.shape == (32, 4, 6, 1)
    offsets = set()
    for window in out:
        top, left = divmod(int(window[0, 0, 0]), 10)
        assert torch.equal(window, x[0, top:top + 4, left:left + 6])
        offsets.add((top, left))
    assert len(offsets) > 1, "each sample draws its own window"
    assert all(0 <= t <= 6 and 0 <= l <= 4 for t, l in offsets)


def test_random_crop_inference_is_a_centre_crop():
    x = _images(2, size=8)
    layer = RandomCrop(4, 8)  # the image is as wide as the target: a plain centre crop
    torch.testing.assert_close(layer(x, training=False), x[:, 2:6])
    layer.eval()
    torch.testing.assert_close(layer(torch.rand(2, 9, 7, 3)).shape, torch.Size([2, 4, 8, 3]))


def test_random_crop_inference_resizes_the_largest_centred_window():
    # Keras 3: the largest centred window of the target's aspect ratio, resized to the target.
    x = torch.rand(2, 8, 12, 3)
    out = RandomCrop(4, 4)(x, training=False)
    window = x[:, :, 2:10]  # 8 x 8 in the middle
    expected = F.interpolate(window.permute(0, 3, 1, 2), size=(4, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1))


def test_random_crop_of_a_small_image_resizes_in_training():
    x = torch.rand(2, 3, 3, 1)
    torch.testing.assert_close(RandomCrop(4, 4)(x, training=True), RandomCrop(4, 4)(x, training=False))


def test_random_crop_in_a_model_has_the_target_shape():
    model = kiln.Sequential([kiln.Input(shape=(10, 10, 3)), RandomCrop(6, 6), kiln.layers.Flatten(),
                             kiln.layers.Dense(2)])
    assert model.count_params() == 6 * 6 * 3 * 2 + 2  # the Dense was built for the cropped size
    model.train()
    assert model(torch.rand(4, 10, 10, 3)).shape == (4, 2)


# ---------------------------------------------------------------------- colour
def test_contrast_scales_the_deviation_from_the_channel_mean():
    x = _images(32)
    out = RandomContrast((0.2, 0.4))(x, training=True)  # factors in [0.8, 1.4]; clipped values are skipped
    mean = x.mean(dim=(1, 2), keepdim=True)
    ratio = (out - mean) / (x - mean)
    unclipped = (out > 0) & (out < 255)
    per_image = [r[u] for r, u in zip(ratio, unclipped)]
    for r in per_image:
        torch.testing.assert_close(r, torch.full_like(r, float(r[0])), atol=1e-3, rtol=0)
    factors = torch.tensor([float(r[0]) for r in per_image])
    assert factors.min() >= 0.8 - 1e-4 and factors.max() <= 1.4 + 1e-4
    assert factors.std() > 0


def test_contrast_clips_to_the_value_range():
    x = torch.rand(16, 6, 6, 3)
    out = RandomContrast((0.0, 1.0), value_range=(0, 1))(x, training=True)
    assert out.min() >= 0 and out.max() <= 1


def test_brightness_adds_one_offset_per_image():
    x = _images(32) / 4 + 100  # inside (105, 160): no clipping with |delta| <= 0.2 * 255
    out = RandomBrightness((-0.2, 0.2))(x, training=True)
    delta = out - x
    torch.testing.assert_close(delta, delta[:, :1, :1, :1].expand_as(delta), atol=1e-3, rtol=0)
    d = delta[:, 0, 0, 0] / 255
    assert d.min() >= -0.2 - 1e-5 and d.max() <= 0.2 + 1e-5 and d.std() > 0


def test_brightness_clips_to_the_value_range():
    x = torch.rand(16, 4, 4, 3)
    out = RandomBrightness((0.5, 1.0), value_range=(0, 1))(x, training=True)
    assert out.max() <= 1 and out.min() >= 0.5 * x.min()
    assert torch.equal(RandomBrightness((1.0, 1.0), value_range=(0, 1))(x, training=True), torch.ones_like(x))


# ---------------------------------------------------------------------- inside a model
def test_augmentation_runs_in_fit_and_not_in_predict(tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(8, 8, 3)), RandomFlip(), RandomRotation(0.1), RandomZoom(0.1),
                             RandomContrast(0.2, value_range=(0, 1)), kiln.layers.Flatten(), kiln.layers.Dense(2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    y = np.arange(16) % 2
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(kiln.load_model(tmp_path / "m.keras").predict(x, verbose=0), first)


# ---------------------------------------------------------------------- argument errors
@pytest.mark.parametrize("make", [
    lambda: RandomRotation(1.5), lambda: RandomRotation((0.1, 0.2, 0.3)), lambda: RandomRotation("0.1"),
    lambda: RandomBrightness(-2), lambda: RandomContrast(-0.1), lambda: RandomContrast((0.1, 1.5)),
    lambda: RandomContrast(True)])
def test_invalid_factor(make):
    with pytest.raises(KilnValueError, match=r"Received an invalid value for `factor`.*Received: factor="):
        make()


@pytest.mark.parametrize("make,name", [
    (lambda: RandomTranslation(1.2, 0.1), "height_factor"), (lambda: RandomTranslation(0.1, None), "width_factor"),
    (lambda: RandomZoom(0.1, width_factor=(0, 2)), "width_factor"),
    (lambda: RandomFlip("diagonal"), "mode"), (lambda: RandomRotation(0.1, fill_mode="mirror"), "fill_mode"),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), "interpolation"),
    (lambda: RandomRotation(0.1, fill_value="black"), "fill_value"),
    (lambda: RandomCrop(0, 4), "height"), (lambda: RandomCrop(4, 2.5), "width"),
    (lambda: RandomBrightness(0.1, value_range=(255, 0)), "value_range"),
    (lambda: RandomContrast(0.1, value_range=255), "value_range"),
    (lambda: RandomFlip(data_format="nhwc"), "data_format")])
def test_invalid_arguments_name_the_argument(make, name):
    with pytest.raises(KilnValueError, match=f"`{name}`"):
        make()


def test_invalid_seed():
    with pytest.raises(KilnTypeError, match="seed"):
        RandomFlip(seed=1.5)


def test_config_round_trip_keeps_the_factors():
    layer = RandomZoom((-0.2, 0.1), width_factor=0.3, fill_mode="wrap", seed=4)
    config = layer.get_config()
    assert config["height_factor"] == [-0.2, 0.1] and config["width_factor"] == 0.3
    clone = RandomZoom.from_config(config)
    x = _images(4)
    torch.testing.assert_close(clone(x, training=True), layer(x, training=True))
