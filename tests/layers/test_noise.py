"""GaussianNoise, GaussianDropout (training only, right statistics, seeds) and ActivityRegularization."""

import json
import math

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.noise import ActivityRegularization, GaussianDropout, GaussianNoise


@pytest.mark.parametrize("layer", [GaussianNoise(0.5), GaussianDropout(0.3)])
def test_identity_at_inference(layer):
    x = torch.randn(4, 10)
    assert torch.equal(layer(x, training=False), x)
    layer.eval()
    assert torch.equal(layer(x), x)


def test_gaussian_noise_adds_noise_of_stddev():
    torch.manual_seed(0)
    x = torch.full((200_000,), 3.0)
    noise = GaussianNoise(0.2)(x[None], training=True)[0] - x
    assert abs(noise.mean().item()) < 0.005
    assert abs(noise.std().item() - 0.2) < 0.005


def test_gaussian_dropout_multiplies_by_one_centred_noise():
    torch.manual_seed(0)
    rate = 0.2
    x = torch.full((1, 200_000), 2.0)
    factor = GaussianDropout(rate)(x, training=True) / x
    assert abs(factor.mean().item() - 1.0) < 0.01
    assert abs(factor.std().item() - math.sqrt(rate / (1 - rate))) < 0.01


def test_training_mode_follows_the_module_flag():
    layer = GaussianNoise(0.1)
    x = torch.zeros(2, 5)
    layer.train()
    assert not torch.equal(layer(x), x)


@pytest.mark.parametrize("cls,arg", [(GaussianNoise, 0.3), (GaussianDropout, 0.3)])
def test_seed_makes_the_noise_reproducible(cls, arg):
    x = torch.ones(3, 8)
    a = cls(arg, seed=7)(x, training=True)
    b = cls(arg, seed=7)(x, training=True)
    c = cls(arg, seed=8)(x, training=True)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("stddev", [-0.1, 1.5, "0.1", None, True])
def test_gaussian_noise_invalid_stddev(stddev):
    with pytest.raises(KilnValueError, match="`stddev`"):
        GaussianNoise(stddev)


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.1", None])
def test_gaussian_dropout_invalid_rate(rate):
    with pytest.raises(KilnValueError, match="`rate`"):
        GaussianDropout(rate)


def test_invalid_seed():
    with pytest.raises(KilnTypeError, match="seed"):
        GaussianNoise(0.1, seed=1.5)


def test_activity_regularization_penalty_is_l1_l2_over_batch():
    layer = ActivityRegularization(l1=0.01, l2=0.1)
    x = torch.randn(4, 6)
    assert torch.equal(layer(x), x)
    expected = (0.01 * x.abs().sum() + 0.1 * x.square().sum()) / 4
    (penalty,) = layer.losses
    torch.testing.assert_close(penalty, expected)


def test_activity_regularization_reaches_the_training_loss():
    """The same data and weights (one batch, reported before the step): the loss grows by the penalty."""
    x = np.random.rand(8, 3).astype("float32")
    y = np.random.rand(8, 1).astype("float32")

    def first_loss(penalty):
        kiln.utils.set_random_seed(0)
        model = kiln.Sequential([kiln.Input(shape=(3,)), kiln.layers.Dense(1), ActivityRegularization(l2=penalty)])
        model.compile(optimizer=kiln.optimizers.SGD(learning_rate=1e-12), loss="mse")
        out = model.predict(x, verbose=0)
        history = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        return history.history["loss"][0], out

    plain, _ = first_loss(0.0)
    regularized, out = first_loss(0.5)
    np.testing.assert_allclose(regularized - plain, 0.5 * np.square(out).sum() / 8, rtol=1e-4)


@pytest.mark.parametrize("layer", [GaussianNoise(0.1, seed=3), GaussianDropout(0.25), ActivityRegularization(0.1, 0.2)])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    assert "activity_regularizer" not in config
