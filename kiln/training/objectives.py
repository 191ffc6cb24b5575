"""The compiled loss and metrics of a model, resolved against its outputs.

A model may have one output or several (a list or dict). ``loss`` is then one loss for
all outputs, or a list/dict with one per output; ``metrics`` a list for all outputs, or a
list of lists / dict of lists. Resolution waits for the first batch, because Keras's
"accuracy" means binary, categorical or sparse accuracy depending on the shapes.
"""

from __future__ import annotations

from typing import Any

import torch

from kiln import losses as losses_mod
from kiln import metrics as metrics_mod
from kiln.errors import KilnValueError
from kiln.layers.symbolic import flatten, map_structure

__all__ = ["Objectives"]


class Objectives:
    """Loss, loss weights and metrics for every output of a model."""

    def __init__(self, loss, metrics=None, loss_weights=None, weighted_metrics=None):
        self._loss_spec = loss
        self._metric_spec = metrics or []
        self._weighted_spec = weighted_metrics or []
        self._loss_weights_spec = loss_weights
        self.built = False
        self.output_names: list[str] = []
        self.losses: list[Any] = []
        self.loss_weights: list[float] = []
        self.metrics: list[tuple[int, Any, bool]] = []  # (output index, metric, weighted)
        self._last_terms = None  # per-output losses of the last step (several outputs only)
        self._term_sums = None
        self._term_count = 0
        # Validate names now, not at the first batch, so typos fail at compile().
        for spec in self._flat_loss_specs():
            if spec is not None:
                losses_mod.get(spec)
        for spec in flatten(self._metric_spec) + flatten(self._weighted_spec):
            if isinstance(spec, str) and spec.lower() not in ("accuracy", "acc"):
                metrics_mod.get(spec)

    def _flat_loss_specs(self):
        spec = self._loss_spec
        if isinstance(spec, dict):
            return list(spec.values())
        if isinstance(spec, (list, tuple)):
            return list(spec)
        return [spec]

    @property
    def single_output(self) -> bool:
        return len(self.output_names) <= 1

    def build(self, y_true, y_pred, output_names=None) -> None:
        """Resolve losses and metrics for the model's actual outputs."""
        preds = flatten(y_pred)
        trues = flatten(y_true) if y_true is not None else [None] * len(preds)
        keys = list(y_pred.keys()) if isinstance(y_pred, dict) else None
        n = len(preds)
        if n == 1:
            self.output_names = [""]
        else:
            self.output_names = keys or list(output_names or [f"output_{i}" for i in range(n)])
        self.losses = self._per_output(self._loss_spec, n, keys, "loss", resolve=lambda s: None if s is None else losses_mod.get(s))
        if all(l is None for l in self.losses):
            raise KilnValueError("compile() needs a `loss`, e.g. model.compile(optimizer='adam', loss='mse').")
        weights = self._loss_weights_spec
        self.loss_weights = [1.0] * n if weights is None else [float(w) for w in self._per_output(weights, n, keys, "loss_weights")]
        self.metrics = []
        for spec_list, weighted in ((self._metric_spec, False), (self._weighted_spec, True)):
            per_output = self._metrics_per_output(spec_list, n, keys)
            for i, specs in enumerate(per_output):
                for spec in specs:
                    metric = metrics_mod.get(spec, y_true=trues[i], y_pred=preds[i], loss=self.losses[i])
                    if n > 1:
                        metric.name = f"{self.output_names[i]}_{metric.name}"
                    if weighted and metric.name in [m.name for _, m, _ in self.metrics]:
                        metric.name = f"weighted_{metric.name}"
                    self.metrics.append((i, metric, weighted))
        self.built = True

    def _per_output(self, spec, n, keys, what, resolve=lambda s: s):
        if isinstance(spec, dict):
            if keys is None:
                keys = self.output_names
            unknown = set(spec) - set(keys)
            if unknown:
                raise KilnValueError(f"`{what}` names outputs {sorted(unknown)} that the model does not have; "
                                     f"its outputs are {keys}.")
            return [resolve(spec.get(k)) for k in keys]
        if isinstance(spec, (list, tuple)):
            if len(spec) != n:
                raise KilnValueError(f"`{what}` is a list of {len(spec)} entries but the model has {n} output(s).")
            return [resolve(s) for s in spec]
        return [resolve(spec)] * n

    def _metrics_per_output(self, spec, n, keys):
        if isinstance(spec, dict):
            return [_as_list(v) for v in self._per_output(spec, n, keys, "metrics")]
        spec = list(spec)
        if n > 1 and len(spec) == n and all(isinstance(s, (list, tuple)) or s is None for s in spec):
            return [_as_list(s) for s in spec]
        return [spec] * n

    # -- per step (hot path: no host syncs)
    def loss(self, y_true, y_pred, sample_weight=None) -> torch.Tensor:
        if type(y_pred) is torch.Tensor:  # one output: the hot path, no structure walking
            return self.losses[0](_single(y_true), y_pred, sample_weight)
        if self.single_output:
            return self.losses[0](_single(y_true), _single(y_pred), sample_weight)
        trues, preds = flatten(y_true), flatten(y_pred)
        total = None
        terms = []
        for fn, weight, yt, yp in zip(self.losses, self.loss_weights, trues, preds):
            if fn is None:
                terms.append(None)
                continue
            term = fn(yt, yp, sample_weight)
            terms.append(term.detach())
            total = term * weight if total is None else total + term * weight
        self._last_terms = terms  # read by update_metrics: Keras logs each output's loss
        return total

    def update_metrics(self, y_true, y_pred, sample_weight=None) -> None:
        if not self.single_output and self._last_terms is not None:
            self._track_output_losses(flatten(y_pred)[0].shape[0])
        if not self.metrics:
            return
        if type(y_pred) is torch.Tensor and type(y_true) is torch.Tensor:  # the hot path
            for _, metric, weighted in self.metrics:
                metric.update_state(y_true, y_pred, sample_weight if weighted else None)
            return
        trues, preds = flatten(y_true), flatten(y_pred)
        for i, metric, weighted in self.metrics:
            metric.update_state(trues[i], preds[i], sample_weight if weighted else None)

    def _track_output_losses(self, batch_size: int) -> None:
        if self._term_sums is None:
            self._term_sums = [None if t is None else torch.zeros((), dtype=torch.float64, device=t.device)
                               for t in self._last_terms]
        for total, term in zip(self._term_sums, self._last_terms):
            if term is not None:
                total.add_(term, alpha=batch_size)
        self._term_count += batch_size
        self._last_terms = None

    def metric_states(self) -> list:
        """The running state of every metric (for checkpoints inside an epoch)."""
        return [metric._state for _, metric, _ in self.metrics]

    def load_metric_states(self, states: list, device) -> None:
        to_device = lambda v: v.to(device) if torch.is_tensor(v) else v  # noqa: E731
        for (_, metric, _), state in zip(self.metrics, states):
            metric._state = map_structure(to_device, state)
            metric._device = torch.device(device) if state is not None else None

    def reset(self) -> None:
        self._term_sums, self._term_count, self._last_terms = None, 0, None
        for _, metric, _ in self.metrics:
            metric.reset_state()

    def results(self) -> dict[str, float]:
        logs = {}
        if self._term_sums is not None and self._term_count:
            for name, total in zip(self.output_names, self._term_sums):
                if total is not None:
                    logs[f"{name}_loss"] = float(total) / self._term_count
        for _, metric, _ in self.metrics:
            value = metric.result()
            if isinstance(value, (list, tuple)) or (hasattr(value, "ndim") and value.ndim > 0):
                # Per-class results (F1Score(average=None), ...) log one entry per class.
                for i, v in enumerate(list(value)):
                    logs[f"{metric.name}_{i}"] = float(v)
            else:
                logs[metric.name] = float(value)
        return logs

    @property
    def metric_names(self) -> list[str]:
        names = [] if self.single_output else [f"{n}_loss" for n, fn in zip(self.output_names, self.losses) if fn]
        return names + [metric.name for _, metric, _ in self.metrics]


def _as_list(spec):
    if spec is None:
        return []
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


def _single(structure):
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        return structure[0]
    if isinstance(structure, dict) and len(structure) == 1:
        return next(iter(structure.values()))
    return structure
