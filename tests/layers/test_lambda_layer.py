"""Lambda runs any callable (with arguments, training, in models) and refuses to be saved."""

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnTypeError, SerializationError
from kiln.layers.lambda_layer import Lambda


def test_runs_the_function():
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(Lambda(lambda t: t[:, -1, :])(x), x[:, -1, :])


def test_arguments_are_passed_as_keywords():
    layer = Lambda(lambda t, scale, shift: t * scale + shift, arguments={"scale": 2.0, "shift": 1.0})
    x = torch.randn(2, 3)
    torch.testing.assert_close(layer(x), 2.0 * x + 1.0)


def test_training_reaches_a_function_that_asks_for_it():
    layer = Lambda(lambda t, training=None: t + (1.0 if training else 0.0))
    x = torch.zeros(2, 2)
    assert layer(x, training=True).sum() == 4 and layer(x, training=False).sum() == 0
    assert Lambda(torch.abs)(-x - 1, training=True).sum() == 4  # not passed to a function without it


def test_list_inputs_and_functional_model():
    a, b = kiln.Input(shape=(3,)), kiln.Input(shape=(3,))
    diff = Lambda(lambda xs: (xs[0] - xs[1]).abs())([a, b])
    assert diff.shape == (None, 3)
    model = kiln.Model([a, b], kiln.layers.Dense(1)(diff))
    xa, xb = np.random.rand(4, 3).astype("float32"), np.random.rand(4, 3).astype("float32")
    assert model.predict([xa, xb], verbose=0).shape == (4, 1)


def test_lambda_trains_inside_sequential():
    model = kiln.Sequential([kiln.Input(shape=(4,)), Lambda(lambda t: t / 10.0), kiln.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.rand(16, 4).astype("float32")
    history = model.fit(x, x.sum(axis=1, keepdims=True), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_saving_a_model_with_a_lambda_explains_the_fix(tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(4,)), Lambda(lambda t: t * 2), kiln.layers.Dense(1)])
    with pytest.raises(SerializationError, match=r"register_serializable\(\)") as info:
        model.save(tmp_path / "m.keras")
    assert "Lambda" in str(info.value) and "save_weights" in str(info.value)
    model.save_weights(tmp_path / "m.weights.safetensors")  # the weights still save


def test_function_must_be_callable():
    with pytest.raises(KilnTypeError, match="`function`"):
        Lambda("x * 2")
    with pytest.raises(KilnTypeError, match="`arguments`"):
        Lambda(torch.abs, arguments=[1])
