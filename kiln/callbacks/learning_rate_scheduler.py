"""LearningRateScheduler: set the learning rate from a function of the epoch at each epoch's start.

``schedule(epoch, lr)`` (or the older ``schedule(epoch)``) returns the new learning rate; it
is written into the optimizer (and so into torch's param groups) before the epoch runs, and
the rate used is added to the epoch's logs as ``"learning_rate"``.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import torch

from kiln.callbacks.callback import Callback
from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["LearningRateScheduler"]


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from ``schedule``.

    Args:
        schedule: a function ``(epoch, lr) -> new lr`` (epoch counts from 0, lr is the current
            learning rate as a float), or ``(epoch) -> new lr``.
        verbose: 1 prints the learning rate set at each epoch (default 0).

    Example::

        def schedule(epoch, lr):
            return lr if epoch < 10 else lr * math.exp(-0.1)

        model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(schedule)])
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise KilnTypeError(f"`schedule` must be a function (epoch, lr) -> lr; received {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _accepts_two_positional(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if not hasattr(optimizer, "learning_rate"):
            raise KilnValueError('Optimizer must have a "learning_rate" attribute; compile the model first.')
        lr = float(optimizer.learning_rate)
        if self._takes_lr is None:
            # Signature unknown (a builtin, say): try the new form, then the old, as Keras does.
            try:
                new_lr = self.schedule(epoch, lr)
            except TypeError:
                new_lr = self.schedule(epoch)
        else:
            new_lr = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        optimizer.learning_rate = _as_float(new_lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {optimizer.learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def _accepts_two_positional(fn) -> bool | None:
    """True for ``f(epoch, lr)``, False for ``f(epoch)``, None when the signature cannot be read."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    return len(positional) >= 2


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise KilnValueError(f"The output of the `schedule` function should be a float. Got: {value!r}")
    return float(value)
