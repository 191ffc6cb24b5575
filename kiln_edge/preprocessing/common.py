"""What every feature type shares: how an error names rows, and what counts as a missing value."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["row_list", "is_missing"]


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
