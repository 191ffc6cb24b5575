"""Audio augmentation layers: SpecAugment masking and random time shifts, in training only.

Both are the identity at inference (the ``training`` argument when given, else the module's
``self.training``) and draw one set of random values per sample, in one tensor for the
batch. Seeds as every kiln augmentation layer (see ``random_base.py``).

Layouts: the time axis is axis 1 everywhere: waveforms ``(batch, samples)``, spectrograms
``(batch, frames, mels)`` or ``(batch, frames, mels, 1)``.
"""

from __future__ import annotations

import numbers

import torch

from kiln.errors import KilnValueError
from kiln.layers.random_base import RandomLayer, check_range_factor, check_ranks, config_factor

__all__ = ["SpecAugment", "RandomTimeShift"]


class SpecAugment(RandomLayer):
    """Mask random time and frequency bands of log-mel spectrograms in training (Park et al., 2019).

    Each sample gets ``time_masks`` bands of consecutive frames and ``freq_masks`` bands of
    consecutive mel bins; each band's width is drawn uniformly from
    ``[0, int(width_fraction * axis_length)]`` and its start so that it lies inside the axis.
    Masked cells are set to ``mask_value``: 0.0 by default (the mean of standardised
    features, as in the paper), or ``"mean"`` for the mean of the whole batch, which suits
    raw log-mels whose silence is far below 0. Time warping is not implemented.

    Args:
        time_masks: int >= 0, bands per sample along time (default 2).
        time_width: float in [0, 1], the largest band as a fraction of the frames (default 0.1).
        freq_masks: int >= 0, bands per sample along the mel axis (default 2).
        freq_width: float in [0, 1], the largest band as a fraction of the mels (default 0.1).
        seed: None (torch's global generator) or an int (the layer's own generator).
        mask_value: a float (default 0.0) or "mean".

    Shapes: ``(batch, frames, mels)`` or ``(batch, frames, mels, 1)`` -> the same shape.

    Example::

        SpecAugment(time_masks=2, time_width=0.1, freq_masks=2, freq_width=0.15)
    """

    def __init__(self, time_masks=2, time_width=0.1, freq_masks=2, freq_width=0.1, seed=None, mask_value=0.0,
                 **kwargs):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("time_masks", time_masks), ("freq_masks", freq_masks)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise KilnValueError(f"Received an invalid value for `{name}`, expected a non-negative integer. "
                                     f"Received: {name}={value!r}")
        for name, value in (("time_width", time_width), ("freq_width", freq_width)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
                raise KilnValueError(f"Received an invalid value for `{name}`, expected a fraction of the axis "
                                     f"in [0, 1]. Received: {name}={value!r}")
        if mask_value != "mean" and (isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real)):
            raise KilnValueError("Received an invalid value for `mask_value`, expected a number or \"mean\". "
                                 f"Received: mask_value={mask_value!r}")
        self.time_masks, self.freq_masks = int(time_masks), int(freq_masks)
        self.time_width, self.freq_width = float(time_width), float(freq_width)
        self.mask_value = mask_value if mask_value == "mean" else float(mask_value)

    def call(self, inputs, training=None):
        check_ranks(self, inputs, (3, 4), "(batch, frames, mels) or (batch, frames, mels, 1)")
        if not self._is_training(training):
            return inputs
        batch, frames, mels = inputs.shape[:3]
        device = inputs.device
        time = self._bands(batch, frames, self.time_masks, int(self.time_width * frames), device)  # (B, T)
        freq = self._bands(batch, mels, self.freq_masks, int(self.freq_width * mels), device)  # (B, M)
        mask = time[:, :, None] | freq[:, None, :]  # (B, T, M)
        if inputs.ndim == 4:
            mask = mask[..., None]
        value = inputs.detach().mean() if self.mask_value == "mean" else self.mask_value
        return inputs.masked_fill(mask, value)

    def _bands(self, batch: int, length: int, count: int, max_width: int, device) -> torch.Tensor:
        """(B, length) bool: ``count`` random bands per sample, each of width in [0, max_width].

        Bands may overlap, so a sample shows at most ``count`` masked runs.
        """
        mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
        if count == 0 or max_width == 0:
            return mask
        width = self._randint(0, max_width + 1, (batch, count), device)  # (B, count)
        start = self._randint(0, length - width + 1, (batch, count), device)  # (B, count): inside the axis
        position = torch.arange(length, device=device)[None, None, :]  # (1, 1, length)
        inside = (position >= start[..., None]) & (position < (start + width)[..., None])  # (B, count, length)
        return inside.any(dim=1)

    def get_config(self):
        config = super().get_config()
        config.update(time_masks=self.time_masks, time_width=self.time_width, freq_masks=self.freq_masks,
                      freq_width=self.freq_width, mask_value=self.mask_value)
        return config

    def extra_repr(self):
        return (f"name={self.name!r}, time_masks={self.time_masks}, time_width={self.time_width}, "
                f"freq_masks={self.freq_masks}, freq_width={self.freq_width}")


class RandomTimeShift(RandomLayer):
    """Shift each sample along time (axis 1) by a random number of steps in training, filling with 0.

    Args:
        factor: a fraction of the time axis: a number ``f`` shifts by up to ``f * length``
            steps either way; a pair ``(low, high)`` by ``[low, high] * length`` (negative:
            earlier). Numbers in [-1, 1]. Default 0.1.
        seed: None (torch's global generator) or an int (the layer's own generator).

    Shapes: ``(batch, time, ...)`` (waveforms ``(batch, samples)``, spectrograms
    ``(batch, frames, mels[, 1])``) -> the same shape.

    Example::

        RandomTimeShift(0.1)
    """

    def __init__(self, factor=0.1, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.lower, self.upper = check_range_factor(factor, "factor")
        self.factor = config_factor(factor)

    def call(self, inputs, training=None):
        check_ranks(self, inputs, (2, 3, 4), "(batch, time), (batch, frames, mels) or (batch, frames, mels, 1)")
        if not self._is_training(training):
            return inputs
        batch, length = inputs.shape[:2]
        device = inputs.device
        fraction = self._uniform((batch,), self.lower, self.upper, device)
        shift = torch.round(fraction * length).long()  # (B,): steps later in time
        source = torch.arange(length, device=device)[None, :] - shift[:, None]  # (B, T): output t reads t - shift
        valid = (source >= 0) & (source < length)
        index = source.clamp(0, length - 1).view(batch, length, *([1] * (inputs.ndim - 2))).expand_as(inputs)
        valid = valid.view(batch, length, *([1] * (inputs.ndim - 2)))
        return torch.gather(inputs, 1, index).masked_fill(~valid, 0)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config

    def extra_repr(self):
        return f"name={self.name!r}, factor={self.factor}"
