"""PoissonData: in-memory training data batched by Poisson sampling, as DP-SGD's analysis needs.

Why not shuffled slices: the accountant's privacy amplification assumes each batch includes
every sample independently with probability ``q`` (so batch sizes vary, and a batch may even be
empty). Opacus's ``DPDataLoader`` does this with a ``UniformWithReplacementSampler``; this class
does the same draw (``torch.rand(n) < q`` per step, ``steps = 1 / q`` steps per epoch) behind
kiln's data interface (``batches(batch_size, shuffle, generator, start_step)``), so the
trainer's loop, checkpoints and resume work unchanged: the masks are drawn from the fit's
shuffle generator, whose state at the start of an epoch is in every checkpoint, so a resumed
run redraws the same batches and skips the ones already trained on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from kiln.training.data_adapter import ArrayData, first_tensor

__all__ = ["PoissonData"]


class PoissonData:
    """Poisson-sampled batches of ``data`` (an ``ArrayData``): ``steps`` per epoch, each sample
    in each batch with probability ``1 / steps``.

    Args:
        data: the training data, already on its device.
        steps: batches per epoch (``ceil(n / batch_size)``, as Opacus's ``1 / len(loader)``).
    """

    needs_steps_per_epoch = False

    def __init__(self, data: ArrayData, steps: int):
        self.data = data
        self.steps = steps
        self.sample_rate = 1.0 / steps

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def expected_batch_size(self) -> int:
        """What DP-SGD divides the noisy gradient sum by (Opacus's ``int(n * q)``)."""
        return int(self.size * self.sample_rate)

    def example(self):
        return self.data.example()

    def to(self, device) -> "PoissonData":
        return PoissonData(self.data.to(device), self.steps)

    def num_batches(self, batch_size: int | None = None) -> int:
        return self.steps

    def batches(self, batch_size: int | None = None, shuffle: bool = True, generator: torch.Generator | None = None,
                start_step: int = 0) -> Iterator[tuple]:
        """Yield ``steps`` batches ``(x, y, sample_weight)``; ``batch_size`` and ``shuffle`` are
        ignored (the sample rate decides both). The first ``start_step`` masks are drawn and
        dropped, so a resumed epoch continues with the batches an uninterrupted one would see."""
        n = self.size
        device = first_tensor(self.data.x).device
        for step in range(self.steps):
            mask = torch.rand(n, generator=generator) < self.sample_rate  # (n,): who is in this batch
            if step < start_step:
                continue
            index = mask.nonzero().reshape(-1).to(device)
            batch = self.data.take(index)
            yield batch.x, batch.y, batch.sample_weight


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))
