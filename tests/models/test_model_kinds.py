"""Sequential, functional and subclassed models, custom layers: Keras's ways of building models."""

import numpy as np
import pytest
import torch

import kiln
from kiln.layers import Dense, Layer


class Scale(Layer):
    """A custom layer the Keras way: build creates a weight, call uses it."""

    def __init__(self, init=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1],), initializer=kiln.initializers.Constant(self.init))

    def call(self, inputs):
        return inputs * self.w

    def get_config(self):
        return {**super().get_config(), "init": self.init}


def test_every_model_is_an_nn_module():
    seq = kiln.Sequential([Dense(3, input_shape=(2,))])
    inp = kiln.Input(shape=(2,))
    fun = kiln.Model(inp, Dense(3)(inp))
    assert isinstance(seq, torch.nn.Module) and isinstance(fun, torch.nn.Module)
    assert isinstance(fun, kiln.Model) and type(fun).__name__ == "Functional"
    out = seq(torch.ones(4, 2))
    out.sum().backward()  # plain autograd works on kiln models
    assert seq.layers[0].kernel.grad is not None


def test_sequential_builds_from_input_shape_or_input_or_first_call():
    a = kiln.Sequential([Dense(4, input_shape=(3,)), Dense(2)])
    b = kiln.Sequential([kiln.Input(shape=(3,)), Dense(4), Dense(2)])
    c = kiln.Sequential([Dense(4), Dense(2)])
    assert a.count_params() == b.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    assert c.count_params() == 0
    c(torch.zeros(1, 3))
    assert c.count_params() == 26


def test_sequential_add_pop_and_get_layer():
    model = kiln.Sequential()
    model.add(Dense(4, input_shape=(3,)))
    model.add(Dense(2))
    assert [l.name for l in model.layers] == ["dense", "dense_1"]
    assert model.get_layer("dense_1") is model.layers[1]
    assert model.get_layer(index=0) is model.layers[0]
    with pytest.raises(kiln.errors.KilnValueError, match="dense_1"):
        model.get_layer("dense_2")
    popped = model.pop()
    assert popped.name == "dense_1" and len(model.layers) == 1


def test_sequential_accepts_plain_torch_modules():
    model = kiln.Sequential([Dense(4, input_shape=(3,)), torch.nn.ReLU(), torch.nn.Linear(4, 1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.rand(16, 3), np.random.rand(16, 1), epochs=1, verbose=0)
    assert model.predict(np.zeros((2, 3)), verbose=0).shape == (2, 1)


def test_functional_graph_with_shared_layer_and_skip():
    inp = kiln.Input(shape=(4,))
    shared = Dense(4, activation="tanh")
    h1 = shared(inp)
    h2 = shared(h1)  # the same weights used twice
    out = Dense(1)(kiln.layers.Add()([h1, h2]))
    model = kiln.Model(inputs=inp, outputs=out)
    assert len(model.layers) == 3
    x = torch.randn(5, 4)
    expected = model.layers[-1](shared(x) + shared(shared(x)))
    torch.testing.assert_close(model(x), expected)


def test_keras_tensor_shapes():
    inp = kiln.Input(shape=(28, 28, 1))
    h = kiln.layers.Conv2D(8, 3)(inp)
    assert h.shape == (None, 26, 26, 8)
    assert kiln.layers.Flatten()(h).shape == (None, 26 * 26 * 8)


def test_subclassed_model_trains_like_keras():
    class TwoLayer(kiln.Model):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(16, activation="relu")
            self.out = Dense(1)

        def call(self, x, training=None):
            return self.out(self.hidden(x))

    model = TwoLayer()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.rand(64, 3).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    assert model.count_params() == 3 * 16 + 16 + 16 + 1


def test_custom_layer_build_call_get_config():
    model = kiln.Sequential([kiln.Input(shape=(3,)), Scale(2.0)])
    np.testing.assert_allclose(model.predict(np.ones((2, 3)), verbose=0), 2.0)
    config = model.layers[0].get_config()
    assert config["init"] == 2.0
    clone = Scale.from_config(config)
    assert clone.init == 2.0 and clone.name == model.layers[0].name


def test_training_flag_reaches_dropout():
    model = kiln.Sequential([kiln.Input(shape=(100,)), kiln.layers.Dropout(0.5)])
    x = torch.ones(4, 100)
    model.eval()
    assert torch.equal(model(x), x)
    dropped = model(x, training=True)
    assert (dropped == 0).any() and torch.allclose(dropped[dropped != 0], torch.tensor(2.0))


def test_device_override_and_errors():
    model = kiln.Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)
    assert model.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(kiln.errors.KilnValueError, match="CUDA is not available"):
            model.compile(optimizer="sgd", loss="mse", device="cuda")


def test_small_models_train_on_one_thread_and_restore_the_setting():
    torch.set_num_threads(2)
    seen = []

    class Probe(kiln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(torch.get_num_threads())

    model = kiln.Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0, callbacks=[Probe()])
    assert seen == [1] and torch.get_num_threads() == 2
    model.compile(optimizer="sgd", loss="mse", num_threads=None)
    seen.clear()
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0, callbacks=[Probe()])
    assert seen == [2]


