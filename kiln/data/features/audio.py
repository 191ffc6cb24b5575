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

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_bool, check_choice, check_int, check_number, progress
from kiln.errors import DataError, KilnValueError
from kiln_edge import audio as edge_audio
from kiln_edge.audio import hz_to_mel, mel_to_hz  # noqa: F401  (re-exported: kiln's public names)
from kiln_edge.errors import EdgeDataError

__all__ = ["AudioFeature", "mel_filterbank", "hz_to_mel", "mel_to_hz"]

_MEL_SCALES = ("htk", "slaney")
_LOG_OFFSET = 1e-6
_CHUNK = 256  # clips per STFT call: bounds the complex spectrogram's memory


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
                   scale: str = "htk") -> torch.Tensor:
    """Triangular mel filters as a float32 matrix ``(n_fft // 2 + 1, n_mels)``: power spectrum @ it = mel.

    kiln_edge's NumPy construction as a tensor, so the torch-free path has the same filters, bit for bit.

    Example::

        fb = mel_filterbank(16000, 400, 64)  # (201, 64); fb[:, m].max() is 1 for every m
    """
    return torch.from_numpy(edge_audio.mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, scale))


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
        """One clip as float32 mono ``(samples,)``, cut or padded to ``duration`` (kiln_edge reads it)."""
        try:
            return edge_audio.read_wave(value, self.samples, self.sample_rate, row, self._where())
        except EdgeDataError as err:
            raise DataError(str(err)) from err.__cause__

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
        self._fit_statistics(self.spectrogram(self.waveforms(series)))

    def _fit_transform(self, series: pd.Series) -> torch.Tensor:
        mel = self.spectrogram(self.waveforms(series))  # decoded once, for both fit and transform
        self._fit_statistics(mel)
        self.fitted = True
        return self._standardise(mel)

    def _fit_statistics(self, mel: torch.Tensor) -> None:
        """The scalar mean and population std of every training log-mel value (float64 sums)."""
        self.mean = float(mel.mean(dtype=torch.float64))
        std = math.sqrt(float(((mel - self.mean) ** 2).sum(dtype=torch.float64)) / max(mel.numel(), 1))
        self.std = std if std > 0 else 1.0

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
