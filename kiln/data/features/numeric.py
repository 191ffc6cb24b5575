"""NumericFeature: a number per row, missing values filled and normalised with training statistics.

``fit`` learns, from the training split's observed (non-missing) values: the fill value
(mean, median, 0 or a given number) and the normalisation's statistics (mean and population
standard deviation for "standard", as Keras's ``Normalization``; min and max for "minmax").
``transform`` fills, then normalises: ``(x - mean) / std`` or ``(x - min) / (max - min)``. A
constant training column has std (or range) 0; it is taken as 1 so values stay finite.
``decode`` inverts the normalisation, so a regression model's outputs come back in the
column's units.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_choice, row_list
from kiln.errors import DataError, KilnValueError, ShapeError
from kiln_edge.features import numeric_values

__all__ = ["NumericFeature"]

_NORMALIZATIONS = ("standard", "minmax", None)
_FILLS = ("mean", "median", "zero")


class NumericFeature(Feature):
    """A numeric column as a ``(rows, 1)`` float32 tensor.

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: True for a regression target.
        normalization: "standard" (default: zero mean, unit variance), "minmax" (to [0, 1] on the
            training range) or None.
        fill_missing: what replaces NaN/None: "mean" (default), "median", "zero" or a number.

    Example::

        f = NumericFeature("x").fit(pd.Series([1.0, 2.0, 3.0]))   # mean 2, std 0.8165
        f.transform(pd.Series([3.0, None]))  # [[1.2247], [0.0]]: None -> the mean -> 0
    """

    type = "numeric"

    def __init__(self, name: str, column: str | None = None, *, output: bool = False,
                 normalization: str | None = "standard", fill_missing: str | float = "mean"):
        super().__init__(name, column, output=output)
        self.normalization = check_choice("normalization", normalization, _NORMALIZATIONS)
        if isinstance(fill_missing, str) or fill_missing is None or isinstance(fill_missing, bool):
            fill_missing = check_choice("fill_missing", fill_missing, _FILLS)
        elif not isinstance(fill_missing, numbers.Real) or not np.isfinite(fill_missing):
            raise KilnValueError(f"Received an invalid value for `fill_missing`, expected 'mean', 'median', "
                                 f"'zero' or a finite number. Received: fill_missing={fill_missing!r}")
        else:
            fill_missing = float(fill_missing)
        self.fill_missing = fill_missing
        self.fill_value = 0.0
        self.mean, self.std, self.min, self.max = 0.0, 1.0, 0.0, 1.0

    def get_config(self) -> dict:
        return {"normalization": self.normalization, "fill_missing": self.fill_missing}

    def _numbers(self, series: pd.Series) -> np.ndarray:
        """The column as float64 with NaN where a value is missing; text is a DataError."""
        values, bad = numeric_values(series)  # kiln_edge's parsing: blank strings are missing, not text
        if bad is not None and bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{self._where()}: row {series.index[first]} holds {series.iloc[first]!r}, which is "
                            f"not a number ({int(bad.sum())} such rows: {row_list(series.index[bad])}). Fix "
                            f"those values, or declare the column as a category or text feature.")
        infinite = np.isinf(values)
        if infinite.any():
            raise DataError(f"{self._where()}: infinite values in {row_list(series.index[infinite])}. Replace "
                            f"them with a finite number or leave them empty (filled with `fill_missing`).")
        return values

    def _check_targets(self, series: pd.Series, values: np.ndarray) -> None:
        if self.output and np.isnan(values).any():
            raise DataError(f"{self._where()}: no target value in {row_list(series.index[np.isnan(values)])}. "
                            f"Drop those rows: a missing target cannot be filled.")

    def _fit(self, series: pd.Series) -> None:
        values = self._numbers(series)
        self._check_targets(series, values)
        observed = values[~np.isnan(values)]
        if observed.size == 0:
            raise DataError(f"{self._where()}: every training value is missing, so there is nothing to learn "
                            f"a fill value or statistics from. Drop the feature or fill the column.")
        fills = {"mean": lambda: observed.mean(), "median": lambda: np.median(observed), "zero": lambda: 0.0}
        self.fill_value = float(fills[self.fill_missing]()) if isinstance(self.fill_missing, str) \
            else self.fill_missing
        self.mean, self.std = float(observed.mean()), float(observed.std())
        self.min, self.max = float(observed.min()), float(observed.max())

    def _scale(self) -> tuple[float, float]:
        """``(shift, divisor)`` of the normalisation; a zero spread counts as 1."""
        if self.normalization == "standard":
            return self.mean, self.std if self.std > 0 else 1.0
        if self.normalization == "minmax":
            spread = self.max - self.min
            return self.min, spread if spread > 0 else 1.0
        return 0.0, 1.0

    def _transform(self, series: pd.Series) -> torch.Tensor:
        values = self._numbers(series)
        self._check_targets(series, values)
        values = np.where(np.isnan(values), self.fill_value, values)
        shift, divisor = self._scale()
        return torch.from_numpy(((values - shift) / divisor).astype(np.float32)).reshape(-1, 1)  # (rows, 1)

    def decode(self, outputs) -> np.ndarray:
        """Model outputs ``(rows, 1)`` or ``(rows,)`` -> values in the column's units, float64 ``(rows,)``."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().double().numpy() if torch.is_tensor(outputs) \
            else np.asarray(outputs, dtype=np.float64)
        if values.ndim > 1:
            if values.ndim != 2 or values.shape[1] != 1:
                raise ShapeError(f"{self._what()} decodes outputs of shape (rows, 1) or (rows,); received "
                                 f"{tuple(values.shape)}.")
            values = values[:, 0]
        shift, divisor = self._scale()
        return values * divisor + shift

    def _spec(self) -> dict:
        return {"shape": (1,), "dtype": "float32"}

    def _fitted_state(self):
        return {"fill_value": self.fill_value, "mean": self.mean, "std": self.std,
                "min": self.min, "max": self.max}, {}

    def _load_fitted(self, fitted, tensors):
        for key in ("fill_value", "mean", "std", "min", "max"):
            setattr(self, key, float(fitted[key]))
