"""The search space: check it against the config, sample it, and apply a sample to the config.

Why through ``--set``: a space key is the dotted path a ``--set`` override takes
(``training.optimizer.learning_rate``, ``model.layers.0.Dense.units``), and a sampled value
is applied by the config loader's own override code (``kiln.config.validate_config(data,
overrides=...)``), so a tuned config is exactly the config ``kiln train --set ...`` would run,
validated the same way.

``check_space`` runs before the first trial and raises one ``ConfigError`` with every problem:
a key that does not exist (with the nearest valid path), a range end or choice the config
rejects, values that cannot go together (``model.layers...`` with ``model.zoo...``), a grid
sampler over a continuous range, and a metric the run never logs.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

from kiln.config.load import validate_config
from kiln.config.schema import KilnConfig
from kiln.config.tune_schema import ParameterConfig, TuneConfig
from kiln.errors import ConfigError, closest_match

__all__ = ["base_data", "check_space", "apply_params", "suggest", "grid_points", "logged_metrics",
           "yaml_value", "grid_size", "grid_combinations"]

GRID_LIMIT = 100_000  # a grid larger than this is a mistake, not a plan


def base_data(config: KilnConfig) -> dict:
    """The config as plain data without its ``tune`` section: what every trial starts from."""
    data = config.model_dump(mode="json")
    data.pop("tune", None)
    return data


def yaml_value(value: Any) -> str:
    """``value`` as YAML text that reads back to exactly ``value`` (for a ``--set`` override).

    Why not ``repr``: YAML 1.1 reads ``1e-05`` (no dot) as a string, so a float is written
    with its mantissa dotted (``1.0e-05``); ``repr`` of a float round-trips bit for bit.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            text = f"{mantissa}e{exponent}"
        return text
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"yaml_value takes a scalar, got {type(value).__name__}")


def apply_params(data: dict, params: dict[str, Any], source: str = "tune") -> KilnConfig:
    """The validated config ``data`` with each ``path: value`` of ``params`` set (as ``--set``)."""
    overrides = [f"{key}={yaml_value(value)}" for key, value in params.items()]
    return validate_config(data, source, overrides)


