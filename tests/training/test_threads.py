"""The thread choice: a guess, a measurement on real steps, and the setting put back."""

import numpy as np
import pytest
import torch

import kiln
from kiln.training import threads as threads_mod
from kiln.training.threads import ThreadChoice


class FakeClock:
    def __init__(self, step_seconds):
        self.now = 0.0
        self.step_seconds = step_seconds  # seconds per step for each thread count

    def __call__(self):
        return self.now

    def advance(self):
        self.now += self.step_seconds[torch.get_num_threads()]


@pytest.mark.parametrize("timings, expected", [({1: 1.0, 2: 0.5}, 2), ({1: 1.0, 2: 1.2}, 1), ({1: 1.0, 2: 0.99}, 1)])
def test_measurement_keeps_the_faster_count(monkeypatch, timings, expected):
    clock = FakeClock(timings)
    monkeypatch.setattr(threads_mod.time, "perf_counter", clock)
    torch.set_num_threads(2)
    choice = ThreadChoice("auto")
    choice.begin(torch.nn.Linear(2, 2), torch.device("cpu"), measure=True)
    for _ in range(100):
        if choice.measuring:
            choice.before_step()
        clock.advance()
    assert choice.decided == expected  # a 1% gain does not justify a second core (3% margin)
    choice.end()
    assert torch.get_num_threads() == 2


def test_fit_decides_and_restores():
    torch.set_num_threads(2)
    model = kiln.Sequential([kiln.layers.Dense(4, activation="relu", input_shape=(3,)), kiln.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.random.rand(320, 3), np.random.rand(320, 1), batch_size=8, epochs=1, verbose=0)
    assert model._trainer.threads.decided in (1, 2)
    assert torch.get_num_threads() == 2


def test_fixed_and_untouched_settings():
    torch.set_num_threads(2)
    assert ThreadChoice(1).decided == 1
    with pytest.raises(kiln.errors.KilnValueError, match="num_threads"):
        ThreadChoice("many")
    untouched = ThreadChoice(None)
    untouched.begin(torch.nn.Linear(2, 2), torch.device("cpu"), measure=True)
    assert not untouched.measuring and torch.get_num_threads() == 2
    untouched.end()


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class Boom(Exception):
    pass


class ThreadsSeen(kiln.callbacks.Callback):
    """Records torch's thread count inside the run; raises at batch ``fail_at`` when given."""

    def __init__(self, fail_at=None):
        super().__init__()
        self.fail_at = fail_at
        self.counts = []

    def _seen(self, batch):
        self.counts.append(torch.get_num_threads())
        if batch == self.fail_at:
            raise Boom()

    def on_train_batch_end(self, batch, logs=None):
        self._seen(batch)

    def on_test_batch_end(self, batch, logs=None):
        self._seen(batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._seen(batch)


def one_thread_model():
    model = kiln.Sequential([kiln.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", num_threads=1)
    return model


@pytest.mark.parametrize("run", ["fit", "evaluate", "predict"])
def test_the_global_thread_count_is_put_back_when_a_run_raises(two_threads, run):
    x, y = np.random.rand(40, 3), np.random.rand(40, 2)
    model = one_thread_model()
    seen = ThreadsSeen(fail_at=1)
    with pytest.raises(Boom):
        if run == "fit":
            model.fit(x, y, batch_size=8, verbose=0, callbacks=[seen])
        elif run == "evaluate":
            model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[seen])
        else:
            model.predict(x, batch_size=8, verbose=0, callbacks=[seen])
    assert seen.counts == [1, 1]  # the run's own setting while it ran
    assert torch.get_num_threads() == 2


def test_the_global_thread_count_is_put_back_after_a_nan_loss(two_threads):
    model = one_thread_model()
    y = np.full((16, 2), 3e38, dtype="float32")  # finite labels whose squared error overflows float32
    with pytest.raises(kiln.errors.NaNLossError):
        model.fit(np.random.rand(16, 3), y, batch_size=8, verbose=0)
    assert torch.get_num_threads() == 2


def test_none_leaves_the_global_thread_count_alone(two_threads):
    model = kiln.Sequential([kiln.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", num_threads=None)
    seen = ThreadsSeen()
    model.fit(np.random.rand(16, 3), np.random.rand(16, 2), batch_size=8, verbose=0, callbacks=[seen])
    assert seen.counts == [2, 2] and torch.get_num_threads() == 2


def test_an_evaluate_inside_fit_leaves_restoring_to_fit(two_threads):
    """A callback that evaluates each epoch used to make fit 'restore' the run's own count."""
    x, y = np.random.rand(40, 3), np.random.rand(40, 2)
    model = one_thread_model()
    inner = ThreadsSeen()

    class EvaluateEachEpoch(kiln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["test_loss"] = self.model.evaluate(x, y, batch_size=20, verbose=0, callbacks=[inner])

    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[EvaluateEachEpoch()])
    assert len(history.history["test_loss"]) == 2
    assert inner.counts == [1, 1, 1, 1]
    assert torch.get_num_threads() == 2
