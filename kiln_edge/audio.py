"""Audio values as kiln's ``AudioFeature`` sees them, in NumPy: waveforms and log-mel spectrograms.

kiln (``kiln/data/features/audio.py``) reads a clip with soundfile, averages the channels, cuts
or zero-pads it to ``duration``, then in torch::

    torch.stft(waves, n_fft, hop_length, window=torch.hann_window(n_fft),   # periodic Hann
               center=True, pad_mode="reflect")                             # n_fft // 2 reflected each side
    power = re**2 + im**2 -> @ mel_filterbank(...) -> log(mel + 1e-6)

and standardises with the fitted scalar mean and std. The filterbank is not saved with the run
(it follows from the options); kiln builds it with ``mel_filterbank`` here, and reads its clips
with ``read_wave`` here, so both sides have the same matrix and waveforms, bit for bit. The window is built the way torch builds it (float32
``arange * 2pi/N``, cos, ``* -0.5 + 0.5``); torch's vectorised cos may still differ by one ulp
at a few points.

The FFT cannot be bit-identical: torch runs a float32 FFT (MKL or pocketfft), NumPy's rounding
differs. We run it in float64 on the float32 windowed frames, so the difference is torch's own
float32 rounding noise, about 1e-7 of a frame's spectrum norm. A band's log-mel then differs by
about ``eps32 * sqrt(frame peak / band)``: measured on real clips, <= 1.2e-5 within 40 dB of the
frame's loudest band, <= 7.7e-5 within 60 dB, and at most 3.2e-3 in bands 80-100 dB down, where
the noise is as large as the band itself (3.9e-4 after standardisation by kiln's fitted std).
soundfile is imported when a file is first read.
"""

from __future__ import annotations

import math
import os

import numpy as np

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.image import file_label
from kiln_edge.preprocessing.common import is_missing

__all__ = ["hz_to_mel", "mel_to_hz", "mel_filterbank", "hann_window", "read_wave", "spectrogram"]

_LOG_OFFSET = np.float32(1e-6)  # kiln's: torch adds the Python float 1e-6 to a float32 tensor in float32
_CHUNK = 128  # clips per FFT call: bounds the float64 complex spectrogram's memory


# ---- the mel filterbank (kiln.data.features.audio uses these; NumPy float64, then float32) ------------
def hz_to_mel(hz, scale: str = "htk"):
    """Frequency in Hz -> mel: "htk" ``2595 log10(1 + f / 700)`` or "slaney" (linear below 1 kHz)."""
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
                   scale: str = "htk") -> np.ndarray:
    """Triangular mel filters, float32 ``(n_fft // 2 + 1, n_mels)``; peaks are 1 (no area normalisation).

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
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def hann_window(n_fft: int) -> np.ndarray:
    """``torch.hann_window(n_fft)``: the periodic Hann window, float32 ``(n_fft,)``, computed as torch does."""
    angles = np.arange(n_fft, dtype=np.float32) * np.float32(2.0 * math.pi / n_fft)  # float32, like torch
    return np.cos(angles.astype(np.float64)).astype(np.float32) * np.float32(-0.5) + np.float32(0.5)


# ---- waveforms -----------------------------------------------------------------------------------------
def soundfile_module():
    """The ``soundfile`` module, or an EdgeError that says how to install it."""
    try:
        import soundfile
    except ImportError as err:
        raise EdgeError(f"Audio features need soundfile on the torch-free path: pip install soundfile ({err}).") \
            from err
    return soundfile


def read_wave(value, samples: int, sample_rate: int, row, where: str) -> np.ndarray:
    """One clip as float32 mono ``(samples,)``, cut or zero-padded at the end.

    Args:
        value: a path to an audio file soundfile reads (WAV), or a 1-D numeric array; integer
            arrays are PCM and scaled to [-1, 1) by their dtype's range, as kiln does.
        samples: the clip length (``round(duration * sample_rate)``).
        sample_rate: the rate a file must have (kiln never resamples).
        row, where: for errors.
    """
    if is_missing(value):
        raise EdgeDataError(f"{where}: row {row} has no audio (NaN/None). Drop the row or fill it.")
    if isinstance(value, (str, os.PathLike)):
        wave = _read_file(value, sample_rate, row, where)
    else:
        wave = np.asarray(value)
        if wave.ndim != 1 or not np.issubdtype(wave.dtype, np.number):
            raise EdgeDataError(f"{where}: row {row} holds a {wave.dtype} array of shape {wave.shape}; a "
                                f"waveform is a 1-D numeric array (or a WAV file path).")
        if np.issubdtype(wave.dtype, np.integer):  # PCM integers -> [-1, 1)
            wave = wave / float(np.iinfo(wave.dtype).max + 1)
        wave = wave.astype(np.float32)
    out = np.zeros(samples, dtype=np.float32)
    out[:min(len(wave), samples)] = wave[:samples]
    return out


def _read_file(path, sample_rate: int, row, where: str) -> np.ndarray:
    soundfile = soundfile_module()
    where = f"{where}, row {row} ({file_label(path)})"
    if not os.path.exists(path):
        raise EdgeDataError(f"{where}: the file does not exist. Fix the path (relative paths are read from "
                            f"{os.getcwd()!r}).")
    try:
        data, rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)  # (samples, channels)
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError for unreadable files
        raise EdgeDataError(f"{where}: cannot be read as audio ({err}). Replace or remove the file.") from err
    if rate != sample_rate:
        raise EdgeDataError(f"{where}: the file's sample rate is {rate} Hz, but the feature expects "
                            f"{sample_rate} Hz. Resample the file to {sample_rate} Hz, or set "
                            f"`sample_rate` to {rate} if every file has that rate.")
    return data.mean(axis=1)  # mono


# ---- spectrograms --------------------------------------------------------------------------------------
def _power(waves: np.ndarray, n_fft: int, hop_length: int, window: np.ndarray) -> np.ndarray:
    """``|torch.stft(center=True, pad_mode="reflect")|^2``: ``(rows, samples)`` -> ``(rows, frames, n_freqs)``."""
    half = n_fft // 2
    padded = np.pad(waves, ((0, 0), (half, half)), mode="reflect")               # (rows, samples + 2 * half)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop_length]  # (rows, frames, n_fft)
    windowed = frames * window                                                    # float32, as torch windows
    spectrum = np.fft.rfft(windowed.astype(np.float64), axis=-1)                  # (rows, frames, n_freqs)
    return (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)


def spectrogram(waves: np.ndarray, n_fft: int, hop_length: int, filterbank: np.ndarray, log: bool = True) -> np.ndarray:
    """Waveforms float32 ``(rows, samples)`` -> (log-)mel ``(rows, frames, n_mels)``, not standardised.

    Example::

        fb = mel_filterbank(16000, 400, 64)
        spectrogram(np.zeros((2, 16000), np.float32), 400, 160, fb).shape  # (2, 101, 64)
    """
    waves = np.asarray(waves, dtype=np.float32)
    window = hann_window(n_fft)
    frames = 1 + (waves.shape[1] + 2 * (n_fft // 2) - n_fft) // hop_length
    chunks = []
    for start in range(0, len(waves), _CHUNK):
        mel = _power(waves[start:start + _CHUNK], n_fft, hop_length, window) @ filterbank  # (chunk, frames, n_mels)
        chunks.append(np.log(mel + _LOG_OFFSET) if log else mel)
    if not chunks:
        return np.zeros((0, frames, filterbank.shape[1]), dtype=np.float32)
    return np.concatenate(chunks)
