"""Feature preprocessors: one column of the table -> one tensor batch, fitted on the training split.

``build_feature(name, type, column=None, output=False, **options)`` makes one from a config;
``save_features``/``load_features`` store fitted features beside a model (``features.json`` +
``features.safetensors``). The protocol is in ``base.py``; each type has its own file.
"""

from kiln.data.features.audio import AudioFeature, mel_filterbank
from kiln.data.features.base import Feature
from kiln.data.features.binary import BinaryFeature
from kiln.data.features.category import CategoryFeature
from kiln.data.features.image import ImageFeature
from kiln.data.features.numeric import NumericFeature
from kiln.data.features.sequence import SequenceFeature
from kiln.data.features.text import TextFeature
from kiln.data.features.types import FEATURE_TYPES, build_feature, load_features, save_features

__all__ = [
    "FEATURE_TYPES", "Feature", "build_feature", "save_features", "load_features",
    "NumericFeature", "CategoryFeature", "BinaryFeature", "TextFeature", "ImageFeature", "AudioFeature",
    "SequenceFeature", "mel_filterbank",
]
