"""Rescaling: inputs * scale + offset, per channel too; integer inputs become floats."""

import json

import numpy as np
import pytest
import torch

from kiln.errors import KilnValueError
from kiln.layers.rescaling import Rescaling
from kiln.layers.symbolic import Input
from kiln.models.summary import count_params


def test_scale_and_offset():
    x = torch.randn(3, 4)
    torch.testing.assert_close(Rescaling(2.5, offset=-1.0)(x), x * 2.5 - 1.0)


def test_uint8_images_become_floats_in_unit_range():
    x = torch.tensor([[[[0], [255]], [[51], [102]]]], dtype=torch.uint8)  # (1, 2, 2, 1)
    y = Rescaling(1 / 255)(x)
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), x.numpy() / 255, rtol=1e-6)


def test_minus_one_to_one():
    y = Rescaling(1 / 127.5, offset=-1)(torch.tensor([[0, 255]], dtype=torch.uint8))
    torch.testing.assert_close(y, torch.tensor([[-1.0, 1.0]]))


def test_per_channel_scale_and_offset_broadcast_over_the_last_axis():
    x = torch.rand(2, 4, 4, 3)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    layer = Rescaling([1 / s for s in std], offset=[-m / s for m, s in zip(mean, std)])
    expected = (x.numpy() - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_keeps_float64_and_has_no_weights():
    layer = Rescaling(2)
    assert layer(torch.ones(2, 2, dtype=torch.float64)).dtype == torch.float64
    assert count_params(layer) == (0, 0)
    assert layer(Input(shape=(5,))).shape == (None, 5)


@pytest.mark.parametrize("kwargs,word", [(dict(scale="1/255"), "scale"), (dict(scale=None), "scale"),
                                         (dict(scale=1.0, offset=[]), "offset"), (dict(scale=True), "scale")])
def test_invalid_arguments(kwargs, word):
    with pytest.raises(KilnValueError, match=word):
        Rescaling(**kwargs)


@pytest.mark.parametrize("layer", [Rescaling(1 / 255, name="r"), Rescaling([1.0, 2.0], offset=[0.5, -0.5])])
def test_config_round_trip(layer):
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    x = torch.randn(3, 2)
    torch.testing.assert_close(clone(x), layer(x))


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [Rescaling(0.5)]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
