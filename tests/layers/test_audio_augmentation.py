"""SpecAugment and RandomTimeShift: identity at inference, band counts and widths, shifts, seeds."""

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.audio_augmentation import RandomTimeShift, SpecAugment

FACTORIES = {
    "SpecAugment": lambda **kw: SpecAugment(**kw),
    "RandomTimeShift": lambda **kw: RandomTimeShift(0.2, **kw),
}
INPUTS = {"SpecAugment": (100, 40, 1), "RandomTimeShift": (100, 40)}


def _batch(name, batch=16, seed=0):
    return torch.randn(batch, *INPUTS[name], generator=torch.Generator().manual_seed(seed)) + 5.0  # no zeros


def _runs(mask_1d: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    runs, length = [], 0
    for value in mask_1d.tolist() + [False]:
        if value:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


# ---------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_identity_at_inference(name):
    layer, x = FACTORIES[name](), _batch(name)
    assert layer(x, training=False) is x
    layer.eval()
    assert layer(x) is x


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_changes_in_training(name):
    layer, x = FACTORIES[name](), _batch(name)
    assert not torch.equal(layer(x, training=True), x)
    layer.train()
    assert not torch.equal(layer(x), x)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_reproducible_under_set_random_seed(name):
    x = _batch(name)
    kiln.utils.set_random_seed(3)
    a = FACTORIES[name]()(x, training=True)
    kiln.utils.set_random_seed(3)
    b = FACTORIES[name]()(x, training=True)
    kiln.utils.set_random_seed(4)
    c = FACTORIES[name]()(x, training=True)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_seed_argument_uses_a_layer_generator(name):
    x = _batch(name)
    state = torch.random.get_rng_state()
    a = FACTORIES[name](seed=1)(x, training=True)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, FACTORIES[name](seed=1)(x, training=True))
    assert not torch.equal(a, FACTORIES[name](seed=2)(x, training=True))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_one_draw_per_sample(name):
    x = _batch(name, batch=1).expand(16, *INPUTS[name]).contiguous()
    out = FACTORIES[name]()(x, training=True)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 1


# ---------------------------------------------------------------------- SpecAugment
def _masked_bands(out: torch.Tensor):
    """Runs of fully masked frames and mels per sample; checks nothing else is masked."""
    masked = (out == 0).reshape(out.shape[0], out.shape[1], out.shape[2])
    time_masked = masked.all(dim=2)  # (B, frames)
    freq_masked = masked.all(dim=1)  # (B, mels)
    assert torch.equal(masked, time_masked[:, :, None] | freq_masked[:, None, :]), "only whole bands are masked"
    return [_runs(m) for m in time_masked], [_runs(m) for m in freq_masked]


@pytest.mark.parametrize("shape", [(100, 40, 1), (100, 40)])
def test_spec_augment_band_widths_stay_within_the_maximum(shape):
    x = torch.rand(128, *shape) + 1.0  # never 0, so masked cells are exactly the zeros
    out = SpecAugment(time_masks=1, time_width=0.1, freq_masks=1, freq_width=0.2)(x, training=True)
    time_runs, freq_runs = _masked_bands(out)
    time_widths = [sum(r) for r in time_runs]  # one band each: at most one run
    freq_widths = [sum(r) for r in freq_runs]
    assert all(len(r) <= 1 for r in time_runs + freq_runs)
    assert max(time_widths) == 10 and max(freq_widths) == 8  # int(0.1 * 100), int(0.2 * 40): reached
    assert min(time_widths) < 3 and min(freq_widths) < 3  # widths are drawn from [0, max]
    unmasked = out != 0
    assert torch.equal(out[unmasked], x[unmasked])


def test_spec_augment_masks_the_requested_number_of_bands():
    x = torch.rand(64, 200, 80) + 1.0
    out = SpecAugment(time_masks=2, time_width=0.05, freq_masks=3, freq_width=0.05)(x, training=True)
    time_runs, freq_runs = _masked_bands(out)
    # Bands may overlap or touch and then show as one run, never as more runs or more cells.
    assert all(len(r) <= 2 and sum(r) <= 2 * 10 for r in time_runs)
    assert all(len(r) <= 3 and sum(r) <= 3 * 4 for r in freq_runs)
    assert sum(len(r) == 2 for r in time_runs) > 32 and sum(len(r) == 3 for r in freq_runs) > 16


