"""MixUp and CutMix: the mixed inputs, the soft labels, lambda, seeds."""

import numpy as np
import pytest
import torch

import kiln
from kiln import losses
from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.training.mixing import CutMix, MixParams, MixUp, to_soft_labels


def _batch(batch=16, size=8, channels=3, classes=5):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, size, size, channels, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    return x, y


# ---------------------------------------------------------------------- labels
def test_soft_labels_from_ids_and_one_hot():
    ids = torch.tensor([0, 2, 1])
    one_hot = to_soft_labels(ids, 3)
    assert torch.equal(one_hot, torch.eye(3)[[0, 2, 1]])
    assert torch.equal(to_soft_labels(ids[:, None], 3), one_hot)  # Keras's (batch, 1) ids
    assert torch.equal(to_soft_labels(one_hot, None), one_hot)
    assert torch.equal(to_soft_labels(one_hot.long(), 3), one_hot)


@pytest.mark.parametrize("y,classes,error,match", [
    (torch.tensor([0, 1]), None, KilnValueError, "num_classes"),
    (torch.tensor([0, 3]), 3, KilnValueError, r"\[0, 3\)"),
    (torch.eye(3), 4, KilnValueError, "num_classes=4"),
    (torch.zeros(2, 3, 4), None, ShapeError, "shape"),
])
def test_soft_label_errors(y, classes, error, match):
    with pytest.raises(error, match=match):
        to_soft_labels(y, classes)


# ---------------------------------------------------------------------- MixUp
def test_mixup_is_a_convex_blend_with_a_partner():
    x, y = _batch()
    mix = MixUp(alpha=0.4, num_classes=5)
    params = mix.sample(x)
    x_mixed, y_soft = mix.apply(x, y, params)
    lam = float(params.lam[0])
    assert torch.all(params.lam == lam), "MixUp draws one lambda per batch"
    assert 0 <= lam <= 1 and sorted(params.perm.tolist()) == list(range(16))
    torch.testing.assert_close(x_mixed, lam * x + (1 - lam) * x[params.perm])
    one_hot = torch.eye(5)[y]
    torch.testing.assert_close(y_soft, lam * one_hot + (1 - lam) * one_hot[params.perm])
    torch.testing.assert_close(y_soft.sum(dim=1), torch.ones(16))
    assert y_soft.shape == (16, 5) and y_soft.dtype == torch.float32


def test_mixup_call_equals_sample_then_apply():
    x, y = _batch()
    kiln.utils.set_random_seed(5)
    x1, y1 = MixUp(num_classes=5)(x, y)
    kiln.utils.set_random_seed(5)
    mix = MixUp(num_classes=5)
    x2, y2 = mix.apply(x, y, mix.sample(x))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_mixup_lambda_follows_beta_alpha_alpha():
    mix = MixUp(alpha=0.2, seed=0)
    x = torch.zeros(2, 3)
    lams = np.array([float(mix.sample(x).lam[0]) for _ in range(4000)])
    # Beta(0.2, 0.2): mean 1/2, variance 1 / (4 * (2 * 0.2 + 1)) = 0.1786, mostly near 0 or 1.
    assert abs(lams.mean() - 0.5) < 0.03
    assert abs(lams.var() - 1 / (4 * 1.4)) < 0.015
    assert ((lams < 0.1) | (lams > 0.9)).mean() > 0.5


def test_mixup_on_one_hot_labels_and_any_float_shape():
    x = torch.randn(8, 20)  # tabular features
    y = torch.eye(4)[torch.arange(8) % 4]
    x_mixed, y_soft = MixUp(alpha=1.0)(x, y)
    assert x_mixed.shape == x.shape and y_soft.shape == (8, 4)
    torch.testing.assert_close(y_soft.sum(dim=1), torch.ones(8))


def test_mixup_refuses_integer_inputs():
    with pytest.raises(KilnTypeError, match="floating"):
        MixUp(num_classes=3)(torch.randint(0, 9, (4, 5)), torch.tensor([0, 1, 2, 0]))


