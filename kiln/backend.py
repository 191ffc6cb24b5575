"""The few ``keras.backend`` functions that ported programs call.

kiln keeps no global session or graph, so ``clear_session`` has nothing to clear; it exists
so that Keras programs calling it between experiments run unchanged.
"""

from __future__ import annotations

import torch

__all__ = ["clear_session", "floatx", "backend", "epsilon", "image_data_format"]


def clear_session() -> None:
    """No-op: kiln models hold their own state (there is no global graph to reset)."""
    return None


def floatx() -> str:
    """kiln computes in float32 unless a layer or mixed precision says otherwise."""
    return "float32"


def epsilon() -> float:
    """The fuzz factor Keras uses in losses and metrics (1e-7)."""
    return 1e-7


def image_data_format() -> str:
    """Image layers default to channels_last, as in Keras."""
    return "channels_last"


def backend() -> str:
    """The name of the tensor library underneath: always "torch"."""
    return "torch"


def is_cuda_available() -> bool:
    return torch.cuda.is_available()
