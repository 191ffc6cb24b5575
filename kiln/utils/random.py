"""Seeding every random number generator a training run uses."""

from __future__ import annotations

import random

import numpy as np
import torch

from kiln.errors import KilnValueError

__all__ = ["set_random_seed"]


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA), as ``keras.utils.set_random_seed``.

    Two CPU runs after the same seed give identical weights: kiln's initializers, dropout
    and the per-epoch shuffle all draw from torch's global generator.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise KilnValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
