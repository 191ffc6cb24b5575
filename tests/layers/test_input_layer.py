"""InputLayer accepts Keras 3's shape=/batch_shape= and Keras 2's input_shape=/batch_input_shape=."""

import numpy as np
import pytest

import kiln
from kiln import layers as L
from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.input_layer import InputLayer
from kiln.layers.symbolic import KerasTensor


@pytest.mark.parametrize("kwargs", [{"shape": (4,)}, {"input_shape": (4,)}, {"batch_shape": (None, 4)},
                                    {"batch_input_shape": (None, 4)}])
def test_every_spelling_gives_the_same_input(kwargs):
    x = InputLayer(**kwargs)
    assert isinstance(x, KerasTensor) and x.shape == (None, 4)


def test_sequential_with_an_input_layer_is_built_at_once():
    model = kiln.Sequential([L.InputLayer(input_shape=(28, 28)), L.Flatten(), L.Dense(10)])
    assert model.input_shape == (None, 28, 28)
    assert sum(p.numel() for p in model.parameters()) == 784 * 10 + 10
    assert model.predict(np.zeros((2, 28, 28), "float32"), verbose=0).shape == (2, 10)


def test_integer_dtype_and_name():
    x = InputLayer(shape=(5,), dtype="int64", name="ids")
    assert str(x.dtype) == "torch.int64" and x.name == "ids"


def test_errors():
    with pytest.raises(KilnValueError, match="needs `shape`"):
        InputLayer()
    with pytest.raises(KilnValueError, match="only one"):
        InputLayer(shape=(3,), input_shape=(3,))
    with pytest.raises(KilnTypeError, match="Unrecognized keyword"):
        InputLayer(shape=(3,), units=4)
