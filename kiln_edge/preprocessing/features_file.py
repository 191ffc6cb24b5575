"""The features file pair kiln writes beside a model, read without torch.

``features.json`` holds ``{"format": "kiln.features", "format_version": 1, "safetensors_sha256": ...,
"features": [record, ...]}``, one record per feature (type, name, column, output, options, fitted
state, the names of its tensors); ``features.safetensors`` holds the fitted tensors as
``"<feature>/<key>"``. kiln's ``save_features`` writes them; ``read_features`` is the one reader,
used by kiln's ``load_features`` and kiln_edge's alike.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from kiln_edge.errors import EdgeError

__all__ = ["FEATURES_JSON", "FEATURES_SAFETENSORS", "FORMAT", "FORMAT_VERSION", "read_features"]

FEATURES_JSON = "features.json"
FEATURES_SAFETENSORS = "features.safetensors"
FORMAT = "kiln.features"
FORMAT_VERSION = 1


def read_features(folder, known_types) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """``[(record, {key: array}), ...]`` in the saved order; ``record`` without its ``"tensors"`` list.

    Args:
        folder: the folder holding ``features.json`` and ``features.safetensors``.
        known_types: the feature type names the caller can build; any other is an error.

    Raises:
        EdgeError: a file is missing, not JSON / not safetensors, not a kiln features file, from a
            newer format, or the pair does not belong together (the JSON names the tensors' SHA-256).
    """
    folder = Path(folder)
    json_file, tensor_file = folder / FEATURES_JSON, folder / FEATURES_SAFETENSORS
    for path in (json_file, tensor_file):
        if not path.exists():
            raise EdgeError(f"No {path.name} in {folder}: it is written by save_features() (kiln train saves it in "
                            f"the run's model folder).")
    try:
        document = json.loads(json_file.read_text())
    except ValueError as err:
        raise EdgeError(f"{json_file} is not valid JSON ({err}).") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EdgeError(f"{json_file} is not a kiln features file (no \"format\": \"{FORMAT}\").")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise EdgeError(f"{json_file} has format_version {document['format_version']}; this kiln reads up to "
                        f"{FORMAT_VERSION}. Upgrade kiln.")
    blob = tensor_file.read_bytes()
    if hashlib.sha256(blob).hexdigest() != document.get("safetensors_sha256"):
        raise EdgeError(f"{tensor_file} does not match {json_file} (its SHA-256 differs): the two files come "
                        f"from different saves. Save the features again.")
    from safetensors.numpy import load
    try:
        tensors = load(blob)
    except Exception as err:  # safetensors raises its own error types
        raise EdgeError(f"{tensor_file} is not a safetensors file ({err}).") from err
    known = list(known_types)
    out = []
    for record in document["features"]:
        if record.get("type") not in known:
            raise EdgeError(f"{json_file}: feature {record.get('name')!r} has unknown type {record.get('type')!r}; "
                            f"known: {', '.join(known)}.")
        own = {key: tensors[f"{record['name']}/{key}"] for key in record.get("tensors", [])}
        out.append(({k: v for k, v in record.items() if k != "tensors"}, own))
    return out
