"""BackupAndRestore: survive an interrupted ``fit`` (Keras's fault-tolerance callback).

Every ``save_freq`` (each epoch, or every N training steps) it writes the trainer's whole
state to ``backup_dir/latest.ckpt`` atomically. When ``fit`` starts and a backup is there,
it restores it and training continues from that exact point: same weights, optimizer
moments, random generators and data order, so a run killed with SIGKILL and started again
with the same callback ends with the weights of a run that was never interrupted (on the
CPU). The backup is deleted when ``fit`` completes, unless ``delete_checkpoint=False``.
"""

from __future__ import annotations

from pathlib import Path

from kiln.callbacks.callback import Callback
from kiln.errors import KilnValueError

__all__ = ["BackupAndRestore"]

_FILE = "latest.ckpt"


class BackupAndRestore(Callback):
    """Back up training state and restore it after an interruption.

    Args:
        backup_dir: folder for the backup (created when needed).
        save_freq: "epoch" (default), or an int N: back up every N training steps.
        delete_checkpoint: remove the backup when ``fit`` finishes normally (default True).
        double_checkpoint: also keep the previous backup as ``previous.ckpt``.
        verbose: 1 prints one line when a backup is restored ("resumed at epoch E, step S": E
            counts from 1 as the log line does, S is how many of its steps were done), so a user
            sees where training continues (default 0, as Keras prints nothing).

    Example::

        model.fit(x, y, epochs=10, callbacks=[kiln.callbacks.BackupAndRestore("backup")])
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, double_checkpoint=False, verbose=0):
        super().__init__()
        if not backup_dir:
            raise KilnValueError("BackupAndRestore needs a `backup_dir`, e.g. BackupAndRestore('backup').")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and not isinstance(save_freq, bool)
                                         and save_freq > 0):
            raise KilnValueError(f"Received an invalid value for `save_freq`, expected 'epoch' or a positive "
                                 f"integer. Received: save_freq={save_freq!r}")
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.double_checkpoint = bool(double_checkpoint)
        self.verbose = int(verbose)
        self.restored_from: Path | None = None
        if save_freq != "epoch":
            # Only then is this a batch callback: per-epoch backups add nothing to each step.
            self.on_train_batch_end = self._maybe_backup_on_batch

    @property
    def path(self) -> Path:
        return self.backup_dir / _FILE

    def _model(self):
        """The model (a kiln Model or Trainer): both offer ``training_state()`` and
        ``restore_training_state()``, the public checkpoint API."""
        if not hasattr(self.model, "training_state"):
            raise KilnValueError(f"BackupAndRestore works with kiln models and kiln.Trainer; received "
                                 f"{type(self.model).__name__}.")
        return self.model

    def on_train_begin(self, logs=None):
        from kiln.training.checkpoint import load_checkpoint
        self._first_epoch = None
        self._remove_partial_writes()
        if self.path.exists():
            state = load_checkpoint(self.path)
            self._model().restore_training_state(state)
            self.restored_from = self.path
            if self.verbose:
                progress = state["progress"]
                # epoch is 0-based inside fit; the log line ("Epoch 3/10") counts from 1.
                print(f"resumed at epoch {progress['epoch'] + 1}, step {progress['step']} (from {self.path})")

    def _remove_partial_writes(self) -> None:
        """Delete the temporary files a killed backup write left (``.latest.ckpt.*.tmp``): the
        rename never happened, so they hold no state the backup itself does not have."""
        if self.backup_dir.is_dir():
            for name in (_FILE, "previous.ckpt"):
                for partial in self.backup_dir.glob(f".{name}.*.tmp"):
                    partial.unlink(missing_ok=True)

    def _maybe_backup_on_batch(self, batch, logs=None):
        if (batch + 1) % self.save_freq == 0:
            self._backup()

    def on_epoch_begin(self, epoch, logs=None):
        # The previous epoch is complete here, and every callback (History included) has seen
        # its logs: the backup's history is whole. Also taken with a step frequency.
        if self._first_epoch is None:
            self._first_epoch = epoch
        elif epoch > self._first_epoch:
            self._backup()

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            for name in (_FILE, "previous.ckpt"):
                (self.backup_dir / name).unlink(missing_ok=True)

    def _backup(self) -> None:
        from kiln.training.checkpoint import save_checkpoint
        if self.double_checkpoint and self.path.exists():
            self.path.replace(self.backup_dir / "previous.ckpt")
        save_checkpoint(self.path, self._model().training_state())
