"""Shape ops: reshape, transpose, concatenation, splitting, tiling and axis moves.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

from kiln.errors import KilnTypeError, KilnValueError
from kiln.ops._base import _axes, _dims, _op, _promote, _shape_arg, _t

__all__ = [
    "transpose", "reshape", "expand_dims", "squeeze", "concatenate", "stack", "unstack", "hstack", "vstack",
    "split", "tile", "repeat", "flip", "roll", "broadcast_to", "swapaxes", "moveaxis", "ravel", "meshgrid",
]


# ============================================================================ shapes
@_op
def transpose(x: Any, axes: Any = None) -> torch.Tensor:
    """Permute the axes; ``axes=None`` reverses them (a matrix transpose for 2-D input)."""
    x = _t(x)
    order = tuple(range(x.ndim - 1, -1, -1)) if axes is None else _axes(axes, x.ndim, "axes")
    return x.permute(order)


@_op
def reshape(x: Any, newshape: Any) -> torch.Tensor:
    """``x`` with shape ``newshape`` (one entry may be -1, or None, to be inferred)."""
    return torch.reshape(_t(x), _shape_arg(newshape, "newshape"))


@_op
def expand_dims(x: Any, axis: Any) -> torch.Tensor:
    """Insert size-1 axes at ``axis`` (an int or a tuple, positions in the result)."""
    x = _t(x)
    axes = _axes(axis, x.ndim)
    out_ndim = x.ndim + len(axes)
    for a in sorted(a % out_ndim for a in axes):
        x = x.unsqueeze(a)
    return x


@_op
def squeeze(x: Any, axis: Any = None) -> torch.Tensor:
    """Remove size-1 axes: all of them, or those in ``axis`` (which must have size 1)."""
    x = _t(x)
    if axis is None:
        return torch.squeeze(x)
    axes = _axes(axis, x.ndim)
    bad = [a for a in axes if x.shape[a] != 1]
    if bad:
        raise KilnValueError(f"`squeeze` can only remove axes of size 1, but axis {bad[0]} of the input of shape "
                             f"{tuple(x.shape)} has size {x.shape[bad[0]]}. Received: axis={axis!r}")
    return torch.squeeze(x, dim=axes)


def _tensors(xs: Any, arg: str) -> list[torch.Tensor]:
    if isinstance(xs, torch.Tensor):
        return list(xs.unbind(0))
    if not isinstance(xs, (list, tuple)) or not xs:
        raise KilnTypeError(f"`{arg}` must be a non-empty list of tensors. Received: {arg}={xs!r}")
    first = next((t for t in xs if isinstance(t, torch.Tensor)), None)
    return _promote(*(_t(t, device=None if first is None else first.device) for t in xs))


@_op
def concatenate(xs: Any, axis: int | None = 0) -> torch.Tensor:
    """Join tensors along an existing axis (``axis=None``: flatten them first)."""
    tensors = _tensors(xs, "xs")
    if axis is None:
        return torch.cat([t.reshape(-1) for t in tensors])
    return torch.cat(tensors, dim=axis)


@_op
def stack(x: Any, axis: int = 0) -> torch.Tensor:
    """Join same-shaped tensors along a new axis."""
    return torch.stack(_tensors(x, "x"), dim=axis)


@_op
def unstack(x: Any, num: int | None = None, axis: int = 0) -> list[torch.Tensor]:
    """The slices along ``axis``, as a list (``num``, if given, must equal that axis's length)."""
    x = _t(x)
    if num is not None and num != x.shape[axis]:
        raise KilnValueError(f"`num` must equal the length of axis {axis}, {x.shape[axis]}. Received: num={num!r}")
    return list(torch.unbind(x, dim=axis))


@_op
def hstack(xs: Any) -> torch.Tensor:
    """Join along the second axis (the first for 1-D tensors), as NumPy's ``hstack``."""
    return torch.hstack(_tensors(xs, "xs"))


@_op
def vstack(xs: Any) -> torch.Tensor:
    """Join along the first axis, 1-D tensors becoming rows, as NumPy's ``vstack``."""
    return torch.vstack(_tensors(xs, "xs"))


@_op
def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[torch.Tensor]:
    """Split into equal sections (an int) or at the given indices (a list), as NumPy."""
    x = _t(x)
    if isinstance(indices_or_sections, numbers.Integral):
        n = x.shape[axis]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise KilnValueError(f"`split` needs `indices_or_sections` to divide the axis length {n} evenly. "
                                 f"Received: indices_or_sections={indices_or_sections!r}")
        return list(torch.tensor_split(x, int(indices_or_sections), dim=axis))
    indices = _shape_arg(indices_or_sections, "indices_or_sections")
    return list(torch.tensor_split(x, list(indices), dim=axis))


@_op
def tile(x: Any, repeats: Any) -> torch.Tensor:
    """Repeat the whole tensor ``repeats`` times along each axis (NumPy's ``tile``)."""
    return torch.tile(_t(x), _shape_arg(repeats, "repeats"))


@_op
def repeat(x: Any, repeats: Any, axis: int | None = None) -> torch.Tensor:
    """Repeat each element ``repeats`` times along ``axis`` (None: of the flattened tensor)."""
    x = _t(x)
    if not isinstance(repeats, numbers.Integral):
        repeats = _t(repeats, device=x.device).long()
    return torch.repeat_interleave(x, repeats, dim=axis)


@_op
def flip(x: Any, axis: Any = None) -> torch.Tensor:
    """Reverse the order along ``axis`` (None: every axis)."""
    x = _t(x)
    return torch.flip(x, _axes(axis, x.ndim))


@_op
def roll(x: Any, shift: Any, axis: Any = None) -> torch.Tensor:
    """Shift elements cyclically by ``shift`` along ``axis`` (None: of the flattened tensor)."""
    x = _t(x)
    if axis is None:
        return torch.roll(x, shift)
    return torch.roll(x, shift, _dims(axis, x.ndim))


@_op
def broadcast_to(x: Any, shape: Any) -> torch.Tensor:
    """``x`` broadcast (without copying) to ``shape``."""
    return torch.broadcast_to(_t(x), _shape_arg(shape))


@_op
def swapaxes(x: Any, axis1: int, axis2: int) -> torch.Tensor:
    """Exchange two axes."""
    return torch.swapaxes(_t(x), axis1, axis2)


@_op
def moveaxis(x: Any, source: Any, destination: Any) -> torch.Tensor:
    """Move axes to new positions, keeping the order of the others."""
    x = _t(x)
    return torch.movedim(x, _dims(source, x.ndim, "source"), _dims(destination, x.ndim, "destination"))


@_op
def ravel(x: Any) -> torch.Tensor:
    """The flattened tensor, shape (size,)."""
    return torch.reshape(_t(x), (-1,))


@_op
def meshgrid(*x: Any, indexing: str = "xy") -> list[torch.Tensor]:
    """Coordinate grids from 1-D coordinate vectors; ``indexing`` "xy" (default, NumPy's) or "ij"."""
    if indexing not in ("xy", "ij"):
        raise KilnValueError(f"`indexing` must be 'xy' or 'ij'. Received: indexing={indexing!r}")
    return list(torch.meshgrid(*(_t(t) for t in x), indexing=indexing))
