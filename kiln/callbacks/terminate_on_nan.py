"""TerminateOnNaN: stop training at the first batch whose running loss is NaN or infinite.

Cost: the loss lives on the device, and this callback reads it after every batch, so each
training step waits for the device (one host sync per step). Without it, kiln reads the
loss once per epoch and raises ``NaNLossError`` at the end of an epoch whose loss is NaN.
Use it when stopping at the very batch that diverged is worth that sync.
"""

from __future__ import annotations

import math

from kiln.callbacks.callback import Callback
from kiln.errors import NaNLossError

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    Args:
        raise_error: False (default) stops gracefully by setting ``model.stop_training``, so
            every callback's ``on_train_end`` still runs; True raises ``NaNLossError`` at once.

    Example::

        model.fit(x, y, epochs=10, callbacks=[TerminateOnNaN()])
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")  # reading a lazy log is the host sync, see the module docstring
        if loss is None:
            return
        loss = float(loss)
        if math.isnan(loss) or math.isinf(loss):
            if self.raise_error:
                raise NaNLossError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   f"Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
