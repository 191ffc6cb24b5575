"""Weight initializers with Keras 3 names, defaults and fan rules, returning new torch tensors.

Why a ``layout`` argument: Keras computes fans from its own weight layout (a Dense kernel is
``(in, out)``, a conv kernel ``(*kernel_size, in, out)``), while kiln's conv layers store the
torch layout ``(out, in / groups, *kernel_size)``. Passing ``layout="torch"`` gives the same
fans, hence the same scales, as Keras would use for that layer.

Seeds: with ``seed=`` an initializer draws from its own ``torch.Generator``, so every call gives
the same values (as Keras 3's seeded initializers do); without one it draws from torch's global
RNG, which ``kiln.utils.set_random_seed`` controls.

Example:
    >>> kernel = get("glorot_uniform")((784, 128))          # Dense kernel, (in, out)
    >>> conv = HeNormal(seed=0)((64, 3, 3, 3), layout="torch")  # (out, in, kh, kw)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from kiln.errors import KilnTypeError, KilnValueError, unknown_name_error

__all__ = [
    "Initializer", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
    "LecunUniform", "LecunNormal", "RandomUniform", "RandomNormal", "TruncatedNormal", "Zeros", "Ones",
    "Constant", "Orthogonal", "Identity", "compute_fans", "get", "serialize", "deserialize",
]

_LAYOUTS = ("keras", "torch")
# Std of a unit normal truncated to [-2, 2]: dividing by it restores the intended variance.
_TRUNCATED_STD = 0.87962566103423978


def _check_layout(layout: str) -> None:
    if layout not in _LAYOUTS:
        raise KilnValueError(
            f"Received an invalid value for `layout`, expected 'keras' or 'torch'. Received: layout={layout!r}"
        )


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise KilnValueError(
            f"Received an invalid value for `{name}`, expected a positive float. Received: {name}={value!r}"
        )


def compute_fans(shape: Sequence[int], layout: str = "keras") -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight of ``shape``.

    Args:
        shape: the weight's shape.
        layout: "keras" — ``(in, out)`` or ``(*kernel_size, in, out)``; "torch" — ``(out, in)`` or
            ``(out, in / groups, *kernel_size)``. A 1-D shape has fan_in = fan_out = its length.
    """
    _check_layout(layout)
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if layout == "keras":
        receptive_field = math.prod(shape[:-2])
        return shape[-2] * receptive_field, shape[-1] * receptive_field
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _keras_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The Keras-layout shape of a torch-layout weight: ``(out, in, *k)`` -> ``(*k, in, out)``."""
    if layout == "keras" or len(shape) < 2:
        return shape
    return (*shape[2:], shape[1], shape[0])


def _to_layout(keras_tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """Permute a Keras-layout weight ``(*k, in, out)`` into torch layout ``(out, in, *k)``."""
    n = keras_tensor.dim()
    if layout == "keras" or n < 2:
        return keras_tensor
    return keras_tensor.permute(n - 1, n - 2, *range(n - 2)).contiguous()


class Initializer:
    """Base class: ``init(shape, dtype=None, layout="keras") -> torch.Tensor`` plus a config.

    Subclasses implement ``_sample(shape, dtype, layout, generator)``; the base class resolves
    the dtype and the seed. Random draws happen in float32 (or float64) and are then cast, so
    half-precision weights get the same distribution.
    """

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise KilnTypeError(f"Expected `seed` to be an int or None. Received: seed={seed!r}")
        self.seed = None if seed is None else int(seed)

    def __call__(self, shape: Sequence[int] | int, dtype: torch.dtype | None = None,
                 layout: str = "keras") -> torch.Tensor:
        _check_layout(layout)
        shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
        dtype = dtype or torch.get_default_dtype()
        generator = None
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed)  # fresh: same values every call
        sample_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        return self._sample(shape, sample_dtype, layout, generator).to(dtype)

    def _sample(self, shape, dtype, layout, generator) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample().")

    def get_config(self) -> dict:
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> "Initializer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``.

    Args:
        minval: default -0.05.
        maxval: default 0.05.
        seed: None (global RNG) or an int.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not minval < maxval:
            raise KilnValueError(f"Expected `minval` < `maxval`. Received: minval={minval}, maxval={maxval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def _sample(self, shape, dtype, layout, generator):
        return torch.empty(shape, dtype=dtype).uniform_(self.minval, self.maxval, generator=generator)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    """Normal with ``mean`` and ``stddev``.

    Args:
        mean: default 0.0.
        stddev: default 0.05.
        seed: None (global RNG) or an int.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        _check_positive("stddev", stddev)
        self.mean, self.stddev = float(mean), float(stddev)

    def _sample(self, shape, dtype, layout, generator):
        return torch.empty(shape, dtype=dtype).normal_(self.mean, self.stddev, generator=generator)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal with ``mean`` and ``stddev``, values beyond two ``stddev`` redrawn (as Keras).

    Args:
        mean: default 0.0.
        stddev: default 0.05 (of the untruncated normal; the result's std is about 0.88x).
        seed: None (global RNG) or an int.
    """

    def _sample(self, shape, dtype, layout, generator):
        lo, hi = self.mean - 2 * self.stddev, self.mean + 2 * self.stddev
        return torch.nn.init.trunc_normal_(torch.empty(shape, dtype=dtype), self.mean, self.stddev, lo, hi,
                                           generator=generator)


class VarianceScaling(Initializer):
    """Random weights with variance ``scale / n``, n from the fans — the family behind Glorot/He/LeCun.

    Args:
        scale: default 1.0.
        mode: "fan_in" (default), "fan_out" or "fan_avg" — which n to use.
        distribution: "truncated_normal" (default), "untruncated_normal" or "uniform".
        seed: None (global RNG) or an int.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None):
        super().__init__(seed)
        _check_positive("scale", scale)
        if mode not in self._MODES:
            raise KilnValueError(
                f"Received an invalid value for `mode`, expected one of {self._MODES}. Received: mode={mode!r}"
            )
        if distribution == "normal":  # Keras accepts it as an alias
            distribution = "truncated_normal"
        if distribution not in self._DISTRIBUTIONS:
            raise KilnValueError(
                f"Received an invalid value for `distribution`, expected one of {self._DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def _sample(self, shape, dtype, layout, generator):
        fan_in, fan_out = compute_fans(shape, layout)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        out = torch.empty(shape, dtype=dtype)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)  # Var(U(-a, a)) = a^2 / 3
            return out.uniform_(-limit, limit, generator=generator)
        if self.distribution == "untruncated_normal":
            return out.normal_(0.0, math.sqrt(variance), generator=generator)
        std = math.sqrt(variance) / _TRUNCATED_STD
        return torch.nn.init.trunc_normal_(out, 0.0, std, -2 * std, 2 * std, generator=generator)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


