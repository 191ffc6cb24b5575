"""Weight constraints with Keras's names and formulas: ``constraint(weight) -> projected weight``.

A constraint is applied by the optimizer right after each update, under ``no_grad``
(Keras's ``variable.assign(constraint(variable))``): the loss never sees it, the weight is
simply projected back into the allowed set. A layer passes its ``kernel_constraint=``-style
argument to ``add_weight(constraint=...)``, which records it on the parameter
(``param.constraint``) so the optimizer finds it without knowing any layer.

Axes follow Keras's weight layouts. Dense's kernel is ``(in, units)`` in both, so ``axis=0``
means "per output unit" as in Keras. kiln's conv kernels use torch's layout ``(out, in, *k)``
(transposed conv: ``(in, out, *k)``); for them the layer wraps the constraint with
``for_torch_conv_kernel``, which moves the kernel to Keras's layout ``(*k, in, out)`` before the
call and back after, so ``MaxNorm(axis=[0, 1, 2])`` on a Conv2D kernel bounds each filter's norm
exactly as in Keras.

Example:
    >>> MaxNorm(max_value=1.0)(torch.tensor([[3.0], [4.0]]))  # column norm 5 -> 1
    tensor([[0.6000],
            [0.8000]])
"""

from __future__ import annotations

import numbers

import torch

from kiln.errors import KilnValueError
from kiln.utils.config_objects import ConfigObjects

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "for_torch_conv_kernel", "get",
           "serialize", "deserialize"]

_EPSILON = 1e-7  # Keras's backend.epsilon(), added to the norm as in Keras's formulas


def _check_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a number. Received: {name}={value!r}")
    return float(value)


def _check_axis(axis):
    """An int or a list of ints (Keras accepts both); returned as given for get_config."""
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    if not items or any(isinstance(a, bool) or not isinstance(a, int) for a in items):
        raise KilnValueError(f"Received an invalid value for `axis`, expected an int or a list of ints. "
                             f"Received: axis={axis!r}")
    return list(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w: torch.Tensor, axis) -> torch.Tensor:
    dims = axis if isinstance(axis, list) else [axis]
    return torch.sqrt(torch.sum(torch.square(w), dim=dims, keepdim=True))


class Constraint:
    """Base class: ``__call__(weight) -> weight`` and ``get_config``; the base is the identity.

    Subclass it for a custom projection (return a tensor of the weight's shape).
    """

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Constraint":
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class MaxNorm(Constraint):
    """Scale each slice whose L2 norm over ``axis`` exceeds ``max_value`` back to ``max_value``.

    Keras's formula: ``w * clip(n, 0, max_value) / (1e-7 + n)`` with ``n = ||w||`` over ``axis``.

    Args:
        max_value: the largest norm allowed (default 2).
        axis: axis or axes the norm is taken over (default 0: per output unit of a Dense kernel).
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = _check_number("max_value", max_value)
        self.axis = _check_axis(axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = torch.clamp(norms, 0, self.max_value)
        return w * (desired / (_EPSILON + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each slice's L2 norm over ``axis`` into ``[min_value, max_value]`` at speed ``rate``.

    Keras's formula: ``desired = rate * clip(n, min, max) + (1 - rate) * n``;
    ``w * desired / (1e-7 + n)``. ``rate=1`` projects fully; smaller rates only move part-way.

    Args:
        min_value: default 0; max_value: default 1; rate: default 1; axis: default 0.
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _check_number("min_value", min_value)
        self.max_value = _check_number("max_value", max_value)
        self.rate = _check_number("rate", rate)
        self.axis = _check_axis(axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * torch.clamp(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """Zero the negative weights (Keras: ``w * (w >= 0)``)."""

    def __call__(self, w):
        return w * (w >= 0).to(w.dtype)


class UnitNorm(Constraint):
    """Scale each slice to unit L2 norm over ``axis`` (Keras: ``w / (1e-7 + ||w||)``).

    Args:
        axis: default 0.
    """

    def __init__(self, axis=0):
        self.axis = _check_axis(axis)

    def __call__(self, w):
        return w / (_EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class _TorchConvKernel:
    """Apply a Keras-layout constraint to a torch-layout conv kernel (see the module docstring)."""

    def __init__(self, constraint):
        self.constraint = constraint

    def __call__(self, w):
        nd = w.dim()
        to_keras = (*range(2, nd), 1, 0)  # (out, in, *k) -> (*k, in, out)
        back = (nd - 1, nd - 2, *range(nd - 2))
        return self.constraint(w.permute(*to_keras)).permute(*back)


def for_torch_conv_kernel(constraint):
    """Wrap ``constraint`` for a kernel stored as ``(out, in, *k)`` (or a transposed conv's
    ``(in, out, *k)``) so its axes mean what they mean on Keras's ``(*k, in, out)``; None stays None."""
    return None if constraint is None else _TorchConvKernel(constraint)


_FAMILY = ConfigObjects("constraint", Constraint,
                        {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm},
                        (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm), example="max_norm")


def serialize(constraint: Constraint | None) -> dict | None:
    """Return ``{"class_name", "config"}`` (None for None)."""
    return _FAMILY.serialize(constraint)


def deserialize(config: dict | str | None, custom_objects: dict | None = None) -> Constraint | None:
    """Inverse of ``serialize`` (also takes a name); ``custom_objects`` maps your own classes."""
    return _FAMILY.deserialize(config, custom_objects)


def get(identifier):
    """Resolve a layer's ``kernel_constraint=``-style argument.

    Args:
        identifier: None (no constraint), a name ("max_norm", "min_max_norm", "non_neg",
            "unit_norm"; or a class name), a ``{"class_name", "config"}`` dict, a constraint, or any
            callable ``fn(weight) -> weight`` (as is).
    """
    return _FAMILY.get(identifier)
