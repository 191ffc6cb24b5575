"""RepeatVector: repeat a feature vector ``n`` times to make a sequence.

The classic use is a sequence-to-sequence autoencoder: an LSTM encodes a sequence to one
vector, RepeatVector turns it back into ``n`` steps, and a decoder LSTM reads them.
"""

from __future__ import annotations

from kiln.layers.conv import check_rank, normalize_positive_int
from kiln.layers.layer import Layer

__all__ = ["RepeatVector"]


class RepeatVector(Layer):
    """Repeat the input ``n`` times along a new time axis.

    Args:
        n: positive int, the number of repetitions (the output's number of steps).

    Shapes: ``(batch, features)`` -> ``(batch, n, features)``.

    Example::

        RepeatVector(3)  # (B, 32) -> (B, 3, 32)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = normalize_positive_int(n, "n")

    def call(self, inputs):
        check_rank(self, inputs, 2, "(batch, features)")
        return inputs.unsqueeze(1).repeat(1, self.n, 1)  # (B, F) -> (B, 1, F) -> (B, n, F)

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config

    def extra_repr(self):
        return f"name={self.name!r}, n={self.n}"
