"""LearningRateScheduler: the schedule's value is set at each epoch's start and logged at its end."""

import math

import numpy as np
import pytest
import torch

from kiln.callbacks.learning_rate_scheduler import LearningRateScheduler
from kiln.errors import KilnValueError


class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class FakeModel:
    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)


def play(callback, epochs, lr=0.1):
    """The learning rate in force during each epoch, and each epoch's logs."""
    model = FakeModel(lr)
    callback.set_model(model)
    callback.on_train_begin()
    rates, all_logs = [], []
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        rates.append(model.optimizer.learning_rate)
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        all_logs.append(logs)
    return rates, all_logs


def test_schedule_of_epoch_and_lr():
    rates, _ = play(LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5), 5, lr=0.8)
    assert rates == [0.8, 0.8, 0.4, 0.2, 0.1]


def test_schedule_of_epoch_only():
    rates, _ = play(LearningRateScheduler(lambda epoch: 1.0 / (epoch + 1)), 3)
    assert rates == [1.0, 0.5, pytest.approx(1 / 3)]


def test_schedule_with_var_args_and_callable_objects():
    class Halve:
        def __call__(self, epoch, lr):
            return lr / 2

    rates, _ = play(LearningRateScheduler(Halve()), 2, lr=1.0)
    assert rates == [0.5, 0.25]
    rates, _ = play(LearningRateScheduler(lambda *args: 0.3), 1)
    assert rates == [0.3]


def test_a_type_error_inside_the_schedule_is_not_hidden():
    def schedule(epoch, lr):
        return lr + "oops"  # a bug in the user's function

    with pytest.raises(TypeError, match="unsupported operand"):
        play(LearningRateScheduler(schedule), 1)


def test_numpy_and_tensor_scalars_are_accepted():
    rates, _ = play(LearningRateScheduler(lambda epoch: np.float32(0.25)), 1)
    assert rates == [0.25]
    rates, _ = play(LearningRateScheduler(lambda epoch: torch.tensor(0.5)), 1)
    assert rates == [0.5]
    rates, _ = play(LearningRateScheduler(lambda epoch: math.exp(-1)), 1)
    assert rates == [pytest.approx(math.exp(-1))]


def test_a_non_number_is_rejected():
    with pytest.raises(KilnValueError, match="should be a float. Got: 'fast'"):
        play(LearningRateScheduler(lambda epoch: "fast"), 1)


def test_logs_get_the_learning_rate():
    _, logs = play(LearningRateScheduler(lambda epoch: 0.1 * (epoch + 1)), 2)
    assert [entry["learning_rate"] for entry in logs] == [0.1, pytest.approx(0.2)]


def test_verbose_prints(capsys):
    play(LearningRateScheduler(lambda epoch: 0.5, verbose=1), 1)
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.5." in capsys.readouterr().out


def test_schedule_must_be_callable():
    with pytest.raises(TypeError, match="schedule"):
        LearningRateScheduler(0.1)


def test_fit_sets_the_rate_in_the_optimizer_and_torch():
    from kiln.callbacks.lambda_callback import LambdaCallback
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential
    from kiln.optimizers import SGD

    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = Sequential([Dense(1)])
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse", device="cpu")
    during, logged = [], []
    watch = LambdaCallback(
        on_train_batch_begin=lambda batch, logs: during.append(model.optimizer.torch_optimizer.param_groups[0]["lr"]),
        on_epoch_end=lambda epoch, logs: logged.append(logs["learning_rate"]))
    scheduler = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[scheduler, watch])
    assert during == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert logged == pytest.approx([0.1, 0.05, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.025)