# ---------------------------------------------------------------------- CutMix
def test_cutmix_box_comes_from_the_partner_and_lambda_is_the_kept_area():
    x, y = _batch(batch=64, size=16)
    mix = CutMix(alpha=1.0, num_classes=5)
    params = mix.sample(x)
    x_mixed, y_soft = mix.apply(x, y, params)
    partner = x[params.perm]
    for i in range(64):
        top, left, bottom, right = params.box[i].tolist()
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(x_mixed[i][inside], partner[i][inside]), "the box holds the partner's pixels"
        assert torch.equal(x_mixed[i][~inside], x[i][~inside]), "the rest is the sample's own"
        area = (bottom - top) * (right - left)
        assert float(params.lam[i]) == pytest.approx(1 - area / 256)
    one_hot = torch.eye(5)[y]
    lam = params.lam.float()[:, None]
    torch.testing.assert_close(y_soft, lam * one_hot + (1 - lam) * one_hot[params.perm])
    torch.testing.assert_close(y_soft.sum(dim=1), torch.ones(64))


def test_cutmix_boxes_differ_per_sample_and_are_clipped_to_the_image():
    x, _ = _batch(batch=256, size=20)
    params = CutMix(alpha=1.0, seed=0).sample(x)
    boxes = params.box
    assert len({tuple(b) for b in boxes.tolist()}) > 200
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 20).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 3] <= 20).all() and (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    # Beta(1, 1) is uniform and clipping only shrinks boxes: the kept areas average above 1/2.
    assert 0.5 < float(params.lam.mean()) < 0.7


def test_cutmix_channels_first_and_grayscale():
    x, y = _batch(batch=8, size=10)
    mix_last = CutMix(num_classes=5, seed=3)
    mix_first = CutMix(num_classes=5, seed=3, data_format="channels_first")
    a, ya = mix_last(x, y)
    b, yb = mix_first(x.permute(0, 3, 1, 2), y)
    assert torch.equal(b.permute(0, 2, 3, 1), a) and torch.equal(ya, yb)
    gray, _ = CutMix(num_classes=5, seed=3)(x[..., 0], y)  # (B, H, W)
    assert torch.equal(gray, a[..., 0])


def test_cutmix_rank_error():
    with pytest.raises(ShapeError, match="height, width"):
        CutMix(num_classes=3)(torch.rand(4, 10), torch.tensor([0, 1, 2, 0]))


# ---------------------------------------------------------------------- both
@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_reproducible_under_set_random_seed(cls):
    x, y = _batch()
    kiln.utils.set_random_seed(11)
    a = cls(num_classes=5)(x, y)
    kiln.utils.set_random_seed(11)
    b = cls(num_classes=5)(x, y)
    kiln.utils.set_random_seed(12)
    c = cls(num_classes=5)(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_seed_argument_uses_its_own_generator(cls):
    x, y = _batch()
    state = torch.random.get_rng_state()
    a = cls(num_classes=5, seed=1)(x, y)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = cls(num_classes=5, seed=1)(x, y)
    c = cls(num_classes=5, seed=2)(x, y)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    mix = cls(num_classes=5, seed=1)  # seeded once: successive batches differ
    assert not torch.equal(mix(x, y)[0], mix(x, y)[0])


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_soft_targets_train_with_categorical_crossentropy(cls):
    x, y = _batch()
    _, y_soft = cls(num_classes=5)(x, y)
    probs = torch.softmax(torch.randn(16, 5), dim=1)
    loss = losses.categorical_crossentropy(y_soft, probs)
    expected = -(y_soft * probs.log()).sum(dim=1)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_batch_size_mismatch(cls):
    x, _ = _batch()
    with pytest.raises(ShapeError, match="samples"):
        cls(num_classes=5)(x, torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": 0}, "`alpha`"), ({"alpha": -1.0}, "`alpha`"), ({"alpha": "1"}, "`alpha`"),
    ({"num_classes": 0}, "`num_classes`"), ({"num_classes": 2.5}, "`num_classes`")])
@pytest.mark.parametrize("cls", [MixUp, CutMix])
def test_invalid_arguments(cls, kwargs, match):
    with pytest.raises(KilnValueError, match=f"Received an invalid value for {match}"):
        cls(**kwargs)


def test_invalid_seed_and_data_format():
    with pytest.raises(KilnTypeError, match="seed"):
        MixUp(seed=0.5)
    with pytest.raises(KilnValueError, match="data_format"):
        CutMix(data_format="nhwc")


def test_config_and_params_type():
    assert CutMix(alpha=0.5, num_classes=3, seed=2).get_config() == {
        "alpha": 0.5, "num_classes": 3, "seed": 2, "data_format": "channels_last"}
    assert isinstance(MixUp().sample(torch.zeros(2, 3)), MixParams)
