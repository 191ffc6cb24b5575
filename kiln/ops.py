"""``keras.ops`` on torch tensors: the ops Keras 3 programs write custom layers and losses with.

A Keras 3 program ported with ``import kiln as keras`` keeps calling ``keras.ops.matmul``,
``keras.ops.mean`` or ``keras.ops.softmax``; here each is a thin wrapper over the torch function
of the same meaning, with Keras's (mostly NumPy's) names, argument names and semantics. Results
are plain ``torch.Tensor``s, so gradients flow through them.

Inputs: tensors pass through untouched (no copy, no device move). Python numbers, lists and
NumPy arrays are converted with ``torch.as_tensor``; float64 NumPy data and Python floats become
float32 (Keras's floatx), other dtypes are kept. A non-tensor next to a tensor is put on that
tensor's device; a lone non-tensor, like the result of a creation op (``zeros``, ``arange``, ...),
lands on torch's default device (the CPU unless ``torch.set_default_device`` says otherwise).
Python numbers next to a tensor are "weak" as in Keras: ``ops.multiply(half_tensor, 2.0)`` stays
float16, ``ops.add(int_tensor, 0.5)`` becomes float32.

Where kiln differs from Keras: Python ints and ``arange`` give int64 (torch's index dtype) where
Keras gives int32, and ``argmax``/``argsort``/``top_k`` indices are int64. Keras puts new tensors
on the GPU when there is one; kiln on torch's default device, so in a layer running on a GPU a
constant such as ``ops.arange(n)`` needs ``.to(x.device)`` (or is made from the input:
``ops.ones_like(x)``).

Symbolic inputs: called on a functional-API ``Input`` (a ``KerasTensor``), an op is recorded
as a node of the graph, as in Keras: ``x = ops.relu(layers.Dense(8)(inputs))`` works.

Conventions: reductions take ``axis=None`` (all axes), an int or a tuple, and ``keepdims``;
image ops are channels_last by default, and convolution kernels use Keras's layout
``(*kernel_size, in_channels, out_channels)``.

Example:
    >>> from kiln import ops
    >>> x = ops.convert_to_tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> ops.mean(ops.square(x), axis=-1)
    tensor([ 2.5000, 12.5000])
"""

from __future__ import annotations

import builtins
import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.conv import pad_or_torch_padding, same_padding
from kiln.layers.symbolic import KerasTensor, call_symbolically, contains_symbolic

__all__ = [
    # conversion and dtypes
    "convert_to_tensor", "convert_to_numpy", "cast", "shape", "ndim", "size", "dtype", "is_tensor",
    # creation
    "zeros", "ones", "zeros_like", "ones_like", "full", "full_like", "arange", "linspace", "eye", "identity",
    # elementwise math
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "negative",
    "abs", "absolute", "sign", "sqrt", "rsqrt", "square", "reciprocal", "exp", "log", "log1p", "log2", "log10",
    "expm1", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "erf",
    "floor", "ceil", "round", "trunc", "clip", "maximum", "minimum", "where", "nan_to_num",
    # comparison and logic
    "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or",
    "logical_xor", "logical_not", "isnan", "isfinite", "isinf", "isclose",
    # linear algebra and shapes
    "matmul", "dot", "tensordot", "einsum", "outer", "trace", "diag", "diagonal", "triu", "tril",
    "transpose", "reshape", "expand_dims", "squeeze", "concatenate", "stack", "split", "tile", "repeat",
    "unstack", "hstack", "vstack", "flip", "roll", "broadcast_to", "swapaxes", "moveaxis", "ravel", "meshgrid",
    # indexing
    "take", "take_along_axis", "slice", "slice_update", "scatter", "scatter_update", "nonzero", "pad",
    # reductions and sorting
    "sum", "mean", "max", "min", "prod", "std", "var", "argmax", "argmin", "cumsum", "cumprod", "all", "any",
    "count_nonzero", "average", "logsumexp", "norm", "sort", "argsort", "top_k",
    # neural-network ops
    "relu", "relu6", "sigmoid", "log_sigmoid", "softmax", "log_softmax", "softplus", "softsign", "silu",
    "swish", "gelu", "elu", "selu", "leaky_relu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "mish", "one_hot", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "moments", "normalize", "batch_normalization", "conv", "depthwise_conv", "max_pool", "average_pool",
    "dot_product_attention",
    # gradients and control flow
    "stop_gradient", "cond", "fori_loop", "while_loop",
]

