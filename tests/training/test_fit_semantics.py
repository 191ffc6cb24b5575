"""Keras semantics of fit / evaluate / predict: History keys, validation_split, inputs, weights, logs."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import kiln
from kiln.layers import Dense


def regressor(**compile_kwargs):
    model = kiln.Sequential([Dense(8, activation="relu", input_shape=(10,)), Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"], **compile_kwargs)
    return model


def twin_regressors(seed=3):
    """Two regressors with the same initial weights."""
    kiln.utils.set_random_seed(seed)
    a = regressor()
    kiln.utils.set_random_seed(seed)
    return a, regressor()


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-7)


def test_history_has_keras_keys(regression_data):
    x, y = regression_data
    history = regressor().fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert all(len(v) == 3 for v in history.history.values())
    assert history.epoch == [0, 1, 2]


def test_validation_split_takes_the_last_fraction_before_shuffling(regression_data):
    x, y = regression_data
    model = regressor()
    history = model.fit(x, y, epochs=1, batch_size=16, validation_split=0.25, shuffle=True, verbose=0)
    # 96 samples: the last 24 are validation, whatever the shuffle did to the first 72.
    val_loss, val_mae = model.evaluate(x[72:], y[72:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, abs=1e-6)
    assert history.history["val_mae"][0] == pytest.approx(val_mae, abs=1e-6)


def test_trained_on_first_part_only(regression_data):
    """Training on x[:72] with validation_split equals training on x[:72] alone (no shuffle)."""
    x, y = regression_data
    a, b = twin_regressors()
    a.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, shuffle=False, verbose=0)
    b.fit(x[:72], y[:72], epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert_same_weights(a, b)


def test_validation_data_tuple(regression_data):
    x, y = regression_data
    history = regressor().fit(x, y, epochs=1, validation_data=(x[:10], y[:10]), verbose=0)
    assert "val_loss" in history.history


def test_evaluate_returns_list_or_dict(regression_data):
    x, y = regression_data
    model = regressor()
    result = model.evaluate(x, y, verbose=0)
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(as_dict) == ["loss", "mae"]
    assert result == pytest.approx(list(as_dict.values()))
    pred = model.predict(x, verbose=0)
    assert as_dict["mae"] == pytest.approx(float(np.mean(np.abs(pred - y))), abs=1e-6)
    assert as_dict["loss"] == pytest.approx(float(np.mean((pred - y) ** 2)), abs=1e-6)


def test_evaluate_with_loss_only_returns_a_float(regression_data):
    x, y = regression_data
    model = kiln.Sequential([Dense(1, input_shape=(10,))])
    model.compile(optimizer="sgd", loss="mse")
    assert isinstance(model.evaluate(x, y, verbose=0), float)


def test_predict_returns_numpy_in_batches(regression_data):
    x, _ = regression_data
    model = regressor()
    out = model.predict(x, batch_size=7, verbose=0)
    assert isinstance(out, np.ndarray) and out.shape == (96, 1)
    np.testing.assert_allclose(out, model(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["numpy", "tensor", "pandas", "dataset", "dataloader"])
def test_input_kinds(regression_data, kind):
    x, y = regression_data
    if kind == "numpy":
        args = (x, y)
    elif kind == "tensor":
        args = (torch.from_numpy(x), torch.from_numpy(y))
    elif kind == "pandas":
        args = (pd.DataFrame(x, columns=[f"f{i}" for i in range(10)]), pd.Series(y[:, 0]))
    elif kind == "dataset":
        args = (TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),)
    else:
        args = (DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16),)
    model = regressor()
    history = model.fit(*args, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert len(model.evaluate(*args, verbose=0)) == 2


def test_float64_inputs_become_float32(regression_data):
    x, y = regression_data
    model = regressor()
    model.fit(x.astype("float64"), y.astype("float64"), epochs=1, verbose=0)
    assert model.predict(x.astype("float64"), verbose=0).dtype == np.float32


def test_sample_weight_scales_the_loss(regression_data):
    x, y = regression_data
    model = regressor()
    sw = np.linspace(0.5, 2.0, len(x)).astype("float32")
    pred = model.predict(x, verbose=0)
    # Keras: sum(w * per_sample_loss) / batch_size, averaged over batches weighted by batch size.
    expected = float(np.sum(sw * ((pred - y) ** 2)[:, 0]) / len(x))
    got = model.evaluate(x, y, sample_weight=sw, batch_size=len(x), verbose=0)[0]
    assert got == pytest.approx(expected, rel=1e-5)


def test_class_weight_equals_sample_weight():
    g = np.random.default_rng(1)
    x = g.random((64, 4)).astype("float32")
    y = (x[:, 0] > 0.7).astype("float32")[:, None]

    def train(**kw):
        kiln.utils.set_random_seed(5)
        model = kiln.Sequential([Dense(1, activation="sigmoid", input_shape=(4,))])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0, **kw)
        return model.get_weights()

    by_class = train(class_weight={0: 1.0, 1: 3.0})
    by_sample = train(sample_weight=np.where(y[:, 0] == 1, 3.0, 1.0).astype("float32"))
    for a, b in zip(by_class, by_sample):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_multi_input_functional_with_list_and_dict():
    a_in, b_in = kiln.Input(shape=(3,), name="a"), kiln.Input(shape=(2,), name="b")
    merged = kiln.layers.Concatenate()([a_in, b_in])
    out = Dense(1)(Dense(4, activation="relu")(merged))
    model = kiln.Model([a_in, b_in], out)
    model.compile(optimizer="adam", loss="mse")
    g = np.random.default_rng(0)
    a, b, y = g.random((40, 3)), g.random((40, 2)), g.random((40, 1))
    model.fit([a, b], y, epochs=1, verbose=0)
    p_list = model.predict([a, b], verbose=0)
    p_dict = model.predict({"a": a, "b": b}, verbose=0)
    np.testing.assert_allclose(p_list, p_dict, atol=1e-6)


def test_multi_output_losses_and_names():
    inp = kiln.Input(shape=(4,))
    h = Dense(8, activation="relu")(inp)
    reg = Dense(1, name="value")(h)
    cls = Dense(3, activation="softmax", name="label")(h)
    model = kiln.Model(inp, [reg, cls])
    model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"], loss_weights=[1.0, 0.5],
                  metrics=[["mae"], ["accuracy"]])
    g = np.random.default_rng(0)
    x, y1, y2 = g.random((30, 4)), g.random((30, 1)), g.integers(0, 3, 30)
    history = model.fit(x, [y1, y2], epochs=1, verbose=0)
    assert list(history.history) == ["loss", "value_loss", "label_loss", "value_mae", "label_accuracy"]
    logs = model.evaluate(x, [y1, y2], verbose=0, return_dict=True)
    # Keras: the total is the weighted sum of the per-output losses
    assert logs["loss"] == pytest.approx(logs["value_loss"] + 0.5 * logs["label_loss"], rel=1e-5)
    preds = model.predict(x, verbose=0)
    assert preds[0].shape == (30, 1) and preds[1].shape == (30, 3)


def _fit_output(verbose, regression_data, capsys):
    x, y = regression_data
    regressor().fit(x, y, epochs=2, batch_size=32, verbose=verbose, validation_split=0.25)
    return capsys.readouterr().out


def test_verbose_1_prints_keras_progress_line(regression_data, capsys):
    out = _fit_output(1, regression_data, capsys)
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    final_lines = [l.split("\r")[-1] for l in out.splitlines() if "val_loss" in l]
    assert len(final_lines) == 2
    assert re.match(r"3/3 ━{20} \d+s \d+(ms|us)/step - loss: [\d.e-]+ - mae: [\d.e-]+ - val_loss: [\d.e-]+ - val_mae: [\d.e-]+$",
                    final_lines[0]), final_lines[0]


def test_verbose_2_prints_one_line_per_epoch(regression_data, capsys):
    out = _fit_output(2, regression_data, capsys)
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert re.match(r"3/3 - \d+s - \d+(ms|us)/step - loss: .* - val_mae: [\d.e-]+$", lines[1]), lines[1]
    assert "\r" not in out


def test_verbose_0_prints_nothing(regression_data, capsys):
    assert _fit_output(0, regression_data, capsys) == ""


def test_initial_epoch_and_stop_training(regression_data):
    x, y = regression_data
    model = regressor()
    history = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]

    class StopAfterOne(kiln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    history = model.fit(x, y, epochs=5, callbacks=[StopAfterOne()], verbose=0)
    assert history.epoch == [0]


def test_batch_callbacks_get_running_logs(regression_data):
    x, y = regression_data
    seen = []

    class Record(kiln.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

    regressor().fit(x, y, epochs=1, batch_size=32, callbacks=[Record()], verbose=0)
    assert [b for b, _ in seen] == [0, 1, 2]
    assert all(np.isfinite(l) for _, l in seen)


def test_regularizers_are_added_to_the_loss(regression_data):
    x, y = regression_data
    model = kiln.Sequential([Dense(4, input_shape=(10,), kernel_regularizer=kiln.regularizers.L2(0.1)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    kernel = model.layers[0].kernel.detach()
    pred = model.predict(x, verbose=0)
    expected = float(np.mean((pred - y) ** 2)) + 0.1 * float((kernel ** 2).sum())
    # evaluate reports the loss including penalties, as Keras does
    assert model.evaluate(x, y, batch_size=96, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_activity_regularizer_divided_by_batch_size(regression_data):
    x, y = regression_data
    model = kiln.Sequential([Dense(4, input_shape=(10,), activity_regularizer=kiln.regularizers.L1(0.01)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    hidden = model.layers[0](torch.from_numpy(x)).detach()
    pred = model.predict(x, verbose=0)
    expected = float(np.mean((pred - y) ** 2)) + 0.01 * float(hidden.abs().sum()) / len(x)
    assert model.evaluate(x, y, batch_size=96, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_accuracy_metric_equals_sklearn():
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score
    from sklearn.preprocessing import StandardScaler
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x).astype("float32")
    model = kiln.Sequential([Dense(16, activation="relu", input_shape=(30,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    acc = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    pred = (model.predict(x, verbose=0)[:, 0] > 0.5).astype(int)
    assert acc == pytest.approx(accuracy_score(y, pred), abs=1e-9)
    assert acc > 0.95


def test_train_on_batch_and_test_on_batch(regression_data):
    x, y = regression_data
    model = regressor()
    loss, mae = model.train_on_batch(x[:16], y[:16])
    assert np.isfinite(loss) and np.isfinite(mae)
    assert len(model.test_on_batch(x[:16], y[:16])) == 2
    assert model.predict_on_batch(x[:16]).shape == (16, 1)


@pytest.mark.slow
def test_jit_compile_matches_eager(regression_data):
    torch.set_num_threads(1)
    x, y = regression_data
    kiln.utils.set_random_seed(11)
    eager = regressor()
    kiln.utils.set_random_seed(11)
    compiled = kiln.Sequential([Dense(8, activation="relu", input_shape=(10,)), Dense(1)])
    compiled.compile(optimizer="adam", loss="mse", metrics=["mae"], jit_compile=True)
    h1 = eager.fit(x, y, epochs=2, shuffle=False, verbose=0)
    h2 = compiled.fit(x, y, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-4)


def test_mixed_precision_bfloat16_trains(regression_data):
    x, y = regression_data
    model = regressor(mixed_precision="bfloat16")
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x, verbose=0).dtype == np.float32


def test_mixed_precision_float16_with_loss_scaling(regression_data):
    x, y = regression_data
    model = regressor(mixed_precision="float16")
    before = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, epochs=5, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model._trainer.scaler is not None
    assert history.history["loss"][-1] < before


def test_unknown_precision_is_refused():
    with pytest.raises(kiln.errors.KilnValueError, match="mixed_precision"):
        regressor(mixed_precision="float8")


def test_validation_data_wins_over_validation_split(regression_data):
    """Keras: with both given, validation_data is used and every row is trained on."""
    x, y = regression_data
    a, b = twin_regressors()
    a.fit(x, y, epochs=1, batch_size=16, shuffle=False, validation_split=0.5, validation_data=(x[:8], y[:8]),
          verbose=0)
    b.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert_same_weights(a, b)
