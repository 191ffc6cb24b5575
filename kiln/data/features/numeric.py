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

from kiln.data.features.base import Feature, check_choice, kiln_errors
from kiln.errors import DataError, KilnValueError, ShapeError
from kiln_edge.preprocessing import numeric

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

    def _fit(self, series: pd.Series) -> None:
        with kiln_errors():  # kiln_edge's parsing: blank strings are missing, not text
            values = numeric.parse(series, self._where())
            if self.output:
                numeric.check_targets(series, values, self._where())
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
        return numeric.scale(self.normalization, self.mean, self.std, self.min, self.max)

    def _transform(self, series: pd.Series) -> torch.Tensor:
        shift, divisor = self._scale()
        with kiln_errors():
            values = numeric.transform(series, self._where(), output=self.output, fill_value=self.fill_value,
                                       shift=shift, divisor=divisor)
        return torch.from_numpy(values)  # (rows, 1)

    def scaling(self) -> tuple[float, float, float]:
        """``(fill_value, shift, divisor)``: what ``numeric.transform_values`` applies."""
        return (self.fill_value, *self._scale())

    def _transform_values(self, values: np.ndarray) -> torch.Tensor:
        if self.output or values.dtype.kind != "f":  # targets are checked, text is parsed: the Series path
            return super()._transform_values(values)
        shift, divisor = self._scale()
        with kiln_errors():
            out = numeric.transform_values(values, self._where(), fill_value=self.fill_value, shift=shift,
                                           divisor=divisor)
        return torch.from_numpy(out)  # (rows, 1)

    def decode(self, outputs) -> np.ndarray:
        """Model outputs ``(rows, 1)`` or ``(rows,)`` -> values in the column's units, float64 ``(rows,)``."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().double().numpy() if torch.is_tensor(outputs) else outputs
        with kiln_errors(ShapeError):
            return numeric.decode(values, *self._scale(), self._what())

    def _spec(self) -> dict:
        return {"shape": (1,), "dtype": "float32"}

    def _fitted_state(self):
        return {"fill_value": self.fill_value, "mean": self.mean, "std": self.std,
                "min": self.min, "max": self.max}, {}

    def _load_fitted(self, fitted, tensors):
        for key in ("fill_value", "mean", "std", "min", "max"):
            setattr(self, key, float(fitted[key]))
