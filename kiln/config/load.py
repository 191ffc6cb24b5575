"""Load a YAML config into a ``KilnConfig``: every problem of the file in one ``ConfigError``.

Why one error for all: fixing a config one complaint per run is slow; like torchtune, kiln
reports everything it finds at once. Each problem names where it is, what is wrong and, for a
typo, the nearest valid key::

    Invalid config recipes/mnist.yaml (2 problems):
    recipes/mnist.yaml:14: training.epochs: Input should be greater than 0 (got 0)
    recipes/mnist.yaml:15: training.optimiser: Unknown key 'optimiser'. Did you mean 'optimizer'?

How lines are found: the YAML is composed into a node tree (which keeps the line of every
key) and constructed into plain data from that same tree; pydantic validates the data, and each
of its errors' ``loc`` (``("training", "epochs")``) is walked down the node tree to the key's
line. A problem that came from a ``--set`` override names the override instead of a line.

Public functions: ``load_config(path, overrides)``, ``load_config_text(text, source_name)``,
``validate_config(data, source_name)`` for a dict, and ``dump_config(cfg)`` for the resolved
YAML (every default written out), which loads back to an equal config.
"""

from __future__ import annotations

import copy
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, Union, get_args, get_origin

import pydantic
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kiln.config.schema import KilnConfig
from kiln.errors import ConfigError, closest_match

__all__ = ["load_config", "load_config_text", "validate_config", "dump_config"]

Loc = tuple  # a path into the config: keys (str) and list indices (int)


@dataclass
class _Problem:
    """One thing wrong with a config, and where: ``source:line[:column]: path: message``."""

    source: str  # the file name, or "--set KEY=VALUE" for an override
    line: int | None  # 1-based; None when unknown (a missing top-level key, an override, a dict)
    path: str  # dotted, as an override would name it ("input_features.0.name"); "" for the file
    message: str
    column: int | None = None  # 1-based; YAML syntax errors only

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def _raise(problems: list[_Problem], source: str) -> NoReturn:
    """Raise one ``ConfigError`` listing ``problems``, one per line; ``error.problems`` keeps the lines."""
    lines = [str(p) for p in problems]
    count = f"{len(lines)} problem" + ("s" if len(lines) != 1 else "")
    error = ConfigError(f"Invalid config {source} ({count}):\n" + "\n".join(lines))
    error.problems = lines
    raise error


# ----- public API ----------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> KilnConfig:
    """Read, override and validate a YAML config file.

    Args:
        path: the YAML file.
        overrides: ``"KEY=VALUE"`` strings applied before validation (the CLI's ``--set``):
            ``"training.epochs=5"``, ``"input_features.0.preprocessing.height=32"`` (a number
            is a list index); VALUE is read as YAML (``5``, ``0.1``, ``true``, ``[1, 2]``,
            ``null``). Default: none.

    Returns:
        The validated ``KilnConfig`` (derived defaults filled in).

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML, or any value or key
            is invalid; the message lists every problem, each as ``file:line: key.path: what``.

    Example:
        >>> cfg = load_config("recipes/mnist_cnn.yaml", ["training.epochs=2"])
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {str(path)!r} (looked in {str(Path.cwd())!r}); "
                          "check the path, or write a starter with `kiln init`") from None
    except IsADirectoryError:
        raise ConfigError(f"Config path {str(path)!r} is a folder; pass the YAML file inside it") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Could not read config file {str(path)!r}: {error}") from None
    return load_config_text(text, str(path), overrides)


def load_config_text(text: str, source_name: str = "<config>",
                     overrides: list[str] | tuple[str, ...] = ()) -> KilnConfig:
    """Validate YAML ``text`` as a config; ``source_name`` is the file name shown in problems.

    Args, Returns and Raises as ``load_config`` (which reads the file and calls this).
    """
    data, root, problems = _parse(text, source_name)
    return _validate(data, root, source_name, overrides, problems)


def validate_config(data: dict, source_name: str = "<dict>",
                    overrides: list[str] | tuple[str, ...] = ()) -> KilnConfig:
    """Validate an already-parsed config dict (no line numbers: problems name the key path).

    Raises:
        ConfigError: every problem, each as ``source: key.path: what``.
    """
    return _validate(copy.deepcopy(data), None, source_name, overrides, [])


def dump_config(cfg: KilnConfig) -> str:
    """The resolved YAML of ``cfg``: every key with its value, defaults included.

    ``load_config_text(dump_config(cfg))`` gives a config equal to ``cfg``; a run folder's
    ``config.yaml`` is this text, so the run can be repeated with ``kiln train`` on it.
    """
    body = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=None,
                          allow_unicode=True, width=100)
    return ("# kiln train config.yaml\n"
            "# The resolved config: every default written out (kiln.config.dump_config).\n" + body)


# ----- parsing -------------------------------------------------------------------------------


def _parse(text: str, source: str) -> tuple[Any, Node | None, list[_Problem]]:
    """YAML text -> (plain data, node tree, problems such as duplicate keys); broken YAML raises.

    Why compose then construct with one loader: the node tree keeps each key's line, and the
    data built from that same tree is exactly what yaml.safe_load would give.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        _raise([_yaml_problem(error, source)], source)
    except yaml.YAMLError as error:
        _raise([_Problem(source, None, "", f"YAML syntax error: {error}")], source)
    finally:
        loader.dispose()
    return data, root, _duplicate_keys(root, (), source)


