"""Learning-rate schedules: a step number in, a learning rate out (Keras 3 names and formulas).

Why plain Python floats: a schedule is evaluated on every optimizer step, and writing a float
into torch's ``param_groups`` costs nothing, while a tensor would need a device sync.

Example:
    >>> schedule = ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
    >>> schedule(200)
    0.025
"""

from __future__ import annotations

import bisect
import math
import numbers
from typing import Any

from kiln.errors import KilnTypeError, KilnValueError, unknown_name_error

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "CosineDecay",
    "InverseTimeDecay",
    "PolynomialDecay",
    "LinearWarmup",
    "serialize",
    "deserialize",
]


def _check_positive(name: str, value: Any) -> None:
    """Raise the Keras-style error unless ``value`` is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise KilnValueError(
            f"Received an invalid value for `{name}`, expected a positive number. Received: {name}={value!r}"
        )


def _check_non_negative(name: str, value: Any) -> None:
    """Raise the Keras-style error unless ``value`` is a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise KilnValueError(
            f"Received an invalid value for `{name}`, expected a non-negative float. "
            f"Received: {name}={value!r}"
        )


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float`` plus a JSON config so it can be saved.

    Subclass it and implement ``__call__`` and ``get_config`` for a custom schedule; pass the
    subclass to ``deserialize(..., custom_objects=...)`` to load it back.
    """

    def __call__(self, step: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step).")

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement get_config().")

    @classmethod
    def from_config(cls, config: dict) -> "LearningRateSchedule":
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: steps over which the rate is multiplied by ``decay_rate`` once.
        decay_rate: the factor per ``decay_steps``.
        staircase: if True, ``step / decay_steps`` is floored, so the rate drops in steps.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay"):
        _check_non_negative("initial_learning_rate", initial_learning_rate)
        _check_positive("decay_steps", decay_steps)
        _check_non_negative("decay_rate", decay_rate)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step: int) -> float:
        progress = step / self.decay_steps
        if self.staircase:
            progress = math.floor(progress)
        return self.initial_learning_rate * self.decay_rate ** progress

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate per interval: ``values[0]`` while ``step <= boundaries[0]``, then
    ``values[1]`` while ``step <= boundaries[1]``, ..., ``values[-1]`` after the last boundary.

    Args:
        boundaries: increasing step numbers, one fewer than ``values``.
        values: the rate on each interval.
    """

    def __init__(self, boundaries: list, values: list, name: str = "PiecewiseConstant"):
        boundaries, values = list(boundaries), [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise KilnValueError(
                "`values` must have exactly one more element than `boundaries`. Received: "
                f"len(boundaries)={len(boundaries)}, len(values)={len(values)}"
            )
        if any(nxt <= prev for prev, nxt in zip(boundaries, boundaries[1:])):
            raise KilnValueError(f"`boundaries` must be strictly increasing. Received: boundaries={boundaries}")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step: int) -> float:
        # bisect_left puts a step equal to a boundary in the interval that ends there (Keras: <=).
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Optional linear warmup, then a half-cosine from the peak rate down to ``alpha * peak``.

    Without ``warmup_target`` the cosine starts at ``initial_learning_rate`` at step 0. With it,
    the rate rises linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then decays from ``warmup_target`` over the next ``decay_steps`` (Keras 3).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: length of the cosine part, in steps.
        alpha: the final rate as a fraction of the peak (default 0.0).
        warmup_target: the peak rate reached after warmup; None (default) disables warmup.
        warmup_steps: length of the warmup, in steps (default 0).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None, warmup_steps: int = 0):
        _check_non_negative("initial_learning_rate", initial_learning_rate)
        _check_positive("decay_steps", decay_steps)
        _check_non_negative("alpha", alpha)
        _check_non_negative("warmup_steps", warmup_steps)
        if warmup_target is not None:
            _check_non_negative("warmup_target", warmup_target)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.alpha = float(alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = warmup_steps

    def _decay(self, step: float, peak: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * step / self.warmup_steps
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: the time unit of the decay.
        decay_rate: how fast the rate falls.
        staircase: if True, ``step / decay_steps`` is floored.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay"):
        _check_non_negative("initial_learning_rate", initial_learning_rate)
        _check_positive("decay_steps", decay_steps)
        _check_non_negative("decay_rate", decay_rate)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step: int) -> float:
        progress = step / self.decay_steps
        if self.staircase:
            progress = math.floor(progress)
        return self.initial_learning_rate / (1.0 + self.decay_rate * progress)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, held at ``end`` afterwards.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: steps to reach ``end_learning_rate``.
        end_learning_rate: the final rate (default 1e-4, as Keras).
        power: the polynomial's power (default 1.0: linear).
        cycle: if True, restart with ``decay_steps`` stretched to the next multiple past ``step``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, end_learning_rate: float = 0.0001,
                 power: float = 1.0, cycle: bool = False, name: str = "PolynomialDecay"):
        _check_non_negative("initial_learning_rate", initial_learning_rate)
        _check_positive("decay_steps", decay_steps)
        _check_non_negative("end_learning_rate", end_learning_rate)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.end_learning_rate = float(end_learning_rate)
        self.power = float(power)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step: int) -> float:
        decay_steps = self.decay_steps
        if self.cycle:
            decay_steps *= 1 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, decay_steps)
        remaining = (1.0 - step / decay_steps) ** self.power
        return (self.initial_learning_rate - self.end_learning_rate) * remaining + self.end_learning_rate

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class LinearWarmup(LearningRateSchedule):
    """Rise linearly from 0 to ``after(0)`` over ``warmup_steps``, then follow ``after``
    (shifted so it starts at the end of the warmup). Why: large first updates from a cold
    Adam can wreck a model's early weights; a short ramp avoids it.

    Args:
        after: the schedule (or a constant float learning rate) used after the warmup.
        warmup_steps: number of steps of the ramp.
    """

    def __init__(self, after, warmup_steps: int, name: str | None = None):
        _check_non_negative("warmup_steps", warmup_steps)
        self.after = after
        self.warmup_steps = int(warmup_steps)
        self.name = name

    def _after(self, step: int) -> float:
        return float(self.after(step)) if callable(self.after) else float(self.after)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self._after(0) * (step + 1) / self.warmup_steps
        return self._after(step - self.warmup_steps)

    def get_config(self) -> dict:
        after = serialize(self.after) if isinstance(self.after, LearningRateSchedule) else float(self.after)
        return {"after": after, "warmup_steps": self.warmup_steps, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "LinearWarmup":
        config = dict(config)
        if isinstance(config.get("after"), dict):
            config["after"] = deserialize(config["after"])
        return cls(**config)


_SCHEDULES = {cls.__name__: cls for cls in
              (ExponentialDecay, PiecewiseConstantDecay, CosineDecay, InverseTimeDecay, PolynomialDecay,
               LinearWarmup)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """Return ``{"class_name", "config"}`` for a schedule (JSON-serialisable)."""
    if not isinstance(schedule, LearningRateSchedule):
        raise KilnTypeError(
            f"Expected a LearningRateSchedule to serialize. Received: {schedule!r} of type {type(schedule).__name__}"
        )
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> LearningRateSchedule:
    """Rebuild a schedule from ``serialize``'s output; ``custom_objects`` maps names of your own classes."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise KilnTypeError(
            "Expected a dict {'class_name': ..., 'config': {...}} for a learning rate schedule. "
            f"Received: {config!r}"
        )
    classes = {**_SCHEDULES, **(custom_objects or {})}
    name = config["class_name"]
    if name not in classes:
        raise unknown_name_error("learning rate schedule", name, classes)
    return classes[name].from_config(config.get("config", {}))
