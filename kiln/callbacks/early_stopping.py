"""EarlyStopping: stop training when a monitored quantity has stopped improving (Keras 3's rules).

Each epoch the monitored value (``val_loss`` by default) is compared with the best so far;
after ``patience`` epochs without an improvement of more than ``min_delta``, the callback
sets ``model.stop_training``. With ``restore_best_weights`` the weights of the best epoch
are put back when training ends, whether it stopped early or ran all its epochs.

``resolve_mode`` (which way is "better" for a name) is shared with ModelCheckpoint and
ReduceLROnPlateau so the three agree.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import torch

from kiln.callbacks.callback import Callback
from kiln.errors import KilnTypeError, KilnValueError, closest_match

__all__ = ["EarlyStopping"]

_MODES = ("auto", "min", "max")
# Names of built-in metrics where higher is better (Keras 3 marks these with direction "up").
_HIGHER_IS_BETTER_ENDINGS = ("precision", "recall", "f1_score", "fbeta_score", "r2_score", "iou")


def check_mode(mode, owner: str) -> str:
    """Validate a ``mode`` argument (``"auto"``, ``"min"`` or ``"max"``)."""
    if mode not in _MODES:
        hint = closest_match(str(mode), _MODES)
        raise KilnValueError(f"Received an invalid value for `mode` in {owner}, expected one of "
                             f"{', '.join(map(repr, _MODES))}. Received: mode={mode!r}."
                             + (f" Did you mean {hint!r}?" if hint else ""))
    return mode


def resolve_mode(monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``: ``mode`` itself, or for ``"auto"`` the direction read from the name.

    Losses and errors go down; accuracies (any name containing "acc"), AUC, precision, recall,
    F1/F-beta, R2 and IoU go up; any other name is treated as something to minimise.
    """
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name.endswith("loss"):
        return "min"
    if "acc" in name or "auc" in name or name.endswith(_HIGHER_IS_BETTER_ENDINGS):
        return "max"
    return "min"


def missing_monitor_message(what: str, monitor: str, logs) -> str:
    """Keras's warning for a monitored key that is not in the logs, with the nearest key."""
    keys = list(logs.keys()) if logs else []
    hint = closest_match(monitor, keys)
    return (f"{what} conditioned on metric `{monitor}` which is not available. "
            f"Available metrics are: {','.join(keys)}" + (f". Did you mean `{hint}`?" if hint else ""))


def _check_int(name: str, value, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise KilnValueError(f"Received an invalid value for `{name}` in {owner}, expected a non-negative "
                             f"integer. Received: {name}={value!r}")
    return int(value)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving.

    Args:
        monitor: the log key to watch (default ``"val_loss"``; ``"loss"``, ``"val_accuracy"``, ...).
        min_delta: an improvement must beat the best value by more than this (default 0; its sign
            is ignored).
        patience: epochs without improvement before stopping (default 0).
        verbose: 1 prints when training stops and when weights are restored (default 0).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default; direction read from the name: losses and
            errors down, accuracy/AUC/precision/recall up).
        baseline: a value to beat (default None). The wait counter only restarts when an epoch
            improves on both the best so far and the baseline, so training stops after
            ``patience`` epochs if the baseline is never reached.
        restore_best_weights: put back the weights of the best epoch at the end of training,
            also when training ran all its epochs (default False).
        start_from_epoch: epochs to skip before monitoring starts, for a warm-up (default 0).

    Attributes:
        stopped_epoch: the (0-based) epoch at which training was stopped, 0 if it was not.
        best, best_epoch, wait: the best value seen, its epoch, and epochs since an improvement.

    Example::

        stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
        model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if not isinstance(monitor, str):
            raise KilnTypeError(f"`monitor` must be a log key such as 'val_loss'; received {monitor!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real):
            raise KilnTypeError(f"`min_delta` must be a number; received min_delta={min_delta!r}")
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = _check_int("patience", patience, "EarlyStopping")
        self.verbose = verbose
        self.mode = check_mode(mode, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _check_int("start_from_epoch", start_from_epoch, "EarlyStopping")
        self._direction = resolve_mode(monitor, self.mode)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        # Reset, so one instance can serve several fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Nothing saved yet: the current weights are the best so far.
            self.best_weights = self._copy_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self._copy_weights()
            # Restart the wait only when the epoch beats both the best so far and the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(missing_monitor_message("Early stopping", self.monitor, logs), stacklevel=2)
            return None
        return float(value)

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        if self._direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def _copy_weights(self) -> dict:
        # A copy on the same device: state_dict() returns views that the next step would overwrite.
        return {key: value.detach().clone() if torch.is_tensor(value) else copy.deepcopy(value)
                for key, value in self.model.state_dict().items()}
