"""FitState: where a running ``fit`` is, in one object that callbacks may read.

Why one object: the loop's position (epoch, step), its running sums, the shuffle
generator, a checkpoint's resume point and the stop flag used to live in half a dozen
private trainer attributes, and callbacks such as BackupAndRestore reached into them.
``fit`` creates one ``FitState`` per call (``FitState.start``) and keeps it up to date;
it is public as ``model.fit_state`` (or ``trainer.fit_state`` for a plain module) and
stays readable after ``fit`` returns, describing where the run ended.

When the fields are current: the epoch-level ones (``epoch``, ``logs``, ``history``) in
every hook; the step-level ones (``step``, ``count``, ``loss_sum``) inside batch hooks,
where they describe the position just after the last completed step. The loop updates them
only when some callback has a batch hook, so a run without one does no extra work per
step.

Example::

    class Where(kiln.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            state = self.model.fit_state
            print(state.epoch, state.step, "of", state.steps)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from kiln.callbacks.history import History

__all__ = ["FitState"]


@dataclass
class FitState:
    """The state of one ``fit`` call.

    Attributes:
        epochs: the epoch ``fit`` stops before (its ``epochs`` argument).
        initial_epoch: the epoch ``fit`` was asked to start at.
        steps: training steps per epoch (None for a stream of unknown length).
        history: the run's ``History`` (its ``history`` dict grows by one entry per epoch).
        shuffle_generator: the ``torch.Generator`` that draws each epoch's data order.
        epoch: the current epoch (0-based); after an epoch's training steps, the next one.
        step: training steps completed in the current epoch (0 between epochs).
        count: samples seen in the current epoch.
        loss_sum: the epoch's summed per-sample loss on the device (None before the first step).
        epoch_generator_state: ``shuffle_generator``'s state at the start of the current
            epoch; it regenerates the epoch's data order for a resumed run.
        resume: the position a restored checkpoint continues from (set by
            ``restore_training_state``, consumed by the next epoch), or None.
        logs: the last completed epoch's logs (``{}`` before the first).
        stop_training: set to True (by a callback, through ``model.stop_training``) to end
            ``fit`` after the current step.
        privacy: the ``kiln.privacy.engine.PrivateFit`` of a private fit (its accountant,
            ``spent_epsilon()`` and ``record()``), else None.
    """

    epochs: int
    initial_epoch: int
    steps: int | None
    history: History
    shuffle_generator: torch.Generator
    epoch: int = 0
    step: int = 0
    count: int = 0
    loss_sum: torch.Tensor | None = None
    epoch_generator_state: torch.Tensor | None = None
    resume: dict | None = None
    logs: dict[str, Any] = field(default_factory=dict)
    stop_training: bool = False
    privacy: Any = None

    @classmethod
    def start(cls, *, epochs: int, initial_epoch: int, steps: int | None, history: History) -> "FitState":
        """The state at the start of ``fit``. Its shuffle generator is seeded from torch's
        global generator, so ``kiln.utils.set_random_seed`` fixes the data order."""
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        return cls(epochs=epochs, initial_epoch=initial_epoch, steps=steps, history=history,
                   shuffle_generator=generator, epoch=initial_epoch)

    @property
    def in_epoch(self) -> bool:
        """True when the position is inside an epoch (some of its steps done, not all)."""
        return self.step > 0

    def begin_epoch(self, epoch: int) -> None:
        """Record the epoch's start: its number and the generator state that orders its data."""
        self.epoch = epoch
        self.epoch_generator_state = self.shuffle_generator.get_state()

    def end_epoch(self, epoch: int) -> None:
        """The epoch's training steps are done: the position moves to the start of the next."""
        self.epoch, self.step, self.loss_sum, self.count = epoch + 1, 0, None, 0
