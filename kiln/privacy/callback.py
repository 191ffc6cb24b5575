"""PrivacyLogger: adds the epsilon spent so far to each epoch's logs.

Why a callback: the History, JSONLLogger and progress bar already record whatever is in an
epoch's logs; putting ``epsilon`` there (before them: the trainer lists this callback first)
makes the spent budget appear in ``history.history["epsilon"]``, ``metrics.jsonl`` and the
report without any of them knowing about privacy.
"""

from __future__ import annotations

from kiln.callbacks.callback import Callback

__all__ = ["PrivacyLogger"]


class PrivacyLogger(Callback):
    """Writes ``logs["epsilon"]`` at each epoch's end from a ``PrivateFit``.

    Args:
        private: the fit's ``kiln.privacy.engine.PrivateFit``.
    """

    def __init__(self, private):
        super().__init__()
        self.private = private

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epsilon"] = self.private.end_epoch()
