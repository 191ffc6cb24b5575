"""Comparison and logic ops: elementwise comparisons returning bool tensors, and ``isclose``.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

from typing import Any

import torch

from kiln.ops._base import _op, _pair, _promote

__all__ = [
    "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or",
    "logical_xor", "isclose",
]


# ============================================================================ comparison and logic
@_op
def equal(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 == x2`` (booleans)."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 == x2


@_op
def not_equal(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 != x2`` (booleans)."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 != x2


@_op
def greater(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 > x2`` (booleans)."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 > x2


@_op
def greater_equal(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 >= x2`` (booleans)."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 >= x2


@_op
def less(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 < x2`` (booleans)."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 < x2


@_op
def less_equal(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 <= x2`` (booleans)."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 <= x2


@_op
def logical_and(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 and x2`` elementwise (non-zero counts as True)."""
    return torch.logical_and(*_pair(x1, x2))


@_op
def logical_or(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 or x2`` elementwise (non-zero counts as True)."""
    return torch.logical_or(*_pair(x1, x2))


@_op
def logical_xor(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 xor x2`` elementwise (non-zero counts as True)."""
    return torch.logical_xor(*_pair(x1, x2))


@_op
def isclose(x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> torch.Tensor:
    """True where ``|x1 - x2| <= atol + rtol * |x2|``, as NumPy."""
    x1, x2 = _pair(x1, x2)
    x1, x2 = torch.broadcast_tensors(*_promote(x1, x2))
    return torch.isclose(x1, x2, rtol=rtol, atol=atol, equal_nan=equal_nan)
