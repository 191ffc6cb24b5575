"""Device and precision choices for a training run (threads: kiln/training/threads.py)."""

from __future__ import annotations

import contextlib

import torch

from kiln.errors import KilnValueError

__all__ = ["resolve_device", "autocast_context", "precision_dtype"]

_PRECISIONS = {None: None, "float32": None, "32": None, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "mixed_bfloat16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
               "mixed_float16": torch.float16}


def resolve_device(device=None) -> torch.device:
    """None -> CUDA when available, else CPU; otherwise the given device, checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise KilnValueError(f"Unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'.") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise KilnValueError(f"device={device!r} was asked for, but CUDA is not available here; use device='cpu'.")
    return resolved


def precision_dtype(mixed_precision):
    if mixed_precision not in _PRECISIONS:
        raise KilnValueError(f"Unknown mixed_precision {mixed_precision!r}; use None, 'bfloat16' or 'float16'.")
    return _PRECISIONS[mixed_precision]


def autocast_context(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
