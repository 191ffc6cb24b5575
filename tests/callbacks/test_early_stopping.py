"""EarlyStopping, driven epoch by epoch with scripted logs, against Keras 3's rules."""

import numpy as np
import pytest
import torch

from kiln.callbacks.early_stopping import EarlyStopping, resolve_mode
from kiln.errors import KilnValueError


class FakeModel:
    """What EarlyStopping uses: stop_training and a torch state_dict."""

    def __init__(self):
        self.stop_training = False
        self.net = torch.nn.Linear(3, 2)

    def state_dict(self):
        return self.net.state_dict()

    def load_state_dict(self, state):
        return self.net.load_state_dict(state)

    def fill(self, value):
        with torch.no_grad():
            for p in self.net.parameters():
                p.fill_(value)


def run(callback, values, monitor="val_loss", model=None, epochs=None):
    """Play Keras's fit loop over ``values``; returns the model and the epochs that ran.

    At the end of epoch ``e`` the weights are all ``e`` (so restored weights name their epoch).
    """
    model = model or FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    ran = []
    for epoch, value in enumerate(values[:epochs] if epochs else values):
        callback.on_epoch_begin(epoch)
        model.fill(float(epoch))
        ran.append(epoch)
        callback.on_epoch_end(epoch, {"loss": 0.0, monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return model, ran


def test_patience_two_stops_after_two_epochs_without_improvement():
    es = EarlyStopping(patience=2)
    _, ran = run(es, [1.0, 0.9, 0.95, 0.97, 0.8])
    assert ran == [0, 1, 2, 3]
    assert es.stopped_epoch == 3
    assert es.best == 0.9 and es.best_epoch == 1


def test_patience_zero_stops_at_first_epoch_without_improvement():
    es = EarlyStopping(patience=0)
    _, ran = run(es, [1.0, 0.9, 0.9, 0.5])
    assert ran == [0, 1, 2]  # an equal value is not an improvement
    assert es.stopped_epoch == 2


def test_improvement_resets_the_wait():
    es = EarlyStopping(patience=2)
    _, ran = run(es, [1.0, 1.1, 0.9, 1.2, 0.8, 1.3, 1.4])
    assert ran == [0, 1, 2, 3, 4, 5, 6]
    assert es.stopped_epoch == 6


def test_min_delta_requires_a_large_enough_improvement_and_ignores_sign():
    for delta in (0.1, -0.1):
        es = EarlyStopping(patience=1, min_delta=delta)
        _, ran = run(es, [1.0, 0.95, 0.5])
        assert ran == [0, 1], delta  # 0.95 is within 0.1 of 1.0: no improvement
        assert es.min_delta == 0.1
    es = EarlyStopping(patience=1, min_delta=0.1)
    _, ran = run(es, [1.0, 0.85, 0.7, 0.69])
    assert ran == [0, 1, 2, 3]


def test_mode_auto_maximises_accuracy():
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    _, ran = run(es, [0.5, 0.6, 0.7, 0.8], monitor="val_accuracy")
    assert ran == [0, 1, 2, 3] and es.stopped_epoch == 0
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    _, ran = run(es, [0.5, 0.4, 0.9], monitor="val_accuracy")
    assert ran == [0, 1]


def test_mode_min_and_max_override_the_name():
    es = EarlyStopping(monitor="val_accuracy", mode="min", patience=0)
    _, ran = run(es, [0.5, 0.6], monitor="val_accuracy")
    assert ran == [0, 1] and es.stopped_epoch == 1
    es = EarlyStopping(monitor="loss", mode="max", patience=0)
    _, ran = run(es, [1.0, 0.5], monitor="loss")
    assert ran == [0, 1]


@pytest.mark.parametrize("name, expected", [
    ("loss", "min"), ("val_loss", "min"), ("output_1_loss", "min"), ("val_mae", "min"), ("mse", "min"),
    ("accuracy", "max"), ("val_acc", "max"), ("val_sparse_categorical_accuracy", "max"), ("val_auc", "max"),
    ("precision", "max"), ("val_recall", "max"), ("f1_score", "max"), ("r2_score", "max"),
])
def test_resolve_mode_reads_the_direction_from_the_name(name, expected):
    assert resolve_mode(name, "auto") == expected
    assert resolve_mode(name, "min") == "min"
    assert resolve_mode(name, "max") == "max"


def test_baseline_not_reached_stops_after_patience_even_while_improving_slowly():
    # Keras: the wait restarts only when the epoch beats the baseline too.
    es = EarlyStopping(patience=2, baseline=0.5)
    _, ran = run(es, [0.9, 0.8, 0.85, 0.7])
    assert ran == [0, 1, 2]
    assert es.stopped_epoch == 2
    # Without a baseline the same values do not stop training.
    es = EarlyStopping(patience=2)
    _, ran = run(es, [0.9, 0.8, 0.85, 0.7])
    assert ran == [0, 1, 2, 3]


def test_baseline_reached_behaves_like_no_baseline():
    es = EarlyStopping(patience=2, baseline=0.5)
    _, ran = run(es, [0.9, 0.4, 0.45, 0.46, 0.1])
    assert ran == [0, 1, 2, 3]
    assert es.stopped_epoch == 3


def test_restore_best_weights_after_early_stop():
    es = EarlyStopping(patience=2, restore_best_weights=True)
    model, ran = run(es, [1.0, 0.5, 0.7, 0.8, 0.1])
    assert ran == [0, 1, 2, 3]
    for tensor in model.state_dict().values():
        assert torch.all(tensor == 1.0)  # weights from the end of epoch 1
    assert es.best_epoch == 1


def test_restore_best_weights_also_when_training_runs_to_the_end():
    es = EarlyStopping(patience=5, restore_best_weights=True)
    model, ran = run(es, [1.0, 0.5, 0.7])
    assert ran == [0, 1, 2] and es.stopped_epoch == 0
    for tensor in model.state_dict().values():
        assert torch.all(tensor == 1.0)


def test_best_weights_are_a_copy_not_a_view():
    es = EarlyStopping(patience=5, restore_best_weights=True)
    model = FakeModel()
    es.set_model(model)
    es.on_train_begin()
    model.fill(7.0)
    es.on_epoch_end(0, {"val_loss": 1.0})
    model.fill(-3.0)  # a later step changes the weights in place
    for tensor in es.best_weights.values():
        assert torch.all(tensor == 7.0)


def test_without_restore_the_last_weights_stay():
    es = EarlyStopping(patience=1)
    model, _ = run(es, [1.0, 0.5, 0.7])
    for tensor in model.state_dict().values():
        assert torch.all(tensor == 2.0)
    assert es.best_weights is None


def test_start_from_epoch_skips_the_warm_up():
    es = EarlyStopping(monitor="loss", patience=0, start_from_epoch=2)
    _, ran = run(es, [1.0, 2.0, 3.0, 4.0, 5.0], monitor="loss")
    assert ran == [0, 1, 2, 3]  # epochs 0 and 1 are not monitored; 2 sets the best
    assert es.stopped_epoch == 3


def test_missing_monitor_warns_with_the_available_keys():
    es = EarlyStopping(monitor="val_los")
    model = FakeModel()
    es.set_model(model)
    es.on_train_begin()
    with pytest.warns(UserWarning) as record:
        es.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    message = str(record[0].message)
    assert "`val_los`" in message and "loss,val_loss" in message and "`val_loss`" in message
    assert not model.stop_training


def test_reuse_resets_state_at_train_begin():
    es = EarlyStopping(patience=0, restore_best_weights=True)
    run(es, [1.0, 2.0])
    assert es.stopped_epoch == 1
    _, ran = run(es, [5.0, 4.0, 3.0])
    assert ran == [0, 1, 2] and es.stopped_epoch == 0 and es.best == 3.0


def test_verbose_prints_stop_and_restore(capsys):
    es = EarlyStopping(patience=0, verbose=1, restore_best_weights=True)
    run(es, [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out


def test_invalid_arguments():
    with pytest.raises(KilnValueError, match="mode.*Did you mean 'max'"):
        EarlyStopping(mode="mx")
    with pytest.raises(KilnValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="monitor"):
        EarlyStopping(monitor=None)


def test_fit_stops_and_restores_the_best_epoch():
    from kiln.callbacks.lambda_callback import LambdaCallback
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model = Sequential([Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    weights_at_end = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: weights_at_end.append(
        {k: v.detach().clone() for k, v in model.state_dict().items()}))
    # Full-batch gradient descent lowers the loss every epoch, so in "max" mode epoch 0 stays
    # the best: training stops after `patience` more epochs and epoch 0's weights come back.
    stop = EarlyStopping(monitor="loss", mode="max", patience=2, restore_best_weights=True)
    history = model.fit(x, y, batch_size=64, epochs=10, verbose=0, callbacks=[record, stop])
    assert len(history.history["loss"]) == 3
    assert stop.stopped_epoch == 2 and stop.best_epoch == 0
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights_at_end[0][key])
    # ...and they differ from the last epoch's, so the restore did something.
    assert any(not torch.equal(weights_at_end[0][k], weights_at_end[-1][k]) for k in weights_at_end[0])
