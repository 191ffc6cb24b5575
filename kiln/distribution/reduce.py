"""Sum an epoch's loss and metric states over ranks, so every rank logs the one-process numbers.

Why states, not results: a mean of per-rank means is not the mean (shards differ in size),
and an AUC of per-rank AUCs is not the AUC. kiln's metric states are sums (``total``/``count``,
confusion counts, regression moments) or lists of rows (AUC); summing the former and
concatenating the latter in rank order gives exactly the state one process would have.
The ``thresholds`` of confusion metrics are a constant, the same on every rank, and kept.

Every rank gets the same reduced values, so callbacks that decide on epoch logs
(EarlyStopping, ReduceLROnPlateau, ModelCheckpoint's "best") decide the same everywhere.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["reduce_epoch"]

_CONSTANT_STATE_KEYS = frozenset({"thresholds"})


def reduce_epoch(loss_sum: torch.Tensor | None, count: int, objectives, device) -> tuple[torch.Tensor, int]:
    """All ranks' ``(loss_sum, count)``; the objectives' metric states are replaced by their
    sums over ranks as well. Every rank must call it (it is a collective)."""
    local = torch.zeros(2, dtype=torch.float64, device=device)
    if loss_sum is not None:
        local[0] = loss_sum.detach().to(torch.float64)
    local[1] = count
    dist.all_reduce(local)
    _reduce_output_losses(objectives, device)
    metrics = [_holder(metric) for _, metric, _ in objectives.metrics]
    if metrics:
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, [None if m is None else _to_cpu(m._state) for m in metrics])
        for i, metric in enumerate(metrics):
            merged = _merge([states[i] for states in gathered])
            if metric is not None and merged is not None:
                metric._state = _to_device(merged, device)
                metric._device = torch.device(device)
    return local[0], int(local[1].item())


def _holder(metric):
    """The metric object that holds the state: "accuracy" resolves to an inner metric on its
    first batch (kiln/metrics/lookup.py); None when it has not seen a batch on this rank."""
    inner = getattr(metric, "metric", metric)
    return inner if hasattr(inner, "_state") else None


def _reduce_output_losses(objectives, device) -> None:
    """Per-output loss sums (multi-output models) and their sample count."""
    sums = objectives._term_sums
    if sums is None or not any(t is not None for t in sums):
        return
    packed = torch.tensor([0.0 if t is None else float(t) for t in sums] + [float(objectives._term_count)],
                          dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    for t, value in zip(sums, packed[:-1].tolist()):
        if t is not None:
            t.fill_(value)
    objectives._term_count = int(packed[-1].item())


def _to_cpu(state):
    if torch.is_tensor(state):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_cpu(v) for v in state]
    return state


def _to_device(state, device):
    if torch.is_tensor(state):
        return state.to(device)
    if isinstance(state, dict):
        return {k: _to_device(v, device) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_device(v, device) for v in state]
    return state


def _merge(states: list):
    """One metric's states from every rank (rank order) -> the state of all their rows."""
    present = [s for s in states if s is not None]
    if not present:
        return None
    first = present[0]
    if torch.is_tensor(first):
        return torch.stack(present).sum(dim=0)
    if isinstance(first, dict):
        return {k: (first[k] if k in _CONSTANT_STATE_KEYS else _merge([s[k] for s in present])) for k in first}
    if isinstance(first, list):  # rows kept for metrics such as AUC: concatenate, rank order
        return [item for s in present for item in s]
    return first