def _yaml_problem(error: yaml.MarkedYAMLError, source: str) -> _Problem:
    """A YAML syntax error at its line and column, with its context and a hint for tabs."""
    mark = error.problem_mark or error.context_mark
    message = f"YAML syntax error: {error.problem or error.context or error}"
    if error.context and error.problem and error.context_mark is not None:
        message += f" ({error.context} started at line {error.context_mark.line + 1})"
    if "\\t" in str(error.problem) or "\t" in str(error.problem):
        message += "; YAML indents with spaces, not tabs"
    elif "mapping values are not allowed" in str(error.problem):
        message += "; a value containing ': ' must be quoted, and keys of one mapping must line up"
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return _Problem(source, line, "", message, column)


def _duplicate_keys(node: Node | None, path: Loc, source: str) -> list[_Problem]:
    """Keys written twice in one mapping: YAML silently keeps the last, which hides edits."""
    problems: list[_Problem] = []
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if key.value in first:
                    problems.append(_Problem(source, line, _dotted(path + (key.value,)),
                                             f"Duplicate key (first at line {first[key.value]}); "
                                             "YAML would keep only this one, remove one of them"))
                first.setdefault(key.value, line)
                problems += _duplicate_keys(value, path + (key.value,), source)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, path + (index,), source)
    return problems


