"""Normalization (preprocessing): adapted statistics against NumPy, Keras's formula and errors."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import kiln
from kiln.errors import KilnError, KilnTypeError, KilnValueError, ShapeError
from kiln.layers import Dense, Normalization
from kiln.models.summary import count_params


def _data(shape=(200, 4), seed=0, loc=3.0, scale=2.0):
    return np.random.default_rng(seed).normal(loc, scale, size=shape)


def _out(layer, x) -> np.ndarray:
    with torch.no_grad():
        return layer(torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()


# ---------------------------------------------------------------------- adapt against numpy
@pytest.mark.parametrize("kind", ["numpy", "tensor", "dataframe", "list"])
def test_adapt_in_memory_matches_numpy(kind):
    x = _data()
    data = {"numpy": x, "tensor": torch.tensor(x), "dataframe": pd.DataFrame(x, columns=list("abcd")),
            "list": x.tolist()}[kind]
    layer = Normalization()
    layer.adapt(data)
    np.testing.assert_allclose(layer.mean.numpy(), x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(layer.variance.numpy(), x.var(axis=0), rtol=1e-6)
    assert layer.count.item() == 200


def test_adapt_generator_of_batches_matches_numpy_on_the_concatenation():
    # Uneven batches and a mean far from zero: the streaming merge must still be exact.
    x = _data((1003, 3), loc=1e4, scale=0.5)
    layer = Normalization()
    layer.adapt(x[i:i + 97] for i in range(0, len(x), 97))
    np.testing.assert_allclose(layer.mean.numpy(), x.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(layer.variance.numpy(), x.var(axis=0), rtol=1e-5)


def test_adapt_dataloader_and_list_of_xy_batches_use_the_features():
    x, y = _data((130, 3)), _data((130, 1), seed=1)
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32)
    via_loader = Normalization()
    via_loader.adapt(loader)
    via_list = Normalization()
    via_list.adapt([(x[:50], y[:50]), (x[50:], y[50:])])
    for layer in (via_loader, via_list):
        np.testing.assert_allclose(layer.mean.numpy(), x.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(layer.variance.numpy(), x.var(axis=0), rtol=1e-6)


def test_adapt_batch_size_gives_the_same_result_and_steps_limits_the_batches():
    x = _data((100, 2))
    chunked = Normalization()
    chunked.adapt(x, batch_size=7)
    np.testing.assert_allclose(chunked.mean.numpy(), x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(chunked.variance.numpy(), x.var(axis=0), rtol=1e-6)

    limited = Normalization()
    limited.adapt(x, batch_size=10, steps=3)  # the first 30 samples
    np.testing.assert_allclose(limited.mean.numpy(), x[:30].mean(axis=0), rtol=1e-6)
    assert limited.count.item() == 30

    def endless():
        while True:
            yield x[:20]
    from_generator = Normalization()
    from_generator.adapt(endless(), steps=4)
    np.testing.assert_allclose(from_generator.variance.numpy(), x[:20].var(axis=0), rtol=1e-6)


def test_adapt_again_replaces_the_statistics():
    layer = Normalization()
    layer.adapt(_data(seed=0))
    x = _data(seed=1, loc=-5.0)
    layer.adapt(x)
    np.testing.assert_allclose(layer.mean.numpy(), x.mean(axis=0), rtol=1e-6)


# ---------------------------------------------------------------------- call
def test_output_is_standardised():
    x = _data((500, 4))
    layer = Normalization()
    layer.adapt(x)
    y = _out(layer, x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(y, (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)


def test_keras_docstring_examples():
    # The numbers of Keras's own docstring.
    layer = Normalization(axis=None)
    layer.adapt(np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype="float32"))
    np.testing.assert_allclose(_out(layer, [1.0, 2.0, 3.0]), [-1.4142135, -0.70710677, 0.0], rtol=1e-6)

    adapt_data = np.array([[0.0, 7.0, 4.0], [2.0, 9.0, 6.0], [0.0, 7.0, 4.0], [2.0, 9.0, 6.0]], dtype="float32")
    layer = Normalization(axis=-1)
    layer.adapt(adapt_data)
    np.testing.assert_allclose(_out(layer, [[0.0, 7.0, 4.0]]), [[-1.0, -1.0, -1.0]])

    layer = Normalization(mean=3.0, variance=2.0)
    np.testing.assert_allclose(_out(layer, [[1.0], [2.0], [3.0]]), [[-1.4142135], [-0.70710677], [0.0]], rtol=1e-6)

    layer = Normalization(axis=-1, invert=True)
    layer.adapt(adapt_data)
    np.testing.assert_allclose(_out(layer, [[1.0, 2.0, 3.0]]), [[2.0, 10.0, 8.0]])


def test_invert_undoes_the_normalization():
    x = _data((50, 3))
    forward, inverse = Normalization(), Normalization(invert=True)
    forward.adapt(x)
    inverse.adapt(x)
    np.testing.assert_allclose(_out(inverse, _out(forward, x)), x, rtol=1e-5, atol=1e-5)


def test_zero_variance_divides_by_keras_epsilon():
    layer = Normalization()
    layer.adapt(np.ones((10, 2)))
    # Keras: (x - mean) / maximum(sqrt(variance), 1e-7)
    np.testing.assert_allclose(_out(layer, [[1.0, 1.5]]), [[0.0, 0.5 / 1e-7]], rtol=1e-6)


def test_integer_inputs_become_floats():
    layer = Normalization(mean=[1.0, 2.0], variance=[4.0, 4.0])
    y = layer(torch.tensor([[3, 2]]))
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), [[1.0, 0.0]])


# ---------------------------------------------------------------------- axis semantics on (N, T, C)
@pytest.mark.parametrize("axis, reduce, stat_shape", [
    (None, (0, 1, 2), ()),
    (-1, (0, 1), (4,)),
    ((1,), (0, 2), (3,)),
    ((1, 2), (0,), (3, 4)),
])
def test_axis_semantics_for_3d_inputs(axis, reduce, stat_shape):
    x = _data((20, 3, 4))
    layer = Normalization(axis=axis)
    layer.adapt(x)
    assert tuple(layer.mean.shape) == stat_shape
    np.testing.assert_allclose(layer.mean.numpy(), x.mean(axis=reduce), rtol=1e-6)
    np.testing.assert_allclose(layer.variance.numpy(), x.var(axis=reduce), rtol=1e-6)
    expected = (x - x.mean(axis=reduce, keepdims=True)) / x.std(axis=reduce, keepdims=True)
    np.testing.assert_allclose(_out(layer, x), expected, rtol=1e-4, atol=1e-5)


def test_given_mean_and_variance_broadcast_to_the_kept_axis():
    layer = Normalization(axis=1, mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0])
    x = np.ones((2, 3, 4))
    expected = (x - np.array([1.0, 2.0, 3.0])[None, :, None]) / np.array([1.0, 2.0, 3.0])[None, :, None]
    np.testing.assert_allclose(_out(layer, x), expected, rtol=1e-6)


# ---------------------------------------------------------------------- errors
def test_using_it_before_adapt_says_to_call_adapt():
    layer = Normalization()
    with pytest.raises(KilnValueError, match=r"adapt\(\)|\.adapt\("):
        layer(torch.ones(2, 3))


def test_a_model_can_be_traced_before_adapt_but_not_run():
    normalizer = Normalization()
    inputs = kiln.Input(shape=(3,))
    model = kiln.Model(inputs, Dense(1)(normalizer(inputs)))
    with pytest.raises(KilnError, match="adapt"):
        model.predict(np.ones((2, 3), dtype="float32"), verbose=0)
    normalizer.adapt(_data((10, 3)))
    assert model.predict(np.ones((2, 3), dtype="float32"), verbose=0).shape == (2, 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"mean": 1.0}, "both `mean` and `variance`"),
    ({"mean": [1.0, 2.0], "variance": [1.0]}, "same shape"),
    ({"axis": "last"}, "invalid value for `axis`"),
    ({"mean": [[1.0]], "variance": [[1.0]]}, "rank of `mean`"),
    ({"mean": 0.0, "variance": -1.0}, "variance"),
])
def test_invalid_constructor_arguments(kwargs, match):
    with pytest.raises(KilnValueError, match=match):
        Normalization(**kwargs)


def test_adapt_errors():
    with pytest.raises(KilnValueError, match="batch_size"):
        Normalization().adapt(_data(), batch_size=0)
    with pytest.raises(KilnValueError, match="batch_size"):
        Normalization().adapt(iter([_data()]), batch_size=8)
    with pytest.raises(KilnValueError, match="no batches"):
        Normalization().adapt(iter([]))
    with pytest.raises(KilnTypeError, match="numeric"):
        Normalization().adapt(pd.DataFrame({"a": ["x", "y"]}))
    with pytest.raises(KilnValueError, match="cannot change"):
        Normalization(mean=0.0, variance=1.0).adapt(_data())
    with pytest.raises(ShapeError, match="axis=None"):
        Normalization().adapt(np.arange(5.0))  # axis=-1 on (N,) would keep the batch axis
    with pytest.raises(ShapeError, match="first batch"):
        Normalization().adapt([_data((10, 3)), _data((10, 4))])
    layer = Normalization()
    layer.adapt(_data((10, 3)))
    with pytest.raises(ShapeError):
        layer.adapt(_data((10, 4)))
    with pytest.raises(ShapeError):
        layer(torch.ones(2, 4))


# ---------------------------------------------------------------------- weights, config, saving
def test_parameter_count_is_keras_s():
    layer = Normalization()
    layer.adapt(_data((30, 9)))
    assert count_params(layer) == (0, 19)  # mean 9 + variance 9 + count 1, all non-trainable
    assert layer.trainable_weights == []
    assert set(layer.state_dict()) == {"mean", "variance", "count"}
    assert count_params(Normalization(mean=[0.0] * 9, variance=[1.0] * 9)) == (0, 0)  # constants, as in Keras


def test_config_round_trip():
    layer = Normalization(axis=(1, 2), mean=[[1.0, 2.0]], variance=[[3.0, 4.0]], invert=True, name="norm")
    config = layer.get_config()
    assert config["axis"] == [1, 2] and config["invert"] is True
    assert config["mean"] == [[1.0, 2.0]] and config["variance"] == [[3.0, 4.0]]
    assert Normalization.from_config(config).get_config() == config
    plain = Normalization().get_config()
    assert plain["axis"] == -1 and plain["mean"] is None and plain["variance"] is None


def test_weights_round_trip_through_set_weights():
    source = Normalization()
    source.adapt(_data((30, 3)))
    target = Normalization()
    target.build((None, 3))
    target.set_weights(source.get_weights())
    x = _data((5, 3), seed=3)
    np.testing.assert_array_equal(_out(target, x), _out(source, x))


def test_save_and_load_keep_the_adapted_statistics(tmp_path):
    normalizer = Normalization()
    normalizer.adapt(_data((40, 3)))
    model = kiln.Sequential([kiln.Input(shape=(3,)), normalizer, Dense(2)])
    x = _data((6, 3), seed=4).astype("float32")
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    restored = [l for l in loaded.layers if isinstance(l, Normalization)][0]
    np.testing.assert_array_equal(restored.mean.numpy(), normalizer.mean.numpy())
    assert restored.count.item() == 40


# ---------------------------------------------------------------------- a Keras program
BASIC_REGRESSION = """
import numpy as np
import kiln as keras
from kiln import layers
from sklearn.datasets import load_diabetes