def test_state_dict_keys_read_like_keras_weight_names_in_every_model_kind():
    seq = kiln.Sequential([Dense(3, input_shape=(2,)), Dense(1)])
    inp = kiln.Input(shape=(2,))
    fun = kiln.Model(inp, Dense(1)(Dense(3)(inp)))
    assert list(seq.state_dict()) == ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"]
    assert list(fun.state_dict()) == list(seq.state_dict())
    fun.load_state_dict(seq.state_dict())
    x = torch.randn(4, 2)
    torch.testing.assert_close(fun(x), seq(x))


def test_layer_names_never_shadow_model_attributes():
    model = kiln.Sequential([Dense(2, input_shape=(2,), name="layers"), Dense(1, name="loss")])
    assert [l.name for l in model.layers] == ["layers_layer", "loss_layer"]
    assert isinstance(model.layers, list)


def test_float64_models_keep_float64_data():
    model = kiln.Sequential([kiln.Input(shape=(3,), dtype="float64"), Dense(2, dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.random.rand(8, 3), np.random.rand(8, 2), verbose=0)
    assert model.predict(np.random.rand(2, 3), verbose=0).dtype == np.float64


def test_calling_a_model_on_numpy_works_like_keras():
    model = kiln.Sequential([kiln.layers.Flatten(input_shape=(4, 4)), Dense(3)])
    out = model(np.random.rand(2, 4, 4))  # float64 NumPy in, as in Keras tutorials
    assert out.numpy().shape == (2, 3) and out.dtype == torch.float32 and not out.requires_grad


def test_add_weight_accepts_keras3_and_keras2_spellings():
    class Both(Layer):
        def build(self, input_shape):
            self.a = self.add_weight(shape=(input_shape[-1], 2), initializer="random_normal", trainable=True)
            self.b = self.add_weight(shape=(2,), initializer="zeros", name="bias")
            self.c = self.add_weight((2,), "ones")  # Keras 3 positional: shape, initializer
            self.d = self.add_weight(name="scale", shape=(), initializer="ones", trainable=False)

        def call(self, x):
            return (x @ self.a + self.b) * self.c * self.d

    layer = Both()
    assert layer(torch.ones(3, 4)).shape == (3, 2)
    assert [n for n, _ in layer.named_parameters()] == ["variable", "bias", "variable_1", "scale"]
    assert not layer.d.requires_grad
    clip = Layer().add_weight(shape=(2,), constraint=lambda w: w.clamp(0, 1))  # applied by the optimizer
    assert torch.equal(clip.constraint(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 1.0]))


def test_variable_length_axes_are_none_in_shapes_and_summary():
    inp = kiln.Input(shape=(None,), dtype="int64")
    h = kiln.layers.Embedding(50, 8)(inp)
    c = kiln.layers.Conv1D(4, 5)(h)
    p = kiln.layers.MaxPooling1D(2)(c)
    out = Dense(1)(kiln.layers.GlobalMaxPooling1D()(p))
    assert (h.shape, c.shape, p.shape, out.shape) == ((None, None, 8), (None, None, 4), (None, None, 4), (None, 1))
    model = kiln.Model(inp, out)
    lines = []
    model.summary(print_fn=lines.append)
    assert "(None, None, 4)" in lines[0]
    # any length works, including ones shorter than the example length
    assert model.predict(np.random.randint(0, 50, (3, 9)), verbose=0).shape == (3, 1)
