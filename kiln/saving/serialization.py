"""Layers and models to and from JSON-ready dicts (``{"class_name", "config"}``).

Classes are found among kiln's own layers and models, then among classes registered with
``@register_serializable``, then in ``custom_objects`` given to ``load_model``. Nothing
here executes code from the file: a config can only name classes that are already loaded.
"""

from __future__ import annotations

import inspect
from typing import Any

from kiln.errors import SerializationError, closest_match

__all__ = ["register_serializable", "serialize_layer", "deserialize_layer", "get_registered_object",
           "functional_config", "functional_from_config"]

# Grows only through the decorator (like Keras's registry); built-ins are looked up in the
# kiln.layers / kiln.models namespaces instead, so nothing here needs resetting.
_CUSTOM_OBJECTS: dict[str, type] = {}


def register_serializable(package: str = "Custom", name: str | None = None):
    """Class decorator: lets ``load_model`` rebuild a custom layer or model by name.

    Example::

        @kiln.saving.register_serializable(package="my_project")
        class Scale(kiln.layers.Layer): ...
    """
    def decorator(cls):
        key = f"{package}>{name or cls.__name__}"
        _CUSTOM_OBJECTS[key] = cls
        cls._kiln_registered_name = key
        return cls
    return decorator


def _class_key(obj) -> str:
    cls = type(obj)
    return getattr(cls, "_kiln_registered_name", cls.__name__)


def _builtin_classes() -> dict[str, type]:
    import kiln.layers as layers
    import kiln.models as models
    found = {}
    for namespace in (layers, models):
        for attr in dir(namespace):
            value = getattr(namespace, attr)
            if isinstance(value, type):
                found[attr] = value
    return found


def get_registered_object(name: str, custom_objects: dict | None = None):
    """The class saved under ``name``, or a SerializationError that names what is missing."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    short = name.split(">")[-1]
    if custom_objects and short in custom_objects:
        return custom_objects[short]
    if name in _CUSTOM_OBJECTS:
        return _CUSTOM_OBJECTS[name]
    if name.startswith("kiln.zoo>"):
        from kiln.zoo import load_all
        load_all()  # zoo architectures register themselves when their module is imported
        if name in _CUSTOM_OBJECTS:
            return _CUSTOM_OBJECTS[name]
    builtins = _builtin_classes()
    if name in builtins:
        return builtins[name]
    hint = closest_match(short, list(builtins) + list(_CUSTOM_OBJECTS))
    raise SerializationError(
        f"Unknown layer or model class {name!r} in the saved config. If it is a custom class, decorate it with "
        f"@kiln.saving.register_serializable() or pass custom_objects={{{short!r}: {short}}} to load_model."
        + (f" (Did you mean {hint!r}?)" if hint else ""))


def serialize_layer(layer) -> dict:
    if not hasattr(layer, "get_config"):
        raise SerializationError(
            f"{type(layer).__name__} is a plain torch module without get_config(); kiln cannot save its "
            f"architecture. Use model.save_weights(...) instead, or wrap it in a kiln Layer with get_config().")
    return {"class_name": _class_key(layer), "config": layer.get_config()}


def deserialize_layer(spec: dict, custom_objects: dict | None = None):
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise SerializationError(f"A layer entry must be {{'class_name': ..., 'config': ...}}; found {spec!r}")
    cls = get_registered_object(spec["class_name"], custom_objects)
    config = dict(spec.get("config", {}))
    try:
        if "custom_objects" in inspect.signature(cls.from_config).parameters:
            return cls.from_config(config, custom_objects=custom_objects)
        return cls.from_config(config)
    except TypeError as err:
        raise SerializationError(f"Could not rebuild {spec['class_name']} from its saved config {config}: {err}. "
                                 f"Its get_config() must return every __init__ argument.") from err


# ---------------------------------------------------------------------- functional graphs
def functional_config(model) -> dict[str, Any]:
    """Describe a functional model's graph: layers, the calls between them, inputs and outputs."""
    from kiln.layers.symbolic import KerasTensor, flatten, map_structure
    tensor_ids: dict[int, int] = {}

    def ref(t):
        if isinstance(t, KerasTensor):
            return {"__tensor__": tensor_ids[id(t)]}
        if isinstance(t, (int, float, str, bool)) or t is None:
            return t
        raise SerializationError(f"Cannot save a functional model whose layer call takes {t!r}.")

    inputs = []
    for t in flatten(model.inputs):
        tensor_ids[id(t)] = len(tensor_ids)
        inputs.append({"shape": list(t.input_shape), "dtype": str(t.dtype).replace("torch.", ""), "name": t.name})
    layer_names = {id(layer): name for name, layer in model.named_layers()}
    nodes = []
    for node in model._nodes:
        args = map_structure(ref, node.args)
        kwargs = map_structure(ref, node.kwargs)
        for t in flatten(node.outputs):
            tensor_ids[id(t)] = len(tensor_ids)
        nodes.append({"layer": layer_names[id(node.layer)], "args": args, "kwargs": kwargs,
                      "outputs": map_structure(ref, node.outputs)})
    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": {name: serialize_layer(layer) for name, layer in model.named_layers()},
        "inputs": inputs,
        "input_structure": map_structure(ref, model.inputs),
        "nodes": nodes,
        "outputs": map_structure(ref, model.outputs),
    }


def functional_from_config(cls, config: dict, custom_objects=None):
    from kiln.layers.symbolic import Input, flatten
    layers = {name: deserialize_layer(spec, custom_objects) for name, spec in config["layers"].items()}
    tensors: dict[int, Any] = {}
    flat_inputs = []
    for i, spec in enumerate(config["inputs"]):
        t = Input(shape=tuple(spec["shape"]), dtype=spec["dtype"], name=spec.get("name"))
        tensors[i] = t
        flat_inputs.append(t)

    def resolve(value):
        if isinstance(value, dict) and set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        return value

    def resolve_tree(tree):
        if isinstance(tree, dict) and set(tree) == {"__tensor__"}:
            return resolve(tree)
        if isinstance(tree, list):
            return [resolve_tree(t) for t in tree]
        if isinstance(tree, dict):
            return {k: resolve_tree(v) for k, v in tree.items()}
        return tree

    def ids(tree):
        if isinstance(tree, dict) and set(tree) == {"__tensor__"}:
            return [tree["__tensor__"]]
        if isinstance(tree, list):
            return [i for t in tree for i in ids(t)]
        if isinstance(tree, dict):
            return [i for v in tree.values() for i in ids(v)]
        return []

    for node in config["nodes"]:
        layer = layers[node["layer"]]
        out = layer(*resolve_tree(node["args"]), **resolve_tree(node["kwargs"]))
        for tid, real in zip(ids(node["outputs"]), flatten(out)):
            tensors[tid] = real
    inputs = resolve_tree(config["input_structure"])
    outputs = resolve_tree(config["outputs"])
    return cls(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))
