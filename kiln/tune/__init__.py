"""Hyperparameter tuning: ``kiln tune cfg.yaml`` and ``kiln.tune(config, trials=..., jobs=...)``.

The study runs on Optuna (imported lazily, ``pip install 'kiln[tune]'``); every trial is a
normal kiln run folder inside the tune folder (``kiln.tune.runner`` describes the layout).
Files: space.py (check / sample / apply the search space), study.py (storage, samplers,
pruners), pruning.py (the per-epoch pruning callback), objective.py (one trial), worker.py
(the trial loop of one process), runner.py (the workflow), report.py (the study report),
keras_tuner.py (``kiln.tuners``: KerasTuner's RandomSearch / BayesianOptimization / Hyperband).

Why the module is callable: the issue's API is ``kiln.tune(config, ...)`` while ``kiln.tune``
must also be this package (``kiln.tune.space``); the package's class gets a ``__call__`` that
runs ``tune``.
"""

from __future__ import annotations

import sys
import types

from kiln.tune.runner import TuneSummary, tune

__all__ = ["tune", "TuneSummary"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> TuneSummary:
        """``kiln.tune(config, trials=..., jobs=...)``: see ``kiln.tune.runner.tune``."""
        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
