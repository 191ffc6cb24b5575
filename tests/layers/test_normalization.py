"""BatchNormalization and LayerNormalization against NumPy versions of Keras's formulas."""

import json

import numpy as np
import pytest
import torch

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.normalization import BatchNormalization, LayerNormalization
from kiln.layers.symbolic import Input
from kiln.models.summary import count_params


def roundtrip(layer, x):
    layer.eval()
    expected = layer(x)
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    clone.eval()
    torch.testing.assert_close(clone(x), expected)


def random_bn(axis=-1, **kwargs):
    return BatchNormalization(axis=axis, beta_initializer="random_normal", gamma_initializer="random_uniform",
                              dtype="float64", **kwargs)


# ---------------------------------------------------------------------- BatchNormalization
@pytest.mark.parametrize("shape,axis", [((8, 5), -1), ((4, 6, 6, 3), -1), ((4, 3, 6, 6), 1), ((2, 5, 7), 1)])
def test_batchnorm_training_uses_batch_statistics_and_keras_moving_update(shape, axis):
    rng = np.random.default_rng(0)
    layer = random_bn(axis, momentum=0.9, epsilon=1e-3)
    layer.train()
    moving_mean = np.zeros(shape[axis])
    moving_var = np.ones(shape[axis])
    reduce = tuple(a for a in range(len(shape)) if a != axis % len(shape))
    for step in range(3):
        x = rng.normal(2.0, 3.0, size=shape)
        y = layer(torch.from_numpy(x))
        mean, var = x.mean(axis=reduce), x.var(axis=reduce)  # biased variance, as Keras
        b = [1] * len(shape)
        b[axis] = shape[axis]
        gamma, beta = layer.gamma.detach().numpy(), layer.beta.detach().numpy()
        expected = (x - mean.reshape(b)) / np.sqrt(var.reshape(b) + 1e-3) * gamma.reshape(b) + beta.reshape(b)
        np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-10)
        moving_mean = moving_mean * 0.9 + mean * 0.1
        moving_var = moving_var * 0.9 + var * 0.1
    np.testing.assert_allclose(layer.moving_mean.numpy(), moving_mean, atol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.numpy(), moving_var, atol=1e-12)


def test_batchnorm_inference_uses_moving_statistics_and_leaves_them_alone():
    layer = random_bn()
    layer(torch.randn(16, 4, dtype=torch.float64), training=True)
    mm, mv = layer.moving_mean.clone(), layer.moving_variance.clone()
    x = torch.randn(5, 4, dtype=torch.float64)
    expected = (x - mm) / torch.sqrt(mv + 1e-3) * layer.gamma + layer.beta
    for y in (layer(x, training=False), layer.eval()(x)):
        torch.testing.assert_close(y, expected)
    torch.testing.assert_close(layer.moving_mean, mm)
    torch.testing.assert_close(layer.moving_variance, mv)


