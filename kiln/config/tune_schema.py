"""The ``tune:`` section of a kiln config: what ``kiln tune`` searches, and how.

Why a file of its own: the section is read by one command only (``kiln tune``), and keeping it
apart from ``schema.py`` keeps that file about training. ``KilnConfig.tune`` holds it; ``kiln
train`` ignores it, so one YAML file both trains and tunes.

What is checked here, with the key's line (all problems at once, through ``kiln.config.load``):
each parameter's type, ranges (``low > high``, ``log`` with ``low <= 0``, ``log`` with
``step``), empty or repeated ``choices``, an empty ``space``. Whether each space key exists in
the config (with "did you mean") and whether its values are valid there is checked by
``kiln.tune.space.check_space``, since that needs the rest of the config.

Example::

    tune:
      metric: val_accuracy        # any logged metric; direction from the name unless given
      sampler: tpe                # tpe | random | grid | cmaes | qmc
      pruner: asha                # asha | hyperband | median | none
      trials: 40
      space:
        training.optimizer.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
        training.batch_size: {type: categorical, choices: [32, 64, 128]}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["TuneConfig", "ParameterConfig", "SAMPLERS", "PRUNERS"]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "qmc")
PRUNERS = ("asha", "hyperband", "median", "none")


def _problem(message: str, *at: str | int) -> PydanticCustomError:
    """A validation error ``at`` a key below the validated model (as ``schema._problem``; repeated
    here because schema.py imports this file)."""
    return PydanticCustomError("kiln", message, {"kiln_at": at})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ParameterConfig(_Section):
    """One searched config value: a float or int range, or a list of choices."""

    type: Literal["float", "int", "categorical"]
    """float: a real range [low, high]; int: an integer range; categorical: one of ``choices``."""
    low: float | None = None
    """float / int: the smallest value (inclusive)."""
    high: float | None = None
    """float / int: the largest value (inclusive)."""
    log: bool = False
    """float / int: sample on a log scale (learning rates, widths); needs low > 0."""
    step: float | None = Field(None, gt=0)
    """float / int: the spacing of the values (int default 1); the grid sampler needs it for floats."""
    choices: list[Any] | None = None
    """categorical: the values (numbers, text, true/false or null)."""

    @model_validator(mode="after")
    def _consistent(self) -> ParameterConfig:
        if self.type == "categorical":
            for key in ("low", "high", "step"):
                if getattr(self, key) is not None:
                    raise _problem(f"{key!r} does not apply to a categorical parameter (it takes `choices`)", key)
            if not self.choices:
                raise _problem("A categorical parameter needs a non-empty `choices` list, e.g. choices: [32, 64]",
                               "choices")
            for index, choice in enumerate(self.choices):
                if not (choice is None or isinstance(choice, (bool, int, float, str))):
                    raise _problem(f"A choice must be a number, text, true/false or null, got {choice!r}; "
                                   "tune one key per parameter instead of a whole list or mapping", "choices", index)
                if choice in self.choices[:index]:
                    raise _problem(f"Choice {choice!r} is listed twice", "choices", index)
            return self
        if self.choices is not None:
            raise _problem(f"`choices` applies to a categorical parameter only; use type: categorical, or "
                           f"low/high for a {self.type} range", "choices")
        for key in ("low", "high"):
            value = getattr(self, key)
            if value is None:
                raise _problem(f"A {self.type} parameter needs `{key}`", key)
            if self.type == "int" and value != int(value):
                raise _problem(f"An int parameter's `{key}` must be a whole number, got {value:g}", key)
        if self.low > self.high:
            raise _problem(f"low ({self.low:g}) is greater than high ({self.high:g}); swap them", "low")
        if self.log and self.low <= 0:
            raise _problem(f"log: true needs low > 0 (a log scale has no 0 or negatives), got low {self.low:g}; "
                           "raise low or set log: false", "low")
        if self.log and self.step is not None:
            raise _problem("log: true and step cannot be combined (a log scale has no fixed spacing); "
                           "drop one of them", "step")
        if self.type == "int" and self.step is not None and self.step != int(self.step):
            raise _problem(f"An int parameter's `step` must be a whole number, got {self.step:g}", "step")
        return self


class TuneConfig(_Section):
    """How ``kiln tune`` searches: the space, the metric, the sampler, the pruner and the budget."""

    space: dict[str, ParameterConfig] = Field(min_length=1)
    """Searched values by dotted config path, as ``--set`` names them (``training.batch_size``)."""
    metric: str = "val_loss"
    """The logged value optimised (val_loss, val_accuracy, ...); val_ metrics need a validation split."""
    direction: Literal["auto", "maximize", "minimize"] = "auto"
    """Which way is better; auto: from the metric's name (losses and errors down, the rest up)."""
    sampler: Literal["tpe", "random", "grid", "cmaes", "qmc"] = "tpe"
    """How the next values are chosen (Optuna's samplers; grid: every combination once)."""
    pruner: Literal["asha", "hyperband", "median", "none"] = "asha"
    """How unpromising trials are stopped early, from the metric reported after each epoch."""
    trials: PositiveInt = 20
    """Total trials of the study (completed, pruned and failed; an interrupted one is not counted)."""
    timeout: PositiveFloat | None = None
    """Seconds of trials after which no new trial starts (running ones finish; each worker counts from
    its first trial, so process start-up is not charged); None: no limit."""
    jobs: PositiveInt = 1
    """Trials run at the same time, each in its own process with its share of the CPU threads."""
    refit: bool = False
    """Retrain the best trial's config on train + validation at the end (into ``refit/``)."""
    seed: int | None = None
    """Seed of the sampler; None: the config's top-level ``seed``."""

    @model_validator(mode="after")
    def _no_overlapping_keys(self) -> TuneConfig:
        keys = list(self.space)
        for key in keys:
            for other in keys:
                if other != key and other.startswith(key + "."):
                    raise _problem(f"{key!r} and {other!r} contradict each other (one lies inside the other); "
                                   "search only one of them", "space", other)
        return self
