"""Activation: applies a named or callable activation as its own layer."""

from __future__ import annotations

from kiln import activations
from kiln.layers.layer import Layer

__all__ = ["Activation"]


class Activation(Layer):
    """Apply ``activation`` elementwise. Example: ``Activation("relu")``."""

    supports_masking = True  # elementwise over features: a timestep mask passes through

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.built = True

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config