def test_spec_augment_mask_value_mean_is_the_batch_mean():
    x = torch.rand(8, 50, 20, 1) - 12.0  # raw log-mels sit far below 0
    out = SpecAugment(time_masks=1, time_width=0.2, freq_masks=0, mask_value="mean")(x, training=True)
    changed = out != x
    assert changed.any()
    torch.testing.assert_close(out[changed], torch.full_like(out[changed], float(x.mean())))


def test_spec_augment_without_masks_is_the_identity():
    x = torch.rand(4, 30, 10)
    assert torch.equal(SpecAugment(time_masks=0, freq_masks=0)(x, training=True), x)
    assert torch.equal(SpecAugment(time_width=0.0, freq_width=0.0)(x, training=True), x)


def test_spec_augment_rank_error():
    with pytest.raises(ShapeError, match="frames, mels"):
        SpecAugment()(torch.zeros(4, 30), training=True)


# ---------------------------------------------------------------------- RandomTimeShift
@pytest.mark.parametrize("shape", [(50,), (50, 8), (50, 8, 1)])
def test_time_shift_is_a_zero_filled_shift(shape):
    x = torch.rand(32, *shape) + 1.0
    out = RandomTimeShift(0.2)(x, training=True)
    shifts = set()
    for before, after in zip(x, out):
        matches = [s for s in range(-10, 11) if torch.equal(after, _shifted(before, s))]
        assert matches, "each output is its input shifted along time by at most 0.2 * 50 steps"
        shifts.add(matches[0])
    assert len(shifts) > 3 and min(shifts) < 0 < max(shifts)


def _shifted(x: torch.Tensor, steps: int) -> torch.Tensor:
    out = torch.zeros_like(x)
    if steps >= 0:
        out[steps:] = x[:x.shape[0] - steps]
    else:
        out[:steps] = x[-steps:]
    return out


def test_time_shift_pair_factor_sets_the_direction():
    x = torch.rand(16, 40) + 1.0
    out = RandomTimeShift((0.25, 0.25))(x, training=True)  # always 10 steps later
    assert torch.equal(out[:, 10:], x[:, :30]) and torch.equal(out[:, :10], torch.zeros(16, 10))


def test_time_shift_on_integer_waveforms():
    x = torch.randint(1, 100, (4, 20), dtype=torch.int16)
    out = RandomTimeShift((-0.5, -0.5))(x, training=True)
    assert out.dtype == torch.int16 and torch.equal(out[:, :10], x[:, 10:]) and (out[:, 10:] == 0).all()


# ---------------------------------------------------------------------- in a model, errors
def test_in_a_model_saved_and_loaded(tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(20, 8, 1)), SpecAugment(), RandomTimeShift(0.1),
                             kiln.layers.Flatten(), kiln.layers.Dense(3)])
    x = np.random.default_rng(0).random((4, 20, 8, 1)).astype("float32")
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(kiln.load_model(tmp_path / "m.keras").predict(x, verbose=0), before)


@pytest.mark.parametrize("make,name", [
    (lambda: SpecAugment(time_masks=-1), "time_masks"), (lambda: SpecAugment(freq_masks=1.5), "freq_masks"),
    (lambda: SpecAugment(time_width=1.5), "time_width"), (lambda: SpecAugment(freq_width=-0.1), "freq_width"),
    (lambda: SpecAugment(mask_value="median"), "mask_value"),
    (lambda: RandomTimeShift(2.0), "factor"), (lambda: RandomTimeShift((0.1,)), "factor")])
def test_invalid_arguments(make, name):
    with pytest.raises(KilnValueError, match=f"Received an invalid value for `{name}`"):
        make()


def test_invalid_seed():
    with pytest.raises(KilnTypeError, match="seed"):
        SpecAugment(seed="1")
