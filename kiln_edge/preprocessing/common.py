"""What every feature type shares: picking its column, how an error names rows, what counts as missing."""

from __future__ import annotations

import difflib
import math

import numpy as np
import pandas as pd

from kiln_edge.errors import EdgeDataError

__all__ = ["select", "row_list", "row_name", "plain", "is_missing", "FILE_ROW", "LINE"]

# Index names that ``row_list`` reads as units: the row of a CSV file as a spreadsheet numbers it
# (the header is file row 1), and the line of a JSON Lines file.
FILE_ROW, LINE = "file row", "line"


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
            if len(columns) == 1 and any(c in columns[0] for c in ";\t|,"):  # a file split at the wrong separator
                hint += (f" The data has a single column {columns[0]!r}: the file's separator is probably not "
                         f"the one it was read with. Set it (a config's `data.options.sep`, read_source's `sep=`).")
            raise EdgeDataError(f"The data has no column {column!r} for {what}.{hint} Columns: {', '.join(columns)}. "
                                f"Fix the feature's `column`, or rename the column in the data.")
        return data[column]
    if isinstance(data, pd.Series):
        return data
    if isinstance(data, np.ndarray):
        return pd.Series(list(data) if data.ndim > 1 else data, name=column)
    return pd.Series(list(data), name=column)


def row_list(index, limit: int = 5) -> str:
    """'rows 3, 8, 9' (the index labels), shortened to ``limit`` with the total count.

    The index's name says what its labels count: ``kiln.data.read_source`` names a CSV's index
    "file row" (1 is the header) and a JSON Lines file's "line", so the rows read "file rows 77, 80"
    wherever the frame went (a training split keeps its source's labels). Other indexes: "rows".
    """
    rows = list(index)
    unit = getattr(index, "name", None) if getattr(index, "name", None) in (FILE_ROW, LINE) else "row"
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{unit}{'s' if len(rows) > 1 else ''} {', '.join(str(r) for r in rows[:limit])}{more}"


def row_name(index, label) -> str:
    """One row as ``row_list`` names it: 'file row 77', 'line 12' or 'row 3'."""
    return row_list(pd.Index([label], name=getattr(index, "name", None)))


def plain(value):
    """A value as a message shows it: ``0``, not ``np.int64(0)`` (NumPy scalars as Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def is_missing(value) -> bool:
    """None or a float NaN (arrays and strings are never missing)."""
    if value is None:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)
