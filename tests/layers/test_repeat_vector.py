"""RepeatVector against NumPy's repeat, in a sequence-to-sequence autoencoder shape."""

import json

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.repeat_vector import RepeatVector


def test_repeats_the_vector_n_times():
    x = torch.randn(4, 5)
    y = RepeatVector(3)(x)
    np.testing.assert_array_equal(y.numpy(), np.repeat(x.numpy()[:, None, :], 3, axis=1))


def test_output_is_writable_and_passes_gradients():
    x = torch.randn(2, 3, requires_grad=True)
    y = RepeatVector(4)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 4.0))
    y.detach().add_(1.0)  # a real copy, not an expanded view


def test_in_an_lstm_autoencoder():
    inputs = kiln.Input(shape=(6, 2))
    code = kiln.layers.LSTM(8)(inputs)
    repeated = RepeatVector(6)(code)
    assert repeated.shape == (None, 6, 8)
    outputs = kiln.layers.LSTM(2, return_sequences=True)(repeated)
    model = kiln.Model(inputs, outputs)
    assert model.predict(np.random.rand(3, 6, 2).astype("float32"), verbose=0).shape == (3, 6, 2)


@pytest.mark.parametrize("n", [0, -2, 2.0, "3", None])
def test_invalid_n(n):
    with pytest.raises(KilnValueError, match="Received an invalid value for `n`"):
        RepeatVector(n)


def test_needs_2d_inputs():
    with pytest.raises(ShapeError, match="rank 2"):
        RepeatVector(2)(torch.randn(2, 3, 4))


def test_config_round_trip():
    layer = RepeatVector(5, name="rep")
    config = layer.get_config()
    assert config["n"] == 5
    assert RepeatVector.from_config(json.loads(json.dumps(config))).get_config() == config
