"""ReduceLROnPlateau: multiply the learning rate by ``factor`` when a monitored quantity stalls.

Keras 3's rules: after ``patience`` epochs without an improvement of more than
``min_delta``, ``lr = max(lr * factor, min_lr)``; then ``cooldown`` epochs pass before the
wait counts again. The learning rate used in the epoch is added to its logs as
``"learning_rate"``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from kiln.callbacks.callback import Callback
from kiln.callbacks.early_stopping import check_mode, missing_monitor_message, resolve_mode
from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when ``monitor`` has stopped improving.

    Args:
        monitor: the log key to watch (default ``"val_loss"``).
        factor: multiply the learning rate by this, below 1 (default 0.1).
        patience: epochs without improvement before reducing (default 10).
        verbose: 1 prints each reduction (default 0).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default; direction read from the name).
        min_delta: an improvement must beat the best value by more than this (default 1e-4).
        cooldown: epochs after a reduction during which the wait does not count (default 0).
        min_lr: the learning rate never goes below this (default 0.0).

    Example::

        reduce_lr = ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5, min_lr=1e-4)
        model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[reduce_lr])
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if not isinstance(monitor, str):
            raise KilnTypeError(f"`monitor` must be a log key such as 'val_loss'; received {monitor!r}")
        for name, value in (("factor", factor), ("min_delta", min_delta), ("min_lr", min_lr)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise KilnTypeError(f"`{name}` must be a number; received {name}={value!r}")
        if factor >= 1.0:
            raise KilnValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        if factor <= 0:
            raise KilnValueError(f"ReduceLROnPlateau needs a factor between 0 and 1 (exclusive). "
                                 f"Received factor={factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise KilnValueError(f"Received an invalid value for `{name}` in ReduceLROnPlateau, expected a "
                                     f"non-negative integer. Received: {name}={value!r}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = check_mode(mode, "ReduceLROnPlateau")
        self.min_delta = float(min_delta)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self) -> None:
        self._direction = resolve_mode(self.monitor, self.mode)
        self.best = math.inf if self._direction == "min" else -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def monitor_op(self, current, best) -> bool:
        if self._direction == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(missing_monitor_message("Learning rate reduction", self.monitor, logs), stacklevel=2)
            return
        current = float(current)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0

        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate)
                # Compared in float32, as Keras: an lr stored as float32 may sit just above min_lr.
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
