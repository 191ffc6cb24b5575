"""Creation ops: zeros, ones, full, arange, linspace, eye (NumPy's array constructors).

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import builtins
import numbers
from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.ops._base import _op, _pair, _shape_arg, _t, _torch_dtype

__all__ = [
    "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace", "eye", "identity",
]


# ============================================================================ creation
def zeros(shape: Any, dtype: Any = None) -> torch.Tensor:
    """A tensor of zeros; float32 unless ``dtype`` says otherwise."""
    return torch.zeros(_shape_arg(shape), dtype=_torch_dtype(dtype) or torch.float32)


def ones(shape: Any, dtype: Any = None) -> torch.Tensor:
    """A tensor of ones; float32 unless ``dtype`` says otherwise."""
    return torch.ones(_shape_arg(shape), dtype=_torch_dtype(dtype) or torch.float32)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> torch.Tensor:
    """A tensor of ``shape`` filled with ``fill_value`` (a number, or an array broadcast to ``shape``)."""
    dims, dt = _shape_arg(shape), _torch_dtype(dtype)
    if isinstance(fill_value, numbers.Number):
        if dt is None and isinstance(fill_value, float):
            dt = torch.float32
        return torch.full(dims, fill_value, dtype=dt)
    value = _t(fill_value)
    return torch.broadcast_to(value, dims).to(dt or value.dtype, copy=True)


@_op
def zeros_like(x: Any, dtype: Any = None) -> torch.Tensor:
    """Zeros of ``x``'s shape, dtype (unless ``dtype`` is given) and device."""
    return torch.zeros_like(_t(x), dtype=_torch_dtype(dtype))


@_op
def ones_like(x: Any, dtype: Any = None) -> torch.Tensor:
    """Ones of ``x``'s shape, dtype (unless ``dtype`` is given) and device."""
    return torch.ones_like(_t(x), dtype=_torch_dtype(dtype))


@_op
def full_like(x: Any, fill_value: Any, dtype: Any = None) -> torch.Tensor:
    """``fill_value`` in ``x``'s shape, dtype (unless ``dtype`` is given) and device."""
    x = _t(x)
    if isinstance(fill_value, numbers.Number):
        return torch.full_like(x, fill_value, dtype=_torch_dtype(dtype))
    value = _t(fill_value, device=x.device)
    return torch.broadcast_to(value, x.shape).to(_torch_dtype(dtype) or x.dtype, copy=True)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> torch.Tensor:
    """Evenly spaced values in ``[start, stop)``; ``arange(n)`` is ``0 .. n-1``. Ints give int64."""
    if stop is None:
        start, stop = 0, start
    dt = _torch_dtype(dtype)
    if dt is None and builtins.any(isinstance(v, float) for v in (start, stop, step)):
        dt = torch.float32
    return torch.arange(start, stop, step, dtype=dt)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0):
    """``num`` evenly spaced values from ``start`` to ``stop`` (included if ``endpoint``), as NumPy.

    ``start``/``stop`` may be arrays: the samples then run along ``axis``. With ``retstep`` the
    spacing is returned too: ``(values, step)``.
    """
    if not isinstance(num, numbers.Integral) or num < 0:
        raise KilnValueError(f"Received an invalid value for `num`, expected a non-negative integer. "
                             f"Received: num={num!r}")
    dt = _torch_dtype(dtype) or torch.float32
    divisions = (num - 1 if endpoint else num) or 1
    scalar = isinstance(start, numbers.Number) and isinstance(stop, numbers.Number)
    if scalar:
        step = (stop - start) / divisions
        values = (torch.linspace(start, stop, num, dtype=torch.float64) if endpoint
                  else start + step * torch.arange(num, dtype=torch.float64))
    else:
        s, e = _pair(start, stop)
        s, e = torch.broadcast_tensors(s.to(torch.float64), e.to(torch.float64))
        step = (e - s) / divisions
        frac = torch.arange(num, dtype=torch.float64, device=s.device).reshape((num,) + (1,) * s.ndim)
        values = s + frac * step  # (num, *start.shape)
        if endpoint and num > 1:
            values[-1] = e
        values = torch.movedim(values, 0, axis)
    values = values.to(dt)
    return (values, step) if retstep else values


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> torch.Tensor:
    """An ``(N, M)`` matrix with ones on the ``k``-th diagonal (0: main, > 0: above)."""
    M = N if M is None else M
    rows, cols = torch.arange(N).unsqueeze(1), torch.arange(M).unsqueeze(0)
    return (cols - rows == k).to(_torch_dtype(dtype) or torch.float32)


def identity(n: int, dtype: Any = None) -> torch.Tensor:
    """The ``(n, n)`` identity matrix."""
    return eye(n, dtype=dtype)
