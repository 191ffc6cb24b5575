"""kiln.regularizers against Keras's closed forms."""

import json

import pytest
import torch

from kiln import regularizers
from kiln.errors import KilnTypeError, KilnValueError
from kiln.regularizers import L1, L1L2, L2

W = torch.tensor([[1.0, -2.0], [0.5, 0.0]])


def test_closed_forms():
    assert L1(0.1)(W).item() == pytest.approx(0.1 * 3.5)
    assert L2(0.1)(W).item() == pytest.approx(0.1 * 5.25)  # no 1/2 factor, as Keras
    assert L1L2(0.1, 0.2)(W).item() == pytest.approx(0.1 * 3.5 + 0.2 * 5.25)
    zero = L1L2()(W)
    assert zero.shape == () and zero.item() == 0.0


def test_defaults():
    assert L1().l1 == 0.01 and L2().l2 == 0.01
    assert L1L2().get_config() == {"l1": 0.0, "l2": 0.0}


def test_gradient_flows():
    w = W.clone().requires_grad_()
    L2(0.5)(w).backward()
    torch.testing.assert_close(w.grad, W)  # d/dw 0.5 * w^2 = w


def test_get_names_and_passthrough():
    assert type(regularizers.get("l1")) is L1
    assert type(regularizers.get("L2")) is L2
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert regularizers.get(None) is None
    reg = L2(0.3)
    assert regularizers.get(reg) is reg

    def custom(w):
        return w.sum()

    assert regularizers.get(custom) is custom
    with pytest.raises(KilnValueError, match="Did you mean 'l2'"):
        regularizers.get("l3")
    with pytest.raises(KilnTypeError):
        regularizers.get(0.1)


@pytest.mark.parametrize("reg", [L1(0.2), L2(0.3), L1L2(0.1, 0.4)])
def test_serialize_round_trip(reg):
    config = json.loads(json.dumps(regularizers.serialize(reg)))
    restored = regularizers.deserialize(config)
    assert type(restored) is type(reg) and restored.get_config() == reg.get_config()
    assert regularizers.get(config).get_config() == reg.get_config()


def test_invalid_values():
    expected = r"Received an invalid value for `l2`, expected a non-negative float\. Received: l2=-1"
    with pytest.raises(KilnValueError, match=expected):
        L2(-1)
    with pytest.raises(KilnValueError, match="custom"):
        regularizers.serialize(lambda w: w.sum())
