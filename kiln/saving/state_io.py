"""Nested state (optimizer state, checkpoints) as safetensors + JSON, without pickle.

``torch.save`` would pickle an optimizer's ``state_dict``; instead every tensor goes into a
safetensors file and the rest of the structure (numbers, strings, lists, dicts) into JSON,
with ``{"__tensor__": key}`` where a tensor was. Dict keys become strings in JSON, so
integer keys (torch optimizers index parameters by int) are marked and restored.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from kiln.errors import SerializationError

__all__ = ["state_to_bytes", "state_from_bytes"]

_TREE_KEY = "kiln.state_tree"


def _split(value: Any, tensors: dict, path: str) -> Any:
    if torch.is_tensor(value):
        tensors[path] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": path}
    if isinstance(value, dict):
        return {"__dict__": [[_key(k), _split(v, tensors, f"{path}/{k}")] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_split(v, tensors, f"{path}/{i}") for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SerializationError(f"Cannot store a {type(value).__name__} at {path!r} in a kiln state file "
                             f"(only tensors, numbers, strings, lists and dicts).")


def _key(k):
    if isinstance(k, bool) or not isinstance(k, (int, str)):
        raise SerializationError(f"State dict keys must be str or int; found {k!r}")
    return {"int": k} if isinstance(k, int) else k


def _join(tree: Any, tensors: dict) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__dict__" in tree:
            return {(k["int"] if isinstance(k, dict) else k): _join(v, tensors) for k, v in tree["__dict__"]}
        if "__list__" in tree:
            items = [_join(v, tensors) for v in tree["__list__"]]
            return tuple(items) if tree.get("tuple") else items
    return tree


def state_to_bytes(state: Any) -> bytes:
    """Serialise a nested state to one safetensors blob (the structure rides in its metadata)."""
    from safetensors.torch import save
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(state, tensors, "s")
    return save(tensors, metadata={_TREE_KEY: json.dumps(tree)})


def _metadata(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors blob: an 8-byte little-endian header length, then
    the JSON header (the format's documented layout)."""
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    return header.get("__metadata__") or {}


def state_from_bytes(data: bytes) -> Any:
    """Inverse of ``state_to_bytes``; refuses blobs that were not written by it."""
    from safetensors.torch import load
    try:
        tensors = load(bytes(data))
        metadata = _metadata(data)
    except Exception as err:
        raise SerializationError(f"Not a kiln state file ({err}).") from err
    if _TREE_KEY not in metadata:
        raise SerializationError("Not a kiln state file: its safetensors metadata has no state structure.")
    return _join(json.loads(metadata[_TREE_KEY]), tensors)