# Keras's backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON] before a log.
EPSILON = 1e-7

_DTYPES = {
    "float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float": torch.float32, "float64": torch.float64, "double": torch.float64, "int8": torch.int8,
    "int16": torch.int16, "int32": torch.int32, "int64": torch.int64, "int": torch.int64, "uint8": torch.uint8,
    "uint16": torch.uint16, "uint32": torch.uint32, "uint64": torch.uint64, "bool": torch.bool,
    "complex64": torch.complex64, "complex128": torch.complex128,
}
_PYTHON_DTYPES = {bool: torch.bool, int: torch.int64, float: torch.float32, complex: torch.complex64}


# ============================================================================ symbolic inputs
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


# ============================================================================ conversion and dtypes
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


def _unary(torch_fn: Callable, name: str, doc: str) -> Callable:
    """Build a one-argument op; written out once instead of thirty times."""
    def fn(x: Any) -> torch.Tensor:
        return torch_fn(_t(x))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return _op(fn)


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


def _promote(*tensors: torch.Tensor) -> Sequence[torch.Tensor]:
    """Cast tensors to their common dtype (for torch functions that insist on one)."""
    first = tensors[0].dtype
    if builtins.all(t.dtype == first for t in tensors):
        return tensors  # the usual case, free
    common = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return [t.to(common) for t in tensors]


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


# ============================================================================ neural-network ops
relu = _unary(F.relu, "relu", "``max(x, 0)``.")
relu6 = _unary(F.relu6, "relu6", "``min(max(x, 0), 6)``.")
sigmoid = _unary(torch.sigmoid, "sigmoid", "``1 / (1 + exp(-x))``.")
log_sigmoid = _unary(F.logsigmoid, "log_sigmoid", "``log(sigmoid(x))``, computed stably.")
softplus = _unary(F.softplus, "softplus", "``log(1 + exp(x))``.")
softsign = _unary(F.softsign, "softsign", "``x / (1 + |x|)``.")
silu = _unary(F.silu, "silu", "``x * sigmoid(x)`` (also called swish).")
swish = silu
selu = _unary(F.selu, "selu", "Scaled ELU with the self-normalising constants.")
hard_sigmoid = _unary(F.hardsigmoid, "hard_sigmoid", "``relu6(x + 3) / 6`` (Keras 3's definition).")
hard_silu = _unary(F.hardswish, "hard_silu", "``x * hard_sigmoid(x)`` (also called hard_swish).")
hard_swish = hard_silu
hard_tanh = _unary(F.hardtanh, "hard_tanh", "``x`` clipped to [-1, 1].")
mish = _unary(F.mish, "mish", "``x * tanh(softplus(x))``.")


@_op
def softmax(x: Any, axis: int = -1) -> torch.Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    return F.softmax(_float(_t(x)), dim=axis)


@_op
def log_softmax(x: Any, axis: int = -1) -> torch.Tensor:
    """``log(softmax(x))`` along ``axis``, computed stably."""
    return F.log_softmax(_float(_t(x)), dim=axis)


@_op
def gelu(x: Any, approximate: bool = True) -> torch.Tensor:
    """Gaussian error linear unit; the tanh approximation by default, as ``keras.ops.gelu``
    (the ``keras.activations.gelu`` default is the exact erf form: pass ``approximate=False``)."""
    return F.gelu(_t(x), approximate="tanh" if approximate else "none")


@_op
def elu(x: Any, alpha: float = 1.0) -> torch.Tensor:
    """``x`` if positive, else ``alpha * (exp(x) - 1)``."""
    return F.elu(_t(x), alpha=alpha)


