"""Numeric sequences: lists, arrays or ``"1, 2 3"`` strings -> float32 ``(rows, length)``, standardised, padded.

``mean``/``std`` are 0/1 unless the feature was fitted with ``normalization="standard"``; padded
positions hold ``padding_value`` either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.preprocessing.common import is_missing, row_name

__all__ = ["parse", "parse_column", "pad", "transform", "decode"]


def parse(value, row: str, where: str) -> np.ndarray:
    """One value as float64 ``(n,)``: a list/array, a string of numbers split by spaces and/or commas, or
    missing (empty)."""
    if isinstance(value, str):
        parts = value.strip().strip("[]").replace(",", " ").split()
        try:
            numbers = np.array(parts, dtype=np.float64)
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise EdgeDataError(f"{where}: {row} holds {value!r}, whose item {bad!r} is not a number. A "
                                f"sequence is numbers separated by spaces or commas, or a list.") from None
    elif is_missing(value):
        numbers = np.zeros(0)
    else:
        try:
            numbers = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise EdgeDataError(f"{where}: {row} holds {value!r}, which is not a sequence of numbers.") from None
    if not np.isfinite(numbers).all():
        raise EdgeDataError(f"{where}: {row} holds NaN or infinite values ({value!r}).")
    return numbers


def parse_column(series: pd.Series, where: str) -> list[np.ndarray]:
    """Every row's sequence, uncut."""
    return [parse(v, row_name(series.index, row), where) for v, row in zip(series.tolist(), series.index)]


def pad(sequences: list, length: int, padding_value: float, mean: float, std: float) -> np.ndarray:
    """float64 sequences (each at most ``length`` long) -> float32 ``(rows, length)``: ``(x - mean) / std``,
    then ``padding_value`` after each sequence's end."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    out = np.full((len(sequences), length), padding_value, dtype=np.float32)  # (rows, length)
    mask = np.arange(length)[None, :] < lengths[:, None]                      # real positions
    if sequences:
        out[mask] = (np.concatenate(sequences) - mean) / std  # row-major mask order = concatenation order
    return out


def transform(series: pd.Series, where: str, length: int, padding_value: float, mean: float,
              std: float) -> np.ndarray:
    """A column -> float32 ``(rows, length)``: each sequence cut at the end to ``length``, then ``pad``."""
    sequences = [s[:length] for s in parse_column(series, where)]
    return pad(sequences, length, padding_value, mean, std)


def decode(values: np.ndarray, length: int, mean: float, std: float, what: str) -> np.ndarray:
    """Outputs ``(rows, length)`` -> float64 values with the normalisation undone."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise EdgeError(f"{what} decodes outputs of shape (rows, {length}); received {tuple(values.shape)}.")
    return values * std + mean


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
