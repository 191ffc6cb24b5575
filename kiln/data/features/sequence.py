"""SequenceFeature: a numeric sequence per row (a time series, a signal) as a padded float32 row.

Values are lists, tuples or 1-D arrays of numbers, or strings of numbers separated by spaces
and/or commas (``"1 2 3"``, ``"1,2,3"``, ``"1, 2, 3"``); a missing value is an empty sequence.
Rows are cut at the end, or padded at the end with ``padding_value``, to ``max_length`` — given,
or the longest training sequence. With ``normalization="standard"`` the real values (not the
padding) are standardised with the mean and standard deviation of every training value;
padded positions hold ``padding_value`` either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_choice, check_int, check_number, kiln_errors
from kiln.errors import DataError, ShapeError
from kiln_edge.preprocessing import sequence

__all__ = ["SequenceFeature"]

_NORMALIZATIONS = (None, "standard")


class SequenceFeature(Feature):
    """Numeric sequences as float32 ``(rows, max_length)``.

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: True for a sequence target (``decode`` undoes the normalisation).
        max_length: values per row (default None: the longest training sequence).
        padding_value: the value of padded positions (default 0.0).
        normalization: None (default) or "standard".

    Example::

        f = SequenceFeature("signal").fit(pd.Series(["1 2 3", "4,5"]))
        f.transform(pd.Series([[7, 8]]))  # tensor([[7., 8., 0.]])
    """

    type = "sequence"

    def __init__(self, name: str, column: str | None = None, *, output: bool = False, max_length: int | None = None,
                 padding_value: float = 0.0, normalization: str | None = None):
        super().__init__(name, column, output=output)
        self.max_length = check_int("max_length", max_length, allow_none=True)
        self.padding_value = check_number("padding_value", padding_value)
        self.normalization = check_choice("normalization", normalization, _NORMALIZATIONS)
        self.length = self.max_length  # fitted: the row length
        self.mean, self.std = 0.0, 1.0

    def get_config(self) -> dict:
        return {"max_length": self.max_length, "padding_value": self.padding_value,
                "normalization": self.normalization}

    def _fit(self, series: pd.Series) -> None:
        with kiln_errors():
            sequences = sequence.parse_column(series, self._where())
        lengths = [len(s) for s in sequences]
        self.length = self.max_length if self.max_length is not None else max(max(lengths), 1)
        values = np.concatenate(sequences) if sequences else np.zeros(0)
        if self.normalization == "standard":
            if values.size == 0:
                raise DataError(f"{self._where()}: every training sequence is empty; there is nothing to "
                                f"standardise with.")
            std = float(values.std())
            self.mean, self.std = float(values.mean()), std if std > 0 else 1.0

    def _transform(self, series: pd.Series) -> torch.Tensor:
        with kiln_errors():
            out = sequence.transform(series, self._where(), self.length, self.padding_value, self.mean, self.std)
        return torch.from_numpy(out)  # (rows, length)

    def decode(self, outputs) -> np.ndarray:
        """Outputs ``(rows, max_length)`` -> values with the normalisation undone, float64."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().double().numpy() if torch.is_tensor(outputs) else outputs
        with kiln_errors(ShapeError):
            return sequence.decode(values, self.length, self.mean, self.std, self._what())

    def _spec(self) -> dict:
        return {"shape": (self.length,), "dtype": "float32", "max_length": self.length}

    def _fitted_state(self):
        return {"length": self.length, "mean": self.mean, "std": self.std}, {}

    def _load_fitted(self, fitted, tensors):
        self.length = int(fitted["length"])
        self.mean, self.std = float(fitted["mean"]), float(fitted["std"])

