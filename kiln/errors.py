"""kiln's exceptions: every error a user can cause is a ``KilnError``.

Why: a user should be able to ``except kiln.errors.KilnError`` around kiln calls, and
each error subclasses the matching builtin too (``ValueError``, ``TypeError``, ...),
so code written for plain Python/Keras keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "KilnError",
    "KilnValueError",
    "KilnTypeError",
    "ShapeError",
    "NotCompiledError",
    "NaNLossError",
    "ConfigError",
    "SerializationError",
    "DataError",
    "closest_match",
    "unknown_name_error",
]


class KilnError(Exception):
    """Base class of every error kiln raises on purpose."""


class KilnValueError(KilnError, ValueError):
    """An argument has the right type but a value kiln cannot use."""


class KilnTypeError(KilnError, TypeError):
    """An argument has a type kiln cannot use."""


class ShapeError(KilnValueError):
    """A tensor's shape does not fit what a layer or the loss expects."""


class NotCompiledError(KilnError, RuntimeError):
    """``fit``/``evaluate`` was called before ``compile``."""


class NaNLossError(KilnError, FloatingPointError):
    """The training loss became NaN or infinite."""


class ConfigError(KilnValueError):
    """A configuration (YAML, JSON or dict) is invalid; lists every problem found."""


class SerializationError(KilnValueError):
    """A file is not a kiln model/weights file, or does not match the model."""


class DataError(KilnValueError):
    """Data that kiln cannot use: names the file, column or row and the fix."""


def closest_match(name: str, choices: Iterable[str]) -> str | None:
    """Return the valid choice nearest to ``name`` (for "did you mean ...?"), or None."""
    matches = difflib.get_close_matches(str(name).lower(), [str(c) for c in choices], n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> KilnValueError:
    """Build the error for an unknown identifier, suggesting the nearest valid one.

    Example: ``unknown_name_error("optimizer", "adma", ["adam", "sgd"])`` gives
    "Unknown optimizer: 'adma'. Did you mean 'adam'? Valid names: adam, sgd."
    """
    choices = sorted(set(choices))
    hint = closest_match(name, choices)
    msg = f"Unknown {kind}: {name!r}."
    if hint:
        msg += f" Did you mean {hint!r}?"
    msg += f" Valid names: {', '.join(choices)}."
    return KilnValueError(msg)
