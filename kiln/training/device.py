"""Device, precision and thread choices for a training run.

Why pick threads: on a CPU, a small model's step is a handful of tiny matrix products;
splitting each across OpenMP threads costs more in hand-offs than it saves. For models
below ``SMALL_MODEL_PARAMS`` parameters, "auto" runs the step on one thread (and puts the
previous setting back afterwards).
"""

from __future__ import annotations

import contextlib

import torch

from kiln.errors import KilnValueError

__all__ = ["resolve_device", "autocast_context", "thread_budget", "SMALL_MODEL_PARAMS"]

SMALL_MODEL_PARAMS = 100_000
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


@contextlib.contextmanager
def thread_budget(module: torch.nn.Module, device: torch.device, setting="auto"):
    """Temporarily set torch's CPU thread count for this run (see module docstring)."""
    previous = torch.get_num_threads()
    wanted = None
    if isinstance(setting, int) and setting > 0:
        wanted = setting
    elif setting == "auto" and device.type == "cpu":
        n_params = sum(p.numel() for p in module.parameters())
        if n_params < SMALL_MODEL_PARAMS:
            wanted = 1
    elif setting not in (None, "auto"):
        raise KilnValueError(f"num_threads must be 'auto', None or a positive int; received {setting!r}")
    if wanted is not None and wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
