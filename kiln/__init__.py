"""kiln: the deep-learning lifecycle on PyTorch, with an API a Keras user already knows.

Port a Keras program by changing its import::

    import kiln as keras
    model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(10,)),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(X, y, epochs=10, batch_size=32)

Every layer and model is a ``torch.nn.Module``; ``kiln.Trainer`` trains any module.

The public names below are imported on first use (PEP 562), not by ``import kiln``: torch is
loaded by ``kiln.layers``, ``kiln.Sequential`` and the like, so ``kiln.errors``, ``kiln.data``
and ``kiln predict --backend onnx`` work where torch is not installed (docs/edge.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "__version__", "Input", "Model", "Sequential", "Trainer", "load_model",
    "activations", "backend", "callbacks", "constraints", "distribution", "errors", "initializers", "layers", "losses", "metrics",
    "models", "ops", "optimizers", "regularizers", "saving", "utils",
]

# Subpackages reachable as attributes, imported on first use. `training` and the lifecycle ones are
# not in __all__ (a star-import stays the Keras surface) but `kiln.zoo.resnet18(...)` must work.
_SUBMODULES = ("activations", "backend", "callbacks", "constraints", "distribution", "errors", "initializers", "layers", "losses", "metrics",
               "models", "ops", "optimizers", "regularizers", "saving", "training", "utils",
               "compress", "config", "data", "explain", "export", "privacy", "reports", "serve", "workflows", "zoo",
               "tune", "tuners")
_NAMES = {"Input": "kiln.layers.symbolic", "Model": "kiln.models", "Sequential": "kiln.models",
          "load_model": "kiln.models", "Trainer": "kiln.training"}

if TYPE_CHECKING:  # what type checkers and IDEs see: the eager form of the lazy names below
    from kiln import (activations, backend, callbacks, constraints, distribution, errors, initializers, layers, losses, metrics, models, ops,
                      optimizers, regularizers, saving, training, utils)
    from kiln.layers.symbolic import Input
    from kiln.models import Model, Sequential, load_model
    from kiln.training import Trainer


def __getattr__(name: str):
    """Import a public name on first use; later lookups find it in this module's globals."""
    if name in _SUBMODULES:
        return importlib.import_module(f"kiln.{name}")  # importing binds it here as well
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
