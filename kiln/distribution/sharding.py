"""Each rank's rows of one global batch, cut so that N processes train like one.

Why cut global batches instead of giving each rank its own sampler: every rank draws the same
global order from the same seeded generator (the single-process one), then takes a contiguous
slice of each global batch. The union of the slices is exactly the single-process batch, at
any world size, so the data order does not depend on N.

Why the loss is rescaled: kiln's losses are means over the rows they see (Keras's
``sum_over_batch_size``). Rank r sees n_r of the B rows of a global batch, so its mean loss
L_r weighs its rows by 1/n_r. The single-process gradient is sum_r (n_r / B) grad L_r. DDP
all-reduces gradients and divides by N, so each rank back-propagates L_r * n_r * N / B: the
average over N is then sum_r (n_r / B) grad L_r, the single-process gradient, also when the
last batch does not split evenly. A rank whose slice is empty (a last batch smaller than N)
still has to join DDP's all-reduce: it runs one row with weight 0, so it adds exact zeros.
Regularization penalties, added once per step on every rank, come out once as well
(sum_r n_r / B = 1).

Limits (said, not hidden): losses normalised by something other than the row count (masked
losses, ``mean_with_sample_weight``) and layers whose forward depends on the whole batch
(BatchNorm: statistics per rank; Dropout: masks per rank) do not reproduce the one-process run
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from kiln.layers.symbolic import flatten, map_structure

__all__ = ["Shard", "shard_bounds", "shard_batch"]


def shard_bounds(rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, end)`` of rank ``rank``'s contiguous slice of a ``rows``-row batch.

    The slices of ranks 0..N-1 cover 0..rows in order, sizes differing by at most one,
    e.g. ``rows=5, N=2`` -> (0, 2), (2, 5)."""
    return rows * rank // world_size, rows * (rank + 1) // world_size


@dataclass
class Shard:
    """One rank's part of a global batch.

    Attributes:
        x, y, sample_weight: the rank's rows (one placeholder row when ``rows == 0``).
        rows: how many real rows it holds (0: the placeholder must add nothing).
        loss_scale: the factor on the rank's mean loss (``rows * N / B``, see the module doc).
    """

    x: Any
    y: Any
    sample_weight: torch.Tensor | None
    rows: int
    loss_scale: float


def shard_batch(x, y, sample_weight, rank: int, world_size: int) -> Shard:
    """Cut rank ``rank``'s slice from the global batch ``(x, y, sample_weight)``."""
    total = flatten(x)[0].shape[0]
    start, end = shard_bounds(total, rank, world_size)
    rows = end - start
    if rows == 0:  # keep one real row so the forward and DDP's all-reduce run; its weight is 0
        start, end = total - 1, total
    cut = lambda t: t[start:end]  # noqa: E731
    return Shard(map_structure(cut, x), None if y is None else map_structure(cut, y),
                 None if sample_weight is None else sample_weight[start:end], rows,
                 rows * world_size / total)
