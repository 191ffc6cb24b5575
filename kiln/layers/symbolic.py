"""Symbolic tensors for the functional API: ``x = Input(shape=(10,)); y = Dense(1)(x)``.

Why a concrete example inside: instead of a second shape-inference system, every symbolic
tensor carries a small real tensor (batch of 2). Calling a layer on symbolic inputs runs
the layer on those examples (in eval mode, without gradients), which both builds the layer
and tells the output shape. The call is recorded as a ``Node`` so a ``Model(inputs,
outputs)`` can replay the graph on real data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["KerasTensor", "Node", "Input", "contains_symbolic", "call_symbolically", "map_structure"]

_EXAMPLE_BATCH = 2


@dataclass(eq=False)
class Node:
    """One call of ``layer`` on symbolic ``args``/``kwargs`` that produced ``outputs``."""

    layer: Any
    args: tuple
    kwargs: dict
    outputs: Any = None


@dataclass(eq=False)
class KerasTensor:
    """A placeholder for a batch of data of ``shape`` (batch axis as None)."""

    example: torch.Tensor
    node: Node | None = None  # None for model inputs
    name: str | None = None
    input_shape: tuple | None = field(default=None)  # the Input's declared per-sample shape

    @property
    def shape(self) -> tuple:
        return (None,) + tuple(self.example.shape[1:])

    @property
    def dtype(self) -> torch.dtype:
        return self.example.dtype

    @property
    def ndim(self) -> int:
        return self.example.ndim

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={str(self.dtype).replace('torch.', '')}, name={self.name}>"

    # A little arithmetic so `x + y` and `x * 2` work in functional models, as in Keras.
    def __add__(self, other):
        from kiln.layers.merge import Add
        return Add()([self, other]) if isinstance(other, KerasTensor) else _Lambda(lambda t: t + other)(self)

    def __mul__(self, other):
        from kiln.layers.merge import Multiply
        return Multiply()([self, other]) if isinstance(other, KerasTensor) else _Lambda(lambda t: t * other)(self)


def Input(shape=None, batch_size=None, dtype=None, name=None, sparse=None, batch_shape=None, tensor=None):
    """Keras's ``Input``: a symbolic tensor standing for one batch of model inputs.

    Args:
        shape: shape of one sample, without the batch axis, e.g. ``(28, 28, 1)``.
        dtype: "float32" (default) or an integer dtype such as "int64" for token ids.
        name: name of the input (used for dict inputs).
    """
    from kiln.errors import KilnValueError
    from kiln.layers.layer import _torch_dtype, normalize_shape

    if batch_shape is not None:
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise KilnValueError("Input needs `shape`, the shape of one sample, e.g. Input(shape=(10,)).")
    shape = normalize_shape(shape, "shape")
    if any(d is None for d in shape):
        # Variable-length axes get a length of 1 in the example; the graph works for any length.
        pass
    torch_dtype = _torch_dtype(dtype) if not (isinstance(dtype, str) and dtype.startswith("int")) else getattr(torch, dtype)
    example = torch.zeros((_EXAMPLE_BATCH,) + tuple(1 if d is None else d for d in shape), dtype=torch_dtype)
    return KerasTensor(example=example, node=None, name=name, input_shape=shape)


def map_structure(fn, structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def flatten(structure) -> list:
    if isinstance(structure, (list, tuple)):
        return [x for s in structure for x in flatten(s)]
    if isinstance(structure, dict):
        return [x for s in structure.values() for x in flatten(s)]
    return [structure]


def contains_symbolic(structure) -> bool:
    if isinstance(structure, KerasTensor):
        return True
    if isinstance(structure, (list, tuple)):
        return any(contains_symbolic(s) for s in structure)
    if isinstance(structure, dict):
        return any(contains_symbolic(s) for s in structure.values())
    return False


def call_symbolically(layer, args: tuple, kwargs: dict):
    """Run ``layer`` on the examples inside symbolic ``args`` and record the call as a Node."""
    to_example = lambda s: s.example if isinstance(s, KerasTensor) else s  # noqa: E731
    example_args = map_structure(to_example, args)
    example_kwargs = map_structure(to_example, kwargs)
    was_training = layer.training
    layer.eval()
    try:
        with torch.no_grad():
            out = torch.nn.Module.__call__(layer, *example_args, **example_kwargs)
    finally:
        layer.train(was_training)
    node = Node(layer=layer, args=args, kwargs=kwargs)
    node.outputs = map_structure(lambda t: KerasTensor(example=t, node=node) if torch.is_tensor(t) else t, out)
    return node.outputs


class _Lambda(torch.nn.Module):
    """An unnamed elementwise op used by KerasTensor arithmetic (not serialisable)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)

    def __call__(self, x):
        return call_symbolically(self, (x,), {}) if isinstance(x, KerasTensor) else super().__call__(x)
