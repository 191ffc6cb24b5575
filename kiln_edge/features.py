"""NumPy re-implementations of kiln's fitted feature ``transform``/``decode``, read from the same files.

Each class mirrors ``kiln.data.features.<type>`` (same dtypes, same arithmetic order) but returns
NumPy arrays. Only inference is covered: no ``fit``. ``load_features(folder)`` reads
``features.json`` + ``features.safetensors`` (hash checked, tensors via ``safetensors.numpy``).

How close each type comes to kiln:
    numeric, category, binary, text, sequence   bit-identical
    image   bit-identical: the same Pillow decoding, conversions and resizing (``kiln_edge.image``;
            needs ``pip install pillow``)
    audio   the same waveforms and mel filterbank, bit for bit; the log-mel agrees up to float32
            FFT rounding, because torch.stft's float32 FFT cannot be reproduced exactly in NumPy
            (``kiln_edge.audio`` says how close; needs ``pip install soundfile`` for files)
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kiln_edge import audio, image
from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.image import is_missing

__all__ = ["EdgeFeature", "load_features", "FEATURE_TYPES"]

_FORMAT, _FORMAT_VERSION = "kiln.features", 1
_WORD = re.compile(r"\w+|[^\w\s]")


# ---- array helpers kiln's features use too (kiln may import kiln_edge; never the other way) ----------
def row_list(index, limit: int = 5) -> str:
    """'rows 3, 8, 9' (the index labels), shortened to ``limit`` with the total count."""
    rows = list(index)
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {', '.join(str(r) for r in rows[:limit])}{more}"


def numeric_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """A column as float64 ``(rows,)`` with NaN where a value is missing, and the mask of non-numbers.

    Blank strings are missing values (a hand-edited CSV cell), not text. The mask is None for a
    numeric dtype (nothing to check); the caller raises its own error for a True in it.
    """
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiub":  # plain NumPy numbers: skip
        return np.asarray(series.to_numpy(), dtype=np.float64), None          # pandas' astype (~50 us/column)
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy(), None
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(values) & ~series.isna().to_numpy()
    for i in np.flatnonzero(bad):
        value = series.iloc[i]
        bad[i] = not (isinstance(value, str) and not value.strip())
    return values, bad


def pad_ids(rows: list, max_length: int, padding: str, truncation: str) -> np.ndarray:
    """Token id lists -> int64 ``(rows, max_length)``, cut and 0-padded ("post" or "pre" each)."""
    out = np.zeros((len(rows), max_length), dtype=np.int64)  # 0 = <pad>
    for r, ids in enumerate(rows):
        ids = ids[:max_length] if truncation == "post" else ids[-max_length:]
        if ids:
            if padding == "post":
                out[r, :len(ids)] = ids
            else:
                out[r, max_length - len(ids):] = ids
    return out


def pad_sequences(sequences: list, length: int, padding_value: float, mean: float, std: float) -> np.ndarray:
    """float64 sequences (each at most ``length`` long) -> float32 ``(rows, length)``: ``(x - mean) / std``,
    then ``padding_value`` after each sequence's end."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    out = np.full((len(sequences), length), padding_value, dtype=np.float32)  # (rows, length)
    mask = np.arange(length)[None, :] < lengths[:, None]                      # real positions
    if sequences:
        out[mask] = (np.concatenate(sequences) - mean) / std  # row-major mask order = concatenation order
    return out


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
        if isinstance(data, pd.DataFrame):
            if self.column not in data.columns:
                raise EdgeDataError(f"The data has no column {self.column!r} for {self._what()}. Columns: "
                                    f"{', '.join(str(c) for c in data.columns)}.")
            return data[self.column]
        if isinstance(data, pd.Series):
            return data
        if isinstance(data, np.ndarray):
            return pd.Series(list(data) if data.ndim > 1 else data, name=self.column)
        return pd.Series(list(data), name=self.column)

    def transform(self, column) -> np.ndarray:
        if not self.fitted:
            raise EdgeError(f"{self._what()} was saved unfitted; train the run first.")
        return self._transform(self._select(column))

    def _transform(self, series: pd.Series) -> np.ndarray:
        raise NotImplementedError

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

    def _scale(self):
        normalization = self.options.get("normalization", "standard")
        if normalization == "standard":
            return self.mean, self.std if self.std > 0 else 1.0
        if normalization == "minmax":
            spread = self.max - self.min
            return self.min, spread if spread > 0 else 1.0
        return 0.0, 1.0

    def _numbers(self, series):
        values, bad = numeric_values(series)
        if bad is not None and bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise EdgeDataError(f"{self._where()}: row {series.index[first]} holds {series.iloc[first]!r}, "
                                f"which is not a number ({row_list(series.index[bad])}).")
        if np.isinf(values).any():
            raise EdgeDataError(f"{self._where()}: infinite values in {row_list(series.index[np.isinf(values)])}.")
        return values

    def _transform(self, series):
        values = self._numbers(series)
        if self.output and np.isnan(values).any():
            raise EdgeDataError(f"{self._where()}: no target value in {row_list(series.index[np.isnan(values)])}.")
        values = np.where(np.isnan(values), self.fill_value, values)
        shift, divisor = self._scale()
        return ((values - shift) / divisor).astype(np.float32).reshape(-1, 1)

    def decode(self, outputs):
        values = np.asarray(outputs, dtype=np.float64)
        if values.ndim > 1:
            values = values.reshape(len(values), -1)[:, 0]
        shift, divisor = self._scale()
        return values * divisor + shift

    def spec(self):
        return {"shape": (1,), "dtype": "float32"}


