"""What every feature type shares: picking its column, how an error names rows, what counts as missing."""

from __future__ import annotations

import difflib
import math

import numpy as np
import pandas as pd

from kiln_edge.errors import EdgeDataError

__all__ = ["select", "row_list", "is_missing"]


def select(data, column: str, what: str) -> pd.Series:
    """A feature's column: ``data`` itself (a Series, list or array) or ``data[column]`` of a DataFrame.

    Args:
        data: a DataFrame, Series, array (2-D or more: one array per row) or list.
        column: the column the feature reads.
        what: the feature, as errors name it ("input numeric feature 'x'").
    """
    if isinstance(data, pd.DataFrame):
        if column not in data.columns:
            columns = [str(c) for c in data.columns]
            # kiln.errors.closest_match's rule (kiln_edge cannot import kiln: it would import torch)
            close = difflib.get_close_matches(str(column).lower(), columns, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise EdgeDataError(f"The data has no column {column!r} for {what}.{hint} Columns: {', '.join(columns)}. "
                                f"Fix the feature's `column`, or rename the column in the data.")
        return data[column]
    if isinstance(data, pd.Series):
        return data
    if isinstance(data, np.ndarray):
        return pd.Series(list(data) if data.ndim > 1 else data, name=column)
    return pd.Series(list(data), name=column)


def row_list(index, limit: int = 5) -> str:
    """'rows 3, 8, 9' (the index labels), shortened to ``limit`` with the total count."""
    rows = list(index)
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {', '.join(str(r) for r in rows[:limit])}{more}"


def is_missing(value) -> bool:
    """None or a float NaN (arrays and strings are never missing)."""
    if value is None:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)
