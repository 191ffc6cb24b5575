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


def member_names(filepath) -> list[str]:
    """The names of the files in a saved model (folder or zip)."""
    path = Path(filepath)
    if path.is_dir():
        return sorted(p.name for p in path.iterdir() if p.is_file())
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


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


