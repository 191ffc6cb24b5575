"""Whole models on disk: architecture + compile settings as JSON, weights as safetensors.

Layout (a folder, or the same two files inside a zip when the path ends in ``.keras`` or
``.kiln``)::

    config.json        {"format": "kiln.model", "class_name": ..., "config": ..., ...}
    model.safetensors  the state_dict

A zip file is replaced atomically (written under a temporary name, then renamed over the old
one): readers see the old model or the new one, never none or half. A folder cannot be swapped
for another in one rename, so a folder save guarantees less: see ``_write_folder_atomically``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from kiln.errors import KilnValueError, SerializationError
from kiln.layers.symbolic import map_structure
from kiln.saving.serialization import deserialize_layer, serialize_layer
from kiln.saving.state_io import state_from_bytes, state_to_bytes
from kiln.saving.weights_io import apply_state, atomic_write_bytes, read_safetensors, state_to_safetensors_bytes

__all__ = ["save_model", "load_model", "model_to_json", "read_saved_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "kiln.model"
FORMAT_VERSION = 1
_ZIP_SUFFIXES = (".keras", ".kiln")
_OPTIMIZER_FILE = "optimizer.safetensors"
_TOKENIZER_FILE = "tokenizer.json"


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
        files[_OPTIMIZER_FILE] = state_to_bytes(optimizer.state_dict())
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "save"):  # text models keep their tokenizer with them
        from kiln.zoo.tokenizers import tokenizer_to_bytes
        files[_TOKENIZER_FILE] = tokenizer_to_bytes(tokenizer)
    if path.suffix in _ZIP_SUFFIXES:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        atomic_write_bytes(path, buffer.getvalue())
        return
    _write_folder_atomically(path, files)


def _read_member(filepath, name: str) -> bytes | None:
    path = Path(filepath)
    if path.is_dir():
        return (path / name).read_bytes() if (path / name).exists() else None
    with zipfile.ZipFile(path) as archive:
        return _read_zip_member(archive, name, path) if name in archive.namelist() else None


# A zip member may inflate to at most this many times its compressed size (plus the slack below).
# model.save stores members uncompressed (ratio 1); weights re-zipped with deflate shrink ~1.1x and
# JSON ~10x, while a zip bomb inflates thousands of times (285 KB -> 1.1 GB took 7.6 s).
_MAX_INFLATION = 100
_INFLATION_SLACK = 1 << 20  # small members (config.json) may compress better than 100x


def _read_zip_member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """A member's bytes, refused before inflating when its declared size is out of proportion to
    its compressed size, and read with a cap so a lying header cannot inflate past it either."""
    info = archive.getinfo(name)
    limit = info.compress_size * _MAX_INFLATION + _INFLATION_SLACK
    if info.file_size > limit:
        raise SerializationError(
            f"{path}: {name} would inflate from {info.compress_size} to {info.file_size} bytes, more than "
            f"{_MAX_INFLATION}x its compressed size: refused as a possible zip bomb. Re-save the model with "
            f"model.save (which stores members uncompressed) or load it from a folder.")
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise SerializationError(f"{path}: {name} inflates past {limit} bytes ({_MAX_INFLATION}x its compressed "
                                 f"size): refused as a possible zip bomb.")
    return data


def read_optimizer_state(filepath):
    """The optimizer state saved beside a model, or None when it was saved without one."""
    data = _read_member(filepath, _OPTIMIZER_FILE)
    return None if data is None else state_from_bytes(data)


def _write_folder_atomically(path: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a temporary sibling folder, then move it to ``path``.

    What this guarantees: ``path`` never holds half a model (a crash while writing leaves the old
    model untouched and a ``.NAME.*.tmp`` sibling). What it does not: when ``path`` already holds a
    model, it is renamed to ``.NAME.old`` and the new folder renamed into its place, two renames,
    so between them (microseconds) ``path`` does not exist; a crash exactly there leaves the old
    model at ``.NAME.old``. Save to a ``.keras`` file when readers may load while you save: a file
    is replaced in one rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_saved_model(filepath) -> tuple[dict, dict]:
    """Return ``(config, state_dict)`` of a saved model, refusing anything that is not one."""
    path = Path(filepath)
    if not path.exists():
        raise KilnValueError(f"No saved model at {path}.")
    if path.is_dir():
        cfg_file, weights_file = path / "config.json", path / "model.safetensors"
        if not cfg_file.exists() or not weights_file.exists():
            raise SerializationError(f"{path} is not a kiln model folder: it needs config.json and "
                                     f"model.safetensors (written by model.save).")
        config = _parse_config(path, cfg_file.read_bytes())
        return config, read_safetensors(weights_file)
    if not zipfile.is_zipfile(path):
        raise SerializationError(f"{path} is not a kiln model file (expected a .keras/.kiln archive written "
                                 f"by model.save, or a folder). kiln never loads pickled .pt/.h5 files.")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if not {"config.json", "model.safetensors"} <= names:
            raise SerializationError(f"{path} is a zip archive but not a kiln model: it lacks "
                                     f"config.json/model.safetensors (it has {sorted(names)[:5]}).")
        # The config (and its format marker) is checked before the weights are read.
        config = _parse_config(path, _read_zip_member(archive, "config.json", path))
        return config, read_safetensors(_read_zip_member(archive, "model.safetensors", path))


def _parse_config(path: Path, data: bytes) -> dict:
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SerializationError(f"{path}: config.json is not valid JSON ({err}).") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise SerializationError(f"{path} is not a kiln model: its config.json lacks "
                                 f"\"format\": \"{FORMAT}\".")
    missing = [key for key in ("class_name", "config") if key not in config]
    if missing:
        raise SerializationError(f"{path}: config.json lacks {missing}; it was not written by model.save.")
    return config


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
    tokenizer_bytes = _read_member(filepath, _TOKENIZER_FILE)
    if tokenizer_bytes is not None:
        from kiln.zoo.tokenizers import tokenizer_from_bytes
        model.tokenizer = tokenizer_from_bytes(tokenizer_bytes)
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
