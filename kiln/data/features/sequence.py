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

from kiln.data.features.base import Feature, check_choice, check_int, check_number, is_missing
from kiln.errors import DataError, ShapeError
from kiln_edge.features import pad_sequences

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

    def _parse(self, value, row) -> np.ndarray:
        if isinstance(value, str):
            parts = value.strip().strip("[]").replace(",", " ").split()
            try:
                numbers = np.array(parts, dtype=np.float64)
            except ValueError:
                bad = next(p for p in parts if not _is_float(p))
                raise DataError(f"{self._where()}: row {row} holds {value!r}, whose item {bad!r} is not a number. "
                                f"A sequence is numbers separated by spaces or commas, or a list.") from None
        elif is_missing(value):
            numbers = np.zeros(0)
        else:
            try:
                numbers = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise DataError(f"{self._where()}: row {row} holds {value!r}, which is not a sequence of numbers."
                                ) from None
        if not np.isfinite(numbers).all():
            raise DataError(f"{self._where()}: row {row} holds NaN or infinite values ({value!r}).")
        return numbers

    def _sequences(self, series: pd.Series) -> list[np.ndarray]:
        return [self._parse(v, row) for v, row in zip(series.tolist(), series.index)]

    def _fit(self, series: pd.Series) -> None:
        sequences = self._sequences(series)
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
        sequences = [s[:self.length] for s in self._sequences(series)]
        return torch.from_numpy(pad_sequences(sequences, self.length, self.padding_value, self.mean,
                                              self.std))  # (rows, length)

    def decode(self, outputs) -> np.ndarray:
        """Outputs ``(rows, max_length)`` -> values with the normalisation undone, float64."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().double().numpy() if torch.is_tensor(outputs) \
            else np.asarray(outputs, dtype=np.float64)
        if values.ndim != 2:
            raise ShapeError(f"{self._what()} decodes outputs of shape (rows, {self.length}); received "
                             f"{tuple(values.shape)}.")
        return values * self.std + self.mean

    def _spec(self) -> dict:
        return {"shape": (self.length,), "dtype": "float32", "max_length": self.length}

    def _fitted_state(self):
        return {"length": self.length, "mean": self.mean, "std": self.std}, {}

    def _load_fitted(self, fitted, tensors):
        self.length = int(fitted["length"])
        self.mean, self.std = float(fitted["mean"]), float(fitted["std"])


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
