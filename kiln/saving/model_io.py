"""Whole models on disk: architecture + compile settings as JSON, weights as safetensors.

The files and their layout (a folder, or a zip for ``.keras``/``.kiln``) are kiln/saving/
saved_model.py's; here the model becomes those files and back. Writes are atomic (temporary
name, then rename), so a crash never leaves half a model.

A model's own extra files (a text model's tokenizer) come from its ``save_assets()`` hook and go
back through ``load_assets()``: saving knows no model family. A zip file is replaced in one rename;
a folder save guarantees less (saved_model.py's ``_write_folder_atomically`` says what).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from kiln.errors import KilnValueError, SerializationError
from kiln.saving.saved_model import (FORMAT, FORMAT_VERSION, OPTIMIZER_FILE, RESERVED_FILES, member_names,
                                     read_member, read_saved_model, write_model_files)
from kiln.saving.serialization import deserialize_layer, serialize_layer
from kiln.saving.state_io import state_from_bytes, state_to_bytes
from kiln.saving.weights_io import apply_state, state_to_safetensors_bytes
from kiln.utils.tree import map_structure

__all__ = ["save_model", "load_model", "model_to_json", "read_saved_model", "FORMAT", "FORMAT_VERSION"]


def _kiln_version() -> str:
    from kiln import __version__
    return __version__


def model_config(model) -> dict[str, Any]:
    spec = serialize_layer(model)
    example = getattr(model, "_example_input", None)
    build_input = None
    if example is not None:
        build_input = map_structure(
            lambda t: {"shape": list(t.shape[1:]), "dtype": str(t.dtype).replace("torch.", "")}
            if torch.is_tensor(t) else t, example)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kiln_version": _kiln_version(),
        "torch_version": torch.__version__,
        "class_name": spec["class_name"],
        "config": spec["config"],
        "build_input": build_input,
        "compile_config": _compile_config(model),
    }


def model_to_json(model) -> str:
    return json.dumps(model_config(model), indent=2)


def _compile_config(model) -> dict | None:
    raw = getattr(model, "_compile_config", None)
    if not raw or model._trainer is None:
        return None
    from kiln import losses, metrics, optimizers
    trainer = model._trainer
    try:
        optimizer = optimizers.serialize(trainer.optimizer)
        # Loss and metric objects (Huber(delta=0.5), MeanAbsoluteError()) become
        # {"class_name", "config"} leaves inside the same list/dict structure compile got.
        loss = _serialize_tree(raw["loss"], losses.serialize)
        metric_specs = _serialize_tree(raw["metrics"], metrics.serialize)
        json.dumps([optimizer, loss, metric_specs, raw.get("loss_weights")])
    except Exception:  # a custom callable: the architecture and weights still save
        return None
    return {"optimizer": optimizer, "loss": loss, "metrics": metric_specs, "loss_weights": raw.get("loss_weights"),
            "jit_compile": raw.get("jit_compile", False), "mixed_precision": raw.get("mixed_precision")}


def _is_serialized(value) -> bool:
    return isinstance(value, dict) and set(value) == {"class_name", "config"}


def _serialize_tree(value, serialize_leaf):
    """Names and numbers stay; lists/dicts (one entry per output) are walked; objects are serialized."""
    if value is None or isinstance(value, (str, int, float, bool)) or _is_serialized(value):
        return value
    if isinstance(value, (list, tuple)):
        return [_serialize_tree(v, serialize_leaf) for v in value]
    if isinstance(value, dict):
        return {k: _serialize_tree(v, serialize_leaf) for k, v in value.items()}
    return serialize_leaf(value)


def _deserialize_tree(value, deserialize_leaf):
    if _is_serialized(value):
        return deserialize_leaf(value)
    if isinstance(value, list):
        return [_deserialize_tree(v, deserialize_leaf) for v in value]
    if isinstance(value, dict):
        return {k: _deserialize_tree(v, deserialize_leaf) for k, v in value.items()}
    return value


def save_model(model, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """Write the model; with ``include_optimizer`` (Keras's default) also the optimizer's state
    (moments, step counts) as ``optimizer.safetensors``, so training continues where it stopped."""
    path = Path(filepath)
    if path.exists() and not overwrite:
        raise KilnValueError(f"{path} exists; pass overwrite=True to replace it.")
    files = {"config.json": json.dumps(model_config(model), indent=2).encode(),
             "model.safetensors": state_to_safetensors_bytes(model.state_dict())}
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None and getattr(optimizer, "torch_optimizer", None) is not None:
        files[OPTIMIZER_FILE] = state_to_bytes(optimizer.state_dict())
    files.update(_assets(model))
    write_model_files(path, files)


def _assets(model) -> dict[str, bytes]:
    """The model's ``save_assets()`` files, checked: plain file names that clash with no kiln file."""
    assets = model.save_assets() if hasattr(model, "save_assets") else {}
    for name, data in assets.items():
        if name in RESERVED_FILES or not name or "/" in name or "\\" in name or name.startswith("."):
            raise SerializationError(f"{type(model).__name__}.save_assets() returned the file name {name!r}; "
                                     f"expected a plain file name other than {', '.join(RESERVED_FILES)}.")
        if not isinstance(data, bytes):
            raise SerializationError(f"{type(model).__name__}.save_assets() returned {type(data).__name__} for "
                                     f"{name!r}; expected bytes.")
    return assets


def read_optimizer_state(filepath):
    """The optimizer state saved beside a model, or None when it was saved without one."""
    data = read_member(filepath, OPTIMIZER_FILE)
    return None if data is None else state_from_bytes(data)


def load_model(filepath, custom_objects: dict | None = None, compile: bool = True, safe_mode: bool = True):
    """Rebuild a model saved with ``model.save``; predictions equal the original's.

    Args:
        filepath: the folder or ``.keras``/``.kiln`` file.
        custom_objects: ``{"ClassName": cls}`` for custom layers not registered with
            ``@kiln.saving.register_serializable``.
        compile: re-apply the saved compile settings (optimizer, loss, metrics).
    """
    config, state = read_saved_model(filepath)
    model = _built_within_budget(config, state, custom_objects, source=str(filepath))
    apply_state(model, state, source=str(filepath))
    compile_config = config.get("compile_config")
    asset_names = [name for name in member_names(filepath) if name not in RESERVED_FILES]
    if asset_names and hasattr(model, "load_assets"):
        model.load_assets({name: read_member(filepath, name) for name in asset_names})
    if compile and compile_config:
        model.compile(**_restore_compile_config(compile_config, custom_objects))
        optimizer_state = read_optimizer_state(filepath)
        if optimizer_state is not None:
            model.optimizer.load_state_dict(optimizer_state)  # applied when fit builds the optimizer
    return model


def _restore_compile_config(compile_config: dict, custom_objects: dict | None) -> dict:
    """Turn saved loss/metric configs back into objects: compile reads a dict loss as one per output."""
    from kiln import losses, metrics
    restored = dict(compile_config)
    restored["loss"] = _deserialize_tree(compile_config.get("loss"),
                                         lambda c: losses.deserialize(c, custom_objects=custom_objects))
    restored["metrics"] = _deserialize_tree(compile_config.get("metrics"),
                                            lambda c: metrics.deserialize(c, custom_objects=custom_objects))
    return restored


# The largest example sample a saved build_input may declare (elements per sample; the build runs a
# batch of two): a 2048 x 2048 x 4 image. Larger ones would make loading allocate whatever a
# config.json asks for.
_MAX_EXAMPLE_ELEMENTS = 1 << 24


def _check_build_input(build_input, source: str) -> None:
    """Refuse a saved build_input whose example would be larger than any model is built with."""
    for spec in _example_specs(build_input):
        shape = [1 if d is None else d for d in spec["shape"]]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise SerializationError(f"{source}: config.json's build_input shape {spec['shape']} is not a list of "
                                     f"non-negative integers; it was not written by model.save.")
        elements = 1
        for d in shape:
            elements *= d
        if elements > _MAX_EXAMPLE_ELEMENTS:
            raise SerializationError(f"{source}: config.json's build_input shape {spec['shape']} holds {elements} "
                                     f"elements per sample, more than the {_MAX_EXAMPLE_ELEMENTS} a model is built "
                                     f"with; refused before allocating it.")


# Building may create, beyond the saved tensors themselves, initializer temporaries and casts (the
# factor) and non-persistent buffers and the example batch (the slack).
_BUILD_FACTOR, _BUILD_SLACK = 4, 256 << 20


class _AllocationBudget(torch.overrides.TorchFunctionMode):
    """Refuse, before it happens, a tensor creation that would take the bytes created so far past
    ``budget``: a config.json is a request to allocate (``units: 10**9``), and the archive's real
    tensors say how much a genuine model of it holds."""

    _FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                  torch.eye}

    def __init__(self, held: int, source: str):
        super().__init__()
        self.held, self.source = held, source
        self.budget = self.left = _BUILD_FACTOR * held + _BUILD_SLACK

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._FACTORIES:
            size = _bytes_asked(func, args, kwargs)
            if size > self.left:
                raise SerializationError(
                    f"{self.source}: building the model its config.json declares would allocate more than "
                    f"{self.budget} bytes (torch.{func.__name__} of {size} bytes), while its saved weights hold "
                    f"{self.held} bytes: the config does not match the weights (edited, or not written by "
                    f"model.save); refused before allocating.")
            self.left -= size
        return func(*args, **kwargs)


