"""ModelCheckpoint: save the model (or its weights) every epoch, every N batches, or when it improves.

The file name may hold the epoch and any log value: ``"ckpt/{epoch:02d}-{val_loss:.2f}.keras"``
(epochs count from 1 in names, as in Keras). Every save is atomic: the model is written to a
temporary name in the target's folder and then renamed over the target, so a crash mid-save
never leaves a half-written checkpoint where the last good one was.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings

from kiln.callbacks.callback import Callback
from kiln.callbacks.early_stopping import check_mode, resolve_mode
from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback):
    """Save the model or its weights during training.

    Args:
        filepath: where to save (str or ``os.PathLike``); may contain ``{epoch}``, ``{batch}`` and log
            keys with format specs, e.g. ``"run/{epoch:02d}-{val_loss:.2f}.keras"``. ``model.save``
            writes one zip file for a name ending in ``.keras``/``.kiln`` and a folder otherwise;
            ``model.save_weights`` writes one safetensors file.
        monitor: the log key that decides what "best" means (default ``"val_loss"``).
        verbose: 1 prints a line for each save decision (default 0).
        save_best_only: save only when ``monitor`` improves on the best so far (default False).
        save_weights_only: ``model.save_weights(path)`` instead of ``model.save(path)`` (default False).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default; direction read from the name).
        save_freq: ``"epoch"`` (default) or an int: save every that many training batches.
        initial_value_threshold: the "best" value to beat before the first save when
            ``save_best_only`` (default None: the first value counts as an improvement).

    Example::

        checkpoint = ModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True)
        model.fit(x, y, validation_split=0.2, epochs=20, callbacks=[checkpoint])
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if not isinstance(filepath, (str, os.PathLike)):
            raise KilnTypeError(f"`filepath` must be a str or os.PathLike; received {type(filepath).__name__}")
        if not isinstance(monitor, str):
            raise KilnTypeError(f"`monitor` must be a log key such as 'val_loss'; received {monitor!r}")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise KilnValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are 'epoch' or a "
                                 f"positive integer (save every that many batches).")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = check_mode(mode, "ModelCheckpoint")
        self._direction = resolve_mode(monitor, self.mode)
        self.save_freq = save_freq
        self.best = initial_value_threshold
        self._current_epoch = 0
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        if save_freq != "epoch":
            # The trainer only calls batch hooks on callbacks that define them, so per-epoch
            # checkpointing costs nothing per step; batch saving turns the hook on here.
            self.on_train_batch_end = self._on_train_batch_end

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def _on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch) -> bool:
        if batch <= self._last_batch_seen:  # a new epoch started; batches count from 0
            add_batches = batch + 1
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available. Available metrics are: "
                          f"{','.join(logs.keys())}", stacklevel=3)
            return True
        current = float(current)
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, "
                      f"saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        return value < reference if self._direction == "min" else value > reference

    def _save_model(self, epoch, batch, logs) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, logs, filepath):
            save = self.model.save_weights if self.save_weights_only else self.model.save
            _atomic_save(save, filepath)

    def _get_file_path(self, epoch, batch, logs) -> str:
        values = dict(logs)
        values["epoch"] = epoch + 1
        if batch is not None:
            values.setdefault("batch", batch + 1)
        try:
            return self.filepath.format(**values)
        except (KeyError, IndexError) as err:
            raise KilnValueError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {err!r} is '
                                 f"not a log key; available keys are: {', '.join(sorted(values))}.") from err


def _atomic_save(save, filepath: str) -> None:
    """Call ``save(temporary path)`` in the target's folder, then rename it over ``filepath``."""
    filepath = filepath.rstrip("/" + os.sep) or filepath
    folder, name = os.path.split(filepath)
    if folder:
        os.makedirs(folder, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    # A prefix, not a suffix: the saver picks the format from the ending (.keras zip vs folder).
    tmp = os.path.join(folder, f".tmp-{token}-{name}")
    try:
        save(tmp)
        if not os.path.lexists(tmp):
            raise KilnValueError(f"Saving the checkpoint wrote nothing at {tmp}; cannot move it to {filepath}.")
        if os.path.isdir(tmp) or (os.path.isdir(filepath) and not os.path.islink(filepath)):
            # os.replace cannot put a folder over an existing folder (or a file over a folder):
            # move the old one aside, move the new one in, then delete the old one.
            old = os.path.join(folder, f".old-{token}-{name}")
            if os.path.lexists(filepath):
                os.replace(filepath, old)
            os.replace(tmp, filepath)
            _remove(old)
        else:
            os.replace(tmp, filepath)
    finally:
        _remove(tmp)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)
