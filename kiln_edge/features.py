"""kiln's fitted features read back from ``features.json``, for inference without torch.

Each class holds a feature's saved options and fitted state and runs ``kiln_edge.preprocessing``,
the very NumPy code kiln's feature classes run (kiln adds ``fit`` and ``torch.from_numpy``), so
``transform``/``decode`` give the same arrays and the same error messages. Only inference is
covered: no ``fit``. ``load_features(folder)`` reads ``features.json`` + ``features.safetensors``
through ``kiln_edge.preprocessing.features_file``.

How close each type comes to kiln:
    numeric, category, binary, text, sequence   the same code: bit-identical
    image   bit-identical: the same Pillow decoding, conversions and resizing (``kiln_edge.image``;
            needs ``pip install pillow``)
    audio   the same waveforms and mel filterbank, bit for bit; the log-mel agrees up to float32
            FFT rounding, because torch.stft's float32 FFT cannot be reproduced exactly in NumPy
            (``kiln_edge.audio`` says how close; needs ``pip install soundfile`` for files)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kiln_edge import audio, image
from kiln_edge.errors import EdgeError
from kiln_edge.preprocessing import binary, category, common, numeric, sequence
from kiln_edge.preprocessing.features_file import read_features
from kiln_edge.preprocessing.text import TextTokenizer

__all__ = ["EdgeFeature", "load_features", "FEATURE_TYPES"]


class EdgeFeature:
    """A fitted feature read back from ``features.json``: ``transform`` -> np.ndarray, ``decode``."""

    type = ""

    def __init__(self, record: dict, tensors: dict):
        self.name = record["name"]
        self.column = record.get("column") or self.name
        self.output = bool(record.get("output", False))
        self.options = dict(record.get("options") or {})
        self.fitted = record.get("fitted") is not None
        self._load(record.get("fitted") or {}, tensors)

    def _load(self, fitted: dict, tensors: dict) -> None:
        pass

    def _what(self) -> str:
        return f"{'output' if self.output else 'input'} {self.type} feature {self.name!r}"

    def _where(self) -> str:
        return f"Column {self.column!r} ({self._what()})"

    def _select(self, data) -> pd.Series:
        return common.select(data, self.column, self._what())

    def transform(self, column) -> np.ndarray:
        if not self.fitted:
            raise EdgeError(f"{self._what()} was saved unfitted; train the run first.")
        return self._transform(self._select(column))

    def _transform(self, series: pd.Series) -> np.ndarray:
        raise NotImplementedError

    def transform_values(self, values: np.ndarray) -> np.ndarray:
        """``transform`` of one column given as a 1-D array (the server's records, no pandas Series):
        the same output and errors. Types with an array path (numeric and category inputs) override
        ``_transform_values``; the others build the Series here."""
        if not self.fitted:
            raise EdgeError(f"{self._what()} was saved unfitted; train the run first.")
        return self._transform_values(values)

    def _transform_values(self, values: np.ndarray) -> np.ndarray:
        return self._transform(pd.Series(values, name=self.column))

    def spec(self) -> dict:
        raise NotImplementedError

    def decode(self, outputs):
        raise EdgeError(f"{self._what()} cannot decode model outputs.")


class NumericFeature(EdgeFeature):
    type = "numeric"

    def _load(self, fitted, tensors):
        self.fill_value = float(fitted.get("fill_value", 0.0))
        self.mean, self.std = float(fitted.get("mean", 0.0)), float(fitted.get("std", 1.0))
        self.min, self.max = float(fitted.get("min", 0.0)), float(fitted.get("max", 1.0))
        self.shift, self.divisor = numeric.scale(self.options.get("normalization", "standard"), self.mean,
                                                 self.std, self.min, self.max)

    def _transform(self, series):
        return numeric.transform(series, self._where(), output=self.output, fill_value=self.fill_value,
                                 shift=self.shift, divisor=self.divisor)

    def _transform_values(self, values):
        if self.output or values.dtype.kind != "f":  # targets are checked, text is parsed: the Series path
            return super()._transform_values(values)
        return numeric.transform_values(values, self._where(), fill_value=self.fill_value, shift=self.shift,
                                        divisor=self.divisor)

    def scaling(self) -> tuple[float, float, float]:
        """``(fill_value, shift, divisor)``: what ``numeric.transform_values`` applies."""
        return self.fill_value, self.shift, self.divisor

    def decode(self, outputs):
        return numeric.decode(outputs, self.shift, self.divisor, self._what())

    def spec(self):
        return {"shape": (1,), "dtype": "float32"}


class CategoryFeature(EdgeFeature):
    type = "category"

    def _load(self, fitted, tensors):
        self.classes = list(fitted.get("classes", []))
        self.encoding = self.options.get("encoding", "index")
        self._lookup = category.lookup(self.classes, self.output)

    def _transform(self, series):
        return category.transform(series, self._where(), self.classes, self._lookup, self.output, self.encoding)

    def _transform_values(self, values):
        if self.output or values.dtype != object:  # targets are checked: the Series path
            return super()._transform_values(values)
        return category.transform_values(values, self.classes, self._lookup, self.encoding)

    def decode(self, outputs):
        return category.decode(outputs, self.classes, self._what())

    def spec(self):
        onehot = self.encoding == "onehot"
        return {"shape": (len(self.classes),) if onehot else (), "dtype": "float32" if onehot else "int64",
                "vocab_size": len(self.classes), "classes": list(self.classes)}


class BinaryFeature(EdgeFeature):
    type = "binary"

    def _load(self, fitted, tensors):
        self.classes = list(fitted.get("classes", []))

    def _transform(self, series):
        return binary.transform(series, self._where(), self.classes, self.output)

    def decode(self, outputs):
        return binary.decode(outputs, self.classes, self._what())

    def spec(self):
        return {"shape": (1,), "dtype": "float32", "classes": list(self.classes)}


class TextFeature(EdgeFeature):
    type = "text"

    def _load(self, fitted, tensors):
        self.tokenizer = self.options.get("tokenizer", "word")
        self.max_length = int(self.options.get("max_length", 64))
        self.lowercase = bool(self.options.get("lowercase", True))
        self.padding = self.options.get("padding", "post")
        self.truncation = self.options.get("truncation", "post")
        self._tokenizer = TextTokenizer.from_state(self.tokenizer, self.lowercase, fitted, self._what()) \
            if fitted else None
        self.vocabulary = self._tokenizer.tokens if fitted else []

    def encode(self, texts) -> list[list[int]]:
        return self._tokenizer.encode(texts)

    def _transform(self, series):
        return self._tokenizer.transform(series.tolist(), self.max_length, self.padding, self.truncation)

    def decode(self, outputs):
        return self._tokenizer.decode(outputs, self._what())

    def spec(self):
        return {"shape": (self.max_length,), "dtype": "int64", "vocab_size": len(self.vocabulary),
                "max_length": self.max_length}


class SequenceFeature(EdgeFeature):
    type = "sequence"

    def _load(self, fitted, tensors):
        self.padding_value = float(self.options.get("padding_value", 0.0))
        self.length = int(fitted.get("length") or self.options.get("max_length") or 1)
        self.mean, self.std = float(fitted.get("mean", 0.0)), float(fitted.get("std", 1.0))

    def _transform(self, series):
        return sequence.transform(series, self._where(), self.length, self.padding_value, self.mean, self.std)

    def decode(self, outputs):
        return sequence.decode(outputs, self.length, self.mean, self.std, self._what())

    def spec(self):
        return {"shape": (self.length,), "dtype": "float32", "max_length": self.length}


class ImageFeature(EdgeFeature):
    """kiln's ImageFeature: paths or arrays -> float32 ``(rows, height, width, channels)``, decoded by
    ``kiln_edge.image`` with Pillow exactly as kiln decodes them (bit-identical)."""

    type = "image"

    def _load(self, fitted, tensors):
        self.height, self.width = self.options.get("height"), self.options.get("width")
        self.resize = self.options.get("resize", "bilinear")
        self.shape = tuple(int(s) for s in fitted["shape"]) if fitted else None  # fitted (H, W, C)
        self.divisor = float(fitted.get("divisor", 1.0))

    def _transform(self, series):
        values, rows = series.tolist(), list(series.index)
        out = np.empty((len(values), *self.shape), dtype=np.float32)  # (rows, H, W, C)
        for i, (value, row) in enumerate(zip(values, rows)):
            array = image.read_image(value, row, self._where())
            out[i] = image.conform(array, self.shape, self.divisor, self.resize, self.height is not None, row,
                                   value, self._where())
        return out

    def spec(self):
        height, width, channels = self.shape
        return {"shape": self.shape, "dtype": "float32", "channels": channels, "height": height, "width": width}


class AudioFeature(EdgeFeature):
    """kiln's AudioFeature: WAV paths or waveforms -> standardised log-mel float32 ``(rows, frames, n_mels, 1)``.

    The same as kiln up to float32 FFT rounding (see ``kiln_edge.audio`` for how close, and why).
    """

    type = "audio"

    def _load(self, fitted, tensors):
        self.sample_rate = int(self.options.get("sample_rate", 16000))
        self.duration = float(self.options.get("duration", 1.0))
        self.n_fft = int(self.options.get("n_fft", 400))
        self.hop_length = int(self.options.get("hop_length", 160))
        self.n_mels = int(self.options.get("n_mels", 64))
        self.log = bool(self.options.get("log", True))
        self.mel_scale = self.options.get("mel_scale", "htk")
        self.samples = int(round(self.duration * self.sample_rate))
        self.frames = 1 + (self.samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length  # as torch.stft
        self.filterbank = audio.mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, scale=self.mel_scale)
        self.mean, self.std = float(fitted.get("mean", 0.0)), float(fitted.get("std", 1.0))

    def waveforms(self, column) -> np.ndarray:
        """The column's clips as float32 ``(rows, samples)``, mono, cut/padded to ``duration``."""
        series = self._select(column)
        out = np.empty((len(series), self.samples), dtype=np.float32)
        for i, (value, row) in enumerate(zip(series.tolist(), series.index)):
            out[i] = audio.read_wave(value, self.samples, self.sample_rate, row, self._where())
        return out

    def spectrogram(self, waves) -> np.ndarray:
        """Waveforms ``(rows, samples)`` -> (log-)mel ``(rows, frames, n_mels)``, not standardised."""
        if len(waves) == 0:
            return np.zeros((0, self.frames, self.n_mels), dtype=np.float32)
        return audio.spectrogram(waves, self.n_fft, self.hop_length, self.filterbank, self.log)

    def _transform(self, series):
        mel = self.spectrogram(self.waveforms(series))
        # float32 arithmetic with the scalars cast to float32, as torch does for `tensor - python_float`
        return ((mel - np.float32(self.mean)) / np.float32(self.std))[..., None]  # (rows, frames, n_mels, 1)

    def spec(self):
        return {"shape": (self.frames, self.n_mels, 1), "dtype": "float32", "channels": 1,
                "frames": self.frames, "n_mels": self.n_mels, "sample_rate": self.sample_rate}


# In kiln's order (kiln.data.features.FEATURE_TYPES), so that errors listing them read the same.
FEATURE_TYPES = {cls.type: cls for cls in (NumericFeature, CategoryFeature, BinaryFeature, TextFeature,
                                           ImageFeature, AudioFeature, SequenceFeature)}


def load_features(folder) -> dict[str, EdgeFeature]:
    """``{name: feature}`` from ``folder/features.json`` + ``folder/features.safetensors`` (kiln's format)."""
    return {record["name"]: FEATURE_TYPES[record["type"]](record, tensors)
            for record, tensors in read_features(folder, FEATURE_TYPES)}
