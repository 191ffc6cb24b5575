"""Linear-algebra ops: matrix products, ``einsum``, diagonals and triangles.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

from kiln.ops._base import _axes, _op, _pair, _promote, _t

__all__ = [
    "matmul", "dot", "tensordot", "einsum", "outer", "diagonal", "trace", "diag", "triu", "tril",
]


# ============================================================================ linear algebra
@_op
def matmul(x1: Any, x2: Any) -> torch.Tensor:
    """Matrix product with NumPy's broadcasting over leading axes: (..., n, k) @ (..., k, m) -> (..., n, m)."""
    return torch.matmul(*_promote(*_pair(x1, x2)))


@_op
def dot(x1: Any, x2: Any) -> torch.Tensor:
    """NumPy's ``dot``: a product for scalars, else a sum over ``x1``'s last and ``x2``'s second-to-last axis."""
    x1, x2 = _promote(*_pair(x1, x2))
    if x1.ndim == 0 or x2.ndim == 0:
        return x1 * x2
    if x1.ndim >= 2 and x2.ndim > 2:  # (..., k) . (..., k, m): every pair, not a batched matmul
        return torch.tensordot(x1, x2, dims=([-1], [-2]))
    return torch.matmul(x1, x2)


@_op
def tensordot(x1: Any, x2: Any, axes: Any = 2) -> torch.Tensor:
    """Sum of products over ``axes`` (an int: the last/first that many; or two lists of axes)."""
    x1, x2 = _promote(*_pair(x1, x2))
    if not isinstance(axes, numbers.Integral):
        axes = [list(_axes(a, x1.ndim, "axes")) for a in axes]
    return torch.tensordot(x1, x2, dims=axes)


@_op
def einsum(subscripts: str, *operands: Any, **kwargs) -> torch.Tensor:
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)``."""
    first = next((o for o in operands if isinstance(o, torch.Tensor)), None)
    tensors = [_t(o, device=None if first is None else first.device) for o in operands]
    return torch.einsum(subscripts, *_promote(*tensors))


@_op
def outer(x1: Any, x2: Any) -> torch.Tensor:
    """The outer product of the flattened inputs: (n,), (m,) -> (n, m)."""
    x1, x2 = _promote(*_pair(x1, x2))
    return torch.outer(x1.reshape(-1), x2.reshape(-1))


@_op
def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> torch.Tensor:
    """The diagonal of the ``(axis1, axis2)`` planes, as a new last axis."""
    return torch.diagonal(_t(x), offset=offset, dim1=axis1, dim2=axis2)


@_op
def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> torch.Tensor:
    """The sum along the diagonal of the ``(axis1, axis2)`` planes."""
    return torch.diagonal(_t(x), offset=offset, dim1=axis1, dim2=axis2).sum(-1)


@_op
def diag(x: Any, k: int = 0) -> torch.Tensor:
    """A 1-D input becomes a diagonal matrix; a 2-D input gives its ``k``-th diagonal."""
    return torch.diag(_t(x), k)


@_op
def triu(x: Any, k: int = 0) -> torch.Tensor:
    """``x`` with the entries below the ``k``-th diagonal zeroed."""
    return torch.triu(_t(x), k)


@_op
def tril(x: Any, k: int = 0) -> torch.Tensor:
    """``x`` with the entries above the ``k``-th diagonal zeroed."""
    return torch.tril(_t(x), k)