@_op
def leaky_relu(x: Any, negative_slope: float = 0.2) -> torch.Tensor:
    """``x`` if positive, else ``negative_slope * x`` (Keras's default slope 0.2; torch's is 0.01)."""
    return F.leaky_relu(_t(x), negative_slope=negative_slope)


@_op
def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False) -> torch.Tensor:
    """Integer class ids -> one-hot vectors along ``axis`` of the result; ids < 0 give all zeros.

    Shapes: (...,) -> (..., num_classes) for ``axis=-1``. Float32 unless ``dtype`` says otherwise.
    """
    if not isinstance(num_classes, numbers.Integral) or num_classes <= 0:
        raise KilnValueError(f"Received an invalid value for `num_classes`, expected a positive integer. "
                             f"Received: num_classes={num_classes!r}")
    if sparse:
        raise KilnValueError("kiln has dense tensors only. Received: sparse=True")
    x = _t(x)
    ids = x if x.dtype == torch.int64 else x.long()
    out = F.one_hot(ids.clamp(min=0), int(num_classes))
    out = (out * (ids >= 0).unsqueeze(-1)).to(_torch_dtype(dtype) or torch.float32)
    return out if axis == -1 else torch.movedim(out, -1, axis)


def _check_same_shape(name: str, target: torch.Tensor, output: torch.Tensor) -> None:
    if target.shape != output.shape:
        raise ShapeError(f"`{name}` expects `target` and `output` of the same shape. Received: "
                         f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}")


@_op
def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> torch.Tensor:
    """Elementwise binary crossentropy (no reduction): shapes (...) and (...) -> (...).

    Args:
        from_logits: (False) ``output`` holds logits rather than probabilities; probabilities
            are clipped to [1e-7, 1 - 1e-7] before the log, as in Keras.
    """
    target, output = _pair(target, output)
    output = _float(output)
    _check_same_shape("binary_crossentropy", target, output)
    target = target.to(output.dtype)
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    p = output.clamp(EPSILON, 1.0 - EPSILON)
    return -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p))


def _log_probabilities(output: torch.Tensor, from_logits: bool, axis: int) -> torch.Tensor:
    if from_logits:
        return F.log_softmax(output, dim=axis)
    # Keras rescales probabilities to sum to 1, then clips before the log.
    p = output / output.sum(dim=axis, keepdim=True)
    return torch.log(p.clamp(EPSILON, 1.0 - EPSILON))


@_op
def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> torch.Tensor:
    """Crossentropy of one-hot (or soft) ``target`` against ``output``, summed over the class ``axis``.

    Shapes: (..., classes), (..., classes) -> (...).
    """
    target, output = _pair(target, output)
    output = _float(output)
    _check_same_shape("categorical_crossentropy", target, output)
    return -(target.to(output.dtype) * _log_probabilities(output, from_logits, axis)).sum(dim=axis)


@_op
def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False,
                                    axis: int = -1) -> torch.Tensor:
    """Crossentropy of integer class ids ``target`` against ``output`` along the class ``axis``.

    Shapes: (...) or (..., 1) ids, (..., classes) -> (...).
    """
    target, output = _pair(target, output)
    output = _float(output)
    if target.ndim == output.ndim and target.shape[-1] == 1:
        target = target.squeeze(-1)
    axis = axis % output.ndim
    expected = output.shape[:axis] + output.shape[axis + 1:]
    if target.shape != expected:
        raise ShapeError("`sparse_categorical_crossentropy` expects integer `target` of the shape of `output` "
                         f"without its class axis, {tuple(expected)}. Received: target.shape="
                         f"{tuple(target.shape)}, output.shape={tuple(output.shape)}")
    log_prob = _log_probabilities(output, from_logits, axis)
    return -log_prob.gather(axis, target.long().unsqueeze(axis)).squeeze(axis)


@_op
def moments(x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False):
    """Mean and (population) variance over ``axes``: ``(mean, variance)``.

    Half-precision inputs are reduced in float32 and cast back, as Keras does.
    """
    x = _t(x)
    half = x.dtype in (torch.float16, torch.bfloat16)
    variance, mean_ = torch.var_mean(_float(x.float() if half else x), dim=_dims(axes, x.ndim, "axes"),
                                     correction=0, keepdim=keepdims)
    if half:
        return mean_.to(x.dtype), variance.to(x.dtype)
    return mean_, variance


