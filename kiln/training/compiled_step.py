"""jit_compile's training step: forward, loss and gradients traced into one compiled graph.

Why not ``torch.compile(model)`` plus ``loss.backward()``: for small models on a CPU the
autograd engine's per-node bookkeeping and the compiled graph's runtime wrappers cost more
than the arithmetic (bench/jit_steady_state.py: eager 261 us/step, compiled forward + eager
backward 359 us/step). Here the gradient is part of the traced function —
``torch.func.grad_and_value`` over ``torch.func.functional_call`` — so the backward pass runs
as ordinary kernels inside the one graph Inductor compiles, with no autograd engine at run
time. The gradients are then handed to kiln's optimizer as ``p.grad`` (clipping, schedules
and the fused update work unchanged).

Used when the model allows it: no buffers (BatchNorm's running statistics are updated in
place, which a functional trace does not carry), no activity regularizers (they store their
penalty on the layer during the forward pass), one output, no mixed precision. Otherwise
jit_compile falls back to compiling the forward pass and loss (``Trainer._loss_and_outputs``).
"""

from __future__ import annotations

import torch
from torch.func import functional_call, grad_and_value

__all__ = ["CompiledGradStep"]


class CompiledGradStep:
    """Computes (loss, outputs) and sets every trainable parameter's ``.grad``, compiled."""

    @staticmethod
    def supports(trainer) -> bool:
        module = trainer.module
        if trainer.amp_dtype is not None or trainer.scaler is not None:
            return False
        if any(True for _ in module.buffers()):
            return False
        if any(getattr(m, "activity_regularizer", None) is not None for m in module.modules()):
            return False
        return trainer.objectives.built and trainer.objectives.single_output

    def __init__(self, trainer):
        module = trainer.module
        named = [(n, p) for n, p in module.named_parameters()]
        self.names = [n for n, p in named if p.requires_grad]
        self.params = [p for _, p in named if p.requires_grad]
        # Views share the parameters' storage: the optimizer's in-place updates reach them.
        self.trainable = {n: p.detach() for n, p in named if p.requires_grad}
        frozen = {n: p.detach() for n, p in named if not p.requires_grad}
        objectives, kiln_model = trainer.objectives, trainer._kiln_model
        # Weight penalties read the functional parameters by their full names: after
        # functional_call returns, the module holds its real parameters again.
        penalties = [(f"{prefix}.{name}" if prefix else name, reg)
                     for prefix, layer in module.named_modules()
                     for name, reg in getattr(layer, "_weight_regularizers", ())]

        def loss_of(trainable, x, y, sample_weight):
            params = {**trainable, **frozen}
            if kiln_model or torch.is_tensor(x):
                y_pred = functional_call(module, params, (x,))
            elif isinstance(x, dict):
                y_pred = functional_call(module, params, (), x)
            else:
                y_pred = functional_call(module, params, tuple(x))
            loss = objectives.loss(y, y_pred, sample_weight)
            for full_name, regularizer in penalties:
                loss = loss + regularizer(params[full_name])
            return loss, y_pred

        self._step = torch.compile(grad_and_value(loss_of, has_aux=True))

    def __call__(self, x, y, sample_weight):
        grads, (loss, y_pred) = self._step(self.trainable, x, y, sample_weight)
        for param, name in zip(self.params, self.names):
            param.grad = grads[name]
        return loss, y_pred
