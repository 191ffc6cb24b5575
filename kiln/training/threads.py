"""How many CPU threads a training run uses: a first guess, then a measurement.

Why: on a CPU, a small model's step is a handful of small matrix products; splitting each
across OpenMP threads can cost more in hand-offs than it saves (for a 769-parameter MLP on
2 cores, one thread is faster), while a convolution over a batch gains from every core.
Model size alone does not tell which case applies, so with ``num_threads="auto"`` kiln
starts from a guess by parameter count, then times a few real training steps on one thread
and on torch's setting, and keeps the faster. Nothing is wasted: the timed steps are the
run's own.

Global state: ``torch.set_num_threads`` is process-wide, so while a run lasts every torch
op in the process (other Python threads included) uses the run's count. torch's previous
setting is put back when the run ends, also when it raises. A run started inside another
run of the same model (``evaluate`` or ``predict`` called from a ``fit`` callback) keeps the
outer run's setting and leaves restoring it, and its measurement, to the outer run.
"""

from __future__ import annotations

import time

import torch

from kiln.errors import KilnValueError

__all__ = ["ThreadChoice", "SMALL_MODEL_PARAMS"]

SMALL_MODEL_PARAMS = 100_000
_WARMUP_STEPS = 3  # steps after a switch that are not timed (thread pools wake up)
_TIMED_STEPS = 12
_MARGIN = 0.03  # more threads must win by 3% to be worth occupying more cores


class ThreadChoice:
    """The thread count for one module on one device; lives as long as its Trainer.

    Args:
        setting: "auto" (guess, then measure), a positive int (fixed), or None (leave torch alone).
    """

    def __init__(self, setting="auto"):
        if not (setting in (None, "auto") or (isinstance(setting, int) and not isinstance(setting, bool)
                                               and setting > 0)):
            raise KilnValueError(f"num_threads must be 'auto', None or a positive int; received {setting!r}")
        self.setting = setting
        self.decided: int | None = setting if isinstance(setting, int) else None
        self._previous: int | None = None
        self._trial: _Trial | None = None
        self._depth = 0  # runs in progress: an evaluate from a fit callback is a run inside a run

    # -- a run (fit, evaluate or predict) sets the count and restores it afterwards
    def begin(self, module: torch.nn.Module, device: torch.device, measure: bool = False) -> None:
        self._depth += 1
        if self._depth > 1:
            return  # inside a run: its setting (and measurement) stay as they are
        self._previous = torch.get_num_threads()
        if self.setting is None or device.type != "cpu":
            return
        if self.decided is None and measure and self._previous > 1:
            self._trial = _Trial(candidates=(1, self._previous))
        wanted = self.decided or (1 if _n_params(module) < SMALL_MODEL_PARAMS else self._previous)
        if self._trial is not None:
            wanted = self._trial.current
        torch.set_num_threads(wanted)

    def adopt(self, count: int) -> None:
        """Use ``count`` threads from now on (a resumed run keeps its measured choice)."""
        self.decided = count
        self._trial = None
        if self._previous is not None and self.setting is not None:
            torch.set_num_threads(count)

    def end(self) -> None:
        """Put torch's previous setting back; call once per ``begin``, in a ``finally``."""
        self._depth -= 1
        if self._depth > 0:
            return
        if self._trial is not None:  # the run ended before the measurement did
            self._trial = None
        if self._previous is not None and torch.get_num_threads() != self._previous:
            torch.set_num_threads(self._previous)
        self._previous = None

    # -- called by the training loop
    @property
    def measuring(self) -> bool:
        return self._trial is not None

    def before_step(self) -> None:
        """Advance the measurement by one step (only called while ``measuring``)."""
        trial = self._trial
        result = trial.tick()
        if result is not None:
            self.decided = result
            self._trial = None
        wanted = self.decided or trial.current
        if torch.get_num_threads() != wanted:  # switching rebuilds OpenMP's pool: only when it changes
            torch.set_num_threads(wanted)

    def interrupt(self) -> None:
        """Validation or an epoch boundary happened: restart the current timing window."""
        if self._trial is not None:
            self._trial.restart_window()


class _Trial:
    """Times ``_TIMED_STEPS`` steps per candidate thread count, after a short warm-up each."""

    def __init__(self, candidates: tuple[int, int]):
        self.candidates = candidates
        self.index = 0
        self.seconds: list[float] = []
        self.restart_window()

    @property
    def current(self) -> int:
        return self.candidates[self.index]

    def restart_window(self) -> None:
        self.steps_in_window = 0
        self.window_start = None

    def tick(self) -> int | None:
        """Called before each step; returns the chosen count once both are timed."""
        self.steps_in_window += 1
        if self.steps_in_window == _WARMUP_STEPS + 1:
            self.window_start = time.perf_counter()
        elif self.steps_in_window == _WARMUP_STEPS + _TIMED_STEPS + 1:
            self.seconds.append(time.perf_counter() - self.window_start)
            if self.index + 1 < len(self.candidates):
                self.index += 1
                self.restart_window()
                self.steps_in_window = 1
            else:
                return self._choose()
        return None

    def _choose(self) -> int:
        few, many = self.seconds
        return self.candidates[1] if many < few * (1 - _MARGIN) else self.candidates[0]


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
