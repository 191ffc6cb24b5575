"""What several zoo models share: taking their one input from a tensor or a one-entry dict."""

from __future__ import annotations

import dataclasses

import torch

from kiln.errors import KilnValueError

__all__ = ["single_input", "build_for_first_batch"]


def single_input(inputs) -> torch.Tensor:
    """The tensor itself, or the only value of a one-entry dict (as ONNX export and run configs pass)."""
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise KilnValueError(f"This model takes one input; received a dict with keys {sorted(inputs)}.")
        inputs = next(iter(inputs.values()))
    return inputs


def build_for_first_batch(model, x: torch.Tensor) -> None:
    """Build an image model whose ``input_shape`` was left out from the (H, W, C) of its first batch.

    Why: as kiln's layers do, so ``resnet18(num_classes=10)`` takes RGB, grayscale, 32x32 or 224x224
    images alike. The model's config is re-made with the inferred shape (so it is checked as a given
    one would be, and ``get_config`` saves it: a saved model loads with its weights made eagerly),
    then ``model._build()`` creates the weights, which follow the batch onto its device.
    """
    name = type(model).__name__
    if not torch.is_tensor(x) or x.dim() != 4:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise KilnValueError(f"{name} takes (batch, H, W, C) channels_last images. Received: an input of shape "
                             f"{shape}; add the missing axes (e.g. x[..., None] for a grayscale (B, H, W) batch).")
    shape = tuple(int(d) for d in x.shape[1:])
    try:
        model.config = dataclasses.replace(model.config, input_shape=shape)
    except KilnValueError as err:
        raise KilnValueError(f"{err}\n  (input_shape={shape} was inferred from the first batch; pass "
                             f"input_shape= or resize the images.)") from err
    model._build()
    model.train(model.training)  # new layers start in training mode; follow the model's (eval: BN stats)
    model.to(x.device)
