"""What several zoo models share: taking their one input from a tensor or a one-entry dict."""

from __future__ import annotations

import torch

from kiln.errors import KilnValueError

__all__ = ["single_input"]


def single_input(inputs) -> torch.Tensor:
    """The tensor itself, or the only value of a one-entry dict (as ONNX export and run configs pass)."""
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise KilnValueError(f"This model takes one input; received a dict with keys {sorted(inputs)}.")
        inputs = next(iter(inputs.values()))
    return inputs
