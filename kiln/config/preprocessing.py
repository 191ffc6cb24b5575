"""The ``preprocessing`` options of each feature type, typed: one pydantic model per type.

Why here and typed: ``kiln validate`` reports a misspelt or ill-typed preprocessing option with
every other problem of the file, before any data is read. The options, their types and their
defaults are those of the feature classes' constructors (``kiln.data.features``), which this
module does not import (they import torch); ``tests/config/test_preprocessing.py`` checks that
the two agree, option for option and default for default, so they cannot drift apart.

Types are strict where the feature classes are (an integer option takes an integer, not
``28.0`` or ``true``), so a config that validates also builds its features.

Example:
    >>> PREPROCESSING_BY_TYPE["image"].model_validate({"height": 28, "width": 28}).channels is None
    True
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "NumericPreprocessing", "CategoryPreprocessing", "BinaryPreprocessing", "TextPreprocessing",
    "ImagePreprocessing", "AudioPreprocessing", "SequencePreprocessing", "PREPROCESSING_BY_TYPE",
]

# Strict, as the features' check_int / check_bool / check_number: no text, no bool for a number.
_Count = Annotated[int, Field(strict=True, ge=1)]
_Bool = Annotated[bool, Field(strict=True)]
_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Options(BaseModel):
    """Base of every preprocessing model: unknown options are errors, docstrings become descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class NumericPreprocessing(_Options):
    """A number column (``kiln.data.features.NumericFeature``)."""

    normalization: Literal["standard", "minmax"] | None = "standard"
    """standard: (x - mean) / std of the train split; minmax: to [0, 1]; null: the raw values."""
    fill_missing: Literal["mean", "median", "zero"] | _Number = "mean"
    """What replaces a missing value: a train-split statistic (mean, median), zero, or a number."""


class CategoryPreprocessing(_Options):
    """A column of classes (``kiln.data.features.CategoryFeature``)."""

    max_vocab: _Count | None = None
    """Input features: keep at most this many classes, the most frequent; null: all of them."""
    min_count: _Count = 1
    """Input features: drop classes seen fewer times in the train split."""
    encoding: Literal["index", "onehot"] = "index"
    """index: int64 class ids (for an Embedding or sparse cross-entropy); onehot: float32 one-hot rows."""


class BinaryPreprocessing(_Options):
    """A two-valued column (``kiln.data.features.BinaryFeature``)."""

    positive: str | bool | int | float | None = None
    """The value that means 1 (e.g. yes, true, 1, malignant); null: the second of the two sorted values."""


class TextPreprocessing(_Options):
    """A text column, tokenized with a vocabulary fitted on the train split (``kiln.data.features.TextFeature``)."""

    tokenizer: Literal["word", "char", "bpe"] = "word"
    """word: words and punctuation; char: characters; bpe: byte-pair subwords."""
    vocab_size: Annotated[int, Field(strict=True, ge=3)] = 10000
    """Largest vocabulary, <pad> and <unk> included (at least 3); for bpe the trainer's target size."""
    max_length: _Count = 64
    """Tokens per row after padding / truncation."""
    lowercase: _Bool = True
    """Lower-case the text first (word and char tokenizers)."""
    padding: Literal["post", "pre"] = "post"
    """Which end of a short text gets the <pad> tokens."""
    truncation: Literal["post", "pre"] = "post"
    """Which end of a long text is cut."""


class ImagePreprocessing(_Options):
    """An image column: file paths, encoded bytes or arrays (``kiln.data.features.ImageFeature``)."""

    height: _Count | None = None
    """Height every image is resized to, in pixels; null (with width null): the first training image's size."""
    width: _Count | None = None
    """Width every image is resized to, in pixels; null (with height null): the first training image's."""
    channels: Literal[1, 3] | None = None
    """1: grayscale, 3: RGB; null: as the first training image."""
    scale: Literal["unit", "none"] = "unit"
    """unit: pixel values brought to [0, 1]; none: kept as they are."""
    resize: Literal["bilinear", "nearest", "bicubic", "lanczos"] = "bilinear"
    """Pillow's resampling filter used to resize."""


class AudioPreprocessing(_Options):
    """An audio column (WAV files or arrays) as a log-mel spectrogram (``kiln.data.features.AudioFeature``)."""

    sample_rate: _Count = 16000
    """The rate every file must have, and that arrays are taken to have, in Hz."""
    duration: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] = 1.0
    """Seconds per clip: longer clips are cut, shorter ones zero-padded at the end."""
    n_fft: Annotated[int, Field(strict=True, ge=2)] = 400
    """STFT window, in samples (400 = 25 ms at 16 kHz)."""
    hop_length: _Count = 160
    """STFT hop, in samples (160 = 10 ms at 16 kHz)."""
    n_mels: _Count = 64
    """Mel bands of the spectrogram."""
    log: _Bool = True
    """Take log(mel + 1e-6) of the mel energies."""
    mel_scale: Literal["htk", "slaney"] = "htk"
    """The mel formula: htk or slaney."""


class SequencePreprocessing(_Options):
    """A column of number sequences, padded to one length (``kiln.data.features.SequenceFeature``)."""

    max_length: _Count | None = None
    """Values per row; null: the longest training sequence."""
    padding_value: _Number = 0.0
    """The value of padded positions."""
    normalization: Literal["standard"] | None = None
    """standard: (x - mean) / std over all training values; null: the raw values."""


PREPROCESSING_BY_TYPE: dict[str, type[_Options]] = {
    "numeric": NumericPreprocessing,
    "category": CategoryPreprocessing,
    "binary": BinaryPreprocessing,
    "text": TextPreprocessing,
    "image": ImagePreprocessing,
    "audio": AudioPreprocessing,
    "sequence": SequencePreprocessing,
}
