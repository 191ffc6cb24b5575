"""History: records each epoch's logs; ``fit`` returns it (``history.history["loss"]``)."""

from __future__ import annotations

from kiln.callbacks.callback import Callback

__all__ = ["History"]


class History(Callback):
    """``history.history`` maps each log key (``loss``, ``val_loss``, ``mae``, ...) to a list
    with one value per epoch; ``history.epoch`` lists the epoch indices."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
