"""Text augmentation: TokenDropout replaces random tokens with the unknown-token id, in training only.

Like word dropout (Iyyer et al., 2015; Bowman et al., 2016): the model learns not to lean
on any single token. Padding is never touched, so sequence lengths and masks stay the same.
Seeds as every kiln augmentation layer (see ``random_base.py``).
"""

from __future__ import annotations

import numbers

import torch

from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.random_base import RandomLayer

__all__ = ["TokenDropout"]


class TokenDropout(RandomLayer):
    """Replace each non-padding token id with ``unk_id`` with probability ``rate`` in training.

    Args:
        rate: float in [0, 1], the probability of replacing a token.
        pad_id: int, the padding id, never replaced (default 0).
        unk_id: int, the id written in place of a dropped token (default 1).
        seed: None (torch's global generator) or an int (the layer's own generator).

    Shapes: integer ids ``(batch, length)`` -> the same shape and dtype.

    Example::

        model = kiln.Sequential([kiln.Input((64,), dtype="int64"), TokenDropout(0.1),
                                 Embedding(20_000, 128), ...])
    """

    def __init__(self, rate, pad_id=0, unk_id=1, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
            raise KilnValueError("Received an invalid value for `rate`, expected a float value between 0 and 1. "
                                 f"Received: rate={rate!r}")
        for name, value in (("pad_id", pad_id), ("unk_id", unk_id)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise KilnValueError(f"Received an invalid value for `{name}`, expected an integer token id. "
                                     f"Received: {name}={value!r}")
        self.rate = float(rate)
        self.pad_id = int(pad_id)
        self.unk_id = int(unk_id)

    def call(self, inputs, training=None):
        if inputs.is_floating_point() or inputs.dtype == torch.bool:
            raise KilnTypeError(f"Layer '{self.name}' (TokenDropout) expects integer token ids, but received "
                                f"{inputs.dtype} inputs. Pass the ids before the Embedding layer, as int64.")
        if not self._is_training(training) or self.rate == 0:
            return inputs
        drop = torch.rand(inputs.shape, generator=self._generator(inputs.device), device=inputs.device) < self.rate
        drop &= inputs != self.pad_id
        return inputs.masked_fill(drop, self.unk_id)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, pad_id=self.pad_id, unk_id=self.unk_id)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, rate={self.rate}, pad_id={self.pad_id}, unk_id={self.unk_id}"
