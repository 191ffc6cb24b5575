"""The Feature protocol: a column preprocessor fitted on the training split and saved with the model.

A feature turns one column of the table (a ``pandas.Series``, one value per example) into a
tensor batch. Its life is the Keras layer contract applied to data::

    feature = NumericFeature("price")           # __init__: validate and store the options
    feature.fit(train["price"])                 # learn statistics from the TRAINING split only
    x = feature.transform(valid["price"])       # (rows, 1) float32, any split
    feature.spec()                              # {"shape": (1,), "dtype": "float32"}: for the model builder
    feature.decode(model_outputs)               # output features: outputs -> labels / values
    config, tensors = feature.state()           # JSON-able dict + {name: tensor}
    NumericFeature.from_state(config, tensors)  # the same fitted feature again

``save_features``/``load_features`` write a list of fitted features to ``features.json``
(types, options, fitted state without tensors) and ``features.safetensors`` (fitted tensors),
never pickle. Errors in the data are ``DataError`` naming the column, row or file and the fix;
errors in the options are ``KilnValueError`` naming the option, as Keras words them.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch

from kiln.errors import DataError, KilnValueError, closest_match
from kiln_edge.errors import EdgeError
# The transforms, decodes and the features-file reader are kiln_edge's NumPy code (torch-free, and
# installed with kiln): both packages give the same arrays and word errors alike. row_list and
# is_missing are imported by the feature modules from here.
from kiln_edge.preprocessing.common import is_missing, row_list, select  # noqa: F401
from kiln_edge.preprocessing.features_file import FEATURES_JSON, FEATURES_SAFETENSORS  # noqa: F401

__all__ = ["Feature", "FEATURES_JSON", "FEATURES_SAFETENSORS"]

_PROGRESS_ITEMS = 500  # more values than this: show the decoding bar at once (else after 1 s)


class Feature:
    """One column's preprocessor: ``fit`` on the training split, ``transform`` any split.

    Args:
        name: the feature's name, also the column it reads unless ``column`` is given.
        column: the table column to read (default: ``name``).
        output: True for a feature the model predicts (a target); category features then have
            no ``<unk>`` entry and unseen or missing labels are errors.

    Subclasses set ``type`` and implement ``_fit``, ``_transform``, ``_spec``, ``get_config``,
    ``_fitted_state``/``_load_fitted`` and, for output features, ``decode``.
    """

    type: str = ""
    can_be_output: bool = True  # False where there is no decode (images, audio)

    def __init__(self, name: str, column: str | None = None, *, output: bool = False):
        if not isinstance(name, str) or not name:
            raise KilnValueError(f"Received an invalid value for `name`, expected a non-empty string. "
                                 f"Received: name={name!r}")
        if column is not None and not isinstance(column, str):
            raise KilnValueError(f"Received an invalid value for `column`, expected a column name (a string) or "
                                 f"None. Received: column={column!r}")
        if not isinstance(output, bool):
            raise KilnValueError(f"Received an invalid value for `output`, expected True or False. "
                                 f"Received: output={output!r}")
        if output and not self.can_be_output:
            raise KilnValueError(f"An {self.type} feature cannot be an output ({name!r}): kiln cannot decode model "
                                 f"outputs into {self.type}. Use it as an input feature.")
        self.name = name
        self.column = column if column is not None else name
        self.output = output
        self.fitted = False

    # ---- the protocol ------------------------------------------------------------------------
    def fit(self, column) -> "Feature":
        """Learn the feature's statistics/vocabulary from the training split; returns self."""
        series = self._select(column)
        self._check_not_empty(series)
        self._fit(series)
        self.fitted = True
        return self

    def transform(self, column) -> torch.Tensor:
        """Encode a column (any split) into a batch tensor of shape ``(rows, *spec()["shape"])``."""
        self._check_fitted("transform")
        return self._transform(self._select(column))

    def transform_values(self, values: np.ndarray) -> torch.Tensor:
        """``transform`` of one column given as a 1-D array (the server's records, no pandas Series):
        the same output and errors. Numeric and category inputs have an array path
        (``_transform_values``); the other types build the Series here."""
        self._check_fitted("transform_values")
        return self._transform_values(values)

    def fit_transform(self, column) -> torch.Tensor:
        """``fit`` then ``transform`` on the same (training) column (audio decodes it only once)."""
        series = self._select(column)
        self._check_not_empty(series)
        out = self._fit_transform(series)
        self.fitted = True
        return out

    def spec(self) -> dict:
        """What the model builder needs: ``shape`` (per sample), ``dtype`` and type-specific keys."""
        self._check_fitted("spec")
        return self._spec()

    def decode(self, outputs) -> list | np.ndarray:
        """Model outputs -> labels or values (output features only)."""
        raise KilnValueError(f"{self._what()} cannot decode model outputs: only numeric, category, binary, "
                             f"text and sequence features can be outputs.")

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """``(config, tensors)``: a JSON-able dict (type, options, fitted state) and fitted tensors."""
        fitted, tensors = self._fitted_state() if self.fitted else (None, {})
        config = {"type": self.type, "name": self.name, "column": self.column, "output": self.output,
                  "options": self.get_config(), "fitted": fitted}
        return config, dict(tensors)

    @classmethod
    def from_state(cls, config: dict, tensors: dict) -> "Feature":
        """Rebuild a feature from ``state()``'s output."""
        feature = cls(config["name"], column=config.get("column"), output=bool(config.get("output", False)),
                      **config.get("options", {}))
        if config.get("fitted") is not None:
            feature._load_fitted(config["fitted"], dict(tensors))
            feature.fitted = True
        return feature

    # ---- for subclasses ------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor options (not name/column/output), JSON-able."""
        return {}

    def _fit(self, series: pd.Series) -> None:
        raise NotImplementedError

    def _transform(self, series: pd.Series) -> torch.Tensor:
        raise NotImplementedError

    def _transform_values(self, values: np.ndarray) -> torch.Tensor:
        return self._transform(pd.Series(values, name=self.column))

    def _fit_transform(self, series: pd.Series) -> torch.Tensor:
        self._fit(series)
        self.fitted = True
        return self._transform(series)

    def _spec(self) -> dict:
        raise NotImplementedError

    def _fitted_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return {}, {}

    def _load_fitted(self, fitted: dict, tensors: dict[str, torch.Tensor]) -> None:
        pass

    # ---- helpers -------------------------------------------------------------------------------
    def _what(self) -> str:
        return f"{'output' if self.output else 'input'} {self.type} feature {self.name!r}"

    def _where(self) -> str:
        """The start of every DataError: which column and feature."""
        return f"Column {self.column!r} ({self._what()})"

    def _check_not_empty(self, series: pd.Series) -> None:
        if len(series) == 0:
            raise DataError(f"Cannot fit {self._what()} on an empty column {self.column!r}: the training split "
                            f"has no rows.")

    def _check_fitted(self, method: str) -> None:
        if not self.fitted:
            raise KilnValueError(f"{self._what()} is not fitted yet: call fit() on the training split before "
                                 f"{method}().")

    def _select(self, data) -> pd.Series:
        """The feature's column: ``data`` itself (a Series, list or array) or ``data[self.column]``."""
        with kiln_errors():
            return select(data, self.column, self._what())

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        column = f", column={self.column!r}" if self.column != self.name else ""
        output = ", output=True" if self.output else ""
        return f"{type(self).__name__}({self.name!r}{column}{output}{', ' if options else ''}{options})"