@_op
def normalize(x: Any, axis: int = -1, order: int = 2, epsilon: float | None = None) -> torch.Tensor:
    """``x / max(norm(x), epsilon)`` with the ``order``-norm along ``axis`` (L2 by default)."""
    if not isinstance(order, numbers.Integral) or order < 1:
        raise KilnValueError(f"Received an invalid value for `order`, expected an integer >= 1. "
                             f"Received: order={order!r}")
    x = _float(_t(x))
    if x.ndim == 0:
        x = x.unsqueeze(0)
    return F.normalize(x, p=order, dim=axis, eps=EPSILON if epsilon is None else epsilon)


@_op
def batch_normalization(x: Any, mean: Any, variance: Any, axis: int, offset: Any = None, scale: Any = None,
                        epsilon: float = 1e-3) -> torch.Tensor:
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset``, the statistics given along ``axis``."""
    x = _t(x)
    shape_ = [1] * x.ndim
    shape_[axis] = x.shape[axis]

    def along_axis(v):
        return None if v is None else _t(v, device=x.device).reshape(shape_)
    inv = torch.rsqrt(along_axis(variance) + epsilon)
    if scale is not None:
        inv = inv * along_axis(scale)
    out = (x - along_axis(mean)) * inv
    return out if offset is None else out + along_axis(offset)


# ---------------------------------------------------------------------------- convolution and pooling
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _tuple(value: Any, n: int, arg: str) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, numbers.Integral) else value
    if (not isinstance(values, (tuple, list)) or len(values) != n
            or not builtins.all(isinstance(v, numbers.Integral) and v > 0 for v in values)):
        raise KilnValueError(f"Received an invalid value for `{arg}`, expected a positive integer or a tuple of "
                             f"{n} positive integers. Received: {arg}={value!r}")
    return tuple(int(v) for v in values)


def _image_args(inputs: Any, data_format: Any, padding: Any, op: str) -> tuple[torch.Tensor, int, bool, str]:
    """Check the common image-op arguments; return channels-first inputs, the rank, and the rest."""
    x = _t(inputs)
    if not 3 <= x.ndim <= 5:
        raise ShapeError(f"`{op}` expects inputs of rank 3, 4 or 5 (batch, spatial axes, channels). Received: "
                         f"inputs.shape={tuple(x.shape)}")
    if data_format not in (None, "channels_last", "channels_first"):
        raise KilnValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                             f"Received: data_format={data_format!r}")
    pad_mode = padding.lower() if isinstance(padding, str) else padding
    if pad_mode not in ("valid", "same"):
        raise KilnValueError(f"The `padding` argument must be one of 'valid', 'same'. Received: padding={padding!r}")
    channels_last = data_format != "channels_first"
    if channels_last:
        x = torch.movedim(x, -1, 1)  # (B, *spatial, C) -> (B, C, *spatial)
    return x, x.ndim - 2, channels_last, pad_mode


def _same_pads(sizes: Sequence[int], windows: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int]]:
    """TensorFlow's "same" padding per axis: ``ceil(n / stride)`` outputs, an odd extra one at the end."""
    return [same_padding(n, window, stride) for n, window, stride in zip(sizes, windows, strides)]


