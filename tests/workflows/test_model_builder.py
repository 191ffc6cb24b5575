"""kiln.workflows.model_builder reads the typed config: augmentation layers, layers and zoo options."""

from kiln import layers as L
from kiln.config import AugmentationConfig, ModelConfig
from kiln.workflows.model_builder import _augmentation_layers, _fraction, _layer_from_entry


def test_image_augmentation_layers_from_the_typed_config_color_jitter_included():
    aug = AugmentationConfig(flip="horizontal", rotation=0.1, crop=[20, 24], noise=0.05,
                             color_jitter={"brightness": 0.2, "contrast": 0.3})
    built = _augmentation_layers("image", aug)
    assert [type(layer) for layer in built] == [L.RandomFlip, L.RandomRotation, L.RandomCrop, L.RandomBrightness,
                                                L.RandomContrast, L.GaussianNoise]
    flip, rotation, crop, brightness, contrast, noise = built
    assert flip.mode == "horizontal" and rotation.factor == 0.1 and rotation.fill_mode == "constant"
    assert (crop.height, crop.width) == (20, 24) and noise.stddev == 0.05
    assert brightness.factor == 0.2 and tuple(brightness.value_range) == (0.0, 1.0)
    assert contrast.factor == 0.3 and tuple(contrast.value_range) == (0.0, 1.0)
    # A jitter with only one of its two factors set adds only that layer.
    only = _augmentation_layers("image", AugmentationConfig(color_jitter={"contrast": 0.1}))
    assert [type(layer) for layer in only] == [L.RandomContrast]


def test_audio_and_text_augmentation_layers_spec_augment_included():
    aug = AugmentationConfig(noise=0.1, time_shift=0.2, spec_augment={"time_masks": 1, "freq_width": 4})
    noise, shift, spec = _augmentation_layers("audio", aug, (101, 64, 1))
    assert isinstance(noise, L.GaussianNoise) and isinstance(shift, L.RandomTimeShift) and shift.factor == 0.2
    assert isinstance(spec, L.SpecAugment) and (spec.time_masks, spec.freq_masks) == (1, 2)
    # The config's widths are frames and mel bins; the layer's widest band is int(fraction * axis length).
    assert (int(spec.time_width * 101), int(spec.freq_width * 64)) == (20, 4)
    (dropout,) = _augmentation_layers("text", AugmentationConfig(token_dropout=0.1))
    assert isinstance(dropout, L.TokenDropout) and dropout.rate == 0.1
    assert _augmentation_layers("image", None) == []


def test_spec_augment_widths_in_cells_become_the_layers_fractions_exactly():
    for length in range(1, 400):
        for width in (1, 2, 8, 20, 37, length - 1, length):
            if width >= 1:
                assert int(_fraction(width, length) * length) == min(width, length), (width, length)
    assert _fraction(50, 40) == 1.0


def test_a_layer_entry_of_the_validated_config_becomes_the_layer():
    entries = ModelConfig(layers=["Flatten", {"Dense": {"units": 3, "activation": "relu"}}]).layers
    flatten, dense = (_layer_from_entry(entry, i) for i, entry in enumerate(entries))
    assert isinstance(flatten, L.Flatten) and isinstance(dense, L.Dense) and dense.units == 3
