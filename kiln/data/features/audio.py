"""AudioFeature: WAV files or waveforms as standardised log-mel spectrograms (rows, frames, n_mels, 1).

Per clip: read (``soundfile``; a file at another sample rate is a ``DataError`` — kiln does not
resample), average the channels to mono, cut or zero-pad to ``duration`` seconds, then in torch:
``torch.stft`` (Hann window of ``n_fft``, centred frames every ``hop_length`` samples) ->
power ``|X|^2`` -> mel filterbank -> ``log(x + 1e-6)``. Last, the whole batch is standardised
with the mean and standard deviation of every value of the training split's spectrograms (one
scalar each, so the relative energy of the mel bands is kept).

``frames = 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop_length`` (centred STFT; ``1 + samples //
hop_length`` for an even ``n_fft``): 1 s at 16 kHz with hop 160 is 101 frames.

The mel filterbank (``mel_filterbank``) is the triangle construction of HTK, torchaudio and
librosa: ``n_mels + 2`` points equally spaced on the mel scale between ``f_min`` and ``f_max``;
filter ``m`` rises linearly from point ``m`` to 1 at point ``m + 1`` and falls to 0 at point
``m + 2``, evaluated at the STFT bin frequencies ``k * sample_rate / n_fft``. Mel scales: "htk"
(``2595 log10(1 + f / 700)``, torchaudio's default) or "slaney" (linear below 1 kHz, logarithmic
above, librosa's default scale); no area normalisation (peaks are 1).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import (Feature, check_bool, check_choice, check_int, check_number, file_label,
                                     is_missing, progress)
from kiln.errors import DataError, KilnValueError

__all__ = ["AudioFeature", "mel_filterbank", "hz_to_mel", "mel_to_hz"]

_MEL_SCALES = ("htk", "slaney")
_LOG_OFFSET = 1e-6
_CHUNK = 256  # clips per STFT call: bounds the complex spectrogram's memory


def hz_to_mel(hz, scale: str = "htk"):
    """Frequency in Hz -> mel (numpy arrays or floats)."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0  # Slaney's Auditory Toolbox
    linear = hz / f_sp
    log = min_log_hz / f_sp + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, linear)


def mel_to_hz(mel, scale: str = "htk"):
    """Inverse of ``hz_to_mel``."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
                   scale: str = "htk") -> torch.Tensor:
    """Triangular mel filters as a float32 matrix ``(n_fft // 2 + 1, n_mels)``: power spectrum @ it = mel.

    Example::

        fb = mel_filterbank(16000, 400, 64)  # (201, 64); fb[:, m].max() is 1 for every m
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft                        # (n_freqs,) Hz
    points = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2), scale)
    widths = np.diff(points)                                                      # (n_mels + 1,)
    offsets = points[None, :] - bins[:, None]                                     # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]                                       # (n_freqs, n_mels)
    falling = offsets[:, 2:] / widths[1:]
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling))).float()


