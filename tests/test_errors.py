"""Every user mistake the core can see is a kiln exception that names the bad value and the fix."""

import numpy as np
import pytest

import kiln
from kiln.errors import KilnError, KilnValueError, NaNLossError, NotCompiledError, ShapeError
from kiln.layers import Dense


def model():
    return kiln.Sequential([Dense(8, activation="relu", input_shape=(10,)), Dense(1)])


def test_fit_before_compile():
    with pytest.raises(NotCompiledError, match=r"compile\(\)"):
        model().fit(np.zeros((4, 10)), np.zeros((4, 1)), verbose=0)
    with pytest.raises(NotCompiledError):
        model().evaluate(np.zeros((4, 10)), np.zeros((4, 1)), verbose=0)


def test_predict_works_without_compile():
    assert model().predict(np.zeros((3, 10)), verbose=0).shape == (3, 1)


def test_wrong_input_shape_names_layer_and_shapes():
    m = model()
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(ShapeError) as err:
        m.fit(np.zeros((4, 7)), np.zeros((4, 1)), verbose=0)
    text = str(err.value)
    assert "dense" in text and "(None, 7)" in text and "(None, 10)" in text


def test_wrong_input_shape_in_predict():
    with pytest.raises(ShapeError, match=r"\(None, 3\)"):
        model().predict(np.zeros((2, 3)), verbose=0)


def test_x_and_y_lengths_differ():
    m = model()
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(ShapeError, match="x has 10, y has 9"):
        m.fit(np.zeros((10, 10)), np.zeros((9, 1)), verbose=0)


def test_y_shape_does_not_fit_the_loss():
    m = model()
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(ShapeError, match=r"\(2, 3\)"):
        m.fit(np.zeros((10, 10)), np.zeros((10, 3)), verbose=0)


@pytest.mark.parametrize("kind, name, hint", [
    ("optimizer", "adma", "adam"),
    ("loss", "mean_sqared_error", "mean_squared_error"),
    ("metric", "accuarcy", "accuracy"),
])
def test_unknown_names_suggest_the_nearest(kind, name, hint):
    kwargs = {"optimizer": "adam", "loss": "mse"}
    if kind == "metric":
        kwargs["metrics"] = [name]
    else:
        kwargs[kind] = name
    with pytest.raises(KilnValueError) as err:
        model().compile(**kwargs)
    assert f"Unknown {kind}" in str(err.value) and repr(hint) in str(err.value)


def test_unknown_activation_suggests():
    with pytest.raises(KilnValueError, match="'relu'"):
        Dense(3, activation="rleu")


def test_nan_loss_is_a_clear_error():
    m = kiln.Sequential([Dense(1, input_shape=(2,))])
    m.compile(optimizer=kiln.optimizers.SGD(1e30), loss="mse")
    x = np.full((8, 2), 1e10, dtype="float32")
    with pytest.raises(NaNLossError, match="learning rate"):
        m.fit(x, np.ones((8, 1)), epochs=3, verbose=0)


def test_nan_in_data_names_the_rows():
    m = model()
    m.compile(optimizer="adam", loss="mse")
    x = np.zeros((6, 10))
    x[4, 2] = np.nan
    with pytest.raises(KilnValueError, match=r"row\(s\) \[4\]"):
        m.fit(x, np.zeros((6, 1)), verbose=0)


def test_non_numeric_data():
    m = model()
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(kiln.errors.KilnTypeError, match="non-numeric"):
        m.fit(np.array([["a"] * 10] * 3), np.zeros((3, 1)), verbose=0)


def test_empty_data():
    m = model()
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(KilnValueError, match="empty"):
        m.fit(np.zeros((0, 10)), np.zeros((0, 1)), verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": -1}, "epochs"),
    ({"validation_split": 1.5}, "validation_split"),
])
def test_bad_fit_arguments(kwargs, match):
    m = model()
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(KilnValueError, match=match):
        m.fit(np.zeros((10, 10)), np.zeros((10, 1)), verbose=0, **kwargs)


def test_bad_layer_arguments_use_keras_wording():
    with pytest.raises(KilnValueError, match=r"Received an invalid value for `units`, expected a positive integer. "
                                             r"Received: units=0"):
        Dense(0)


def test_unknown_keyword_argument():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Dense"):
        Dense(3, unitz=4)


def test_kiln_errors_are_builtin_errors_too():
    assert issubclass(KilnValueError, ValueError) and issubclass(ShapeError, KilnError)
    assert issubclass(kiln.errors.KilnTypeError, TypeError)


def test_class_weight_missing_class():
    m = kiln.Sequential([Dense(1, activation="sigmoid", input_shape=(2,))])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(KilnValueError, match=r"class\(es\) \[1\]"):
        m.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1.0]), class_weight={0: 1.0}, verbose=0)


def test_dtype_mismatch_is_a_type_error_not_a_shape_error():
    import torch
    m = kiln.Sequential([Dense(2, input_shape=(3,))])
    with pytest.raises(kiln.errors.KilnTypeError, match="float64 inputs but computes in torch.float32"):
        m(torch.rand(2, 3, dtype=torch.float64))
