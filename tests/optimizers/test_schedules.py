"""kiln.optimizers.schedules against Keras's documented formulas."""

import json
import math

import pytest

from kiln.errors import KilnTypeError, KilnValueError
from kiln.optimizers import schedules
from kiln.optimizers.schedules import (CosineDecay, ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                       PolynomialDecay)

STEPS = [0, 1, 7, 10, 25, 99, 100, 150]


@pytest.mark.parametrize("step", STEPS)
def test_exponential_decay(step):
    s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    assert s(step) == pytest.approx(0.1 * 0.9 ** (step / 10))
    stair = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9, staircase=True)
    assert stair(step) == pytest.approx(0.1 * 0.9 ** (step // 10))


def test_piecewise_constant_boundaries_belong_to_the_interval_they_end():
    s = PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    assert [s(0), s(100), s(101), s(200), s(201), s(10_000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


@pytest.mark.parametrize("step", STEPS)
def test_cosine_decay_without_warmup(step):
    s = CosineDecay(0.1, decay_steps=100, alpha=0.1)
    fraction = min(step, 100) / 100
    assert s(step) == pytest.approx(0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * fraction)) + 0.1))


def test_cosine_decay_with_linear_warmup():
    s = CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert s(0) == 0.0
    assert s(5) == pytest.approx(0.5)
    assert s(10) == pytest.approx(1.0)  # peak: the cosine starts from warmup_target
    assert s(60) == pytest.approx(0.5)  # half-way through the decay
    assert s(110) == pytest.approx(0.0, abs=1e-12)
    assert s(500) == pytest.approx(0.0, abs=1e-12)  # held at the end


@pytest.mark.parametrize("step", STEPS)
def test_inverse_time_decay(step):
    s = InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(step) == pytest.approx(0.1 / (1 + 0.5 * step / 10))
    stair = InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert stair(step) == pytest.approx(0.1 / (1 + 0.5 * (step // 10)))


@pytest.mark.parametrize("step", STEPS)
def test_polynomial_decay(step):
    s = PolynomialDecay(0.1, decay_steps=100, end_learning_rate=0.01, power=2.0)
    assert s(step) == pytest.approx(0.09 * (1 - min(step, 100) / 100) ** 2 + 0.01)


def test_polynomial_decay_cycle_stretches_decay_steps():
    s = PolynomialDecay(0.1, decay_steps=100, end_learning_rate=0.0, cycle=True)
    assert s(0) == pytest.approx(0.1)
    assert s(150) == pytest.approx(0.1 * (1 - 150 / 200))


@pytest.mark.parametrize("schedule", [
    ExponentialDecay(0.1, 10, 0.9, staircase=True),
    PiecewiseConstantDecay([10, 20], [0.3, 0.2, 0.1]),
    CosineDecay(0.0, 100, alpha=0.05, warmup_target=0.1, warmup_steps=5),
    InverseTimeDecay(0.1, 10, 0.5),
    PolynomialDecay(0.1, 100, power=0.5, cycle=True),
])
def test_serialize_round_trip(schedule):
    config = json.loads(json.dumps(schedules.serialize(schedule)))
    restored = schedules.deserialize(config)
    assert type(restored) is type(schedule)
    assert [restored(s) for s in STEPS] == [schedule(s) for s in STEPS]


def test_errors():
    with pytest.raises(KilnValueError, match="`decay_steps`, expected a positive number"):
        ExponentialDecay(0.1, decay_steps=0, decay_rate=0.9)
    with pytest.raises(KilnValueError, match="one more element"):
        PiecewiseConstantDecay([1, 2], [1.0, 2.0])
    with pytest.raises(KilnValueError, match="increasing"):
        PiecewiseConstantDecay([2, 1], [1.0, 2.0, 3.0])
    with pytest.raises(KilnValueError, match="Unknown learning rate schedule"):
        schedules.deserialize({"class_name": "CosineDecy", "config": {}})
    with pytest.raises(KilnTypeError):
        schedules.serialize(0.1)


def test_custom_schedule_via_custom_objects():
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, lr):
            self.lr = lr

        def __call__(self, step):
            return self.lr / 2 ** step

        def get_config(self):
            return {"lr": self.lr}

    restored = schedules.deserialize(schedules.serialize(Halving(1.0)), custom_objects={"Halving": Halving})
    assert restored(3) == 0.125
