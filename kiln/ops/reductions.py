"""Reductions and sorting: sum, mean, max, var, argmax, cumulative ops, norm, sort and top_k.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Callable
from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.ops._base import _axes, _dims, _float, _op, _t, _torch_dtype

__all__ = [
    "sum", "mean", "max", "min", "prod", "var", "std", "argmax", "argmin", "cumsum", "cumprod", "all", "any",
    "count_nonzero", "average", "logsumexp", "norm", "sort", "argsort", "top_k",
]


# ============================================================================ reductions and sorting
@_op
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001 - Keras's name
    """Sum over ``axis`` (None: all axes)."""
    x = _t(x)
    return torch.sum(x, dim=_dims(axis, x.ndim), keepdim=keepdims)


@_op
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    """Mean over ``axis`` (None: all axes); integers give float32."""
    x = _float(_t(x))
    return torch.mean(x, dim=_dims(axis, x.ndim), keepdim=keepdims)


@_op
def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> torch.Tensor:  # noqa: A001
    """Largest value over ``axis`` (None: all axes), at least ``initial`` if given."""
    x = _t(x)
    out = torch.amax(x, dim=_dims(axis, x.ndim), keepdim=keepdims)
    return out if initial is None else torch.clamp(out, min=initial)


@_op
def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> torch.Tensor:  # noqa: A001
    """Smallest value over ``axis`` (None: all axes), at most ``initial`` if given."""
    x = _t(x)
    out = torch.amin(x, dim=_dims(axis, x.ndim), keepdim=keepdims)
    return out if initial is None else torch.clamp(out, max=initial)


@_op
def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> torch.Tensor:
    """Product over ``axis`` (None: all axes)."""
    x = _t(x)
    dt = _torch_dtype(dtype)
    if dt is not None:
        x = x.to(dt)
    if axis is None and not keepdims:
        return torch.prod(x)
    # torch.prod reduces one axis at a time; the last first, so earlier indices stay valid.
    for a in sorted((a % builtins.max(x.ndim, 1) for a in _axes(axis, x.ndim)), reverse=True):
        x = torch.prod(x, dim=a, keepdim=keepdims)
    return x


@_op
def var(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    """Population variance (divided by n, as NumPy's default) over ``axis``."""
    x = _float(_t(x))
    return torch.var(x, dim=_dims(axis, x.ndim), correction=0, keepdim=keepdims)


@_op
def std(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    """Population standard deviation (divided by n, as NumPy's default) over ``axis``."""
    x = _float(_t(x))
    return torch.std(x, dim=_dims(axis, x.ndim), correction=0, keepdim=keepdims)


def _arg_reduce(fn: Callable, x: Any, axis: int | None, keepdims: bool) -> torch.Tensor:
    x = _t(x)
    if axis is None:
        out = fn(x.reshape(-1), dim=0)  # index into the flattened tensor, as NumPy
        return out.reshape((1,) * x.ndim) if keepdims else out
    return fn(x, dim=axis, keepdim=keepdims)


@_op
def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    """Index (int64) of the largest value along ``axis`` (None: in the flattened tensor)."""
    return _arg_reduce(torch.argmax, x, axis, keepdims)


@_op
def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    """Index (int64) of the smallest value along ``axis`` (None: in the flattened tensor)."""
    return _arg_reduce(torch.argmin, x, axis, keepdims)


@_op
def cumsum(x: Any, axis: int | None = None, dtype: Any = None) -> torch.Tensor:
    """Running sum along ``axis`` (None: of the flattened tensor)."""
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.cumsum(x, dim=axis, dtype=_torch_dtype(dtype))


@_op
def cumprod(x: Any, axis: int | None = None, dtype: Any = None) -> torch.Tensor:
    """Running product along ``axis`` (None: of the flattened tensor)."""
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.cumprod(x, dim=axis, dtype=_torch_dtype(dtype))


@_op
def all(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001 - Keras's name
    """True where every value over ``axis`` is true (non-zero)."""
    x = _t(x)
    return torch.all(x if x.dtype == torch.bool else x != 0, dim=_dims(axis, x.ndim), keepdim=keepdims)


@_op
def any(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001 - Keras's name
    """True where some value over ``axis`` is true (non-zero)."""
    x = _t(x)
    return torch.any(x if x.dtype == torch.bool else x != 0, dim=_dims(axis, x.ndim), keepdim=keepdims)


@_op
def count_nonzero(x: Any, axis: Any = None) -> torch.Tensor:
    """The number of non-zero values over ``axis`` (None: all axes)."""
    x = _t(x)
    return torch.count_nonzero(x, dim=_dims(axis, x.ndim))


@_op
def average(x: Any, axis: int | None = None, weights: Any = None) -> torch.Tensor:
    """Weighted mean over ``axis``; 1-D ``weights`` apply along ``axis`` (NumPy's ``average``)."""
    x = _float(_t(x))
    if weights is None:
        return mean(x, axis=axis)
    w = _t(weights, device=x.device).to(x.dtype)
    if axis is not None and w.ndim == 1 and x.ndim > 1:
        w = w.reshape([-1 if d == axis % x.ndim else 1 for d in range(x.ndim)])
    dims = _dims(axis, x.ndim)
    return torch.sum(x * w, dim=dims) / torch.sum(w.expand_as(x), dim=dims)


@_op
def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow."""
    x = _float(_t(x))
    return torch.logsumexp(x, dim=_dims(axis, x.ndim), keepdim=keepdims)


@_op
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A002
    """Vector or matrix norm, as NumPy's ``linalg.norm``.

    Args:
        ord: (None) 2-norm of vectors / Frobenius of matrices; also ints, inf, "fro", "nuc".
        axis: (None) an int: vector norms along it; a pair: matrix norms; None: the whole
            tensor flattened (with ``ord``, the input must be 1-D or 2-D).
    """
    x = _float(_t(x))
    if isinstance(axis, list):
        axis = tuple(axis)
    return torch.linalg.norm(x, ord=ord, dim=axis, keepdim=keepdims)


@_op
def sort(x: Any, axis: int | None = -1) -> torch.Tensor:
    """Values sorted ascending along ``axis`` (None: of the flattened tensor)."""
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.sort(x, dim=axis, stable=True).values


@_op
def argsort(x: Any, axis: int | None = -1) -> torch.Tensor:
    """Indices (int64) that sort ``x`` ascending along ``axis`` (stable; None: flattened)."""
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.argsort(x, dim=axis, stable=True)


@_op
def top_k(x: Any, k: int, sorted: bool = True) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: A002
    """The ``k`` largest values along the last axis and their int64 indices: ``(values, indices)``."""
    x = _t(x)
    n = x.shape[-1] if x.ndim else 1
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 0 <= k <= n:
        raise KilnValueError(f"`top_k` needs `k` between 0 and the last axis length {n}. Received: k={k!r}")
    values, indices = torch.topk(x, int(k), dim=-1, largest=True, sorted=sorted)
    return values, indices