class CategoryFeature(EdgeFeature):
    type = "category"

    def _load(self, fitted, tensors):
        self.classes = list(fitted.get("classes", []))
        known = self.classes if self.output else self.classes[1:]
        self._lookup = pd.Index(known, dtype=object)

    def _transform(self, series):
        codes = self._lookup.get_indexer(series.to_numpy(dtype=object))
        if not self.output:
            codes = codes + 1
        elif (codes < 0).any():
            first = int(np.flatnonzero(codes < 0)[0])
            raise EdgeDataError(f"{self._where()}: row {series.index[first]} holds {series.iloc[first]!r}, a class "
                                f"the training split does not have.")
        codes = codes.astype(np.int64)
        if self.options.get("encoding", "index") == "onehot":
            return np.eye(len(self.classes), dtype=np.float32)[codes]
        return codes

    def decode(self, outputs):
        values = np.asarray(outputs)
        indices = values.argmax(axis=1) if values.ndim == 2 else values
        return [self.classes[i] for i in indices.tolist()]

    def spec(self):
        onehot = self.options.get("encoding", "index") == "onehot"
        return {"shape": (len(self.classes),) if onehot else (), "dtype": "float32" if onehot else "int64",
                "vocab_size": len(self.classes), "classes": list(self.classes)}


class BinaryFeature(EdgeFeature):
    type = "binary"

    def _load(self, fitted, tensors):
        self.classes = list(fitted.get("classes", []))

    def _transform(self, series):
        negative, positive = self.classes
        is_positive = series.isin([positive]).to_numpy()
        is_negative = series.isin([negative]).to_numpy()
        missing = series.isna().to_numpy()
        if self.output and missing.any():
            raise EdgeDataError(f"{self._where()}: no label (NaN/None) in {row_list(series.index[missing])}.")
        odd = ~(is_positive | is_negative | missing)
        if odd.any():
            first = int(np.flatnonzero(odd)[0])
            raise EdgeDataError(f"{self._where()}: row {series.index[first]} holds {series.iloc[first]!r}, which is "
                                f"neither {negative!r} nor {positive!r}.")
        return is_positive.astype(np.float32).reshape(-1, 1)

    def decode(self, outputs):
        values = np.asarray(outputs, dtype=np.float64).reshape(-1)
        negative, positive = self.classes
        return [positive if p >= 0.5 else negative for p in values.tolist()]

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
        self._bpe = None
        if not fitted:
            self.vocabulary = []
        elif self.tokenizer == "bpe":
            try:
                from tokenizers import Tokenizer
            except ImportError as err:
                raise EdgeError(f"{self._what()} uses BPE: pip install tokenizers ({err}).") from err
            self._bpe = Tokenizer.from_str(fitted["bpe"])
            self.vocabulary = [self._bpe.id_to_token(i) for i in range(self._bpe.get_vocab_size())]
        else:
            self.vocabulary = list(fitted["vocabulary"])
        self._ids = {token: i for i, token in enumerate(self.vocabulary)}

    def encode(self, texts) -> list[list[int]]:
        texts = ["" if is_missing(v) else str(v) for v in list(texts)]
        if self.lowercase and self.tokenizer != "bpe":
            texts = [t.lower() for t in texts]
        if self.tokenizer == "bpe":
            return [encoding.ids for encoding in self._bpe.encode_batch(texts)]
        ids = self._ids
        split = _WORD.findall if self.tokenizer == "word" else list
        return [[ids.get(token, 1) for token in split(text)] for text in texts]

    def _transform(self, series):
        return pad_ids(self.encode(series.tolist()), self.max_length, self.padding, self.truncation)

    def decode(self, outputs):
        values = np.asarray(outputs)
        if values.ndim == 3:
            values = values.argmax(axis=2)
        if self.tokenizer == "bpe":
            return [self._bpe.decode([i for i in row.tolist() if i != 0], skip_special_tokens=False)
                    for row in values]
        joiner = "" if self.tokenizer == "char" else " "
        return [joiner.join(self.vocabulary[i] for i in row.tolist() if i != 0) for row in values]

    def spec(self):
        return {"shape": (self.max_length,), "dtype": "int64", "vocab_size": len(self.vocabulary),
                "max_length": self.max_length}


