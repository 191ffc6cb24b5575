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
