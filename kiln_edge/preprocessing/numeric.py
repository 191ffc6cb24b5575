"""Numeric columns: parse to float64, fill the missing values, normalise to float32 ``(rows, 1)``; decode back.

The fitted state (fill value, mean/std, min/max) comes from ``kiln.data.features.NumericFeature.fit``;
``scale`` turns it into the ``(shift, divisor)`` that ``transform`` and ``decode`` apply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.preprocessing.common import row_list, row_name

__all__ = ["numeric_values", "parse", "check_targets", "scale", "transform", "transform_values", "decode"]


def numeric_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """A column as float64 ``(rows,)`` with NaN where a value is missing, and the mask of non-numbers.

    Blank strings are missing values (a hand-edited CSV cell), not text. The mask is None for a
    numeric dtype (nothing to check).
    """
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiub":  # plain NumPy numbers: skip
        return np.asarray(series.to_numpy(), dtype=np.float64), None          # pandas' astype (~50 us/column)
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy(), None
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(values) & ~series.isna().to_numpy()
    for i in np.flatnonzero(bad):
        value = series.iloc[i]
        bad[i] = not (isinstance(value, str) and not value.strip())
    return values, bad


def parse(series: pd.Series, where: str) -> np.ndarray:
    """The column as float64 with NaN where a value is missing; text or infinity is an EdgeDataError."""
    values, bad = numeric_values(series)
    if bad is not None and bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise EdgeDataError(f"{where}: {row_name(series.index, series.index[first])} "
                            f"holds {series.iloc[first]!r}, which is not a "
                            f"number ({int(bad.sum())} such rows: {row_list(series.index[bad])}). Fix those "
                            f"values, or declare the column as a category or text feature.")
    _check_finite(values, series.index, where)
    return values


def _check_finite(values: np.ndarray, index, where: str) -> None:
    """Infinity is refused; ``index`` names the rows (a Series' labels, or positions)."""
    infinite = np.isinf(values)
    if infinite.any():
        raise EdgeDataError(f"{where}: infinite values in {row_list(index[infinite])}. Replace them with a "
                            f"finite number or leave them empty (filled with `fill_missing`).")


def check_targets(series: pd.Series, values: np.ndarray, where: str) -> None:
    """An output (target) column may not miss a value: it cannot be filled."""
    if np.isnan(values).any():
        raise EdgeDataError(f"{where}: no target value in {row_list(series.index[np.isnan(values)])}. Drop those "
                            f"rows: a missing target cannot be filled.")


def scale(normalization: str | None, mean: float, std: float, minimum: float, maximum: float) -> tuple[float, float]:
    """``(shift, divisor)`` of the normalisation; a zero spread counts as 1 (a constant training column)."""
    if normalization == "standard":
        return mean, std if std > 0 else 1.0
    if normalization == "minmax":
        spread = maximum - minimum
        return minimum, spread if spread > 0 else 1.0
    return 0.0, 1.0


def transform(series: pd.Series, where: str, *, output: bool, fill_value: float, shift: float,
              divisor: float) -> np.ndarray:
    """A column -> float32 ``(rows, 1)``: parsed, missing values filled, ``(x - shift) / divisor``."""
    values = parse(series, where)
    if output:
        check_targets(series, values, where)
    return transform_values(values, where, fill_value=fill_value, shift=shift, divisor=divisor)


def transform_values(values: np.ndarray, where: str, *, fill_value: float, shift: float,
                     divisor: float) -> np.ndarray:
    """Numbers already parsed, float64 ``(rows,)`` with NaN where missing -> float32 ``(rows, 1)``.

    The array entry of ``transform`` (which parses a Series, then calls this): the server's
    records arrive as checked floats, so it skips pandas. Rows are named by position. Several
    columns at once: ``(rows, k)`` with ``fill_value``/``shift``/``divisor`` of shape ``(k,)``
    -> float32 ``(rows, k)``, each column bit for bit what it gives alone (elementwise float64).
    """
    values = np.asarray(values, dtype=np.float64)
    _check_finite(values, np.arange(len(values)), where)
    values = np.where(np.isnan(values), fill_value, values)
    with np.errstate(over="ignore"):  # a huge value becomes inf; LoadedRun / the trainer refuse it by row
        return ((values - shift) / divisor).astype(np.float32).reshape(len(values), -1)  # (rows, 1) or (rows, k)


def decode(values: np.ndarray, shift: float, divisor: float, what: str) -> np.ndarray:
    """Model outputs ``(rows, 1)`` or ``(rows,)`` (float64) -> values in the column's units, float64 ``(rows,)``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim > 1:
        if values.ndim != 2 or values.shape[1] != 1:
            raise EdgeError(f"{what} decodes outputs of shape (rows, 1) or (rows,); received {tuple(values.shape)}.")
        values = values[:, 0]
    return values * divisor + shift