def _flat_pads(pads: list[tuple[int, int]]) -> list[int]:
    return [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first


def _conv(x, weight, rank, strides, pad_mode, dilation, groups, channels_last):
    if pad_mode == "same":
        windows = [(k - 1) * d + 1 for k, d in zip(weight.shape[2:], dilation)]
        x, padding = pad_or_torch_padding(x, _same_pads(x.shape[2:], windows, strides))
    else:
        padding = 0
    y = _CONV[rank](x, weight, None, strides, padding, dilation, groups)
    return torch.movedim(y, 1, -1) if channels_last else y


@_op
def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid", data_format: str | None = None,
         dilation_rate: Any = 1) -> torch.Tensor:
    """N-D convolution (1-D, 2-D or 3-D from the input's rank) with Keras's layouts.

    Args:
        inputs: (B, *spatial, C) channels_last (default), or (B, C, *spatial).
        kernel: (*kernel_size, C // groups, filters), Keras's layout; C // kernel.shape[-2] groups.
        strides, dilation_rate: (1) an int or one per spatial axis.
        padding: ("valid") or "same" (``ceil(n / stride)`` outputs, TensorFlow's padding).
    Returns (B, *out_spatial, filters) (channels_first: (B, filters, *out_spatial)).
    Example: ``conv(images, ops.ones((3, 3, 3, 8)), padding="same")`` on (B, 32, 32, 3) -> (B, 32, 32, 8).
    """
    x, rank, channels_last, pad_mode = _image_args(inputs, data_format, padding, "conv")
    w = _t(kernel, device=x.device)
    if w.ndim != rank + 2:
        raise ShapeError(f"`conv` on inputs of rank {rank + 2} expects a kernel of rank {rank + 2}, "
                         f"(*kernel_size, in_channels, filters). Received: kernel.shape={tuple(w.shape)}")
    in_channels, kernel_in = x.shape[1], w.shape[-2]
    if in_channels % kernel_in:
        raise ShapeError(f"`conv`: the input has {in_channels} channels, which the kernel's input channels "
                         f"({kernel_in}, kernel.shape[-2]) must divide. Received: inputs.shape="
                         f"{tuple(_t(inputs).shape)}, kernel.shape={tuple(w.shape)}")
    weight = w.permute(rank + 1, rank, *range(rank))  # (*k, in, out) -> (out, in, *k)
    x, weight = _promote(x, weight)
    return _conv(x, weight, rank, _tuple(strides, rank, "strides"), pad_mode,
                 _tuple(dilation_rate, rank, "dilation_rate"), in_channels // kernel_in, channels_last)


@_op
def depthwise_conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
                   data_format: str | None = None, dilation_rate: Any = 1) -> torch.Tensor:
    """Depthwise convolution: each input channel convolved with its own ``multiplier`` filters.

    Args:
        kernel: (*kernel_size, C, multiplier), Keras's layout. Output channel ``c * multiplier + m``
            comes from input channel ``c``.
        strides, padding, data_format, dilation_rate: as in ``conv``.
    Returns (B, *out_spatial, C * multiplier) (channels_last).
    """
    x, rank, channels_last, pad_mode = _image_args(inputs, data_format, padding, "depthwise_conv")
    w = _t(kernel, device=x.device)
    if w.ndim != rank + 2 or w.shape[-2] != x.shape[1]:
        raise ShapeError(f"`depthwise_conv` expects a kernel of shape (*kernel_size, {x.shape[1]}, multiplier) "
                         f"for these inputs. Received: kernel.shape={tuple(w.shape)}")
    channels = x.shape[1]
    weight = w.reshape(*w.shape[:rank], 1, -1)  # (*k, C, m) -> (*k, 1, C * m): channel-major order
    weight = weight.permute(rank + 1, rank, *range(rank))  # -> (C * m, 1, *k)
    x, weight = _promote(x, weight)
    return _conv(x, weight, rank, _tuple(strides, rank, "strides"), pad_mode,
                 _tuple(dilation_rate, rank, "dilation_rate"), channels, channels_last)


def _pool_args(inputs, pool_size, strides, padding, data_format, op):
    x, rank, channels_last, pad_mode = _image_args(inputs, data_format, padding, op)
    window = _tuple(pool_size, rank, "pool_size")
    step = window if strides is None else _tuple(strides, rank, "strides")
    pads = _same_pads(x.shape[2:], window, step) if pad_mode == "same" else [(0, 0)] * rank
    return x, rank, channels_last, window, step, pads


