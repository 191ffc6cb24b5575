"""kiln.explain.trace: every delta and gradient from the §4.2 formulas equals torch autograd."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from kiln.errors import KilnValueError, ShapeError
from kiln.explain import Trace, trace
from kiln.layers.activation import Activation
from kiln.layers.dense import Dense
from kiln.models.sequential import Sequential

TOL = 1e-6
HIDDEN = ["relu", "sigmoid", "tanh", None]  # None: linear
# (output activation, loss, number of outputs)
OUTPUTS = [("sigmoid", "binary_crossentropy", 1), ("sigmoid", "binary_crossentropy", 3),
           ("softmax", "categorical_crossentropy", 4), (None, "mse", 2), ("tanh", "mse", 1),
           ("relu", "mse", 2), ("sigmoid", "mse", 1)]


def dense_stack(sizes, hidden, output, seed=0):
    """A built list of float64 Dense layers n_in -> ... -> k, with random weights and biases."""
    torch.manual_seed(seed)
    layers = [Dense(units, activation=hidden, dtype="float64") for units in sizes[1:-1]]
    layers.append(Dense(sizes[-1], activation=output, dtype="float64"))
    a = torch.zeros(2, sizes[0], dtype=torch.float64)
    for layer in layers:
        a = layer(a)
        with torch.no_grad():
            layer.bias.uniform_(-0.5, 0.5)  # zeros by default: make the bias matter
    return layers


def targets(loss, batch, k, seed=1):
    g = torch.Generator().manual_seed(seed)
    if loss == "binary_crossentropy":
        return torch.randint(0, 2, (batch, k), generator=g).double()
    if loss == "categorical_crossentropy":
        return torch.nn.functional.one_hot(torch.randint(0, k, (batch,), generator=g), k).double()
    return torch.randn(batch, k, generator=g, dtype=torch.float64)


def assert_matches_autograd(t: Trace, model):
    diffs = t.check_against_autograd(model)
    names = [layer.name for layer in t.layers]
    expected = {"loss", "output"} | {f"{n}/{q}" for n in names for q in ("z", "delta", "grad_kernel", "grad_bias")}
    assert set(diffs) == expected and len(names) == len(set(names))
    assert max(diffs.values()) < TOL, diffs


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss,k", OUTPUTS)
def test_random_stacks_match_autograd(hidden, output, loss, k):
    layers = dense_stack([5, 7, 6, k], hidden, output, seed=k)
    x = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t = trace(layers, x, targets(loss, 8, k), loss=loss)
    assert [layer.z.shape for layer in t.layers] == [(8, 7), (8, 6), (8, k)]
    assert t.layers[0].grad_kernel.shape == (5, 7) and t.layers[-1].grad_bias.shape == (k,)
    assert_matches_autograd(t, layers)


def test_float32_sequential_and_activation_layers():
    torch.manual_seed(0)
    model = Sequential([Dense(4, input_shape=(3,)), Activation("tanh"), Dense(3, activation="relu"),
                        Dense(2), Activation("linear"), Activation("softmax")])
    x = torch.randn(5, 3)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1]), 2)
    t = trace(model, x, y, loss="categorical_crossentropy")
    assert [layer.activation for layer in t.layers] == ["tanh", "relu", "softmax"]
    assert_matches_autograd(t, model)


def test_output_delta_is_y_hat_minus_y_for_sigmoid_and_cross_entropy():
    layers = dense_stack([2, 3, 1], "relu", "sigmoid")
    x, y = torch.tensor([[0.5, -1.0], [2.0, 0.1]], dtype=torch.float64), torch.tensor([0.0, 1.0])
    t = trace(layers, x, y)
    y_hat = t.y_pred
    torch.testing.assert_close(t.layers[-1].delta, y_hat - t.y, rtol=0, atol=1e-15)
    # The seed's y_hat(1 - y_hat)(y - y_hat) is not dL/dz: it even has the opposite sign here.
    seed_delta = y_hat * (1 - y_hat) * (t.y - y_hat)
    assert torch.all(torch.sign(seed_delta) == -torch.sign(t.layers[-1].delta))


def test_hidden_delta_uses_the_actual_activation_derivative():
    layers = dense_stack([3, 4, 1], "relu", "sigmoid", seed=5)
    t = trace(layers, torch.randn(6, 3, dtype=torch.float64), torch.ones(6))
    hidden, out = t.layers
    expected = (hidden.z > 0).double() * (out.delta @ out.kernel.T)
    torch.testing.assert_close(hidden.delta, expected, rtol=0, atol=0)


def test_relu_at_exactly_zero_matches_torch():
    layers = dense_stack([2, 3, 1], "relu", "sigmoid")
    with torch.no_grad():
        layers[0].bias.zero_()
    t = trace(layers, torch.zeros(1, 2), torch.ones(1))  # z^(2) == 0 exactly
    assert torch.all(t.layers[0].z == 0)
    assert_matches_autograd(t, layers)


def test_one_sample_as_a_vector_and_seed_network():
    model = Sequential([Dense(3, activation="relu", input_shape=(2,)), Dense(1, activation="sigmoid")])
    model.layers[0].set_weights([np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]), np.full(3, 0.1)])
    model.layers[1].set_weights([np.array([[0.5], [0.6], [0.7]]), np.array([0.1])])
    t = trace(model, [0.5, 0.5], 0.0)
    np.testing.assert_allclose(t.layers[0].z.numpy(), [[0.2, 0.3, 0.4]], atol=1e-7)
    np.testing.assert_allclose(float(t.layers[1].z), 0.66, atol=1e-7)
    y_hat = 1 / (1 + np.exp(-0.66))
    np.testing.assert_allclose(t.loss, -np.log(1 - y_hat), rtol=1e-6)
    np.testing.assert_allclose(t.layers[0].delta.numpy(), [[0.5 * y_hat, 0.6 * y_hat, 0.7 * y_hat]], rtol=1e-6)
    assert_matches_autograd(t, model)


def test_updated_weights_equal_one_kiln_sgd_step():
    from kiln.optimizers import SGD
    torch.manual_seed(0)
    model = Sequential([Dense(4, activation="tanh", input_shape=(3,)), Dense(1, activation="sigmoid")])
    x, y = np.random.default_rng(0).normal(size=(6, 3)).astype("float32"), np.array([0, 1, 1, 0, 1, 0], "float32")
    expected = trace(model, x, y).updated_weights(0.1)
    trained = copy.deepcopy(model)
    trained.compile(optimizer=SGD(learning_rate=0.1), loss="binary_crossentropy", device="cpu")
    trained.train_on_batch(x, y.reshape(-1, 1))
    got = [w for layer in trained.layers for w in layer.get_weights()]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=1e-6)


def test_check_detects_a_wrong_delta():
    layers = dense_stack([3, 4, 1], "sigmoid", "sigmoid")
    t = trace(layers, torch.randn(4, 3, dtype=torch.float64), torch.ones(4))
    t.layers[0].delta = t.layers[0].delta * 1.01
    diffs = t.check_against_autograd(layers)
    assert diffs[f"{t.layers[0].name}/delta"] > TOL and diffs[f"{t.layers[1].name}/delta"] < TOL


def test_to_text_names_layers_and_formulas():
    layers = dense_stack([2, 3, 1], "relu", "sigmoid")
    text = trace(layers, torch.ones(1, 2), torch.zeros(1)).to_text()
    assert "'dense[1]' (2 -> 3, relu)" in text and "(3 -> 1, sigmoid)" in text
    assert "1[z > 0]" in text and "(y_hat - y)" in text and "dL/dW" in text


def test_unsupported_layer_is_named():
    model = [Dense(3, activation="relu", input_shape=(2,)), nn.Dropout(0.5), Dense(1, activation="sigmoid")]
    model[0](torch.zeros(1, 2))
    model[2](torch.zeros(1, 3))
    with pytest.raises(KilnValueError, match=r"Dropout.*not supported.*Dense"):
        trace(model, torch.zeros(1, 2), torch.zeros(1))


def test_unsupported_activation_is_named():
    layers = dense_stack([2, 3, 1], "gelu", "sigmoid")
    with pytest.raises(KilnValueError, match=r"'dense'.*gelu.*relu, sigmoid, tanh, linear"):
        trace(layers, torch.zeros(1, 2), torch.zeros(1))


def test_softmax_in_a_hidden_layer_is_refused():
    layers = dense_stack([2, 3, 1], "softmax", "sigmoid")
    with pytest.raises(KilnValueError, match="hidden layer"):
        trace(layers, torch.zeros(1, 2), torch.zeros(1))


@pytest.mark.parametrize("output,loss", [("relu", "binary_crossentropy"), ("sigmoid", "categorical_crossentropy"),
                                         ("softmax", "mse")])
def test_output_activation_must_fit_the_loss(output, loss):
    layers = dense_stack([2, 3, 2], "relu", output)
    with pytest.raises(KilnValueError, match=f"output layer.*{output}"):
        trace(layers, torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), loss=loss)


def test_unknown_loss_suggests_a_name():
    layers = dense_stack([2, 3, 1], "relu", "sigmoid")
    with pytest.raises(KilnValueError, match="binary_crossentropy"):
        trace(layers, torch.zeros(1, 2), torch.zeros(1), loss="binary_crossentropi")


def test_activation_layer_after_an_activated_dense_is_refused():
    model = Sequential([Dense(3, activation="relu", input_shape=(2,)), Activation("sigmoid")])
    with pytest.raises(KilnValueError, match="no activation of its own"):
        trace(model, torch.zeros(1, 2), torch.zeros(1, 3), loss="mse")


def test_shapes_are_checked():
    layers = dense_stack([2, 3, 1], "relu", "sigmoid")
    with pytest.raises(ShapeError, match=r"`x` must have shape \(batch, 2\)"):
        trace(layers, torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ShapeError, match="`y` must hold 4 x 1 values"):
        trace(layers, torch.zeros(4, 2), torch.zeros(3))