class _FixedVarianceScaling(VarianceScaling):
    """A named VarianceScaling preset: its config is only the seed, as in Keras."""

    _preset: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed: int | None = None):
        scale, mode, distribution = self._preset
        super().__init__(scale=scale, mode=mode, distribution=distribution, seed=seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform on ``±sqrt(6 / (fan_in + fan_out))`` (Xavier uniform): Keras's default kernel init."""

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with variance ``2 / (fan_in + fan_out)`` (Xavier normal)."""

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform on ``±sqrt(6 / fan_in)`` (Kaiming uniform, for ReLU)."""

    _preset = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with variance ``2 / fan_in`` (Kaiming normal, for ReLU)."""

    _preset = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform on ``±sqrt(3 / fan_in)``."""

    _preset = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with variance ``1 / fan_in`` (for SELU networks)."""

    _preset = (1.0, "fan_in", "truncated_normal")


class _NotRandom(Initializer):
    """Base of the initializers that take no seed."""

    def __init__(self):
        super().__init__(None)

    def get_config(self) -> dict:
        return {}


class Zeros(_NotRandom):
    """All zeros (Keras's default bias init)."""

    def _sample(self, shape, dtype, layout, generator):
        return torch.zeros(shape, dtype=dtype)


class Ones(_NotRandom):
    """All ones (e.g. a normalization layer's scale)."""

    def _sample(self, shape, dtype, layout, generator):
        return torch.ones(shape, dtype=dtype)


class Constant(_NotRandom):
    """Every element equal to ``value``.

    Args:
        value: a number (default 0.0).
    """

    def __init__(self, value: float = 0.0):
        super().__init__()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise KilnTypeError(f"Expected `value` to be a number. Received: value={value!r}")
        self.value = float(value)

    def __call__(self, shape, dtype=None, layout="keras"):
        # Not via float32 sampling: an integer dtype should get the exact value.
        _check_layout(layout)
        shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
        return torch.full(shape, self.value, dtype=dtype or torch.get_default_dtype())

    def get_config(self) -> dict:
        return {"value": self.value}


class Orthogonal(Initializer):
    """An orthogonal matrix (times ``gain``), reshaped to the weight's shape.

    The weight is seen as a ``(prod(shape[:-1]), shape[-1])`` matrix in Keras layout — its
    columns (output units) are orthonormal when there are fewer of them than rows, else its rows.

    Args:
        gain: default 1.0.
        seed: None (global RNG) or an int.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = float(gain)

    def _sample(self, shape, dtype, layout, generator):
        if len(shape) < 2:
            raise KilnValueError(f"Orthogonal needs a weight of at least 2 dimensions. Received: shape={shape}")
        keras_shape = _keras_shape(shape, layout)
        rows, cols = math.prod(keras_shape[:-1]), keras_shape[-1]
        a = torch.empty(max(rows, cols), min(rows, cols), dtype=dtype).normal_(generator=generator)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))  # makes the result uniform over orthogonal matrices
        if rows < cols:
            q = q.T
        return _to_layout(self.gain * q.reshape(keras_shape), layout)

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (rectangular allowed); 2-D weights only.

    Args:
        gain: default 1.0.
    """

    def __init__(self, gain: float = 1.0):
        super().__init__(None)
        self.gain = float(gain)

    def _sample(self, shape, dtype, layout, generator):
        if len(shape) != 2:
            raise KilnValueError(f"Identity needs a 2-D weight. Received: shape={shape}")
        return self.gain * torch.eye(*shape, dtype=dtype)  # eye(a, b).T == eye(b, a): layout-free

    def get_config(self) -> dict:
        return {"gain": self.gain}


_CLASSES = (VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal,
            RandomUniform, RandomNormal, TruncatedNormal, Zeros, Ones, Constant, Orthogonal, Identity)
_BY_NAME = {
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "random_uniform": RandomUniform, "random_normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "zeros": Zeros, "ones": Ones, "constant": Constant, "orthogonal": Orthogonal, "identity": Identity,
    # Keras's short aliases
    "uniform": RandomUniform, "normal": RandomNormal, "zero": Zeros, "one": Ones,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in _CLASSES}


def serialize(initializer: Initializer | None) -> dict | None:
    """Return ``{"class_name", "config"}`` (JSON-serialisable; None for None)."""
    if initializer is None:
        return None
    if not isinstance(initializer, Initializer):
        raise KilnValueError(
            f"Cannot serialize {initializer!r}: only kiln initializers have a config. Subclass "
            "kiln.initializers.Initializer (with get_config) to save a custom one."
        )
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config: dict | str | None, custom_objects: dict | None = None) -> Initializer | None:
    """Inverse of ``serialize`` (also takes a name); ``custom_objects`` maps your own classes."""
    if config is None or isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise KilnTypeError(
            f"Expected a dict {{'class_name': ..., 'config': {{...}}}} for an initializer. Received: {config!r}"
        )
    classes = {**_BY_CLASS_NAME, **_BY_NAME, **(custom_objects or {})}
    name = config["class_name"]
    if name not in classes:
        raise unknown_name_error("initializer", name, classes)
    return classes[name].from_config(config.get("config", {}))


def get(identifier):
    """Resolve a layer's ``kernel_initializer=``-style argument.

    Args:
        identifier: None (returned as None: the layer picks its default), a snake_case or class
            name ("glorot_uniform", "HeNormal"), a ``{"class_name", "config"}`` dict, an
            initializer instance or class, or any callable ``fn(shape, dtype=None)`` (as is).
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _BY_CLASS_NAME.get(identifier)
        if cls is None:
            raise unknown_name_error("initializer", identifier, _BY_NAME)
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise KilnTypeError(
        "Could not interpret initializer: expected a name such as 'glorot_uniform', a config dict, an "
        f"Initializer or a callable. Received: {identifier!r} of type {type(identifier).__name__}"
    )