# ---- option checks shared by the feature types ------------------------------------------------
def check_choice(option: str, value, choices: Iterable) -> Any:
    """``value`` must be one of ``choices`` (strings or None); names the nearest valid one."""
    choices = list(choices)
    if any(value is c or (isinstance(value, str) and value == c) for c in choices):
        return value
    shown = ", ".join(repr(c) for c in choices)
    hint = closest_match(value, [c for c in choices if isinstance(c, str)]) if isinstance(value, str) else None
    raise KilnValueError(f"Received an invalid value for `{option}`, expected one of {shown}. "
                         f"Received: {option}={value!r}{f'. Did you mean {hint!r}?' if hint else ''}")


def check_int(option: str, value, minimum: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = f"an integer >= {minimum}{' or None' if allow_none else ''}"
        raise KilnValueError(f"Received an invalid value for `{option}`, expected {expected}. "
                             f"Received: {option}={value!r}")
    return int(value)


def check_bool(option: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise KilnValueError(f"Received an invalid value for `{option}`, expected True or False. "
                             f"Received: {option}={value!r}")
    return bool(value)


def check_number(option: str, value, positive: bool = False) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or (positive and value <= 0)):
        expected = "a positive number" if positive else "a finite number"
        raise KilnValueError(f"Received an invalid value for `{option}`, expected {expected}. "
                             f"Received: {option}={value!r}")
    return float(value)


# ---- value helpers --------------------------------------------------------------------------------
def to_python(value):
    """A numpy scalar as the Python value JSON can hold (``np.int64(3)`` -> ``3``)."""
    return value.item() if isinstance(value, np.generic) else value


def sort_key(value):
    """Order mixed labels deterministically: booleans, then numbers by value, then text."""
    if isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    if isinstance(value, numbers.Real):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def progress(iterable: Iterable, total: int, desc: str):
    """A tqdm bar on stderr for slow decoding loops: at once for > 500 items, else after 1 s."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, unit="item", leave=False,
                delay=0.0 if total > _PROGRESS_ITEMS else 1.0)


@contextmanager
def kiln_errors(kind: type = DataError) -> Iterator[None]:
    """Re-raise kiln_edge's errors (the shared NumPy code's) as kiln's ``kind``, with the same message.

    kiln_edge cannot import kiln's errors (they would import torch), so its code raises its own;
    kiln's callers catch ``DataError``, ``ShapeError`` or ``SerializationError``.
    """
    try:
        yield
    except EdgeError as err:
        raise kind(str(err)) from err.__cause__
