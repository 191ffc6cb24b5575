"""Merge layers: combine a list of tensors — Add, Subtract, Multiply, Average, Maximum,
Minimum (elementwise) and Concatenate.

Elementwise merges broadcast as Keras does: every input must have the same batch size; an
input of lower rank gets new axes right after the batch axis (``(B, 5)`` with ``(B, 3, 5)``
acts as ``(B, 1, 5)``), then sizes must be equal or 1 on every axis.
"""

from __future__ import annotations

import functools
import operator

import torch

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.layer import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


def _shapes(inputs) -> list[tuple[int, ...]]:
    return [tuple(x.shape) for x in inputs]


class _Merge(Layer):
    """Shared code of the elementwise merges; subclasses define ``_merge(list_of_tensors)``."""

    min_inputs = 1
    max_inputs = None

    def _check_list(self, inputs) -> None:
        if not isinstance(inputs, (list, tuple)) or not all(torch.is_tensor(x) for x in inputs):
            raise KilnTypeError(f"Layer '{self.name}' ({type(self).__name__}) should be called on a list of tensors, "
                                f"e.g. {type(self).__name__}()([a, b]). Received: {type(inputs).__name__}")
        n = len(inputs)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            if self.min_inputs == self.max_inputs:
                expected = f"exactly {self.min_inputs} inputs"
            else:
                expected = f"at least {self.min_inputs} input{'s' if self.min_inputs > 1 else ''}"
            raise KilnValueError(f"A `{type(self).__name__}` layer should be called on {expected}. "
                                 f"Received {n} inputs of shapes {_shapes(inputs)}.")

    def call(self, inputs):
        self._check_list(inputs)
        shapes = _shapes(inputs)
        if len({s[0] if s else None for s in shapes}) > 1:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) cannot merge tensors with different batch "
                             f"sizes. Received tensors with shapes {shapes}.")
        rank = max(len(s) for s in shapes)
        # Lower-rank inputs get new axes after the batch axis: (B, 5) -> (B, 1, 5) for rank 3.
        inputs = [x if x.ndim == rank else x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:])
                  for x in inputs]
        try:
            torch.broadcast_shapes(*(x.shape for x in inputs))
        except RuntimeError:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) received inputs with incompatible shapes "
                             f"{shapes}: apart from the batch axis, sizes must be equal or 1 on every axis.") from None
        return self._merge(list(inputs))

    def _merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class Add(_Merge):
    """Elementwise sum of a list of tensors.

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: a list of ``(batch, ...)`` tensors of broadcast-compatible shapes -> their broadcast shape.

    Example::

        Add()([x1, x2])
    """

    def _merge(self, inputs):
        return functools.reduce(operator.add, inputs)


class Subtract(_Merge):
    """Elementwise difference ``inputs[0] - inputs[1]`` of exactly two tensors.

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: two ``(batch, ...)`` tensors of broadcast-compatible shapes -> their broadcast shape.

    Example::

        Subtract()([x1, x2])
    """

    min_inputs = max_inputs = 2

    def _merge(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """Elementwise product of a list of tensors.

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: a list of ``(batch, ...)`` tensors of broadcast-compatible shapes -> their broadcast shape.

    Example::

        Multiply()([x, gate])
    """

    def _merge(self, inputs):
        return functools.reduce(operator.mul, inputs)


class Average(_Merge):
    """Elementwise mean of a list of tensors.

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: a list of ``(batch, ...)`` tensors of broadcast-compatible shapes -> their broadcast shape.

    Example::

        Average()([y1, y2, y3])
    """

    def _merge(self, inputs):
        return functools.reduce(operator.add, inputs) / len(inputs)


class Maximum(_Merge):
    """Elementwise maximum of a list of tensors.

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: a list of ``(batch, ...)`` tensors of broadcast-compatible shapes -> their broadcast shape.

    Example::

        Maximum()([x1, x2])
    """

    def _merge(self, inputs):
        return functools.reduce(torch.maximum, inputs)


class Minimum(_Merge):
    """Elementwise minimum of a list of tensors.

    Args: none besides the base Layer's (name, dtype, ...).

    Shapes: a list of ``(batch, ...)`` tensors of broadcast-compatible shapes -> their broadcast shape.

    Example::

        Minimum()([x1, x2])
    """

    def _merge(self, inputs):
        return functools.reduce(torch.minimum, inputs)


class Concatenate(_Merge):
    """Concatenate a list of tensors along ``axis``.

    Args:
        axis: int, the axis to join along (default -1); every other axis must match.

    Shapes: ``(batch, ..., n_i, ...)`` tensors -> ``(batch, ..., sum(n_i), ...)``.

    Example::

        Concatenate()([image_features, tabular_features])  # (B, 64), (B, 8) -> (B, 72)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise KilnValueError(f"Received an invalid value for `axis`, expected an integer. Received: axis={axis!r}")
        self.axis = axis

    def call(self, inputs):
        self._check_list(inputs)
        shapes = _shapes(inputs)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ShapeError(f"Layer '{self.name}' (Concatenate) with axis={self.axis} needs inputs of one rank that "
                             f"has that axis. Received: input shapes {shapes}.")
        axis = self.axis % rank
        others = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(others) > 1:
            raise ShapeError("A `Concatenate` layer requires inputs with matching shapes except for the concatenation "
                             f"axis. Received: input_shape={shapes}, axis={self.axis}")
        return torch.cat(list(inputs), dim=axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config

    def extra_repr(self):
        return f"name={self.name!r}, axis={self.axis}"
