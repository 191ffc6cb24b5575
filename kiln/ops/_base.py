"""Private helpers every ops family shares: argument conversion, dtype names, axis handling and the
``_op`` wrapper that records an op called on functional-API inputs as a graph node.
"""

from __future__ import annotations

import builtins
import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.symbolic import KerasTensor, call_symbolically, contains_symbolic


_DTYPES = {
    "float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float": torch.float32, "float64": torch.float64, "double": torch.float64, "int8": torch.int8,
    "int16": torch.int16, "int32": torch.int32, "int64": torch.int64, "int": torch.int64, "uint8": torch.uint8,
    "uint16": torch.uint16, "uint32": torch.uint32, "uint64": torch.uint64, "bool": torch.bool,
    "complex64": torch.complex64, "complex128": torch.complex128,
}


_PYTHON_DTYPES = {bool: torch.bool, int: torch.int64, float: torch.float32, complex: torch.complex64}


class _SymbolicOp(torch.nn.Module):
    """An op called on functional-API inputs, kept as a graph node (not serialisable, like a lambda)."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn
        self.name = fn.__name__

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"op={self.name}"


def _op(fn: Callable) -> Callable:
    """Let ``fn`` take KerasTensors: then it is recorded in the functional graph, as in Keras."""
    @functools.wraps(fn)
    def op(*args, **kwargs):
        # Tensors and numbers, the usual arguments, cost one or two isinstance checks each.
        for a in (*args, *kwargs.values()) if kwargs else args:
            if not isinstance(a, torch.Tensor) and (
                    isinstance(a, KerasTensor) or (isinstance(a, (list, tuple)) and contains_symbolic(a))):
                return call_symbolically(_SymbolicOp(fn), args, kwargs)
        return fn(*args, **kwargs)
    return op


def _torch_dtype(value: Any, arg: str = "dtype") -> torch.dtype | None:
    """None, "float32", np.float32, torch.float32, float, ... -> a torch dtype (None stays None)."""
    if value is None or isinstance(value, torch.dtype):
        return value
    if isinstance(value, type) and value in _PYTHON_DTYPES:
        return _PYTHON_DTYPES[value]
    name = value.removeprefix("torch.") if isinstance(value, str) else None
    if name is None:
        try:
            name = np.dtype(value).name
        except TypeError:
            name = None
    if name not in _DTYPES:
        raise KilnValueError(f"Received an invalid value for `{arg}`, expected a dtype name such as 'float32', "
                             f"'int64' or 'bool'. Valid names: {', '.join(sorted(_DTYPES))}. Received: "
                             f"{arg}={value!r}")
    return _DTYPES[name]


def _convert(x: Any, dtype: torch.dtype | None = None, device: torch.device | None = None) -> torch.Tensor:
    """Anything array-like -> a tensor; the slow path of ``_t``. float64 NumPy data -> float32."""
    if isinstance(x, torch.Tensor):
        x = x if device is None or x.device == device else x.to(device)
        return x if dtype is None else x.to(dtype)
    if isinstance(x, KerasTensor):
        raise KilnTypeError("A functional-API input (KerasTensor) reached an op in a place where it cannot be "
                            "recorded in the graph (e.g. inside a dict); wrap that code in a layers.Lambda.")
    if isinstance(x, (list, tuple)) and builtins.any(isinstance(e, torch.Tensor) for e in x):
        return torch.stack([_convert(e, dtype, device) for e in x])
    if isinstance(x, bool):
        return torch.tensor(x, dtype=dtype or torch.bool, device=device)
    if isinstance(x, numbers.Integral):
        return torch.tensor(int(x), dtype=dtype or torch.int64, device=device)
    if isinstance(x, float):
        return torch.tensor(x, dtype=dtype or torch.float32, device=device)
    array = np.asarray(x)
    if array.dtype == np.float64 and dtype is None:
        array = array.astype(np.float32)  # Keras's floatx
    elif array.dtype == object or array.dtype.kind in "USV":
        what = "Python objects" if array.dtype == object else "strings"
        raise KilnTypeError(f"ops expect tensors, NumPy arrays or numbers. Received: a {type(x).__name__} of "
                            f"{what}, {x!r:.80}")
    return torch.as_tensor(array, dtype=dtype, device=device)


def _t(x: Any, device: torch.device | None = None) -> torch.Tensor:
    """The fast path: a tensor is returned as is; anything else is converted (see ``_convert``)."""
    if isinstance(x, torch.Tensor):
        return x
    return _convert(x, device=device)


def _pair(x1: Any, x2: Any, keep_scalars: bool = False) -> tuple[Any, Any]:
    """Two operands as tensors on one device. With ``keep_scalars`` a Python number beside a tensor
    stays a number, which torch's operators treat as weakly typed (as Keras does) at no cost."""
    t1, t2 = isinstance(x1, torch.Tensor), isinstance(x2, torch.Tensor)
    if t1 and t2:
        return x1, x2
    if t1:
        return x1, x2 if keep_scalars and isinstance(x2, (int, float)) else _convert(x2, device=x1.device)
    if t2:
        return x1 if keep_scalars and isinstance(x1, (int, float)) else _convert(x1, device=x2.device), x2
    x1 = _convert(x1)
    return x1, _convert(x2, device=x1.device)


def _float(x: torch.Tensor) -> torch.Tensor:
    """Integer and bool tensors -> float32, for ops whose result is a real number (mean, std, ...)."""
    return x if x.is_floating_point() or x.is_complex() else x.to(torch.float32)


def _dims(axis: Any, ndim: int, arg: str = "axis") -> int | tuple[int, ...]:
    """Keras's ``axis`` (None = all, an int, or a sequence of ints) -> torch's ``dim`` (an int or a tuple)."""
    if type(axis) is int:  # the common case first: the ABC check below is slower
        return axis
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        return int(axis)
    if isinstance(axis, Sequence) and builtins.all(isinstance(a, numbers.Integral) for a in axis):
        return tuple(int(a) for a in axis)
    raise KilnTypeError(f"Received an invalid value for `{arg}`, expected None, an int or a tuple of ints. "
                        f"Received: {arg}={axis!r}")


def _axes(axis: Any, ndim: int, arg: str = "axis") -> tuple[int, ...]:
    """Like ``_dims``, always a tuple (for code that loops over the axes)."""
    dims = _dims(axis, ndim, arg)
    return (dims,) if isinstance(dims, int) else dims


def _shape_arg(value: Any, arg: str = "shape") -> tuple[int, ...]:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, numbers.Integral):
        return (int(value),)
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return tuple(-1 if d is None else int(d) for d in value)
    except (TypeError, ValueError):
        raise KilnTypeError(f"Received an invalid value for `{arg}`, expected an int or a tuple of ints. "
                            f"Received: {arg}={value!r}") from None


def _unary(torch_fn: Callable, name: str, doc: str) -> Callable:
    """Build a one-argument op; written out once instead of thirty times."""
    def fn(x: Any) -> torch.Tensor:
        return torch_fn(_t(x))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return _op(fn)


def _promote(*tensors: torch.Tensor) -> Sequence[torch.Tensor]:
    """Cast tensors to their common dtype (for torch functions that insist on one)."""
    first = tensors[0].dtype
    if builtins.all(t.dtype == first for t in tensors):
        return tensors  # the usual case, free
    common = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return [t.to(common) for t in tensors]
