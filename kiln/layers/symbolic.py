"""Symbolic tensors for the functional API: ``x = Input(shape=(10,)); y = Dense(1)(x)``.

Why a concrete example inside: instead of a second shape-inference system, every symbolic
tensor carries a small real tensor (batch of 2). Calling a layer on symbolic inputs runs
the layer on those examples (in eval mode, without gradients), which both builds the layer
and tells the output shape. The call is recorded as a ``Node`` so a ``Model(inputs,
outputs)`` can replay the graph on real data.

Variable-length axes (``Input(shape=(None, 16))``) get a second example of another length;
an output axis whose size differs between the two runs is reported as None, as in Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from kiln.errors import KilnValueError
from kiln.layers.specs import normalize_shape, torch_dtype
from kiln.utils.tree import flatten, map_structure  # re-exported: callers written before kiln/utils/tree.py

__all__ = ["KerasTensor", "Node", "Input", "contains_symbolic", "call_symbolically", "map_structure", "flatten"]

_EXAMPLE_BATCH = 2
# Lengths given to variable (None) axes in the two example runs: long enough that stacks of
# convolutions and poolings still have something left to work on.
VARIABLE_AXIS_LENGTHS = (64, 101)  # far apart, so lengths still differ after strides and pooling


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
    alt_example: torch.Tensor | None = None  # the example with other lengths on variable axes

    @property
    def shape(self) -> tuple:
        dims = tuple(self.example.shape[1:])
        if self.alt_example is not None and self.alt_example.dim() == self.example.dim():
            dims = tuple(None if a != b else a for a, b in zip(dims, self.alt_example.shape[1:]))
        return (None,) + dims

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
    if batch_shape is not None:
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise KilnValueError("Input needs `shape`, the shape of one sample, e.g. Input(shape=(10,)).")
    shape = normalize_shape(shape, "shape")
    example_dtype = torch_dtype(dtype) if not (isinstance(dtype, str) and dtype.startswith("int")) else getattr(torch, dtype)

    def example(length):
        return torch.zeros((_EXAMPLE_BATCH,) + tuple(length if d is None else d for d in shape), dtype=example_dtype)
    first, second = VARIABLE_AXIS_LENGTHS
    alt = example(second) if any(d is None for d in shape) else None
    return KerasTensor(example=example(first), node=None, name=name, input_shape=shape, alt_example=alt)


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
    out = _run_on_examples(layer, args, kwargs, lambda s: s.example)
    out_alt = None
    if any(isinstance(t, KerasTensor) and t.alt_example is not None for t in flatten(args) + flatten(kwargs)):
        try:
            out_alt = _run_on_examples(layer, args, kwargs,
                                       lambda s: s.alt_example if s.alt_example is not None else s.example)
        except Exception:  # a layer that cannot take another length: report the first run's shape
            out_alt = None
    node = Node(layer=layer, args=args, kwargs=kwargs)
    alts = flatten(out_alt) if out_alt is not None else None
    counter = iter(range(len(flatten(out))))

    def wrap(t):
        i = next(counter)
        if not torch.is_tensor(t):
            return t
        alt = alts[i] if alts is not None and i < len(alts) and torch.is_tensor(alts[i]) else None
        return KerasTensor(example=t, node=node, alt_example=alt)
    node.outputs = map_structure(wrap, out)
    return node.outputs


def _run_on_examples(layer, args, kwargs, pick):
    to_example = lambda s: pick(s) if isinstance(s, KerasTensor) else s  # noqa: E731
    example_args = map_structure(to_example, args)
    example_kwargs = map_structure(to_example, kwargs)
    was_training = layer.training
    layer.eval()
    try:
        with torch.no_grad():
            return torch.nn.Module.__call__(layer, *example_args, **example_kwargs)
    finally:
        layer.train(was_training)


class _Lambda(torch.nn.Module):
    """An unnamed elementwise op used by KerasTensor arithmetic (not serialisable)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)

    def __call__(self, x):
        return call_symbolically(self, (x,), {}) if isinstance(x, KerasTensor) else super().__call__(x)
