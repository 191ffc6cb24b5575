"""kiln layers: each one a ``torch.nn.Module`` with Keras's name, arguments and defaults."""

from kiln.layers.activation import Activation
from kiln.layers.dense import Dense
from kiln.layers.layer import Layer
from kiln.layers.symbolic import Input, KerasTensor

InputLayer = Input  # Keras's Sequential([InputLayer(shape=...)]) reads the same

__all__ = ["Layer", "Input", "InputLayer", "KerasTensor", "Dense", "Activation"]
