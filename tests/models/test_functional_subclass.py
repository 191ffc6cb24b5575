"""``class M(kiln.Model)`` built as ``M(inputs, outputs)``: a functional model with M's methods."""

import numpy as np
import pytest
import torch

import kiln
from kiln import layers as L
from kiln.models.functional import Functional


class CustomModel(kiln.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps_run = 0

    def train_step(self, data):
        self.steps_run += 1
        return super().train_step(data)

    def describe(self):
        return f"{len(self.layers)} layers"


def graph(seed=0):
    torch.manual_seed(seed)
    inputs = kiln.Input(shape=(4,))
    outputs = L.Dense(1)(L.Dense(3, activation="relu")(inputs))
    return inputs, outputs


def test_subclass_called_with_inputs_and_outputs_is_functional_with_its_methods():
    inputs, outputs = graph()
    model = CustomModel(inputs, outputs)
    assert isinstance(model, CustomModel) and isinstance(model, Functional)
    assert type(model).__name__ == "CustomModel"
    assert model.describe() == "2 layers" and model.steps_run == 0
    x = np.random.RandomState(0).randn(10, 4).astype("float32")
    plain = kiln.Model(inputs, outputs)  # the same layers, as a plain functional model
    assert type(plain) is Functional
    np.testing.assert_array_equal(model.predict(x, verbose=0), plain.predict(x, verbose=0))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], batch_size=5, epochs=1, verbose=0)
    assert model.steps_run == 2  # the subclass's train_step ran, once per batch


def test_keyword_form_and_save_load_round_trip(tmp_path):
    inputs, outputs = graph(seed=1)
    model = CustomModel(inputs=inputs, outputs=outputs, name="custom")
    x = np.random.RandomState(1).randn(6, 4).astype("float32")
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = kiln.models.load_model(path, custom_objects={"CustomModel": CustomModel})
    assert isinstance(loaded, CustomModel) and isinstance(loaded, Functional) and loaded.name == "custom"
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_subclass_without_graph_arguments_is_still_a_subclassed_model():
    model = CustomModel()
    assert not isinstance(model, Functional)
    with pytest.raises(NotImplementedError, match="CustomModel must implement call"):
        model(torch.zeros(1, 4))
