"""Nested structures (lists, tuples, dicts of leaves): map a function over them, or list their leaves.

Why a module of its own: layers, models, saving, training and callbacks all walk inputs and
outputs that may be one tensor, a list or a dict; the helpers sit below all of them so none
has to import another for two small functions.

Example::

    map_structure(lambda t: t * 2, {"a": 1, "b": [2, 3]})  # {"a": 2, "b": [4, 6]}
    flatten({"a": 1, "b": [2, 3]})                           # [1, 2, 3]
"""

from __future__ import annotations

__all__ = ["map_structure", "flatten"]


def map_structure(fn, structure):
    """``fn`` applied to every leaf; lists, tuples (their type kept) and dicts rebuilt around them."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def flatten(structure) -> list:
    """The leaves in order: list/tuple items first to last, dict values in insertion order."""
    if isinstance(structure, (list, tuple)):
        return [x for s in structure for x in flatten(s)]
    if isinstance(structure, dict):
        return [x for s in structure.values() for x in flatten(s)]
    return [structure]
