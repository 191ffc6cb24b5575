"""Layer names inside one model ("dense", "dense_1", ...), without global counters.

Layers are registered as direct submodules under their names, so a ``state_dict`` reads
like Keras's weight names (``dense.kernel``, ``dense_1.bias``) and the same architecture
built as Sequential or functional has the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["unique_name", "attach_layer"]


def unique_name(base: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def attach_layer(model: nn.Module, base: str, layer: nn.Module) -> str:
    """Register ``layer`` on ``model`` under a free name derived from ``base``; return the name.

    A name that would shadow one of the model's attributes (``layers``, ``loss``, ``name``,
    ...) gets a ``_layer`` suffix instead.
    """
    base = base.replace(".", "_") or "layer"
    if hasattr(type(model), base) or base in model.__dict__:
        base = f"{base}_layer"
    name = unique_name(base, set(model._modules) | set(dir(type(model))) | set(model.__dict__))
    model.add_module(name, layer)
    return name
