"""Merge layers: combine a list of tensors — Add, Subtract, Multiply, Average, Maximum,
Minimum (elementwise), Concatenate and Dot (batched dot product) — and Keras's lowercase
functional forms (``add([a, b])``, ``concatenate([a, b], axis=-1)``, ``dot([a, b], axes=1)``),
each of which builds the layer and calls it, on symbolic Inputs or on tensors alike.

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

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]


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
        # Compared pairwise, not through a set: under torch.export batch sizes are symbolic.
        if any((s[0] if s else None) != (shapes[0][0] if shapes[0] else None) for s in shapes[1:]):
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

    def compute_mask(self, inputs, mask=None):
        """A step counts when it counts in every masked input (Keras: the AND of the masks)."""
        if mask is None or not isinstance(mask, (list, tuple)) or all(m is None for m in mask):
            return None
        masks = [m.bool() for m in mask if m is not None]
        out = masks[0]
        for m in masks[1:]:
            out = out & m
        return out


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

    def compute_mask(self, inputs, mask=None):
        """Along the last (features) axis: the AND of the masks; along another axis (time):
        the masks joined on that axis, an unmasked input counting as all True."""
        if mask is None or not isinstance(mask, (list, tuple)) or all(m is None for m in mask):
            return None
        rank = inputs[0].dim()
        if self.axis % rank == rank - 1:
            return super().compute_mask(inputs, mask)
        full = [torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device) if m is None else m.bool()
                for x, m in zip(inputs, mask)]
        return torch.cat(full, dim=self.axis % rank)

    def call(self, inputs):
        self._check_list(inputs)
        shapes = _shapes(inputs)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ShapeError(f"Layer '{self.name}' (Concatenate) with axis={self.axis} needs inputs of one rank that "
                             f"has that axis. Received: input shapes {shapes}.")
        axis = self.axis % rank
        try:  # torch checks the other axes; no Python-side shape sets (symbolic under torch.export)
            return torch.cat(list(inputs), dim=axis)
        except RuntimeError:
            raise ShapeError("A `Concatenate` layer requires inputs with matching shapes except for the concatenation "
                             f"axis. Received: input_shape={shapes}, axis={self.axis}") from None

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config

    def extra_repr(self):
        return f"name={self.name!r}, axis={self.axis}"


class Dot(_Merge):
    """Dot product of two tensors along ``axes``, sample by sample (Keras's ``batch_dot``).

    The summed axis of each input is removed and the remaining axes of the first input are
    followed by those of the second: ``(B, n, d)`` and ``(B, m, d)`` with ``axes=2`` give
    ``(B, n, m)`` (attention scores); two ``(B, d)`` vectors with ``axes=1`` give ``(B, 1)``.

    Args:
        axes: int, or a tuple of 2 ints (one axis per input); axes count the batch axis as 0,
            so they must not be 0. Negative values count from the end.
        normalize: L2-normalise both inputs along ``axes`` first, so the result is the cosine
            similarity (default False).

    Shapes: ``(B, *a1)`` and ``(B, *a2)`` -> ``(B, *a1 without axes[0], *a2 without axes[1])``, or
    ``(B, 1)`` when nothing else remains.

    Example::

        Dot(axes=1, normalize=True)([u, v])  # (B, 16), (B, 16) -> (B, 1): cosine similarity
    """

    min_inputs = max_inputs = 2

    def compute_mask(self, inputs, mask=None):
        return None  # the steps are summed away, as in Keras

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2:
                raise KilnValueError("Invalid format for argument `axes`: it should contain two elements. "
                                     f"Received: axes={axes!r}")
            if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
                raise KilnValueError("Invalid format for argument `axes`: list elements should be integers. "
                                     f"Received: axes={axes!r}")
            axes = [int(a) for a in axes]
        elif isinstance(axes, bool) or not isinstance(axes, int):
            raise KilnTypeError("Invalid type for argument `axes`: it should be a list or an int. "
                                f"Received: axes={axes!r}")
        self.axes = axes
        self.normalize = bool(normalize)

    def call(self, inputs):
        self._check_list(inputs)
        x1, x2 = inputs
        shapes = _shapes(inputs)
        if x1.ndim < 2 or x2.ndim < 2 or x1.shape[0] != x2.shape[0]:
            raise ShapeError(f"Layer '{self.name}' (Dot) needs two inputs of rank 2 or more with the same batch "
                             f"size. Received: input shapes {shapes}.")
        raw = [self.axes, self.axes] if isinstance(self.axes, int) else self.axes
        a1, a2 = raw[0] % x1.ndim, raw[1] % x2.ndim
        if a1 == 0 or a2 == 0:
            raise KilnValueError(f"Layer '{self.name}' (Dot) cannot sum over the batch axis. "
                                 f"Received: axes={self.axes} for input shapes {shapes}.")
        if x1.shape[a1] != x2.shape[a2]:
            raise ShapeError(f"Incompatible input shapes: axis values {x1.shape[a1]} (at axis {a1}) != "
                             f"{x2.shape[a2]} (at axis {a2}). Full input shapes: {shapes[0]}, {shapes[1]}")
        if self.normalize:
            x1 = torch.nn.functional.normalize(x1, dim=a1)
            x2 = torch.nn.functional.normalize(x2, dim=a2)
        x1 = x1.movedim(a1, -1)                    # (B, *r1, k)
        x2 = x2.movedim(a2, 1)                     # (B, k, *r2)
        rest1, rest2 = x1.shape[1:-1], x2.shape[2:]
        batch, k = x1.shape[0], x1.shape[-1]
        out = torch.bmm(x1.reshape(batch, -1, k), x2.reshape(batch, k, -1))  # (B, prod(r1), prod(r2))
        out = out.reshape((batch,) + tuple(rest1) + tuple(rest2))
        return out.reshape(batch, 1) if out.ndim == 1 else out  # (B,) -> (B, 1), as Keras's batch_dot

    def get_config(self):
        config = super().get_config()
        config.update(axes=self.axes, normalize=self.normalize)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, axes={self.axes}, normalize={self.normalize}"


# ---------------------------------------------------------------------- functional forms
def add(inputs, **kwargs):
    """Functional form of ``Add``: ``add([x1, x2])`` is ``Add()([x1, x2])``; ``kwargs`` go to the layer."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional form of ``Subtract``: ``subtract([x1, x2])`` is ``x1 - x2``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of ``Multiply``: the elementwise product of ``inputs``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of ``Average``: the elementwise mean of ``inputs``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of ``Maximum``: the elementwise maximum of ``inputs``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of ``Minimum``: the elementwise minimum of ``inputs``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of ``Concatenate``: ``concatenate([a, b], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of ``Dot``: ``dot([a, b], axes=1)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
