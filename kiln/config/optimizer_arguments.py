"""What each built-in optimizer accepts, as a table the config schema checks without importing torch.

Why a table: ``kiln validate``/``init``/``info`` must answer in a fraction of a second, and
``kiln.optimizers`` imports torch (~8 s on a cold, busy machine). The table repeats the optimizers'
own argument names, ranges and messages; ``tests/config/test_optimizer_arguments.py`` checks it
against ``kiln.optimizers`` (same names, same accepted values, same messages), so the two cannot drift.

    check_optimizer("adam", {"beta_1": 1.5})
    -> [("Received an invalid value for `beta_1`, expected a float in [0, 1). Received: beta_1=1.5", "beta_1")]
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

from kiln.errors import closest_match, unknown_name_error

__all__ = ["OPTIMIZERS", "check_optimizer"]

_Range = tuple[str, Callable[[float], bool]]  # (what the message expects, the test)

_UNIT = ("a float between 0 and 1", lambda v: 0 <= v <= 1)
_DECAY = ("a float in [0, 1)", lambda v: 0 <= v < 1)
_NON_NEGATIVE = ("a non-negative float", lambda v: v >= 0)
_POSITIVE = ("a positive float", lambda v: v > 0)

# Arguments of ``kiln.optimizers.Optimizer`` itself (learning_rate and name are checked elsewhere).
_COMMON: dict[str, _Range | None] = {"weight_decay": _NON_NEGATIVE, "clipnorm": _POSITIVE, "clipvalue": _POSITIVE,
                                     "global_clipnorm": _POSITIVE}
_ADAM = {"beta_1": _DECAY, "beta_2": _DECAY, "epsilon": _NON_NEGATIVE, "amsgrad": None}

# name -> (class name, {argument: range, or None for a flag any value of which is taken as a bool}).
OPTIMIZERS: dict[str, tuple[str, dict[str, _Range | None]]] = {
    "sgd": ("SGD", {**_COMMON, "momentum": _UNIT, "nesterov": None}),
    "adam": ("Adam", {**_COMMON, **_ADAM}),
    "adamw": ("AdamW", {**_COMMON, **_ADAM}),
    "rmsprop": ("RMSprop", {**_COMMON, "rho": _DECAY, "momentum": _UNIT, "epsilon": _NON_NEGATIVE, "centered": None}),
    "adagrad": ("Adagrad", {**_COMMON, "initial_accumulator_value": _NON_NEGATIVE, "epsilon": _NON_NEGATIVE}),
}
_CLIPS = ("clipnorm", "clipvalue", "global_clipnorm")


def check_optimizer(name: str, arguments: dict) -> list[tuple[str, str]]:
    """Every problem with ``name`` and its ``arguments``, as ``(message, key)``; [] when the optimizer would build.

    Args:
        name: the optimizer's name, any case ("adam").
        arguments: its keyword arguments besides ``learning_rate``.
    """
    known = OPTIMIZERS.get(str(name).lower())
    if known is None:
        return [(str(unknown_name_error("optimizer", name, OPTIMIZERS)), "name")]
    class_name, ranges = known
    problems = []
    for key, value in arguments.items():
        if key not in ranges:
            hint = closest_match(key, ranges)
            problems.append((f"{class_name} has no argument {key!r}." + (f" Did you mean {hint!r}?" if hint else "")
                             + f" Valid arguments: {', '.join(sorted(ranges))}", key))
        elif ranges[key] is not None and not (value is None and key in _COMMON):  # None: the option is off
            expected, ok = ranges[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
                problems.append((f"Received an invalid value for `{key}`, expected {expected}. "
                                 f"Received: {key}={value!r}", key))
    if class_name == "AdamW" and "weight_decay" in arguments and arguments["weight_decay"] is None:
        problems.append(("Received an invalid value for `weight_decay`, expected a non-negative float (AdamW needs "
                         "it; use Adam for no decay). Received: weight_decay=None", "weight_decay"))
    clips = {key: arguments[key] for key in _CLIPS if arguments.get(key) is not None}
    if len(clips) > 1:
        problems.append(("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                         f"Received: {', '.join(f'{k}={v}' for k, v in clips.items())}", ""))
    return problems