keras.utils.set_random_seed(0)

dataset = load_diabetes(as_frame=True).frame
train_dataset = dataset.sample(frac=0.8, random_state=0)
test_dataset = dataset.drop(train_dataset.index)

train_features = train_dataset.copy()
test_features = test_dataset.copy()
train_labels = train_features.pop('target')
test_labels = test_features.pop('target')

normalizer = keras.layers.Normalization(axis=-1)
normalizer.adapt(np.array(train_features))

model = keras.Sequential([
    normalizer,
    layers.Dense(64, activation='relu'),
    layers.Dense(64, activation='relu'),
    layers.Dense(1)
])
model.compile(loss='mean_absolute_error',
              optimizer=keras.optimizers.Adam(0.001))
history = model.fit(
    train_features,
    train_labels,
    validation_split=0.2,
    verbose=0, epochs=60)
test_mae = model.evaluate(test_features, test_labels, verbose=0)

model.save('dnn_model.keras')
reloaded = keras.models.load_model('dnn_model.keras')
predictions = model.predict(test_features, verbose=0)
reloaded_predictions = reloaded.predict(test_features, verbose=0)
"""


def test_basic_regression_program(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(BASIC_REGRESSION), "<keras program>", "exec"), ns)
    losses = ns["history"].history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]
    assert "val_loss" in ns["history"].history
    # Predicting the training median gives an MAE of about 62 on this split.
    baseline = np.abs(ns["test_labels"] - np.median(ns["train_labels"])).mean()
    assert float(np.ravel(ns["test_mae"])[0]) < 0.85 * baseline
    np.testing.assert_allclose(ns["normalizer"].mean.numpy(), np.array(ns["train_features"]).mean(axis=0),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ns["reloaded_predictions"], ns["predictions"])
    assert ns["predictions"].shape == (len(ns["test_features"]), 1)