class AudioFeature(Feature):
    """Audio clips as standardised log-mel spectrograms, float32 ``(rows, frames, n_mels, 1)``.

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: must stay False: audio cannot be an output (no ``decode``).
        sample_rate: the rate every file must have, and that arrays are taken to have (default 16000).
        duration: seconds per clip; longer clips are cut, shorter zero-padded at the end (default 1.0).
        n_fft: STFT window and FFT size in samples (default 400: 25 ms at 16 kHz).
        hop_length: samples between frames (default 160: 10 ms at 16 kHz).
        n_mels: mel bands (default 64).
        log: take ``log(mel + 1e-6)`` (default True).
        mel_scale: "htk" (default) or "slaney".

    Example::

        f = AudioFeature("audio").fit(train["audio"])
        f.transform(valid["audio"]).shape  # (rows, 101, 64, 1)
    """

    type = "audio"
    can_be_output = False

    def __init__(self, name: str, column: str | None = None, *, output: bool = False, sample_rate: int = 16000,
                 duration: float = 1.0, n_fft: int = 400, hop_length: int = 160, n_mels: int = 64,
                 log: bool = True, mel_scale: str = "htk"):
        super().__init__(name, column, output=output)
        self.sample_rate = check_int("sample_rate", sample_rate)
        self.duration = check_number("duration", duration, positive=True)
        self.n_fft = check_int("n_fft", n_fft, minimum=2)
        self.hop_length = check_int("hop_length", hop_length)
        self.n_mels = check_int("n_mels", n_mels)
        self.log = check_bool("log", log)
        self.mel_scale = check_choice("mel_scale", mel_scale, _MEL_SCALES)
        self.samples = int(round(self.duration * self.sample_rate))
        if self.samples < self.n_fft:
            raise KilnValueError(f"`duration`={duration!r} s is {self.samples} samples at {self.sample_rate} Hz, "
                                 f"shorter than one STFT window (`n_fft`={n_fft}). Raise `duration` or lower `n_fft`.")
        self.filterbank = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, scale=self.mel_scale)
        empty = (self.filterbank.max(dim=0).values == 0).nonzero().flatten().tolist()
        if empty:
            raise KilnValueError(f"`n_mels`={n_mels} is too many for `n_fft`={n_fft}: mel bands {empty[:5]} fall "
                                 f"between two FFT bins and would always be zero. Lower `n_mels` or raise `n_fft`.")
        # torch.stft(center=True) pads n_fft // 2 on each side: for an odd n_fft that is one sample
        # less than n_fft in all, so the frame count is not simply 1 + samples // hop.
        self.frames = 1 + (self.samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length
        self.mean, self.std = 0.0, 1.0

    def get_config(self) -> dict:
        return {"sample_rate": self.sample_rate, "duration": self.duration, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "n_mels": self.n_mels, "log": self.log, "mel_scale": self.mel_scale}

    # ---- waveforms -----------------------------------------------------------------------------------
    def _read(self, value, row) -> np.ndarray:
        """One clip as float32 mono ``(samples,)``, cut or padded to ``duration``."""
        if is_missing(value):
            raise DataError(f"{self._where()}: row {row} has no audio (NaN/None). Drop the row or fill it.")
        if isinstance(value, (str, os.PathLike)):
            wave = self._read_file(value, row)
        else:
            wave = np.asarray(value)
            if wave.ndim != 1 or not np.issubdtype(wave.dtype, np.number):
                raise DataError(f"{self._where()}: row {row} holds a {wave.dtype} array of shape {wave.shape}; a "
                                f"waveform is a 1-D numeric array (or a WAV file path).")
            if np.issubdtype(wave.dtype, np.integer):  # PCM integers -> [-1, 1)
                wave = wave / float(np.iinfo(wave.dtype).max + 1)
            wave = wave.astype(np.float32)
        out = np.zeros(self.samples, dtype=np.float32)
        out[:min(len(wave), self.samples)] = wave[:self.samples]
        return out

    def _read_file(self, path, row) -> np.ndarray:
        import soundfile
        where = f"{self._where()}, row {row} ({file_label(path)})"
        if not os.path.exists(path):
            raise DataError(f"{where}: the file does not exist. Fix the path (relative paths are read from "
                            f"{os.getcwd()!r}).")
        try:
            data, rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)  # (samples, channels)
        except Exception as err:  # soundfile raises LibsndfileError/RuntimeError for unreadable files
            raise DataError(f"{where}: cannot be read as audio ({err}). Replace or remove the file.") from err
        if rate != self.sample_rate:
            raise DataError(f"{where}: the file's sample rate is {rate} Hz, but the feature expects "
                            f"{self.sample_rate} Hz. Resample the file to {self.sample_rate} Hz, or set "
                            f"`sample_rate` to {rate} if every file has that rate.")
        return data.mean(axis=1)  # mono

    def waveforms(self, column) -> torch.Tensor:
        """The column's clips as float32 ``(rows, samples)``, mono, cut/padded to ``duration``."""
        series = self._select(column)
        values, rows = series.tolist(), list(series.index)
        out = np.empty((len(values), self.samples), dtype=np.float32)
        for i in progress(range(len(values)), len(values), f"{self.name}: reading audio"):
            out[i] = self._read(values[i], rows[i])
        return torch.from_numpy(out)

    def spectrogram(self, waves: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(rows, samples)`` -> (log-)mel spectrograms ``(rows, frames, n_mels)``, not standardised."""
        window = torch.hann_window(self.n_fft)
        chunks = []
        for start in range(0, len(waves), _CHUNK):
            stft = torch.stft(waves[start:start + _CHUNK], self.n_fft, hop_length=self.hop_length, window=window,
                              center=True, pad_mode="reflect", return_complex=True)  # (chunk, n_freqs, frames)
            power = stft.real ** 2 + stft.imag ** 2
            mel = power.transpose(1, 2) @ self.filterbank                      # (chunk, frames, n_mels)
            chunks.append(torch.log(mel + _LOG_OFFSET) if self.log else mel)
        if not chunks:
            return torch.zeros(0, self.frames, self.n_mels)
        return torch.cat(chunks)

    # ---- the protocol -----------------------------------------------------------------------------------
    def _fit(self, series: pd.Series) -> None:
        self._fit_transform(series)

    def _fit_transform(self, series: pd.Series) -> torch.Tensor:
        mel = self.spectrogram(self.waveforms(series))
        self.mean = float(mel.mean(dtype=torch.float64))
        std = math.sqrt(float(((mel - self.mean) ** 2).sum(dtype=torch.float64)) / max(mel.numel(), 1))
        self.std = std if std > 0 else 1.0
        self.fitted = True
        return self._standardise(mel)

    def _standardise(self, mel: torch.Tensor) -> torch.Tensor:
        return ((mel - self.mean) / self.std).unsqueeze(-1)  # (rows, frames, n_mels, 1)

    def _transform(self, series: pd.Series) -> torch.Tensor:
        return self._standardise(self.spectrogram(self.waveforms(series)))

    def _spec(self) -> dict:
        return {"shape": (self.frames, self.n_mels, 1), "dtype": "float32", "channels": 1,
                "frames": self.frames, "n_mels": self.n_mels, "sample_rate": self.sample_rate}

    def _fitted_state(self):
        return {"mean": self.mean, "std": self.std}, {}

    def _load_fitted(self, fitted, tensors):
        self.mean, self.std = float(fitted["mean"]), float(fitted["std"])
