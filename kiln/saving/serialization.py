"""Layers and models to and from JSON-ready dicts (``{"class_name", "config"}``).

A saved ``class_name`` says where the class lives, ``"kiln.layers.dense:Dense"`` (module, a colon,
then the qualified name), so loading imports that module and takes the class from it: saving knows
no list of layers or models and imports none of them. Two exceptions:

- a class registered with ``@register_serializable`` is saved under its registered name
  (``"my_project>Scale"``), so it loads even when it was defined in a script (``__main__``);
- files written before this format name kiln's classes bare (``"Dense"``, ``"kiln.zoo>GPT"``);
  those still load (``_legacy_class``).

Nothing here executes code from the file: only modules of kiln itself are imported by name; a
user's class must already be loaded (its module imported), registered, or given in
``custom_objects``.
"""

from __future__ import annotations

import importlib
import inspect
import sys

from kiln.errors import SerializationError, closest_match

__all__ = ["register_serializable", "serialize_layer", "deserialize_layer", "get_registered_object",
           "class_reference"]

# User classes only, and only through the decorator (like Keras's registry): kiln's own classes
# are found through their module path and never entered here, so nothing needs resetting.
_CUSTOM_OBJECTS: dict[str, type] = {}

# Where the files written before "module:qualname" (kiln 0.1, format_version 1) find kiln's classes:
# bare names in these namespaces, zoo models under "kiln.zoo>Name".
_LEGACY_NAMESPACES = ("kiln.layers", "kiln.models")
_LEGACY_ZOO = {
    "AudioTransformer": "kiln.zoo.audio_transformer", "Bert": "kiln.zoo.bert",
    "BertForClassification": "kiln.zoo.bert", "BertForMaskedLM": "kiln.zoo.bert", "Fusion": "kiln.zoo.fusion",
    "GPT": "kiln.zoo.gpt", "MLP": "kiln.zoo.mlp", "ResNet": "kiln.zoo.resnet", "UNet": "kiln.zoo.unet",
    "VGG": "kiln.zoo.vgg", "ViT": "kiln.zoo.vit", "WaveNet": "kiln.zoo.wavenet",
}


def register_serializable(package: str = "Custom", name: str | None = None):
    """Class decorator: lets ``load_model`` rebuild a custom layer or model by name.

    Needed for classes defined in a script or notebook (their module, ``__main__``, is not the
    loading program's); a class in an importable module loads without it once that module is
    imported.

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


def class_reference(cls: type) -> str:
    """The ``class_name`` a config stores for ``cls``: its registered name, else ``"module:qualname"``."""
    key = cls.__dict__.get("_kiln_registered_name")  # its own registration, not a base class's
    if key is not None and _CUSTOM_OBJECTS.get(key) is cls:
        return key
    return f"{cls.__module__}:{cls.__qualname__}"


def get_registered_object(name: str, custom_objects: dict | None = None):
    """The class saved under ``name``, or a SerializationError that names what is missing."""
    short = name.split(">")[-1].split(":")[-1].split(".")[-1]  # "pkg>Scale", "mod:Outer.Scale" -> "Scale"
    if custom_objects:
        for key in (name, name.split(":")[-1], short):
            if key in custom_objects:
                return custom_objects[key]
    if name in _CUSTOM_OBJECTS:
        return _CUSTOM_OBJECTS[name]
    found = _from_module_path(name) if ":" in name else _legacy_class(name)
    if found is not None:
        return found
    raise SerializationError(
        f"Unknown layer or model class {name!r} in the saved config. If it is a custom class, decorate it with "
        f"@kiln.saving.register_serializable(), import its module before loading, or pass "
        f"custom_objects={{{short!r}: {short}}} to load_model." + _hint(short))


def _from_module_path(name: str):
    """The class at ``"module:qualname"``: kiln's modules are imported, a user's must be loaded already."""
    module_name, _, qualname = name.partition(":")
    if module_name == "kiln" or module_name.startswith("kiln."):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:  # a class moved or renamed since the file was written
            if not (err.name == module_name or module_name.startswith(f"{err.name}.")):
                raise  # the module exists but needs a package that is not installed: say which
            return None
    else:
        module = sys.modules.get(module_name)
    value = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, type) else None


def _legacy_class(name: str):
    """A class named the pre-"module:qualname" way: bare (``"Dense"``) or ``"kiln.zoo>GPT"``."""
    if name.startswith("kiln.zoo>"):
        short = name.split(">", 1)[1]
        return _from_module_path(f"{_LEGACY_ZOO[short]}:{short}") if short in _LEGACY_ZOO else None
    for namespace in _LEGACY_NAMESPACES:
        value = getattr(importlib.import_module(namespace), name, None)
        if isinstance(value, type):
            return value
    return None


def _hint(short: str) -> str:
    names = list(_CUSTOM_OBJECTS)
    for namespace in _LEGACY_NAMESPACES:
        module = importlib.import_module(namespace)
        names += [attr for attr in dir(module) if isinstance(getattr(module, attr), type)]
    hint = closest_match(short, names)
    return f" (Did you mean {hint!r}?)" if hint else ""


def serialize_layer(layer) -> dict:
    if not hasattr(layer, "get_config"):
        raise SerializationError(
            f"{type(layer).__name__} is a plain torch module without get_config(); kiln cannot save its "
            f"architecture. Use model.save_weights(...) instead, or wrap it in a kiln Layer with get_config().")
    return {"class_name": class_reference(type(layer)), "config": layer.get_config()}


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