def _line_of(root: Node | None, loc: Loc) -> int | None:
    """The line of the deepest key (or list item) of ``loc`` that the file has; None at the top."""
    node, line = root, None
    for part in loc:
        if isinstance(node, MappingNode):
            for key, value in reversed(node.value):  # the last of duplicate keys is the one used
                if isinstance(key, ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# ----- validation ----------------------------------------------------------------------------


def _validate(data: Any, root: Node | None, source: str, overrides, problems: list[_Problem]) -> KilnConfig:
    """Apply ``overrides`` to ``data``, validate, and raise one ConfigError with every problem."""
    if data is None:
        _raise(problems + [_Problem(source, None, "", "The config is empty; it needs at least data, "
                                    "input_features and output_features (`kiln init` writes a starter)")], source)
    if not isinstance(data, dict):
        _raise(problems + [_Problem(source, _line_of(root, ()) or 1, "",
                                    f"The config must be a mapping of sections (name:, data:, training:, ...), "
                                    f"got {_kind(data)}")], source)
    overridden: dict[Loc, str] = {}
    for text in overrides:
        before = copy.deepcopy(data)
        problem = _apply_override(data, text, overridden)
        if problem is not None:  # undo what the override did before it failed (sections it created)
            data.clear()
            data.update(before)
            problems.append(problem)
    try:
        config = KilnConfig.model_validate(data)
    except pydantic.ValidationError as error:
        problems += [_from_pydantic(e, root, source, overridden) for e in error.errors()]
    if problems:
        # File order first (by line), then the problems without a line (overrides, top-level keys).
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        _raise(problems, source)
    return config


def _from_pydantic(error: dict, root: Node | None, source: str, overridden: dict[Loc, str]) -> _Problem:
    """One pydantic error as a problem at its key's line, in words a YAML user reads easily."""
    ctx = error.get("ctx") or {}
    loc = tuple(p for p in error["loc"] if p != "[key]") + tuple(ctx.get("kiln_at", ()))
    kind, message, value = error["type"], error["msg"], error.get("input")
    if kind == "missing":
        message = "Required key is missing"
    elif kind == "extra_forbidden":
        valid = _valid_keys(loc[:-1])
        hint = closest_match(str(loc[-1]), valid)
        message = f"Unknown key {loc[-1]!r}. " + (f"Did you mean {hint!r}?" if hint else
                                                   f"Valid keys here: {', '.join(valid)}")
    elif kind == "model_type":
        message = f"Expected a mapping of keys to values (key: value lines), got {_kind(value)}"
    elif kind != "kiln":  # kiln's own messages already say what was received
        if _is_scalar(value):
            message += f" (got {_show(value)})"
        if kind == "literal_error":
            choices = [c.strip("'") for c in ctx.get("expected", "").replace(" or ", ", ").split(", ")]
            hint = closest_match(str(value), choices) if isinstance(value, str) else None
            if hint:
                message += f". Did you mean {hint!r}?"
    for path, text in overridden.items():
        if loc[:len(path)] == path:
            return _Problem(f"--set {text}", None, _dotted(loc), message)
    return _Problem(source, _line_of(root, loc), _dotted(loc), message)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _show(value: Any) -> str:
    """A scalar as it would be written in YAML (true, null, 0.1, 'text')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the value {_show(value)}" if _is_scalar(value) else type(value).__name__


# ----- the schema, walked by path ------------------------------------------------------------


def _shape(annotation: Any) -> tuple[str, Any]:
    """What a field annotation holds: ("model", cls), ("list", item), ("dict", value), ("any", None) or ("scalar", None)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return "model", annotation
    if origin in (Union, types.UnionType):
        shapes = [_shape(arg) for arg in get_args(annotation) if arg is not type(None)]
        if sum(kind == "model" for kind, _ in shapes) > 1:
            return "any", None  # e.g. preprocessing: which model applies depends on the feature's type
        for kind in ("model", "list", "dict", "any"):
            for shape in shapes:
                if shape[0] == kind:
                    return shape
        return "scalar", None
    if origin is list:
        return "list", get_args(annotation)[0]
    if origin is dict:
        return "dict", get_args(annotation)[1]
    if annotation is Any:
        return "any", None
    return "scalar", None


def _field(model: type[pydantic.BaseModel], key: str) -> Any:
    """The annotation of ``model``'s field ``key``; Any for an extra key a model allows; KeyError otherwise."""
    if key in model.model_fields:
        return model.model_fields[key].annotation
    if model.model_config.get("extra") == "allow":
        return Any
    raise KeyError(key)


def _valid_keys(loc: Loc) -> list[str]:
    """The keys the schema allows at ``loc`` (a section); [] where the path leaves the schema."""
    annotation: Any = KilnConfig
    for part in loc:
        kind, inner = _shape(annotation)
        if kind == "model" and isinstance(part, str):
            try:
                annotation = _field(inner, part)
            except KeyError:
                return []
        elif kind in ("list", "dict"):
            annotation = inner
        else:
            return []
    kind, inner = _shape(annotation)
    return list(inner.model_fields) if kind == "model" else []


# ----- --set overrides -----------------------------------------------------------------------


def _apply_override(data: dict, text: str, overridden: dict[Loc, str]) -> _Problem | None:
    """Set one ``KEY.PATH=VALUE`` in ``data`` (in place); a problem if the path or value is wrong.

    The path is checked against the schema, so a typo gets a suggestion even where the file
    does not have that section yet (missing sections are created).
    """
    source = f"--set {text}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        return _Problem(source, None, "", "Expected KEY=VALUE, e.g. training.epochs=5")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        return _Problem(source, None, key, f"The value {raw!r} is not valid YAML ({reason}); quote it to set a text")
    parts = key.split(".")
    annotation: Any = KilnConfig
    container: Any = data
    loc: list[str | int] = []
    for depth, part in enumerate(parts):
        kind, inner = _shape(annotation)
        where = _dotted(tuple(loc)) or "the config"
        if kind == "model":
            try:
                annotation = _field(inner, part)
            except KeyError:
                valid = list(inner.model_fields)
                hint = closest_match(part, valid)
                return _Problem(source, None, key, f"Unknown key {part!r} in {where}. "
                                + (f"Did you mean {hint!r}?" if hint else f"Valid keys: {', '.join(valid)}"))
        elif kind == "scalar":
            return _Problem(source, None, key, f"{where} is a single value; it has no key {part!r}")
        else:  # list, dict or Any: the data decides between an index and a key
            annotation = inner if kind in ("list", "dict") else Any
        if isinstance(container, list):
            if not part.isdigit():
                return _Problem(source, None, key, f"{where} is a list; expected an item number, got {part!r}")
            index = int(part)
            if index >= len(container):
                return _Problem(source, None, key, f"{where} has {len(container)} item(s); "
                                f"item {index} does not exist (items are numbered from 0)")
            step: str | int = index
        elif isinstance(container, dict):
            if kind == "list":
                return _Problem(source, None, key, f"{where} is a mapping in the config, not a list")
            step = part
        else:
            return _Problem(source, None, key, f"{where} is {_kind(container)}, not a mapping; cannot set {part!r} in it")
        loc.append(step)
        if depth == len(parts) - 1:
            container[step] = value
        else:
            child = container.get(step) if isinstance(container, dict) else container[step]
            if child is None:
                child = {} if _shape(annotation)[0] != "list" else None
            elif isinstance(child, str) and _shape(annotation)[0] == "model":
                child = {"name": child}  # `optimizer: adam` + `training.optimizer.learning_rate=...`
            if child is None:
                return _Problem(source, None, key, f"{_dotted(tuple(loc))} is not in the config; "
                                "write the list in the file")
            container[step] = child
            container = child
    overridden[tuple(loc)] = text
    return None
