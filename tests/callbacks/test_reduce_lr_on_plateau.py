"""ReduceLROnPlateau, epoch by epoch against Keras 3's rules."""

import numpy as np
import pytest

from kiln.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from kiln.errors import KilnValueError


class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class FakeModel:
    def __init__(self, learning_rate=1.0):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)


def play(callback, values, monitor="val_loss", lr=1.0):
    """Returns the learning rate after each epoch and each epoch's logs."""
    model = FakeModel(lr)
    callback.set_model(model)
    callback.on_train_begin()
    rates, all_logs = [], []
    for epoch, value in enumerate(values):
        logs = {"loss": 0.0, monitor: value}
        callback.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        all_logs.append(logs)
    return rates, all_logs


def test_reduces_after_patience_epochs_without_improvement():
    rates, _ = play(ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 1.0, 1.0, 1.0, 1.0])
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_improvement_resets_the_wait():
    rates, _ = play(ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 1.0, 0.5, 0.6, 0.4, 0.4, 0.4])
    assert rates == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]


def test_cooldown_pauses_the_wait_after_a_reduction():
    rates, _ = play(ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2), [1.0] * 6)
    # Reduce at epoch 1 and set the cooldown to 2. Epoch 2 lowers it to 1 (no counting); epoch 3
    # lowers it to 0 and, as in Keras, already counts: patience 1 is reached again at once.
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_min_lr_is_a_floor():
    rates, _ = play(ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05), [1.0] * 5)
    assert rates == pytest.approx([1.0, 0.1, 0.05, 0.05, 0.05])


def test_min_delta_default_ignores_tiny_improvements():
    rates, _ = play(ReduceLROnPlateau(factor=0.5, patience=1), [1.0, 0.99995, 0.9998])
    assert rates == [1.0, 0.5, 0.5]  # 0.99995 is within 1e-4 of the best (1.0); 0.9998 is not
    rates, _ = play(ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.0), [1.0, 0.99995])
    assert rates == [1.0, 1.0]


def test_mode_auto_maximises_accuracy():
    rates, _ = play(ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1),
                    [0.5, 0.6, 0.7, 0.7], monitor="val_accuracy")
    assert rates == [1.0, 1.0, 1.0, 0.5]
    rates, _ = play(ReduceLROnPlateau(monitor="val_loss", mode="max", factor=0.5, patience=1), [0.5, 0.4])
    assert rates == [1.0, 0.5]


def test_logs_get_the_learning_rate_used_in_the_epoch():
    _, logs = play(ReduceLROnPlateau(factor=0.5, patience=1), [1.0, 1.0, 1.0])
    assert [entry["learning_rate"] for entry in logs] == [1.0, 1.0, 0.5]


def test_missing_monitor_warns_and_still_logs_the_learning_rate():
    cb = ReduceLROnPlateau(monitor="val_accuracy", patience=0)
    cb.set_model(FakeModel(0.1))
    logs = {"loss": 1.0}
    with pytest.warns(UserWarning, match="val_accuracy.*Available metrics are: loss,learning_rate"):
        cb.on_epoch_end(0, logs)
    assert logs["learning_rate"] == 0.1


def test_train_begin_resets_the_state():
    cb = ReduceLROnPlateau(factor=0.5, patience=2)
    play(cb, [1.0, 1.0])
    assert cb.wait == 1
    rates, _ = play(cb, [5.0, 5.0])
    assert rates == [1.0, 1.0] and cb.best == 5.0


def test_invalid_arguments():
    with pytest.raises(KilnValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(KilnValueError, match="factor"):
        ReduceLROnPlateau(factor=0.0)
    with pytest.raises(KilnValueError, match="patience"):
        ReduceLROnPlateau(patience=-2)
    with pytest.raises(KilnValueError, match="mode"):
        ReduceLROnPlateau(mode="minimum")


def test_verbose_prints_the_new_rate(capsys):
    play(ReduceLROnPlateau(factor=0.5, patience=0, verbose=1), [1.0, 1.0])
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in capsys.readouterr().out


def test_fit_halves_the_rate_in_the_optimizer_and_torch():
    from kiln.callbacks.lambda_callback import LambdaCallback
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential
    from kiln.optimizers import SGD

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = Sequential([Dense(1)])
    model.compile(optimizer=SGD(learning_rate=0.01), loss="mse", device="cpu")
    seen = []
    # Full-batch gradient descent lowers the loss every epoch: in "max" mode nothing improves.
    reduce_lr = ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1)
    model.fit(x, y, batch_size=32, epochs=3, verbose=0,
              callbacks=[reduce_lr, LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs["learning_rate"]))])
    assert seen == pytest.approx([0.01, 0.01, 0.005])
    assert model.optimizer.learning_rate == pytest.approx(0.0025)
    for group in model.optimizer.torch_optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.0025)
