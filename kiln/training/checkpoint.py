"""A Trainer's whole training state, on disk without pickle, for exact resumption.

What a checkpoint holds: the model's weights and buffers, the optimizer's state (moments,
step counts; the learning-rate schedule is a function of the step count), every random
generator kiln draws from (torch CPU and CUDA, NumPy, Python), the position in the run
(epoch, step within the epoch, and the shuffle generator's state at the start of that epoch,
which regenerates the epoch's data order), the epoch's running loss and metric sums, the
history so far, and the thread count in use. Restoring it and continuing gives the same
weights as never stopping (on the CPU; tested in tests/training/test_checkpoint.py).

Files are written atomically (temporary file, fsync, rename), so a run killed while writing
keeps its previous checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kiln.errors import SerializationError
from kiln.saving.state_io import state_from_bytes, state_to_bytes
from kiln.saving.weights_io import atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint", "capture_rng_states", "restore_rng_states", "FORMAT"]

FORMAT = "kiln.checkpoint"
VERSION = 1


def capture_rng_states() -> dict:
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": {"kind": numpy_state[0], "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
                  "pos": int(numpy_state[2]), "has_gauss": int(numpy_state[3]), "gauss": float(numpy_state[4])},
        "python": {"version": python_state[0], "state": list(python_state[1]), "gauss": python_state[2]},
    }


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (from ``Trainer.training_state()``) to ``path`` atomically."""
    path = Path(path)
    atomic_write_bytes(path, state_to_bytes({"format": FORMAT, "version": VERSION, **state}))
    return path


def load_checkpoint(path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; anything else is refused."""
    path = Path(path)
    if not path.exists():
        raise SerializationError(f"No checkpoint at {path}.")
    try:
        state = state_from_bytes(path.read_bytes())
    except SerializationError as err:
        raise SerializationError(f"{path} is not a kiln checkpoint ({err}).") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SerializationError(f"{path} is not a kiln checkpoint (no '{FORMAT}' marker).")
    if state.get("version") != VERSION:
        raise SerializationError(f"{path} is a version {state.get('version')} checkpoint; this kiln reads "
                                 f"version {VERSION}.")
    return state