@_op
def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str | None = None) -> torch.Tensor:
    """Max pooling over windows of ``pool_size`` (1-D, 2-D or 3-D from the input's rank).

    Args:
        inputs: (B, *spatial, C) channels_last (default), or (B, C, *spatial).
        strides: (None: ``pool_size``) an int or one per spatial axis.
        padding: ("valid") or "same": ``ceil(n / strides)`` outputs; padding never wins the max.
    """
    x, rank, channels_last, window, step, pads = _pool_args(inputs, pool_size, strides, padding, data_format,
                                                            "max_pool")
    if builtins.any(p for pair in pads for p in pair):
        x = F.pad(x, _flat_pads(pads), value=float("-inf"))
    y = _MAX_POOL[rank](x, window, step)
    return torch.movedim(y, 1, -1) if channels_last else y


@_op
def average_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None) -> torch.Tensor:
    """Average pooling over windows of ``pool_size``; "same" padding is left out of each average."""
    x, rank, channels_last, window, step, pads = _pool_args(inputs, pool_size, strides, padding, data_format,
                                                            "average_pool")
    if not builtins.any(p for pair in pads for p in pair):
        y = _AVG_POOL[rank](x, window, step)
    elif builtins.all(b == a and 2 * b <= k for (b, a), k in zip(pads, window)):
        y = _AVG_POOL[rank](x, window, step, tuple(b for b, _ in pads), count_include_pad=False)
    else:
        # Asymmetric padding: average the zero-padded input, then divide by the share of real
        # inputs in each window (the same pooling over a padded map of ones, shape (1, 1, *spatial)).
        flat = _flat_pads(pads)
        ones_ = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        y = _AVG_POOL[rank](F.pad(x, flat), window, step) / _AVG_POOL[rank](F.pad(ones_, flat), window, step)
    return torch.movedim(y, 1, -1) if channels_last else y


@_op
def dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None, mask: Any = None,
                          scale: float | None = None, is_causal: bool = False, flash_attention: Any = None,
                          attn_logits_soft_cap: float | None = None) -> torch.Tensor:
    """Scaled dot-product attention with Keras's layout.

    Args:
        query: (B, T, N, H); key, value: (B, S, K, H), K dividing N (grouped-query attention).
        bias: (None) added to the logits, broadcastable to (B, N, T, S).
        mask: (None) booleans broadcastable to (B, N, T, S); True marks the pairs that attend.
        scale: (None: 1 / sqrt(H)) the logits' factor.
        is_causal: (False) position t attends to positions <= t only.
    Returns (B, T, N, H).
    """
    if attn_logits_soft_cap is not None:
        raise KilnValueError("kiln's dot_product_attention has no logits soft cap. "
                             f"Received: attn_logits_soft_cap={attn_logits_soft_cap!r}")
    q = _t(query)
    k, v = _t(key, device=q.device), _t(value, device=q.device)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ShapeError("`dot_product_attention` expects query, key and value of rank 4, (batch, length, heads, "
                         f"head_dim). Received: query.shape={tuple(q.shape)}, key.shape={tuple(k.shape)}, "
                         f"value.shape={tuple(v.shape)}")
    heads, kv_heads = q.shape[2], k.shape[2]
    if heads % kv_heads:
        raise ShapeError(f"`dot_product_attention`: the key's {kv_heads} heads must divide the query's {heads}.")
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, length, H)
    if kv_heads != heads:
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
    if bias is None and mask is None:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale)
    else:
        t_len, s_len = q.shape[2], k.shape[2]
        logits_bias = torch.zeros((), dtype=q.dtype, device=q.device) if bias is None else _t(bias, q.device)
        keep = None if mask is None else _t(mask, q.device).bool()
        if is_causal:
            causal = torch.ones(t_len, s_len, dtype=torch.bool, device=q.device).tril()
            keep = causal if keep is None else keep & causal
        if keep is not None:
            # A large negative number rather than -inf: a fully masked row then averages the
            # values uniformly, as Keras does, instead of giving NaN.
            large_negative = torch.finfo(q.dtype).min * 0.7
            logits_bias = logits_bias.to(q.dtype).masked_fill(~keep, large_negative)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_bias.to(q.dtype), scale=scale)
    return out.transpose(1, 2)  # (B, T, N, H)


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
