"""Calling torch's fused Adam/AdamW/SGD kernels directly, skipping ``Optimizer.step``'s Python.

Why: for small models the optimizer's Python bookkeeping (grouping tensors by device,
profiler records, state look-ups) costs more than the fused kernel itself — about 40 us of
a 270 us training step on a 2-core CPU, measured in bench/fit_overhead.py. This module
prepares the lists of parameters and state tensors once and then, each step, makes the
same two calls torch's ``_fused_adam``/``_fused_sgd`` make (``_foreach_add_`` on the step
counters, then the fused kernel), with the same arguments. The torch optimizer still owns
the state, so ``state_dict``/``load_state_dict`` and learning-rate changes work unchanged.

It declines (``step`` returns False, and the caller runs the torch optimizer's own
``step``) whenever its assumptions do not hold: before torch has created the state, when
a gradient is missing, for mixed devices or dtypes, or for options it does not cover.
"""

from __future__ import annotations

import torch

__all__ = ["DirectFusedStep"]


class DirectFusedStep:
    """The fused-kernel fast path for one built ``torch.optim`` Adam, AdamW or SGD."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self._groups: list[tuple[dict, dict]] | None = None
        self._update = self._sgd if isinstance(optimizer, torch.optim.SGD) else self._adam

    @staticmethod
    def supports(optimizer: torch.optim.Optimizer) -> bool:
        if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
            return False
        if not (hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_sgd_")):
            return False
        for group in optimizer.param_groups:
            if not group.get("fused") or group.get("differentiable") or group.get("capturable"):
                return False
            if isinstance(group.get("lr"), torch.Tensor):
                return False
        return True

    def invalidate(self) -> None:
        """Forget the prepared lists (after ``load_state_dict`` replaced the state tensors)."""
        self._groups = None

    def _prepare(self) -> bool:
        groups = []
        for group in self.optimizer.param_groups:
            params = group["params"]
            if not params or len({(p.device, p.dtype) for p in params}) != 1:
                return False
            states = [self.optimizer.state.get(p) or {} for p in params]
            needs_state = not (isinstance(self.optimizer, torch.optim.SGD) and group["momentum"] == 0)
            if needs_state and any(not s for s in states):
                return False  # torch creates the state on its first step
            lists = self._lists(group, params, states)
            if any(b is None for b in lists.get("momentum_buffers", ())):
                return False
            groups.append((group, lists))
        self._groups = groups
        return True

    def _lists(self, group: dict, params: list, states: list) -> dict:
        if isinstance(self.optimizer, torch.optim.SGD):
            momentum = group["momentum"] != 0
            return {"params": params, "momentum_buffers": [s.get("momentum_buffer") for s in states] if momentum else []}
        return {
            "params": params,
            "exp_avgs": [s["exp_avg"] for s in states],
            "exp_avg_sqs": [s["exp_avg_sq"] for s in states],
            "max_exp_avg_sqs": [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else [],
            "steps": [s["step"] for s in states],
        }

    @torch.no_grad()
    def step(self) -> bool:
        """Apply one update; False (nothing done) when the caller must use ``optimizer.step()``."""
        if self._groups is None and not self._prepare():
            return False
        all_grads = []
        for group, lists in self._groups:
            grads = [p.grad for p in lists["params"]]
            if any(g is None for g in grads):
                return False
            all_grads.append(grads)
        for (group, lists), grads in zip(self._groups, all_grads):
            self._update(group, lists, grads)
        return True

    def _adam(self, group, lists, grads) -> None:
        beta1, beta2 = group["betas"]
        decoupled = group.get("decoupled_weight_decay", isinstance(self.optimizer, torch.optim.AdamW))
        torch._foreach_add_(lists["steps"], 1)
        kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        kernel(lists["params"], grads, lists["exp_avgs"], lists["exp_avg_sqs"], lists["max_exp_avg_sqs"],
               lists["steps"], amsgrad=group["amsgrad"], lr=group["lr"], beta1=beta1, beta2=beta2,
               weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
               grad_scale=None, found_inf=None)

    def _sgd(self, group, lists, grads) -> None:
        torch._fused_sgd_(lists["params"], grads, lists["momentum_buffers"], weight_decay=group["weight_decay"],
                          momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
                          nesterov=group["nesterov"], maximize=group["maximize"], is_first_step=False,
                          grad_scale=None, found_inf=None)
