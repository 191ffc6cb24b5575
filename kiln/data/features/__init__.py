"""Feature preprocessors: one column of the table -> one tensor batch, fitted on the training split.

``build_feature(name, type, column=None, output=False, **options)`` makes one from a config;
``save_features``/``load_features`` store fitted features beside a model (``features.json`` +
``features.safetensors``). The protocol is in ``base.py``; each type has its own file.
"""

from kiln.data.features.audio import AudioFeature, mel_filterbank
from kiln.data.features.base import Feature, build_feature, load_features, save_features
from kiln.data.features.binary import BinaryFeature
from kiln.data.features.category import CategoryFeature
from kiln.data.features.image import ImageFeature
from kiln.data.features.numeric import NumericFeature
from kiln.data.features.sequence import SequenceFeature
from kiln.data.features.text import TextFeature

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

__all__ = [
    "FEATURE_TYPES", "Feature", "build_feature", "save_features", "load_features",
    "NumericFeature", "CategoryFeature", "BinaryFeature", "TextFeature", "ImageFeature", "AudioFeature",
    "SequenceFeature", "mel_filterbank",
]
