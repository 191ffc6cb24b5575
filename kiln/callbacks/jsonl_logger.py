"""JSONLLogger: one JSON object per epoch in a file, rewritten atomically each epoch.

Why rewrite: after a resumed run the file must hold each epoch once; rebuilding it from the
history (which a resumed fit restores) keeps it right without bookkeeping.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from kiln.callbacks.callback import Callback

__all__ = ["JSONLLogger"]


def _clean(value):
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


class JSONLLogger(Callback):
    """Write ``{"epoch": n, "loss": ..., "val_loss": ...}`` lines (epochs 1-based, as printed)."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        from kiln.saving.weights_io import atomic_write_bytes
        state = getattr(self.model, "fit_state", None)
        history = None if state is None else state.history
        rows = []
        if history is not None:
            for i, past in enumerate(history.epoch):
                if past < epoch:
                    rows.append({"epoch": past + 1, **{k: _clean(v[i]) for k, v in history.history.items()
                                                       if i < len(v)}})
        rows.append({"epoch": epoch + 1, **{k: _clean(v) for k, v in (logs or {}).items()}})
        atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in rows).encode())
