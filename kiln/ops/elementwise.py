"""Elementwise math: arithmetic, powers, logs, trigonometry and rounding, with NumPy's names.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.ops._base import _float, _op, _pair, _t, _unary
from kiln.ops.indexing import nonzero

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "maximum",
    "minimum", "arctan2", "clip", "where", "nan_to_num", "negative", "abs", "absolute", "sign", "sqrt",
    "rsqrt", "square", "reciprocal", "exp", "log", "log1p", "log2", "log10", "expm1", "sin", "cos", "tan",
    "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "erf", "floor", "ceil", "trunc", "isnan",
    "isfinite", "isinf", "logical_not", "round",
]


# ============================================================================ elementwise math
@_op
def add(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 + x2``, broadcast."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 + x2


@_op
def subtract(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 - x2``, broadcast."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 - x2


@_op
def multiply(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 * x2``, broadcast."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 * x2


@_op
def divide(x1: Any, x2: Any) -> torch.Tensor:
    """True division ``x1 / x2``; integers give floats."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 / x2


true_divide = divide


@_op
def floor_divide(x1: Any, x2: Any) -> torch.Tensor:
    """``floor(x1 / x2)``, as NumPy's ``//``."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 // x2


@_op
def mod(x1: Any, x2: Any) -> torch.Tensor:
    """The remainder of ``x1 / x2`` with the sign of ``x2``, as NumPy's ``%``."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 % x2


@_op
def power(x1: Any, x2: Any) -> torch.Tensor:
    """``x1 ** x2``, broadcast."""
    x1, x2 = _pair(x1, x2, keep_scalars=True)
    return x1 ** x2


def _clamp_fast(x1: Any, x2: Any) -> bool:
    """True when ``x2`` is a number that torch.clamp can apply to the tensor ``x1`` keeping its dtype
    (``maximum(x, 0.0)`` is the common case: clamp skips making a tensor of the number)."""
    return isinstance(x1, torch.Tensor) and isinstance(x2, (int, float)) and not isinstance(x2, bool) and (
        x1.is_floating_point() or isinstance(x2, int))


@_op
def maximum(x1: Any, x2: Any) -> torch.Tensor:
    """The elementwise larger of ``x1`` and ``x2``."""
    if _clamp_fast(x1, x2):
        return torch.clamp(x1, min=x2)
    if _clamp_fast(x2, x1):
        return torch.clamp(x2, min=x1)
    return torch.maximum(*_pair(x1, x2))


@_op
def minimum(x1: Any, x2: Any) -> torch.Tensor:
    """The elementwise smaller of ``x1`` and ``x2``."""
    if _clamp_fast(x1, x2):
        return torch.clamp(x1, max=x2)
    if _clamp_fast(x2, x1):
        return torch.clamp(x2, max=x1)
    return torch.minimum(*_pair(x1, x2))


@_op
def arctan2(x1: Any, x2: Any) -> torch.Tensor:
    """The angle of the point ``(x2, x1)``, in radians."""
    return torch.atan2(*(_float(t) for t in _pair(x1, x2)))


@_op
def clip(x: Any, x_min: Any, x_max: Any) -> torch.Tensor:
    """``x`` limited to ``[x_min, x_max]`` (numbers or arrays)."""
    x = _t(x)
    low = x_min if x_min is None or isinstance(x_min, (int, float)) else _t(x_min, device=x.device)
    high = x_max if x_max is None or isinstance(x_max, (int, float)) else _t(x_max, device=x.device)
    return torch.clamp(x, low, high)


@_op
def where(condition: Any, x1: Any = None, x2: Any = None):
    """``x1`` where ``condition`` holds, else ``x2``; with neither, the indices where it holds.

    Args:
        condition: booleans (other dtypes count non-zero as True).
        x1, x2: (None) values to choose from, broadcast together; give both or neither.
    """
    if x1 is None and x2 is None:
        return nonzero(condition)
    if x1 is None or x2 is None:
        raise KilnValueError("`where` needs both `x1` and `x2`, or neither (then it returns the indices where "
                             f"`condition` holds). Received: x1={'None' if x1 is None else '...'}, "
                             f"x2={'None' if x2 is None else '...'}")
    condition = _t(condition)
    if condition.dtype != torch.bool:
        condition = condition != 0
    device = condition.device
    x1 = x1 if isinstance(x1, (int, float)) else _t(x1, device=device)
    x2 = x2 if isinstance(x2, (int, float)) else _t(x2, device=device)
    return torch.where(condition, x1, x2)


@_op
def nan_to_num(x: Any, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> torch.Tensor:
    """NaN -> ``nan``, +-inf -> ``posinf``/``neginf`` (default: the dtype's largest/smallest value)."""
    return torch.nan_to_num(_t(x), nan=nan, posinf=posinf, neginf=neginf)


negative = _unary(torch.neg, "negative", "``-x``.")
abs = _unary(torch.abs, "abs", "``|x|``.")  # noqa: A001 - Keras's name
absolute = abs
sign = _unary(torch.sign, "sign", "-1, 0 or 1 with the sign of ``x``.")
sqrt = _unary(torch.sqrt, "sqrt", "Square root (integers give floats).")
rsqrt = _unary(torch.rsqrt, "rsqrt", "``1 / sqrt(x)``.")
square = _unary(torch.square, "square", "``x * x``.")
reciprocal = _unary(torch.reciprocal, "reciprocal", "``1 / x``.")
exp = _unary(torch.exp, "exp", "``e ** x``.")
log = _unary(torch.log, "log", "Natural logarithm.")
log1p = _unary(torch.log1p, "log1p", "``log(1 + x)``, accurate for small ``x``.")
log2 = _unary(torch.log2, "log2", "Base-2 logarithm.")
log10 = _unary(torch.log10, "log10", "Base-10 logarithm.")
expm1 = _unary(torch.expm1, "expm1", "``exp(x) - 1``, accurate for small ``x``.")
sin = _unary(torch.sin, "sin", "Sine (radians).")
cos = _unary(torch.cos, "cos", "Cosine (radians).")
tan = _unary(torch.tan, "tan", "Tangent (radians).")
arcsin = _unary(torch.asin, "arcsin", "Inverse sine.")
arccos = _unary(torch.acos, "arccos", "Inverse cosine.")
arctan = _unary(torch.atan, "arctan", "Inverse tangent.")
sinh = _unary(torch.sinh, "sinh", "Hyperbolic sine.")
cosh = _unary(torch.cosh, "cosh", "Hyperbolic cosine.")
tanh = _unary(torch.tanh, "tanh", "Hyperbolic tangent (also an activation).")
erf = _unary(torch.erf, "erf", "The Gauss error function.")
floor = _unary(torch.floor, "floor", "The largest integer <= ``x``.")
ceil = _unary(torch.ceil, "ceil", "The smallest integer >= ``x``.")
trunc = _unary(torch.trunc, "trunc", "``x`` rounded towards zero.")
isnan = _unary(torch.isnan, "isnan", "True where ``x`` is NaN.")
isfinite = _unary(torch.isfinite, "isfinite", "True where ``x`` is neither infinite nor NaN.")
isinf = _unary(torch.isinf, "isinf", "True where ``x`` is +-infinity.")
logical_not = _unary(torch.logical_not, "logical_not", "``not x`` (non-zero counts as True).")


@_op
def round(x: Any, decimals: int = 0) -> torch.Tensor:  # noqa: A001 - Keras's name
    """``x`` rounded to ``decimals`` places, halves to even (as NumPy)."""
    x = _t(x)
    if not x.is_floating_point():
        return x
    return torch.round(x, decimals=decimals) if decimals else torch.round(x)
