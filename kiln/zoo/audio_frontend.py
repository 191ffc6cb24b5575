"""LogMel: waveforms (B, T) -> log-mel spectrograms (B, frames, n_mels), inside the model.

The same computation as ``kiln.data.features.audio.AudioFeature.spectrogram`` (centred
``torch.stft`` with a Hann window -> power -> the same ``mel_filterbank`` -> ``log(x + 1e-6)``),
as an ``nn.Module`` so a zoo model can take raw audio and run its front end on the GPU.
``frames = 1 + T // hop_length``. No torchaudio.

Example::

    front = LogMel(sample_rate=16000, n_mels=64)
    front(torch.randn(2, 16000)).shape  # (2, 101, 64)
"""

from __future__ import annotations

import torch
from torch import nn

from kiln.errors import KilnValueError, ShapeError
from kiln_edge.audio import mel_filterbank  # the NumPy filters kiln.data's AudioFeature uses too

__all__ = ["LogMel"]

_LOG_OFFSET = 1e-6  # as AudioFeature: log(0) never happens on silent frames


class LogMel(nn.Module):
    """Log-mel spectrogram front end.

    Args:
        sample_rate: samples per second of the input (default 16000).
        n_fft: STFT window and FFT size (default 400: 25 ms at 16 kHz).
        hop_length: samples between frames (default 160: 10 ms at 16 kHz).
        n_mels: mel bands (default 64).
        normalize: standardise each clip to mean 0, std 1 over all its values (default True);
            keeps the network's input scale independent of loudness, which a model with no
            fitted preprocessing needs.

    Shapes: (B, T) float -> (B, 1 + T // hop_length, n_mels).
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 400, hop_length: int = 160, n_mels: int = 64,
                 normalize: bool = True):
        super().__init__()
        for arg, value in (("sample_rate", sample_rate), ("n_fft", n_fft), ("hop_length", hop_length),
                           ("n_mels", n_mels)):
            if not isinstance(value, int) or value < 1:
                raise KilnValueError(f"Received an invalid value for `{arg}`, expected a positive integer. "
                                     f"Received: {arg}={value!r}")
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        self.normalize = bool(normalize)
        # Not saved in the state dict: both are rebuilt from the arguments above.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filterbank", torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)), persistent=False)

    def frames(self, samples: int) -> int:
        return 1 + samples // self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise ShapeError(f"LogMel expects waveforms of shape (batch, samples); received shape "
                             f"{tuple(wave.shape)}. Average channels to mono and stack clips of equal length.")
        if wave.shape[1] <= self.n_fft // 2:
            raise ShapeError(f"LogMel needs more than n_fft // 2 = {self.n_fft // 2} samples per clip (reflect "
                             f"padding); received {wave.shape[1]}. Pad the clips or lower `n_fft`.")
        stft = torch.stft(wave.float(), self.n_fft, hop_length=self.hop_length, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)             # (B, n_fft // 2 + 1, frames)
        power = stft.real ** 2 + stft.imag ** 2
        mel = torch.log(power.transpose(1, 2) @ self.filterbank + _LOG_OFFSET)  # (B, frames, n_mels)
        if self.normalize:
            mean = mel.mean(dim=(1, 2), keepdim=True)
            std = mel.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)
            mel = (mel - mean) / std
        return mel

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"n_mels={self.n_mels}, normalize={self.normalize}")
