"""Binary columns: ``[negative, positive]`` values -> float32 0.0 / 1.0 ``(rows, 1)``; probabilities -> labels.

Missing values are 0.0 in an input feature and an error in an output feature (a target must be
one of its two values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.preprocessing.common import plain, row_list, row_name

__all__ = ["missing", "transform", "decode"]


def missing(series: pd.Series, where: str, output: bool) -> np.ndarray:
    """Where the column is NaN/None; an error for an output feature."""
    mask = series.isna().to_numpy()
    if output and mask.any():
        raise EdgeDataError(f"{where}: no label (NaN/None) in {row_list(series.index[mask])}. Drop or fill those "
                            f"rows: a binary target must be one of its two values.")
    return mask


def transform(series: pd.Series, where: str, classes: list, output: bool) -> np.ndarray:
    """The column -> float32 ``(rows, 1)``: 1.0 for ``classes[1]``, 0.0 for ``classes[0]`` (and missing inputs)."""
    negative, positive = classes
    is_positive = series.isin([positive]).to_numpy()
    is_negative = series.isin([negative]).to_numpy()
    odd = ~(is_positive | is_negative | missing(series, where, output))
    if odd.any():
        first = int(np.flatnonzero(odd)[0])
        raise EdgeDataError(f"{where}: {row_name(series.index, series.index[first])} "
                            f"holds {plain(series.iloc[first])!r}, which is neither "
                            f"{negative!r} nor {positive!r} (the training values; {row_list(series.index[odd])}). "
                            f"Fix those values, or use a category feature.")
    return is_positive.astype(np.float32).reshape(-1, 1)  # (rows, 1)


def decode(values: np.ndarray, classes: list, what: str) -> list:
    """Probabilities ``(rows, 1)`` or ``(rows,)`` -> the positive label where >= 0.5, else the negative."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise EdgeError(f"{what} decodes probabilities of shape (rows, 1) or (rows,); received "
                        f"{tuple(values.shape)}.")
    negative, positive = classes
    return [positive if p >= 0.5 else negative for p in values.tolist()]
