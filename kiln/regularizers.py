"""Weight penalties with Keras's names and formulas: ``regularizer(weight) -> scalar tensor``.

A layer adds ``regularizer(weight)`` to the loss for each regularized weight. The formulas are
Keras's: L2 is ``l2 * sum(w ** 2)`` with no 1/2 factor (so ``L2(l2)`` matches torch
``weight_decay=2 * l2`` under plain SGD).

Example:
    >>> L1L2(l1=0.01, l2=0.01)(torch.tensor([1.0, -2.0]))
    tensor(0.0800)
"""

from __future__ import annotations

import numbers

import torch

from kiln.errors import KilnValueError
from kiln.utils.config_objects import ConfigObjects

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize", "deserialize"]


def _check_factor(name: str, value) -> float:
    """Return ``value`` as a float if it is a non-negative number, else raise the Keras-style error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise KilnValueError(
            f"Received an invalid value for `{name}`, expected a non-negative float. Received: {name}={value!r}"
        )
    return float(value)


class Regularizer:
    """Base class: ``__call__(weight) -> scalar tensor`` and ``get_config``.

    Subclass it for a custom penalty; the base penalty is zero.
    """

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.new_zeros(())

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Regularizer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``.

    Args:
        l1: default 0.0.
        l2: default 0.0.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _check_factor("l1", l1)
        self.l2 = _check_factor("l2", l2)

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        penalty = weight.new_zeros(())
        if self.l1:
            penalty = penalty + self.l1 * weight.abs().sum()
        if self.l2:
            penalty = penalty + self.l2 * weight.square().sum()
        return penalty

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|w|)``: pushes weights to exactly zero (sparsity).

    Args:
        l1: default 0.01.
    """

    def __init__(self, l1: float = 0.01):
        self.l1 = _check_factor("l1", l1)

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return self.l1 * weight.abs().sum()

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w ** 2)``: keeps weights small.

    Args:
        l2: default 0.01.
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = _check_factor("l2", l2)

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return self.l2 * weight.square().sum()

    def get_config(self) -> dict:
        return {"l2": self.l2}


def _l1_l2() -> L1L2:
    # The name "l1_l2" means both penalties at 0.01, as Keras's l1_l2() helper; L1L2() alone is 0.
    return L1L2(l1=0.01, l2=0.01)


_FAMILY = ConfigObjects("regularizer", Regularizer, {"l1": L1, "l2": L2, "l1_l2": _l1_l2, "l1l2": _l1_l2},
                        (Regularizer, L1, L2, L1L2), example="l2", listed_names=("l1", "l2", "l1_l2"))


def serialize(regularizer: Regularizer | None) -> dict | None:
    """Return ``{"class_name", "config"}`` (None for None)."""
    return _FAMILY.serialize(regularizer)


def deserialize(config: dict | str | None, custom_objects: dict | None = None) -> Regularizer | None:
    """Inverse of ``serialize`` (also takes a name); ``custom_objects`` maps your own classes."""
    return _FAMILY.deserialize(config, custom_objects)


def get(identifier):
    """Resolve a layer's ``kernel_regularizer=``-style argument.

    Args:
        identifier: None (no penalty), a name ("l1", "l2", "l1_l2"; or a class name), a
            ``{"class_name", "config"}`` dict, a regularizer, or any callable ``fn(weight)`` (as is).
    """
    return _FAMILY.get(identifier)
