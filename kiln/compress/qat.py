"""Quantization-aware training (QAT): fine-tune a model while its Dense layers see int8 rounding.

Post-training int8 rounds weights the model never trained with; QAT lets the weights move to
where the rounding hurts least. During fine-tuning each Dense layer (except ``keep_fp32``)

- reads its kernel through a *fake quantizer* that rounds it to the grid ``kiln compress``
  stores (symmetric int8 per output channel, ``scale = max|w| / 127``, ``int8_weights``);
- and fake-quantizes its input per batch the way fbgemm's dynamic int8 Linear does at run
  time (asymmetric uint8 over ``[min(x, 0), max(x, 0)]``, range 0..127: fbgemm's reduce_range).

Rounding has no gradient, so both pass the gradient straight through (the straight-through
estimator). ``finish`` then bakes the rounded kernels into the layers and removes the fake
quantizers: the result is a plain kiln model whose Dense kernels lie exactly on the int8 grid,
so ``kiln compress`` stores them losslessly and ``to_int8`` (``quantize(..., per_channel=True)``)
gives the real int8 model, whose outputs match the fake-quant forward up to fbgemm's
arithmetic (``tests/compress/test_qat.py`` states the tolerance).

Example::

    prepared = kiln.compress.prepare_qat(model)        # fake-quant forward
    kiln.compress.qat_fine_tune(prepared, x, y, loss=kiln.losses.MeanSquaredError(), epochs=2)
    model = kiln.compress.finish_qat(prepared)         # weights on the int8 grid, no hooks left
    int8 = kiln.compress.quantize(model, per_channel=True)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from kiln.errors import KilnValueError

__all__ = ["QATModel", "prepare_qat", "qat_fine_tune", "finish_qat", "fake_quant_weight", "fake_quant_input"]


def fake_quant_weight(kernel: torch.Tensor) -> torch.Tensor:
    """A kiln Dense kernel ``(in, units)`` rounded to symmetric int8 per unit (output channel),
    with the straight-through gradient. Same grid as ``quantize.int8_weights``."""
    scale = kernel.detach().abs().amax(dim=0).clamp_min(1e-12) / 127.0  # (units,)
    rounded = torch.round(kernel / scale).clamp(-127, 127) * scale
    return kernel + (rounded - kernel).detach()


def fake_quant_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded as fbgemm's dynamic int8 Linear rounds its input: one uint8 scale per call
    over ``[min(x, 0), max(x, 0)]`` with reduce_range (0..127); straight-through gradient."""
    low = x.detach().min().clamp(max=0.0)
    high = x.detach().max().clamp(min=0.0)
    scale = float((high - low) / 127.0)
    if scale == 0.0:
        return x
    zero_point = int(min(max(round(0 - float(low) / scale), 0), 127))
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 127)


class _FakeQuantKernel(nn.Module):
    def forward(self, kernel):
        return fake_quant_weight(kernel)


@dataclass
class QATModel:
    """A model being fine-tuned with fake quantizers, and the handles that remove them."""

    model: Any
    layers: list = field(default_factory=list)  # dotted names of the fake-quantized Dense layers
    _hooks: list = field(default_factory=list, repr=False)


def prepare_qat(model, keep_fp32=(), inplace: bool = False) -> QATModel:
    """Fake-quantize every built kiln Dense of a copy of ``model`` (``model`` itself with ``inplace``).

    Args:
        model: a kiln model (its Dense layers are what dynamic int8 quantizes).
        keep_fp32: Dense layer names to leave alone (default none).
        inplace: change ``model`` itself instead of a deep copy (default False).
    """
    from kiln.layers.dense import Dense
    model = model if inplace else copy.deepcopy(model)
    prepared = QATModel(model)
    for path, module in model.named_modules():
        if path and isinstance(module, Dense) and module.built and path not in keep_fp32:
            parametrize.register_parametrization(module, "kernel", _FakeQuantKernel())
            prepared._hooks.append(module.register_forward_pre_hook(
                lambda _module, args: (fake_quant_input(args[0]), *args[1:])))
            prepared.layers.append(path)
    if not prepared.layers:
        raise KilnValueError(f"{type(model).__name__} has no Dense layer to train for int8 (QAT covers Dense; "
                             f"keep_fp32={list(keep_fp32)!r}). Use --mode static for Conv models.")
    return prepared


def qat_fine_tune(prepared: QATModel, x, y, *, loss, epochs: int = 1, batch_size: int = 32,
                  learning_rate: float = 1e-4, seed: int = 0) -> QATModel:
    """Adam on ``loss(y_true, y_pred)`` through the fake quantizers, ``epochs`` passes over
    ``(x, y)`` in seeded shuffled batches; returns ``prepared`` (trained in place).

    A small learning rate (default 1e-4) because QAT starts from a trained model: it nudges
    weights across rounding boundaries, it does not retrain.
    """
    from kiln.compress.distill import _batches
    if not isinstance(epochs, int) or epochs < 1:
        raise KilnValueError(f"Received an invalid value for `epochs`, expected a positive integer. Received: "
                             f"epochs={epochs!r}")
    model = prepared.model
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    for _ in range(epochs):
        for xb, yb in _batches(x, y, batch_size, generator):
            out = model(xb)
            out = next(iter(out.values())) if isinstance(out, dict) else out
            value = loss(yb, out)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
    model.eval()
    return prepared


def finish_qat(prepared: QATModel):
    """Bake the rounded kernels into the layers, remove the fake quantizers; returns the model."""
    for hook in prepared._hooks:
        hook.remove()
    prepared._hooks.clear()
    for path in prepared.layers:
        parametrize.remove_parametrizations(prepared.model.get_submodule(path), "kernel", leave_parametrized=True)
    return prepared.model.eval()