def suggest(trial, space: dict[str, ParameterConfig]) -> dict[str, Any]:
    """Ask an Optuna ``trial`` for one value of every parameter; returns ``{path: value}``."""
    params = {}
    for key, p in space.items():
        if p.type == "categorical":
            params[key] = trial.suggest_categorical(key, p.choices)
        elif p.type == "int":
            params[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            params[key] = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
    return params


def grid_points(space: dict[str, ParameterConfig]) -> dict[str, list]:
    """Every value of every parameter, for the grid sampler; a float range needs a ``step``."""
    grid = {}
    for key, p in space.items():
        if p.type == "categorical":
            grid[key] = list(p.choices)
        elif p.type == "int":
            grid[key] = list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
        else:
            count = int(math.floor((p.high - p.low) / p.step + 1e-9)) + 1
            grid[key] = [p.low + i * p.step for i in range(count)]
    return grid


def logged_metrics(config: KilnConfig) -> list[str] | None:
    """The names ``fit`` logs for ``config`` each epoch, or None where kiln cannot tell beforehand.

    Why predicted: a metric that is never logged should stop ``kiln tune`` before the first
    trial, not after it. Only single-output configs are predicted; for the others the first
    epoch checks.
    """
    if len(config.output_features) != 1:
        return None
    import kiln
    from kiln.workflows.train import METRICS_FOR_TYPE

    kind = config.output_features[0].type
    if config.evaluation.metrics:
        metrics = list(config.evaluation.metrics)
    elif kind in METRICS_FOR_TYPE:
        metrics = METRICS_FOR_TYPE[kind](True)
    else:
        return None
    names = ["loss"]
    for metric in metrics:
        if isinstance(metric, str):
            try:
                metric = kiln.metrics.get(metric)
            except (ValueError, TypeError):
                return None  # the run itself will say what is wrong with it
        names.append(getattr(metric, "name", None) or str(metric))
    split = config.data.split
    if split.by_column is None and split.k_folds is None and split.validation == 0:
        return names
    return names + [f"val_{name}" for name in names]


def check_space(config: KilnConfig, tune: TuneConfig, source: str = "<config>") -> None:
    """Raise one ``ConfigError`` listing every problem of ``tune`` against ``config``, or return.

    Checks, per parameter: the path exists (nearest valid path suggested); its low and high
    (or each choice) are values the config accepts there. Then: all parameters at their first
    value together give a valid config; the grid sampler has a finite grid; the metric is one
    the run logs and is not a test-split metric.
    """
    data = base_data(config)
    problems: list[str] = []
    for key, p in tune.space.items():
        ends = p.choices if p.type == "categorical" else [_number(p.low, p.type), _number(p.high, p.type)]
        for value in dict.fromkeys(map(yaml_value, ends)):  # each distinct end once
            problem = _try(data, key, value)
            if problem:
                problems.append(f"{source}: tune.space.{key}: {problem}")
                break
    if not problems:
        first = {key: p.choices[0] if p.type == "categorical" else _number(p.low, p.type)
                 for key, p in tune.space.items()}
        try:
            apply_params(data, first)
        except ConfigError as error:
            detail = "; ".join(_strip_source(line) for line in getattr(error, "problems", [str(error)]))
            problems.append(f"{source}: tune.space: the parameters contradict each other or the config "
                            f"(at {', '.join(f'{k}={v!r}' for k, v in first.items())}: {detail}); "
                            "search fewer keys, or change the config so they fit together")
    if tune.sampler == "grid":
        for key, p in tune.space.items():
            if p.type == "float" and p.step is None:
                problems.append(f"{source}: tune.space.{key}: the grid sampler needs a `step` for a float range "
                                f"(or type: categorical with choices); add e.g. step: {(p.high - p.low) / 4:g}")
        if not problems:
            size = math.prod(len(v) for v in grid_points(tune.space).values())
            if size > GRID_LIMIT:
                problems.append(f"{source}: tune.space: the grid has {size} points (more than {GRID_LIMIT}); "
                                "use larger steps, fewer choices, or another sampler")
    problems += _metric_problems(config, tune, source)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        error = ConfigError(f"Invalid tune section in {source} ({count}):\n" + "\n".join(problems))
        error.problems = problems
        raise error


def _metric_problems(config: KilnConfig, tune: TuneConfig, source: str) -> list[str]:
    metric = tune.metric
    if metric.startswith("test_"):
        return [f"{source}: tune.metric: {metric!r} is measured on the test split; tuning on it leaks the test "
                f"set into the model choice. Tune on a validation metric such as 'val_{metric[5:]}'"]
    logged = logged_metrics(config)
    if logged is None or metric in logged:
        return []
    hint = closest_match(metric, logged)
    why = ""
    if metric.startswith("val_") and metric[4:] in logged:
        why = " (data.split.validation is 0, so no val_ metric is logged; give it a fraction)"
    return [f"{source}: tune.metric: {metric!r} is never logged by this config{why}. "
            + (f"Did you mean {hint!r}? " if hint and not why else "") + f"Logged: {', '.join(logged)}"]


def _number(value: float, kind: str) -> int | float:
    return int(value) if kind == "int" else float(value)


def _try(data: dict, key: str, value: str) -> str | None:
    """The first problem of ``--set key=value`` on ``data``, in words; None if it is valid."""
    try:
        validate_config(copy.deepcopy(data), "tune", [f"{key}={value}"])
    except ConfigError as error:
        lines = getattr(error, "problems", [str(error)])
        message = _strip_source(lines[0])
        if "Unknown key" in message or "no key" in message:
            hint = _nearest_path(key, data)
            if hint and hint != key:
                message += f" (did you mean the path {hint!r}?)"
        return message + f" (at value {value})"
    return None


def _strip_source(line: str) -> str:
    """``--set k=v: path: message`` -> ``path: message``."""
    for prefix in ("--set ", "tune: "):
        if line.startswith(prefix):
            head, sep, rest = line.partition(": ")
            return rest if sep else line
    return line


def _nearest_path(key: str, data: dict) -> str | None:
    """The dotted path of ``data`` (or of the schema's sections) nearest to ``key``."""
    paths = list(_paths(data, ""))
    leaf = key.split(".")[-1]
    same_leaf = [p for p in paths if p.split(".")[-1] == leaf]
    if len(same_leaf) == 1:
        return same_leaf[0]
    return closest_match(key, paths)


def _paths(node: Any, prefix: str):
    """Every dotted path in ``node`` (mappings and lists, numbered items), depth first."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        path = f"{prefix}{key}"
        yield path
        yield from _paths(value, path + ".")


def grid_size(space: dict[str, ParameterConfig]) -> int:
    """How many points the grid over ``space`` has."""
    return math.prod(len(values) for values in grid_points(space).values())


def grid_combinations(space: dict[str, ParameterConfig]) -> list[dict]:
    """Every combination of the grid (tests compare a grid study with it)."""
    grid = grid_points(space)
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