def _bytes_asked(func, args, kwargs) -> int:
    """Bytes a factory call would allocate (its size arguments and dtype), without allocating."""
    if func is torch.eye:
        n = args[0] if args else kwargs.get("n", 0)
        m = args[1] if len(args) > 1 and isinstance(args[1], int) else kwargs.get("m", n)
        shape = (n, m)
    elif func is torch.randint:
        shape = kwargs.get("size", next((a for a in args if isinstance(a, (tuple, list, torch.Size))), ()))
    elif func is torch.full:
        shape = args[0] if args else kwargs.get("size", ())
    else:
        shape = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else \
            (args or kwargs.get("size", ()))
    elements = 1
    for d in shape:
        elements *= max(int(d), 0)
    dtype = kwargs.get("dtype") or torch.get_default_dtype()
    return elements * dtype.itemsize


def _built_within_budget(config: dict, state: dict, custom_objects: dict | None, source: str):
    """The model config.json declares, built (weights created) under an allocation budget set by
    the archive's real tensors, so a config asking for more than its weights is refused first."""
    _check_build_input(config.get("build_input"), source)
    held = sum(t.numel() * t.element_size() for t in state.values())
    with _AllocationBudget(held, source):
        # deserialize_layer turns a from_config TypeError (a get_config missing an __init__
        # argument) into a SerializationError that says so.
        model = deserialize_layer({"class_name": config["class_name"], "config": config["config"]}, custom_objects)
        _build_from_example(model, config.get("build_input"))
    return model


def _example_specs(build_input):
    """Every ``{"shape", "dtype"}`` leaf of a saved build_input."""
    if isinstance(build_input, dict) and "shape" in build_input and "dtype" in build_input:
        yield build_input
    elif isinstance(build_input, dict):
        for value in build_input.values():
            yield from _example_specs(value)
    elif isinstance(build_input, (list, tuple)):
        for value in build_input:
            yield from _example_specs(value)


def _build_from_example(model, build_input) -> None:
    """Run a zero batch shaped like the saved example so every lazy layer creates its weights."""
    if build_input is None:
        return

    def make(spec):
        if isinstance(spec, dict) and "shape" in spec and "dtype" in spec:
            shape = tuple(1 if d is None else d for d in spec["shape"])
            return torch.zeros((2,) + shape, dtype=getattr(torch, spec["dtype"]))
        if isinstance(spec, dict):
            return {k: make(v) for k, v in spec.items()}
        if isinstance(spec, (list, tuple)):
            return type(spec)(make(v) for v in spec)
        return spec

    example = make(build_input)
    model.eval()
    with torch.no_grad():
        model(example)
    model.train()
