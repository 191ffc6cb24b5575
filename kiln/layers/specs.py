"""The shape and dtype arguments every layer and ``Input`` take, checked and normalised.

Why a module of its own: ``Layer`` (layer.py) and ``Input`` (symbolic.py) both need them, and
layer.py builds on symbolic.py, so they sit below both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["normalize_shape", "torch_dtype"]


def normalize_shape(shape: Any, what: str = "input_shape") -> tuple:
    """Turn an int or a sequence of ints/None into a tuple, or raise a clear error."""
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise KilnTypeError(f"`{what}` must be a tuple of ints, e.g. (10,). Received: {what}={shape!r}")
    out = []
    for dim in shape:
        if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0):
            raise KilnValueError(f"`{what}` must hold positive ints or None. Received: {what}={tuple(shape)!r}")
        out.append(dim)
    return tuple(out)


def torch_dtype(dtype) -> torch.dtype:
    """``None`` -> float32; a ``torch.dtype`` as is; a name such as "bfloat16" -> its torch dtype."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise KilnValueError(f"Unknown dtype {dtype!r}; use e.g. 'float32', 'float64', 'bfloat16'.")
