"""kiln: the deep-learning lifecycle on PyTorch, with an API a Keras user already knows.

Port a Keras program by changing its import::

    import kiln as keras
    model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(10,)),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(X, y, epochs=10, batch_size=32)

Every layer and model is a ``torch.nn.Module``; ``kiln.Trainer`` trains any module.
"""

__version__ = "0.1.0"

from kiln import (activations, backend, callbacks, errors, initializers, layers, losses, metrics, models, ops,
                  optimizers, regularizers, saving, utils)
from kiln.layers.symbolic import Input
from kiln.models import Model, Sequential, load_model
from kiln.training import Trainer

__all__ = [
    "__version__", "Input", "Model", "Sequential", "Trainer", "load_model",
    "activations", "backend", "callbacks", "errors", "initializers", "layers", "losses", "metrics", "models", "ops",
    "optimizers", "regularizers", "saving", "utils",
]
