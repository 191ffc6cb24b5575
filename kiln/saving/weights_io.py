"""Weights as safetensors: a flat ``{name: tensor}`` file that cannot run code when loaded.

Why safetensors and not ``torch.save``: unpickling a file can execute arbitrary code, so a
model downloaded from someone else would be a program. kiln never unpickles.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from kiln.errors import KilnValueError, SerializationError, ShapeError

__all__ = ["save_weights", "state_to_safetensors_bytes", "read_safetensors", "atomic_write_bytes"]

_MAGIC_KEY = "format"
_MAGIC_VALUE = "kiln.weights"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def state_to_safetensors_bytes(state: dict) -> bytes:
    from safetensors.torch import save
    tensors = {}
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        # safetensors refuses shared or non-contiguous storage: give each tensor its own.
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    return save(tensors, metadata={_MAGIC_KEY: _MAGIC_VALUE})


def read_safetensors(data_or_path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (path or bytes), with a clear error for anything else."""
    from safetensors.torch import load, load_file
    try:
        if isinstance(data_or_path, (bytes, bytearray)):
            return load(bytes(data_or_path))
        return load_file(str(data_or_path))
    except Exception as err:  # safetensors raises its own error types for foreign files
        raise SerializationError(f"{data_or_path if not isinstance(data_or_path, (bytes, bytearray)) else 'The data'} "
                                 f"is not a safetensors weights file ({err}). kiln reads weights written by "
                                 f"save_weights()/save(); it never unpickles .pt/.pth files.") from err


def save_weights(module: torch.nn.Module, filepath, overwrite: bool = True) -> None:
    """Write ``module.state_dict()`` to ``filepath`` as safetensors, atomically."""
    path = Path(filepath)
    if path.exists() and not overwrite:
        raise KilnValueError(f"{path} exists; pass overwrite=True to replace it.")
    atomic_write_bytes(path, state_to_safetensors_bytes(module.state_dict()))


def apply_state(module: torch.nn.Module, state: dict, source: str, skip_mismatch: bool = False) -> None:
    """``load_state_dict`` with errors that list every missing, unexpected or mis-shaped weight."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: model {tuple(own[k].shape)} vs file {tuple(state[k].shape)}"
                  for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if (missing or unexpected or mismatched) and not skip_mismatch:
        parts = []
        if missing:
            parts.append(f"missing in the file: {missing}")
        if unexpected:
            parts.append(f"not in the model: {unexpected}")
        if mismatched:
            parts.append(f"different shapes: {mismatched}")
        raise ShapeError(f"The weights in {source} do not match the model ({'; '.join(parts)}). "
                         f"Build the same architecture before loading, or pass skip_mismatch=True.")
    usable = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    with torch.no_grad():
        for key, value in usable.items():
            own[key].copy_(value.to(own[key].dtype))
