"""RandomLayer: the shared base of kiln's training-only random layers (augmentation, Dropout, noise).

What they share: the mode (the ``training`` argument when given, else the module's
``self.training``, as Dropout does), and where randomness comes from. With ``seed=None`` a
layer draws from torch's global generator, so ``kiln.utils.set_random_seed`` makes a run
reproducible; with an int ``seed`` it draws from its own ``torch.Generator`` (one per device,
seeded once), so the layer gives the same sequence of transforms on every run whatever else
draws random numbers.

Every draw is one tensor for the whole batch (one value per sample): no Python loop over
samples.
"""

from __future__ import annotations

import numbers

import torch

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.layer import Layer

__all__ = ["RandomLayer", "check_seed", "check_range_factor", "config_factor", "check_value_range", "check_ranks"]


def check_seed(seed):
    """None or an int; anything else is a ``KilnTypeError``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise KilnTypeError(f"Expected `seed` to be an int or None. Received: seed={seed!r}")
    return None if seed is None else int(seed)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_range_factor(factor, name: str, low: float = -1.0, high: float = 1.0) -> tuple[float, float]:
    """Keras's ``factor`` convention -> ``(lower, upper)``.

    A number ``f`` means ``(-|f|, |f|)``; a pair ``(a, b)`` means ``(min, max)``. Every number
    must lie in ``[low, high]``.
    """
    message = (f"Received an invalid value for `{name}`, expected a number or a list of two numbers in the "
               f"range [{low}, {high}]. Received: {name}={factor!r}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(_is_number(f) and low <= f <= high for f in factor):
            raise KilnValueError(message)
        lower, upper = sorted(float(f) for f in factor)
        return lower, upper
    if not _is_number(factor) or not low <= factor <= high:
        raise KilnValueError(message)
    return -abs(float(factor)), abs(float(factor))


def config_factor(factor):
    """The constructor's ``factor`` as plain JSON: a float, or a list of two floats."""
    if isinstance(factor, (tuple, list)):
        return [float(f) for f in factor]
    return float(factor)


def check_value_range(value_range) -> list[float]:
    """``value_range``: two numbers ``[low, high]`` with low < high -> a list of two floats."""
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(_is_number(v) for v in value_range) or value_range[0] >= value_range[1]):
        raise KilnValueError("Received an invalid value for `value_range`, expected a list of two numbers "
                             f"[low, high] with low < high, e.g. (0, 255). Received: value_range={value_range!r}")
    return [float(value_range[0]), float(value_range[1])]


class RandomLayer(Layer):
    """Base class: the seed, one generator per device, the mode, and batched random draws.

    Args:
        seed: None (torch's global generator) or an int (the layer's own generator).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self._generators: dict[str, torch.Generator] = {}

    def _is_training(self, training) -> bool:
        return self.training if training is None else bool(training)

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def _uniform(self, shape, low: float, high: float, device) -> torch.Tensor:
        """float32 draws from ``U[low, high)`` of ``shape`` on ``device``."""
        u = torch.rand(shape, generator=self._generator(device), device=device)
        return low + (high - low) * u

    def _randint(self, low: int, high, shape, device) -> torch.Tensor:
        """int64 draws from ``[low, high)``; ``high`` may be a tensor (one bound per element)."""
        if torch.is_tensor(high):
            u = torch.rand(shape, generator=self._generator(device), device=device)
            return low + torch.floor(u * (high - low)).long()
        return torch.randint(low, high, shape, generator=self._generator(device), device=device)

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


def check_ranks(layer: Layer, inputs: torch.Tensor, ranks: tuple[int, ...], what: str) -> None:
    """A ``ShapeError`` naming the expected layout unless ``inputs.ndim`` is one of ``ranks``."""
    if inputs.ndim not in ranks:
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) expects inputs of shape {what}, "
                         f"but received shape {tuple(inputs.shape)}.")