def test_batchnorm_mode_follows_module_training_flag():
    layer = BatchNormalization()
    x = torch.randn(10, 3) * 5 + 7
    layer.train()
    y = layer(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert not torch.equal(layer.moving_mean, torch.zeros(3))
    layer.eval()
    moving = layer.moving_mean.clone()
    layer(x)
    assert torch.equal(layer.moving_mean, moving)


def test_frozen_batchnorm_runs_in_inference_mode():
    layer = BatchNormalization(trainable=False)
    x = torch.randn(10, 3) * 5 + 7
    y = layer(x, training=True)
    torch.testing.assert_close(y, x / np.sqrt(1 + 1e-3))  # fresh moving stats: mean 0, var 1
    assert torch.equal(layer.moving_mean, torch.zeros(3))


def test_batchnorm_weights_and_counts_match_keras():
    layer = BatchNormalization()
    layer(torch.randn(2, 5, 5, 16))
    assert count_params(layer) == (32, 32)  # Keras: 64 params, 32 of them non-trainable
    assert sum(w.numel() for w in layer.weights) == 64
    assert sum(w.numel() for w in layer.non_trainable_weights) == 32
    assert list(layer.state_dict()) == ["gamma", "beta", "moving_mean", "moving_variance"]  # Keras's order
    no_affine = BatchNormalization(center=False, scale=False)
    no_affine(torch.randn(2, 8))
    assert count_params(no_affine) == (0, 16) and no_affine.gamma is None and no_affine.beta is None


def test_batchnorm_gradients_flow_through_batch_statistics():
    layer = BatchNormalization()
    x = torch.randn(6, 3, requires_grad=True)
    layer(x, training=True).pow(2).sum().backward()
    assert layer.gamma.grad is not None and layer.beta.grad is not None and x.grad is not None


def test_symbolic_call_does_not_update_moving_statistics():
    layer = BatchNormalization()
    layer.train()
    y = layer(Input(shape=(4,)))
    assert y.shape == (None, 4)
    assert torch.equal(layer.moving_mean, torch.zeros(4))


@pytest.mark.parametrize("kwargs,word", [
    (dict(momentum=1.5), "momentum"), (dict(momentum="0.9"), "momentum"), (dict(epsilon=0), "epsilon"),
    (dict(axis="channels"), "axis"), (dict(axis=[1, 2]), "axis"), (dict(synchronized=True), "synchronized"),
    (dict(gamma_constraint="non_neg"), "constraint"),
])
def test_batchnorm_invalid_arguments(kwargs, word):
    with pytest.raises(KilnValueError, match=word):
        BatchNormalization(**kwargs)


def test_batchnorm_shape_errors():
    with pytest.raises(ShapeError, match="out of range"):
        BatchNormalization(axis=3)(torch.randn(2, 4))
    with pytest.raises(ShapeError, match="batch axis"):
        BatchNormalization(axis=0)(torch.randn(2, 4))
    layer = BatchNormalization()
    layer(torch.randn(2, 4))
    with pytest.raises(ShapeError, match="built for 4 features"):
        layer(torch.randn(2, 5))


def test_batchnorm_config_round_trip():
    layer = random_bn(axis=1, momentum=0.5, epsilon=1e-5, center=False)
    layer.train()
    layer(torch.randn(4, 3, 5, dtype=torch.float64))  # moving stats away from their start
    roundtrip(layer, torch.randn(4, 3, 5, dtype=torch.float64))


# ---------------------------------------------------------------------- LayerNormalization
@pytest.mark.parametrize("shape,axis", [((4, 6), -1), ((2, 5, 6), -1), ((2, 5, 6), [1, 2]), ((2, 5, 6), 1),
                                        ((2, 3, 4, 5), [1, 3]), ((2, 3, 4, 5), (-2, -1))])
def test_layernorm_matches_numpy(shape, axis):
    x = np.random.default_rng(1).normal(1.0, 2.0, size=shape)
    layer = LayerNormalization(axis=axis, beta_initializer="random_normal", gamma_initializer="random_normal",
                               dtype="float64")
    y = layer(torch.from_numpy(x))
    axes = tuple(a % len(shape) for a in (axis if isinstance(axis, (list, tuple)) else [axis]))
    b = [shape[a] if a in axes else 1 for a in range(len(shape))]
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    gamma, beta = layer.gamma.detach().numpy().reshape(b), layer.beta.detach().numpy().reshape(b)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-10)
    assert layer.gamma.shape == tuple(shape[a] for a in sorted(axes))


def test_layernorm_counts_and_options():
    layer = LayerNormalization()
    layer(torch.randn(2, 7, 64))
    assert count_params(layer) == (128, 0)
    plain = LayerNormalization(center=False, scale=False)
    x = torch.randn(3, 10)
    y = plain(x)
    assert count_params(plain) == (0, 0)
    torch.testing.assert_close(y, (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-3))


@pytest.mark.parametrize("kwargs,word", [(dict(axis="last"), "axis"), (dict(axis=[]), "axis"),
                                         (dict(epsilon=-1.0), "epsilon"), (dict(beta_constraint="x"), "constraint")])
def test_layernorm_invalid_arguments(kwargs, word):
    with pytest.raises(KilnValueError, match=word):
        LayerNormalization(**kwargs)


def test_layernorm_shape_errors():
    layer = LayerNormalization()
    layer(torch.randn(2, 4))
    with pytest.raises(ShapeError, match="built for sizes"):
        layer(torch.randn(2, 5))
    with pytest.raises(ShapeError, match="batch axis"):
        LayerNormalization(axis=[0, 1])(torch.randn(2, 4))


def test_layernorm_config_round_trip():
    roundtrip(LayerNormalization(axis=[1, 2], epsilon=1e-6, gamma_initializer="random_normal", name="ln"),
              torch.randn(2, 3, 4))


def test_batchnorm_half_precision_inputs_are_normalized_in_float32():
    layer = BatchNormalization()
    x = torch.randn(64, 8) * 3 + 100
    y = layer(x.bfloat16(), training=True)
    assert y.dtype == torch.bfloat16 and layer.moving_mean.dtype == torch.float32
    ref = (x.bfloat16().float() - x.bfloat16().float().mean(0)) / torch.sqrt(x.bfloat16().float().var(0, unbiased=False) + 1e-3)
    torch.testing.assert_close(y.float(), ref, atol=0.05, rtol=0.02)


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [BatchNormalization(), LayerNormalization()]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
