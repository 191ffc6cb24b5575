"""Softmax, ReLU, LeakyReLU, ELU, PReLU, Identity against NumPy formulas, plus argument errors."""

import json

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.activations_layers import ELU, PReLU, Identity, LeakyReLU, ReLU, Softmax
from kiln.models.summary import count_params

X = torch.linspace(-3, 8, 23).reshape(1, 23)  # covers negatives, the threshold region and above 6


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------- Softmax
@pytest.mark.parametrize("axis", [-1, 1, (1, 2)])
def test_softmax_matches_numpy(axis):
    x = torch.randn(2, 3, 4)
    np.testing.assert_allclose(Softmax(axis=axis)(x).numpy(), np_softmax(x.numpy(), axis=axis), rtol=1e-5,
                               atol=1e-7)


def test_softmax_mask_gives_masked_entries_zero_probability():
    x = torch.randn(2, 5)
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    y = Softmax()(x, mask=mask).numpy()
    expected = np_softmax(np.where(mask.numpy()[:1], x.numpy()[:1], -np.inf))[0]
    np.testing.assert_allclose(y[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(y[1], np.zeros(5))  # a fully masked row is zeros, not NaN


def test_softmax_turns_logits_into_probabilities_in_sequential():
    logits_model = kiln.Sequential([kiln.layers.Dense(4, input_shape=(3,))])
    probability_model = kiln.Sequential([logits_model, Softmax()])
    p = probability_model.predict(np.random.rand(6, 3).astype("float32"), verbose=0)
    np.testing.assert_allclose(p.sum(axis=1), np.ones(6), rtol=1e-6)


@pytest.mark.parametrize("axis", [1.5, "x", (), None, True])
def test_softmax_invalid_axis(axis):
    with pytest.raises(KilnValueError, match="`axis`"):
        Softmax(axis=axis)


# ---------------------------------------------------------------------- ReLU family
@pytest.mark.parametrize("max_value,negative_slope,threshold", [
    (None, 0.0, 0.0), (6.0, 0.0, 0.0), (None, 0.1, 0.0), (6.0, 0.2, 1.0), (None, 0.0, 2.0)])
def test_relu_matches_keras_formula(max_value, negative_slope, threshold):
    x = X.numpy()
    expected = np.where(x >= threshold, x, negative_slope * (x - threshold))
    if max_value is not None:
        expected = np.minimum(expected, max_value)
    y = ReLU(max_value=max_value, negative_slope=negative_slope, threshold=threshold)(X)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("kwargs,name", [
    ({"max_value": -1.0}, "max_value"), ({"negative_slope": -0.1}, "negative_slope"), ({"threshold": -1}, "threshold"),
    ({"negative_slope": None}, "negative_slope"), ({"max_value": "6"}, "max_value")])
def test_relu_invalid_arguments(kwargs, name):
    with pytest.raises(KilnValueError, match=f"`{name}`"):
        ReLU(**kwargs)


def test_leaky_relu_default_is_keras3s_0_3_and_alpha_is_accepted():
    x = X.numpy()
    np.testing.assert_allclose(LeakyReLU()(X).numpy(), np.where(x >= 0, x, 0.3 * x), rtol=1e-6)
    layer = LeakyReLU(alpha=0.1)  # Keras 2 spelling
    assert layer.negative_slope == 0.1
    np.testing.assert_allclose(layer(X).numpy(), np.where(x >= 0, x, 0.1 * x), rtol=1e-6)
    assert "alpha" not in layer.get_config() and layer.get_config()["negative_slope"] == 0.1


@pytest.mark.parametrize("slope", [-0.1, None, "0.2"])
def test_leaky_relu_invalid_slope(slope):
    with pytest.raises(KilnValueError, match="negative_slope"):
        LeakyReLU(negative_slope=slope)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_matches_formula(alpha):
    x = X.numpy().astype("float64")
    np.testing.assert_allclose(ELU(alpha=alpha)(X).numpy(), np.where(x > 0, x, alpha * (np.exp(x) - 1)), rtol=1e-5)


def test_elu_invalid_alpha():
    with pytest.raises(KilnValueError, match="`alpha`"):
        ELU(alpha="one")


# ---------------------------------------------------------------------- PReLU
def test_prelu_starts_as_relu_and_has_one_alpha_per_value():
    layer = PReLU()
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(layer(x), torch.relu(x))
    assert tuple(layer.alpha.shape) == (3, 5) and sum(count_params(layer)) == 15


def test_prelu_matches_formula_with_shared_axes():
    layer = PReLU(alpha_initializer="random_uniform", shared_axes=[1, 2])
    x = torch.randn(2, 4, 4, 3)
    y = layer(x)
    assert tuple(layer.alpha.shape) == (1, 1, 3)  # one slope per channel: Keras's count 3
    alpha = layer.alpha.detach().numpy()
    xn = x.numpy()
    np.testing.assert_allclose(y.detach().numpy(), np.maximum(xn, 0) + alpha * np.minimum(xn, 0), rtol=1e-6)


def test_prelu_alpha_learns():
    layer = PReLU(shared_axes=1)
    x = -torch.rand(8, 3, 2)
    (layer(x) - 1.0).square().mean().backward()
    assert layer.alpha.grad is not None and layer.alpha.grad.abs().sum() > 0


def test_prelu_errors():
    with pytest.raises(KilnValueError, match="shared_axes"):
        PReLU(shared_axes=[0])
    with pytest.raises(KilnValueError, match="shared_axes"):
        PReLU(shared_axes="1")
    with pytest.raises(ShapeError, match="shared_axes"):
        PReLU(shared_axes=[3])(torch.randn(2, 4))
    with pytest.raises(KilnValueError, match="constraint"):
        PReLU(alpha_constraint="non_neg")


def test_prelu_symbolic_shape():
    assert PReLU(shared_axes=[1])(kiln.Input(shape=(7, 3))).shape == (None, 7, 3)


def test_identity_returns_its_input():
    x = torch.randn(3, 4)
    assert Identity()(x) is x


@pytest.mark.parametrize("layer", [Softmax(axis=(1, 2)), ReLU(6.0, 0.1, 0.5), LeakyReLU(0.2), ELU(0.3),
                                   PReLU(shared_axes=[1]), Identity(name="skip")])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
