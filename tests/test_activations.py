"""kiln.activations against closed forms, plus get/serialize."""

import math

import pytest
import torch

from kiln import activations
from kiln.errors import KilnTypeError, KilnValueError

X = torch.linspace(-5, 5, 41, dtype=torch.float64)

REFERENCE = {
    "relu": lambda x: x.clamp(min=0),
    "sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
    "tanh": lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "silu": lambda x: x / (1 + torch.exp(-x)),
    "swish": lambda x: x / (1 + torch.exp(-x)),
    "elu": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1)),
    "softplus": lambda x: torch.log1p(torch.exp(x)),
    "softsign": lambda x: x / (1 + x.abs()),
    "leaky_relu": lambda x: torch.where(x > 0, x, 0.2 * x),
    "relu6": lambda x: x.clamp(0, 6),
    "hard_sigmoid": lambda x: (x / 6 + 0.5).clamp(0, 1),
    "hard_silu": lambda x: x * (x / 6 + 0.5).clamp(0, 1),
    "mish": lambda x: x * torch.tanh(torch.log1p(torch.exp(x))),
    "exponential": torch.exp,
    "linear": lambda x: x,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_matches_closed_form(name):
    torch.testing.assert_close(activations.get(name)(X), REFERENCE[name](X))


def test_softmax_and_log_softmax_axis():
    x = torch.randn(3, 4, dtype=torch.float64)
    expected = torch.exp(x) / torch.exp(x).sum(dim=0, keepdim=True)
    torch.testing.assert_close(activations.softmax(x, axis=0), expected)
    torch.testing.assert_close(activations.softmax(x).sum(-1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(activations.log_softmax(x), torch.log(activations.softmax(x)))


def test_keras_options():
    torch.testing.assert_close(activations.gelu(X, approximate=True),
                               0.5 * X * (1 + torch.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X ** 3))))
    torch.testing.assert_close(activations.elu(X, alpha=0.5), torch.where(X > 0, X, 0.5 * (torch.exp(X) - 1)))
    torch.testing.assert_close(activations.leaky_relu(X, negative_slope=0.1), torch.where(X > 0, X, 0.1 * X))
    torch.testing.assert_close(activations.relu(X, negative_slope=0.1, max_value=3.0, threshold=1.0),
                               torch.where(X >= 1, X, 0.1 * (X - 1)).clamp(max=3.0))


def test_get():
    assert activations.get(None) is activations.linear
    assert activations.get("ReLU") is activations.relu
    assert activations.get("swish") is activations.silu
    assert activations.get(torch.tanh) is torch.tanh
    with pytest.raises(KilnValueError, match="Did you mean 'relu'"):
        activations.get("rleu")
    with pytest.raises(KilnTypeError):
        activations.get(3)


def test_serialize_round_trip():
    for name in REFERENCE:
        fn = activations.get(name)
        assert activations.get(activations.serialize(fn)) is fn
    assert activations.serialize(activations.swish) == "silu"
    assert activations.serialize(torch.relu) == "relu"
    assert activations.serialize(None) is None
    assert activations.deserialize("gelu") is activations.gelu


def test_serialize_custom_callable_raises():
    with pytest.raises(KilnValueError, match="Activation layer"):
        activations.serialize(lambda x: x * 2)
