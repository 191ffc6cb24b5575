"""FitState: one public object that says where a running fit is, for callbacks."""

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnValueError
from kiln.layers import Dense
from kiln.training import FitState


def data(n=50):
    g = np.random.default_rng(0)
    x = g.random((n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32"))


def model():
    kiln.utils.set_random_seed(0)
    m = kiln.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(1)])
    m.compile(optimizer="sgd", loss="mse", num_threads=1)
    return m


class Record(kiln.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        state = self.model.fit_state
        self.seen.append(("begin", state.epoch, state.step))

    def on_train_batch_end(self, batch, logs=None):
        state = self.model.fit_state
        # the position just after the step, and the epoch's running loss as the logs report it
        assert float(state.loss_sum) / state.count == pytest.approx(logs["loss"], rel=1e-6)
        self.seen.append((state.epoch, state.step, state.count))

    def on_epoch_end(self, epoch, logs=None):
        state = self.model.fit_state
        assert state.logs is logs
        self.seen.append(("end", state.epoch, state.step))


def test_callbacks_see_the_position_through_fit_state():
    x, y = data(50)
    m = model()
    assert m.fit_state is None
    record = Record()
    history = m.fit(x, y, batch_size=20, epochs=2, verbose=0, callbacks=[record])
    assert record.seen == [("begin", 0, 0), (0, 1, 20), (0, 2, 40), (0, 3, 50), ("end", 1, 0),
                           ("begin", 1, 0), (1, 1, 20), (1, 2, 40), (1, 3, 50), ("end", 2, 0)]
    state = m.fit_state
    assert isinstance(state, FitState)
    assert (state.epochs, state.initial_epoch, state.steps, state.epoch, state.step) == (2, 0, 3, 2, 0)
    assert state.history is history and state.logs["loss"] == history.history["loss"][-1]
    assert state.resume is None and state.stop_training is False


def test_stop_training_set_on_the_model_ends_fit_after_that_step():
    x, y = data(50)

    class StopAt(kiln.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.fit_state.epoch == 1 and batch == 1:
                self.model.stop_training = True

    m = model()
    m.stop_training = True  # before fit: fit starts with the flag down, as in Keras
    history = m.fit(x, y, batch_size=10, epochs=5, verbose=0, callbacks=[StopAt()])
    assert history.epoch == [0, 1]
    assert m.stop_training is True and m.fit_state.stop_training is True
    assert m.fit_state.epoch == 2  # epoch 1 ended after its second step


def test_a_plain_module_trainer_exposes_the_same_state():
    x, y = data(30)
    trainer = kiln.Trainer(torch.nn.Linear(3, 1))
    trainer.compile(optimizer="sgd", loss="mse", num_threads=1)

    class StopAfterEpoch(kiln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            assert self.model is trainer and self.model.fit_state.epoch == epoch + 1
            if epoch == 1:
                self.model.stop_training = True

    history = trainer.fit(x, y, batch_size=10, epochs=4, verbose=0, callbacks=[StopAfterEpoch()])
    assert history.epoch == [0, 1]
    assert trainer.stop_training is True and trainer.fit_state.epoch == 2 and trainer.fit_state.steps == 3


def test_checkpoint_api_needs_a_fit_to_describe():
    m = model()
    message = ("`training_state()` works on a fit in progress, but this model has not started `fit` yet. "
               "Call it from a callback during fit (as BackupAndRestore does).")
    with pytest.raises(KilnValueError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"):
        m.training_state()
    with pytest.raises(KilnValueError, match="restore_training_state"):
        m.restore_training_state({})


def test_backup_and_restore_resumes_a_plain_module_trainer_exactly(tmp_path):
    """BackupAndRestore on kiln.Trainer (no kiln Model around it) uses the same public API."""
    x, y = data(40)

    class Crash(Exception):
        pass

    class CrashAt(kiln.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.fit_state.epoch == 1 and batch == 2:
                raise Crash()

    def trainer():
        kiln.utils.set_random_seed(1)
        t = kiln.Trainer(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.2), torch.nn.Linear(4, 1)))
        t.compile(optimizer=kiln.optimizers.Adam(0.01), loss="mse", num_threads=1)
        return t

    straight = trainer()
    straight.fit(x, y, batch_size=8, epochs=3, verbose=0)
    crashed = trainer()
    with pytest.raises(Crash):
        crashed.fit(x, y, batch_size=8, epochs=3, verbose=0,
                    callbacks=[kiln.callbacks.BackupAndRestore(tmp_path, save_freq=1), CrashAt()])
    resumed = trainer()
    restore = kiln.callbacks.BackupAndRestore(tmp_path, save_freq=1)
    history = resumed.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[restore])
    assert restore.restored_from is not None and history.epoch == [0, 1, 2]
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
