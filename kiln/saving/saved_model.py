"""The saved-model layout on disk, and reading it back.

A saved model is a folder, or the same files inside a zip when the path ends in ``.keras`` or
``.kiln``::

    config.json            {"format": "kiln.model", "class_name": ..., "config": ..., ...}
    model.safetensors      the state_dict
    optimizer.safetensors  optional: the optimizer's state
    tokenizer.json, ...    optional: a model's assets (``Model.save_assets``)

Why apart from model_io.py: ``load_weights`` reads a saved model's weights without rebuilding the
model, so it needs the layout but not the architecture; here both model_io.py and it find it,
and weights_io.py (below both) stays a plain safetensors module.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch

from kiln.errors import KilnValueError, SerializationError
from kiln.saving.weights_io import apply_state, atomic_write_bytes, read_safetensors

__all__ = ["FORMAT", "FORMAT_VERSION", "ZIP_SUFFIXES", "OPTIMIZER_FILE", "RESERVED_FILES", "write_model_files",
           "read_member", "member_names", "read_saved_model", "load_weights"]

FORMAT = "kiln.model"
FORMAT_VERSION = 1
ZIP_SUFFIXES = (".keras", ".kiln")
OPTIMIZER_FILE = "optimizer.safetensors"
RESERVED_FILES = ("config.json", "model.safetensors", OPTIMIZER_FILE)  # what assets may not be called


def write_model_files(path: Path, files: dict[str, bytes]) -> None:
    """Write ``{name: bytes}`` as one zip (``.keras``/``.kiln``) or a folder, atomically either way."""
    if path.suffix in ZIP_SUFFIXES:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        atomic_write_bytes(path, buffer.getvalue())
        return
    _write_folder_atomically(path, files)


def read_member(filepath, name: str) -> bytes | None:
    """One file of a saved model (folder or zip) as bytes, or None when it has no such file."""
    path = Path(filepath)
    if path.is_dir():
        return (path / name).read_bytes() if (path / name).exists() else None
    with zipfile.ZipFile(path) as archive:
        return archive.read(name) if name in archive.namelist() else None


def member_names(filepath) -> list[str]:
    """The names of the files in a saved model (folder or zip)."""
    path = Path(filepath)
    if path.is_dir():
        return sorted(p.name for p in path.iterdir() if p.is_file())
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


def _write_folder_atomically(path: Path, files: dict[str, bytes]) -> None:
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
        config = _parse_config(path, archive.read("config.json"))
        return config, read_safetensors(archive.read("model.safetensors"))


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


def load_weights(module: torch.nn.Module, filepath, skip_mismatch: bool = False) -> None:
    """Load weights from a safetensors file, or from a saved kiln model (folder or zip)."""
    path = Path(filepath)
    if not path.exists():
        raise KilnValueError(f"No weights file at {path}.")
    if path.is_dir() or path.suffix in ZIP_SUFFIXES:
        _, state = read_saved_model(path)
    else:
        state = read_safetensors(path)
    apply_state(module, state, source=str(path), skip_mismatch=skip_mismatch)


