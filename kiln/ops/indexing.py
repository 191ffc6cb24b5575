"""Indexing ops: take, slice, scatter, nonzero and NumPy-style ``pad``.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import builtins
import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kiln.errors import KilnTypeError, KilnValueError
from kiln.ops._base import _op, _shape_arg, _t

__all__ = [
    "take", "take_along_axis", "slice", "slice_update", "scatter", "scatter_update", "nonzero", "pad",
]


# ============================================================================ indexing
def _indices(indices: Any, x: torch.Tensor, length: int) -> torch.Tensor:
    """Integer indices as int64 on ``x``'s device, negative ones counted from the end (as NumPy)."""
    idx = _t(indices, device=x.device)
    if idx.dtype != torch.int64:
        idx = idx.long()
    return torch.where(idx < 0, idx + length, idx)


@_op
def take(x: Any, indices: Any, axis: int | None = None) -> torch.Tensor:
    """Elements at ``indices`` along ``axis`` (None: of the flattened tensor).

    Shapes: ``x.shape[:axis] + indices.shape + x.shape[axis + 1:]``.
    """
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = axis % x.ndim
    idx = _indices(indices, x, x.shape[axis])
    out = x.index_select(axis, idx.reshape(-1))
    return out.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])


@_op
def take_along_axis(x: Any, indices: Any, axis: int | None = None) -> torch.Tensor:
    """Pick ``x`` values at ``indices`` along ``axis`` (indices broadcast against ``x``), as NumPy."""
    x = _t(x)
    length = x.numel() if axis is None else x.shape[axis]
    return torch.take_along_dim(x, _indices(indices, x, length), dim=axis)


def _ints(values: Any, arg: str) -> list[int]:
    if isinstance(values, torch.Tensor):
        return [int(v) for v in values.reshape(-1).tolist()]
    if isinstance(values, numbers.Integral):
        return [int(values)]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise KilnTypeError(f"`{arg}` must be a list of ints. Received: {arg}={values!r}") from None


@_op
def slice(inputs: Any, start_indices: Any, shape: Any) -> torch.Tensor:  # noqa: A001 - Keras's name
    """The block of ``shape`` starting at ``start_indices`` (one start per axis)."""
    x = _t(inputs)
    for axis, (start, length) in enumerate(zip(_ints(start_indices, "start_indices"), _ints(shape, "shape"))):
        x = x.narrow(axis, start, length)
    return x


@_op
def slice_update(inputs: Any, start_indices: Any, updates: Any) -> torch.Tensor:
    """A copy of ``inputs`` with the block at ``start_indices`` replaced by ``updates``."""
    x = _t(inputs)
    updates = _t(updates, device=x.device)
    starts = _ints(start_indices, "start_indices")
    region = tuple(builtins.slice(s, s + n) for s, n in zip(starts, updates.shape))
    out = x.clone()
    out[region] = updates.to(x.dtype)
    return out


@_op
def scatter(indices: Any, values: Any, shape: Any) -> torch.Tensor:
    """A zero tensor of ``shape`` with ``values`` added at ``indices`` (duplicates add up).

    Shapes: ``indices`` (..., k) index the first k axes; ``values`` (..., *shape[k:]).
    """
    values = _t(values)
    idx = _t(indices, device=values.device).long()
    dims = _shape_arg(shape)
    k = idx.shape[-1]
    idx = idx.reshape(-1, k)
    values = values.reshape((-1,) + dims[k:])
    out = torch.zeros(dims, dtype=values.dtype, device=values.device)
    return out.index_put(tuple(idx.unbind(-1)), values, accumulate=True)


@_op
def scatter_update(inputs: Any, indices: Any, updates: Any) -> torch.Tensor:
    """A copy of ``inputs`` with the entries at ``indices`` (N, k) replaced by ``updates`` (N, ...)."""
    x = _t(inputs)
    idx = _t(indices, device=x.device).long()
    updates = _t(updates, device=x.device).to(x.dtype)
    return x.index_put(tuple(idx.unbind(-1)), updates)


@_op
def nonzero(x: Any) -> tuple[torch.Tensor, ...]:
    """The indices of the non-zero elements, one int64 tensor per axis (NumPy's ``nonzero``)."""
    return torch.nonzero(_t(x), as_tuple=True)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad_index(mode: str, n: int, before: int, after: int, device) -> torch.Tensor:
    """Source positions of a padded axis: position i of the result copies input[index[i]]."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "edge" or (mode == "reflect" and n == 1):
        return i.clamp(0, n - 1)
    if mode == "wrap":
        return i % n
    if mode == "reflect":  # mirror without repeating the edge: period 2n - 2
        j = i % (2 * n - 2)
        return torch.where(j >= n, 2 * n - 2 - j, j)
    j = i % (2 * n)  # symmetric: mirror repeating the edge, period 2n
    return torch.where(j >= n, 2 * n - 1 - j, j)


@_op
def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> torch.Tensor:
    """Pad ``x`` as NumPy's ``pad``.

    Args:
        pad_width: ``((before, after), ...)`` per axis; ``(before, after)`` or an int for every axis.
        mode: ("constant") also "edge", "reflect", "symmetric" or "wrap".
        constant_values: (None: 0) the fill value; constant mode only.
    Example: ``pad(x, ((0, 0), (1, 2)))`` adds one column before and two after.
    """
    x = _t(x)
    if mode not in _PAD_MODES:
        raise KilnValueError(f"`pad` supports mode in {_PAD_MODES}. Received: mode={mode!r}")
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    except (ValueError, TypeError):
        raise KilnValueError(f"`pad_width` must be an int, a (before, after) pair or one pair per axis for an "
                             f"input of rank {x.ndim}. Received: pad_width={pad_width!r}") from None
    if (widths < 0).any():
        raise KilnValueError(f"`pad_width` cannot be negative. Received: pad_width={pad_width!r}")
    if mode == "constant":
        flat = [int(w) for pair in widths[::-1] for w in pair]  # F.pad wants the last axis first
        return F.pad(x, flat, value=0 if constant_values is None else constant_values)
    if constant_values is not None:
        raise KilnValueError(f"`constant_values` only applies to mode='constant'. Received: mode={mode!r}, "
                             f"constant_values={constant_values!r}")
    for axis, (before, after) in enumerate(widths.tolist()):
        if before or after:
            x = x.index_select(axis, _pad_index(mode, x.shape[axis], before, after, x.device))
    return x
