"""Features by type name: build one from a config, save fitted ones beside a model, load them back.

Why a module of its own: it knows every feature type, and the type modules import ``base.py`` for the
protocol; keeping the table here (not in ``base.py``) leaves no import circle between them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path

import torch

from kiln.data.features.audio import AudioFeature
from kiln.data.features.base import Feature, kiln_errors
from kiln.data.features.binary import BinaryFeature
from kiln.data.features.category import CategoryFeature
from kiln.data.features.image import ImageFeature
from kiln.data.features.numeric import NumericFeature
from kiln.data.features.sequence import SequenceFeature
from kiln.data.features.text import TextFeature
from kiln.errors import KilnValueError, SerializationError, closest_match, unknown_name_error
from kiln_edge.preprocessing.features_file import (FEATURES_JSON, FEATURES_SAFETENSORS, FORMAT, FORMAT_VERSION,
                                                   read_features)

__all__ = ["FEATURE_TYPES", "build_feature", "save_features", "load_features"]

# The type names of the YAML config, explicitly (no registration side effects to reset).
FEATURE_TYPES: dict[str, type[Feature]] = {
    "numeric": NumericFeature,
    "category": CategoryFeature,
    "binary": BinaryFeature,
    "text": TextFeature,
    "image": ImageFeature,
    "audio": AudioFeature,
    "sequence": SequenceFeature,
}


def _options_of(cls) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "name", "column", "output")]


def build_feature(name: str, type: str, column: str | None = None, *, output: bool = False,
                  **preprocessing) -> Feature:
    """A feature of the given type, e.g. ``build_feature("price", "numeric", normalization="minmax")``.

    Args:
        name: the feature's name (and column, unless ``column`` is given).
        type: one of ``FEATURE_TYPES``: numeric, category, binary, text, image, audio, sequence.
        column: the table column to read (default: ``name``).
        output: True for a target the model predicts.
        **preprocessing: the type's options (``NumericFeature(normalization=...)`` ...); an unknown
            option is an error that names the nearest valid one.
    """
    types = FEATURE_TYPES
    if type not in types:
        raise unknown_name_error("feature type", type, types)
    cls = types[type]
    options = _options_of(cls)
    for key in preprocessing:
        if key not in options:
            hint = closest_match(key, options)
            raise KilnValueError(f"Unknown option {key!r} for the {type} feature {name!r}."
                                 f"{f' Did you mean {hint!r}?' if hint else ''} "
                                 f"Valid options: {', '.join(options) or '(none)'}.")
    return cls(name, column=column, output=output, **preprocessing)


def save_features(features, folder) -> None:
    """Write fitted features to ``folder/features.json`` + ``folder/features.safetensors``.

    Args:
        features: a list of features, or a ``{name: feature}`` dict.
        folder: the folder (a model folder); created if needed.

    Each file is written atomically (temporary name, then rename). The JSON holds the SHA-256 of
    the tensor file, so ``load_features`` notices a pair that does not belong together.
    """
    from safetensors.torch import save

    from kiln.saving.weights_io import atomic_write_bytes
    items = list(features.values()) if isinstance(features, Mapping) else list(features)
    names = set()
    records, tensors = [], {}
    for feature in items:
        if not isinstance(feature, Feature):
            raise KilnValueError(f"save_features() expects kiln features; received a {type(feature).__name__}.")
        if feature.name in names:
            raise KilnValueError(f"Two features are named {feature.name!r}; feature names must be unique.")
        names.add(feature.name)
        config, own = feature.state()
        config["tensors"] = sorted(own)
        for key, tensor in own.items():
            tensors[f"{feature.name}/{key}"] = tensor.detach().to("cpu").contiguous().clone()
        records.append(config)
    blob = save(tensors, metadata={"format": FORMAT})
    document = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "safetensors_sha256": hashlib.sha256(blob).hexdigest(), "features": records}
    try:
        text = json.dumps(document, indent=2, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise SerializationError(f"A feature's state is not JSON-able ({err}).") from err
    folder = Path(folder)
    atomic_write_bytes(folder / FEATURES_SAFETENSORS, blob)  # tensors first: the JSON names their hash
    atomic_write_bytes(folder / FEATURES_JSON, text.encode())


def load_features(folder) -> dict[str, Feature]:
    """Read the features ``save_features`` wrote; returns ``{name: feature}`` in the saved order.

    The files are read by kiln_edge's reader (the same checks and messages on both backends);
    fitted tensors come back as torch tensors.
    """
    types = FEATURE_TYPES
    with kiln_errors(SerializationError):
        records = read_features(folder, types)
    return {config["name"]: types[config["type"]].from_state(
                config, {key: torch.from_numpy(array.copy()) for key, array in arrays.items()})
            for config, arrays in records}