class SequenceFeature(EdgeFeature):
    type = "sequence"

    def _load(self, fitted, tensors):
        self.padding_value = float(self.options.get("padding_value", 0.0))
        self.length = int(fitted.get("length") or self.options.get("max_length") or 1)
        self.mean, self.std = float(fitted.get("mean", 0.0)), float(fitted.get("std", 1.0))

    def _parse(self, value, row):
        if isinstance(value, str):
            parts = value.strip().strip("[]").replace(",", " ").split()
            try:
                numbers = np.array(parts, dtype=np.float64)
            except ValueError:
                raise EdgeDataError(f"{self._where()}: row {row} holds {value!r}, which is not numbers separated "
                                    f"by spaces or commas.") from None
        elif is_missing(value):
            numbers = np.zeros(0)
        else:
            try:
                numbers = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise EdgeDataError(f"{self._where()}: row {row} holds {value!r}, which is not a sequence of "
                                    f"numbers.") from None
        if not np.isfinite(numbers).all():
            raise EdgeDataError(f"{self._where()}: row {row} holds NaN or infinite values ({value!r}).")
        return numbers

    def _transform(self, series):
        sequences = [self._parse(v, row)[:self.length] for v, row in zip(series.tolist(), series.index)]
        return pad_sequences(sequences, self.length, self.padding_value, self.mean, self.std)

    def decode(self, outputs):
        return np.asarray(outputs, dtype=np.float64) * self.std + self.mean

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


FEATURE_TYPES = {cls.type: cls for cls in (NumericFeature, CategoryFeature, BinaryFeature, TextFeature,
                                           SequenceFeature, ImageFeature, AudioFeature)}


def load_features(folder) -> dict[str, EdgeFeature]:
    """``{name: feature}`` from ``folder/features.json`` + ``folder/features.safetensors`` (kiln's format)."""
    folder = Path(folder)
    json_file, tensor_file = folder / "features.json", folder / "features.safetensors"
    for path in (json_file, tensor_file):
        if not path.exists():
            raise EdgeError(f"No {path.name} in {folder}: pass a run folder written by `kiln train`.")
    try:
        document = json.loads(json_file.read_text())
    except ValueError as err:
        raise EdgeError(f"{json_file} is not valid JSON ({err}).") from err
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise EdgeError(f"{json_file} is not a kiln features file (no \"format\": \"{_FORMAT}\").")
    if document.get("format_version", 0) > _FORMAT_VERSION:
        raise EdgeError(f"{json_file} has format_version {document['format_version']}; kiln_edge reads up to "
                        f"{_FORMAT_VERSION}. Upgrade kiln.")
    blob = tensor_file.read_bytes()
    if hashlib.sha256(blob).hexdigest() != document.get("safetensors_sha256"):
        raise EdgeError(f"{tensor_file} does not match {json_file} (its SHA-256 differs).")
    from safetensors.numpy import load
    tensors = load(blob)
    loaded = {}
    for record in document["features"]:
        cls = FEATURE_TYPES.get(record.get("type"))
        if cls is None:
            raise EdgeError(f"{json_file}: feature {record.get('name')!r} has unknown type {record.get('type')!r}; "
                            f"known: {', '.join(FEATURE_TYPES)}.")
        own = {key: tensors[f"{record['name']}/{key}"] for key in record.get("tensors", [])}
        loaded[record["name"]] = cls(record, own)
    return loaded
