"""Core ops: tensor conversion and dtypes, plus gradients and control flow (``keras.ops.core``).

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from kiln.errors import KilnValueError
from kiln.layers.symbolic import KerasTensor
from kiln.ops._base import _convert, _op, _t, _torch_dtype

__all__ = [
    "convert_to_tensor", "convert_to_numpy", "cast", "shape", "ndim", "size", "dtype", "is_tensor",
    "stop_gradient", "cond", "fori_loop", "while_loop",
]


# ============================================================================ conversion and dtypes
def convert_to_tensor(x: Any, dtype: Any = None, sparse: bool | None = None,
                      ragged: bool | None = None) -> torch.Tensor:
    """Turn a tensor, NumPy array, list or number into a torch tensor (optionally of ``dtype``).

    Args:
        x: the data. A tensor is returned as is (cast if ``dtype`` is given).
        dtype: (None) e.g. "float32"; None keeps the data's dtype, except that float64 NumPy
            data and Python floats become float32.
        sparse, ragged: accepted for Keras compatibility; kiln has dense tensors only.
    """
    if sparse or ragged:
        raise KilnValueError(f"kiln has dense tensors only. Received: sparse={sparse!r}, ragged={ragged!r}")
    return _convert(x, dtype=_torch_dtype(dtype))


def convert_to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of a tensor (detached, on the CPU; bfloat16 becomes float32, which NumPy has)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


@_op
def cast(x: Any, dtype: Any) -> torch.Tensor:
    """``x`` converted to ``dtype`` (e.g. "int32"); differentiable between float dtypes."""
    return _t(x).to(_torch_dtype(dtype))


def shape(x: Any) -> tuple:
    """The shape as a tuple of ints (a functional-API input reports its batch axis as None)."""
    if isinstance(x, (torch.Tensor, KerasTensor)):
        return tuple(x.shape)
    return tuple(np.shape(x))


def ndim(x: Any) -> int:
    """The number of axes."""
    return len(shape(x))


def size(x: Any) -> int:
    """The number of elements, as a Python int."""
    return math.prod(d for d in shape(x))


def dtype(x: Any) -> str:
    """The dtype's Keras name, e.g. "float32"."""
    value = x.dtype if isinstance(x, (torch.Tensor, KerasTensor)) else _t(x).dtype
    return str(value).removeprefix("torch.")


def is_tensor(x: Any) -> bool:
    """True for a torch tensor (a kiln weight is one too)."""
    return isinstance(x, torch.Tensor)


# ============================================================================ gradients and control flow
@_op
def stop_gradient(variable: Any) -> torch.Tensor:
    """The same values, with no gradient flowing back through them."""
    return _t(variable).detach()


def cond(pred: Any, true_fn: Callable, false_fn: Callable):
    """``true_fn()`` if ``pred`` else ``false_fn()`` (a tensor ``pred`` is read back to the host)."""
    return true_fn() if bool(pred) else false_fn()


def fori_loop(lower: int, upper: int, body_fun: Callable, init_val: Any):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``; returns the final ``val``."""
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(i, val)
    return val


def while_loop(cond: Callable, body: Callable, loop_vars: Any, maximum_iterations: int | None = None):
    """Repeat ``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)`` (at most ``maximum_iterations``)."""
    is_tuple = isinstance(loop_vars, (list, tuple))
    values = tuple(loop_vars) if is_tuple else (loop_vars,)
    i = 0
    while (maximum_iterations is None or i < maximum_iterations) and bool(cond(*values)):
        values = body(*values)
        values = tuple(values) if is_tuple else (values,)
        i += 1
    return values if is_tuple else values[0]
