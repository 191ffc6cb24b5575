"""ProgbarLogger: Keras's per-epoch progress bar and log line.

verbose=1 redraws ``12/32 ━━━━━━━╺━━━━━━━━━━━━ 1s 9ms/step - loss: 0.3457 - mae: 0.4966``
on one line while the epoch runs and leaves the final line; verbose=2 prints only
``32/32 - 1s - 9ms/step - loss: ... - val_loss: ...`` once per epoch.

Why a timer: reading the running loss needs a host sync; the bar is redrawn at most every
``interval`` seconds, so training never waits on the display.
"""

from __future__ import annotations

import sys
import time

from kiln.callbacks.callback import Callback

__all__ = ["ProgbarLogger", "format_logs"]

_WIDTH = 20


def format_value(value) -> str:
    value = float(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


def format_logs(logs) -> str:
    return "".join(f" - {key}: {format_value(val)}" for key, val in logs.items())


def _format_time(seconds: float, steps: int) -> str:
    per = seconds / max(steps, 1)
    if per >= 1:
        unit = f"{per:.0f}s/step"
    elif per >= 1e-3:
        unit = f"{per * 1e3:.0f}ms/step"
    else:
        unit = f"{per * 1e6:.0f}us/step"
    return f"{seconds:.0f}s", unit


def _bar(done: int, total: int | None) -> str:
    if not total:
        return ""
    filled = min(int(_WIDTH * done / total), _WIDTH)
    if filled == _WIDTH:
        return "━" * _WIDTH
    return "━" * filled + "╺" + "─" * (_WIDTH - filled - 1)


class ProgbarLogger(Callback):
    """Prints training progress the way Keras does. Added by ``fit`` when ``verbose`` is 1 or 2."""

    def __init__(self, verbose: int = 1, interval: float = 0.1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.interval = interval
        self.stream = stream
        self._mode = "train"

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    # -- training
    def on_train_begin(self, logs=None):
        self._mode = "train"

    def on_epoch_begin(self, epoch, logs=None):
        self._mode = "train"
        self._start = time.perf_counter()
        self._last_draw = self._start
        self._seen = 0
        self._write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}\n")

    def _live(self) -> bool:
        """Redraw the bar in place only on a terminal; logs and pipes get the final line alone."""
        if not hasattr(self, "_is_live"):
            stream = self.stream or sys.stdout
            self._is_live = bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules
        return self._is_live

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self.verbose != 1 or not self._live():
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(self._seen, self.params.get("steps"), now - self._start, logs, final=False)

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self._draw(self._seen, self.params.get("steps") or self._seen, elapsed, logs or {}, final=True)

    # -- evaluate / predict on their own (not inside fit)
    def on_test_begin(self, logs=None):
        if self._mode == "train" and self.params.get("inside_fit"):
            return
        self._mode = "test"
        self._start = time.perf_counter()
        self._seen = 0

    def on_test_batch_end(self, batch, logs=None):
        if self._mode == "test":  # inside fit, validation batches must not move the epoch's bar
            self._seen = batch + 1

    def on_test_end(self, logs=None):
        if self._mode != "test":
            return
        self._draw(self._seen, self.params.get("steps") or self._seen, time.perf_counter() - self._start,
                   logs or {}, final=True)

    def on_predict_begin(self, logs=None):
        self._mode = "predict"
        self._start = time.perf_counter()
        self._seen = 0

    def on_predict_batch_end(self, batch, logs=None):
        self._seen = batch + 1

    def on_predict_end(self, logs=None):
        self._draw(self._seen, self.params.get("steps") or self._seen, time.perf_counter() - self._start, {},
                   final=True)

    def _draw(self, seen, total, elapsed, logs, final):
        total_s, per_step = _format_time(elapsed, seen)
        width = len(str(total)) if total else 1
        counter = f"{seen:>{width}}/{total}" if total else f"{seen}"
        values = format_logs(logs) if logs is not None else ""
        if self.verbose == 2:
            if final:
                self._write(f"{counter} - {total_s} - {per_step}{values}\n")
            return
        line = ("\r" if self._live() else "") + f"{counter} {_bar(seen, total)} {total_s} {per_step}{values}"
        self._write(line + ("\n" if final else ""))
