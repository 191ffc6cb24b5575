"""TerminateOnNaN: stop (or raise) at the first batch whose loss is NaN or infinite."""

import math

import numpy as np
import pytest

from kiln.callbacks.callback import CallbackList, LazyLogs
from kiln.callbacks.terminate_on_nan import TerminateOnNaN
from kiln.errors import NaNLossError


class FakeModel:
    def __init__(self):
        self.stop_training = False


def batch_end(callback, loss):
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_batch_end(0, {"loss": loss})
    return model.stop_training


def test_finite_loss_keeps_training():
    assert batch_end(TerminateOnNaN(), 0.5) is False
    assert batch_end(TerminateOnNaN(), 1e30) is False


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_nan_or_inf_stops_training(loss, capsys):
    assert batch_end(TerminateOnNaN(), loss) is True
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out


def test_raise_error_raises_at_once():
    with pytest.raises(NaNLossError, match="batch 0"):
        batch_end(TerminateOnNaN(raise_error=True), math.nan)


def test_reads_lazy_logs_and_ignores_logs_without_loss():
    model = FakeModel()
    cb = TerminateOnNaN()
    cb.set_model(model)
    cb.on_train_batch_end(3, None)
    cb.on_train_batch_end(3, {"mae": math.nan})
    assert model.stop_training is False
    cb.on_train_batch_end(3, LazyLogs(lambda: {"loss": math.nan}))
    assert model.stop_training is True


def test_the_trainer_dispatches_its_batch_hook():
    assert CallbackList([TerminateOnNaN()]).wants("on_train_batch_end")


def test_fit_stops_after_the_first_nan_batch():
    from kiln.callbacks.lambda_callback import LambdaCallback
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential

    x = np.ones((32, 3), dtype="float32")
    y = np.zeros((32, 1), dtype="float32")
    model = Sequential([Dense(1)])
    # A loss that is NaN from the first batch (kiln refuses NaN in the data itself).
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: ((y_pred - y_true) ** 2).mean() * float("nan"),
                  device="cpu")
    batches = []
    count = LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    # The callback stops after batch 0 and fit returns normally, as in Keras.
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[count, TerminateOnNaN()])
    assert batches == [0]
    assert history.epoch == [0] and math.isnan(history.history["loss"][0])


def test_fit_without_terminate_on_nan_raises_a_clear_error():
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential

    model = Sequential([Dense(1)])
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: ((y_pred - y_true) ** 2).mean() * float("nan"))
    with pytest.raises(NaNLossError, match="epoch 1.*learning rate"):
        model.fit(np.ones((8, 3), "float32"), np.zeros((8, 1), "float32"), epochs=2, verbose=0)
