"""WaveNet (van den Oord et al., 2016): a stack of dilated causal convolutions with gated units.

Each residual block: causal dilated Conv1D (left padding only, so output t sees inputs <= t) to
2 x residual channels -> ``tanh(a) * sigmoid(b)`` -> a 1x1 conv back onto the residual path (added
to the block's input) and a 1x1 conv onto the skip path. Dilations double within a stack
(1, 2, 4, ..., 2^(layers-1)) and the cycle repeats ``stacks`` times, so the receptive field is

    receptive_field = (kernel_size - 1) * stacks * (2 ** layers - 1) + 1

Two tasks:
- ``"classification"``: waveform (B, T) (one channel) or log-mel (B, frames, n_mels[, 1]) (n_mels
  channels) -> 1x1 conv -> stack -> sum of skips -> ReLU -> 1x1 conv -> ReLU -> 1x1 conv ->
  global average pool over time -> logits (B, num_classes).
- ``"generation"``: mu-law codes (B, T) int64 in [0, quantization) -> embedding -> stack ->
  head -> logits (B, T, quantization); logits at t predict sample t + 1 (train with
  ``fit(codes[:, :-1], codes[:, 1:])``), and ``generate`` samples autoregressively.

Example::

    model = kiln.zoo.wavenet("generation", layers=8, stacks=2)
    codes = mu_law_encode(torch.sin(torch.linspace(0, 60, 2001)))[None]    # (1, 2001)
    model.compile("adam", kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(codes[:, :-1], codes[:, 1:], epochs=50)
    mu_law_decode(model.generate(400, seed=0))                              # (400,) in [-1, 1]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.models.model import Model
from kiln.zoo.audio_frontend import LogMel
from kiln.zoo.common import single_input

__all__ = ["WaveNetConfig", "WaveNet", "wavenet", "mu_law_encode", "mu_law_decode"]

_TASKS = ("classification", "generation")
_INPUTS = ("waveform", "log_mel")


# ---------------------------------------------------------------------- mu-law companding
def mu_law_encode(x, quantization: int = 256) -> torch.Tensor:
    """Waveform in [-1, 1] (any shape) -> int64 codes in [0, quantization): ITU-T G.711 mu-law.

    ``y = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` with ``mu = quantization - 1``, then ``y`` in [-1, 1]
    is mapped to the nearest of ``quantization`` levels. Values outside [-1, 1] are clipped.
    """
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).float().clamp(-1.0, 1.0)
    mu = quantization - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).floor().long().clamp(0, mu)


def mu_law_decode(codes, quantization: int = 256) -> torch.Tensor:
    """Inverse of ``mu_law_encode``: int codes -> float32 waveform in [-1, 1]."""
    codes = torch.as_tensor(np.asarray(codes) if not torch.is_tensor(codes) else codes)
    mu = quantization - 1
    y = 2 * codes.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


# ---------------------------------------------------------------------- config
@dataclass
class WaveNetConfig:
    task: str = "classification"
    num_classes: int | None = None     # classification only
    layers: int = 8                    # dilated layers per stack: dilations 1 .. 2^(layers-1)
    stacks: int = 2                    # repeats of the dilation cycle
    kernel_size: int = 2               # 2 as in the paper: each layer doubles the receptive field
    residual_channels: int = 32
    skip_channels: int = 64
    quantization: int = 256            # generation: mu-law levels (vocabulary and output size)
    input: str = "waveform"            # classification: "waveform" (B, T) or "log_mel" (B, frames, n_mels)
    log_mel_frontend: bool = False     # classification on waveforms: run LogMel first (channels = n_mels)
    sample_rate: int = 16000           # for the LogMel front end
    n_mels: int = 64                   # channels of log-mel inputs / the front end
    dropout: float = 0.0               # before the classification head

    def __post_init__(self):
        problems = []
        if self.task not in _TASKS:
            problems.append(f"`task` must be one of {_TASKS}; received task={self.task!r}")
        if self.task == "classification" and (not isinstance(self.num_classes, int) or self.num_classes < 1):
            problems.append(f"`num_classes` must be a positive integer for task='classification'; received "
                            f"num_classes={self.num_classes!r}")
        if self.input not in _INPUTS:
            problems.append(f"`input` must be one of {_INPUTS}; received input={self.input!r}")
        for field in ("layers", "stacks", "kernel_size", "residual_channels", "skip_channels", "quantization",
                      "n_mels", "sample_rate"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"`{field}` must be a positive integer; received {field}={value!r}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1); received dropout={self.dropout!r}")
        if problems:
            raise KilnValueError("Invalid WaveNetConfig: " + "; ".join(problems) + ".")

    @property
    def receptive_field(self) -> int:
        return (self.kernel_size - 1) * self.stacks * (2 ** self.layers - 1) + 1

    @property
    def in_channels(self) -> int:
        return self.n_mels if (self.input == "log_mel" or self.log_mel_frontend) else 1


# ---------------------------------------------------------------------- modules
class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left only: output t depends on inputs t - dilation*(k-1) .. t."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_pad = dilation * (kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (B, C, T) -> (B, C_out, T)
        return super().forward(F.pad(x, (self.left_pad, 0)))


class ResidualBlock(nn.Module):
    def __init__(self, residual_channels: int, skip_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.dilated = CausalConv1d(residual_channels, 2 * residual_channels, kernel_size, dilation)
        self.residual = nn.Conv1d(residual_channels, residual_channels, 1)
        self.skip = nn.Conv1d(residual_channels, skip_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        filt, gate = self.dilated(x).chunk(2, dim=1)               # (B, R, T) each
        h = torch.tanh(filt) * torch.sigmoid(gate)
        return x + self.residual(h), self.skip(h)                  # (B, R, T), (B, S, T)


class WaveNet(Model):
    """WaveNet for classification or sample-by-sample generation (see the module docstring).

    Args:
        config: a ``WaveNetConfig``; or give its fields as keyword arguments.
        name, trainable: as every kiln Model.

    Shapes: classification (B, T) / (B, frames, n_mels[, 1]) -> (B, num_classes);
    generation (B, T) int64 -> (B, T, quantization).
    """

    def __init__(self, config: WaveNetConfig | None = None, *, name: str | None = None, trainable: bool = True,
                 **fields):
        super().__init__(name=name, trainable=trainable)
        self.config = c = config if config is not None else WaveNetConfig(**fields)
        if c.task == "generation":
            self.embed = nn.Embedding(c.quantization, c.residual_channels)
        else:
            self.frontend = LogMel(c.sample_rate, n_mels=c.n_mels) if c.log_mel_frontend else None
            self.input_conv = nn.Conv1d(c.in_channels, c.residual_channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(c.residual_channels, c.skip_channels, c.kernel_size, 2 ** i)
            for _ in range(c.stacks) for i in range(c.layers))
        out = c.quantization if c.task == "generation" else c.num_classes
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(c.skip_channels, c.skip_channels, 1), nn.ReLU(),
                                  nn.Dropout(c.dropout), nn.Conv1d(c.skip_channels, out, 1))

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> (B, residual_channels, T) for the stack."""
        c = self.config
        if c.task == "generation":
            if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
                raise ShapeError(f"WaveNet(task='generation') expects int64 mu-law codes of shape (batch, time); "
                                 f"received {x.dtype} of shape {tuple(x.shape)}. Use mu_law_encode(waveform).")
            return self.embed(x.long()).transpose(1, 2)            # (B, R, T)
        if c.input == "waveform":
            if x.dim() != 2:
                raise ShapeError(f"WaveNet(input='waveform') expects (batch, samples); received shape "
                                 f"{tuple(x.shape)}. For spectrograms build it with input='log_mel'.")
            x = self.frontend(x) if self.frontend is not None else x.float()[..., None]  # (B, T', C)
        else:
            if x.dim() == 4 and x.shape[-1] == 1:
                x = x[..., 0]                                      # (B, frames, n_mels, 1) -> (B, frames, n_mels)
            if x.dim() != 3 or x.shape[-1] != c.n_mels:
                raise ShapeError(f"WaveNet(input='log_mel') expects (batch, frames, {c.n_mels}[, 1]); received "
                                 f"shape {tuple(x.shape)}. Set n_mels to the spectrogram's mel bands.")
        return self.input_conv(x.float().transpose(1, 2))          # (B, C, T) -> (B, R, T)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        h = self._features(single_input(x))
        skips = 0
        for block in self.blocks:
            h, skip = block(h)
            skips = skips + skip                                   # (B, S, T)
        logits = self.head(skips)                                  # (B, out, T)
        if self.config.task == "generation":
            return logits.transpose(1, 2)                          # (B, T, quantization)
        return logits.mean(dim=2)                                  # (B, num_classes)

    @torch.no_grad()
    def generate(self, n_samples: int, seed: int | None = None, temperature: float = 1.0,
                 prime=None) -> torch.Tensor:
        """Sample ``n_samples`` mu-law codes one at a time; returns int64 (n_samples,) (prime excluded).

        Args:
            n_samples: how many new samples to draw.
            seed: seeds a private ``torch.Generator``: the same seed gives the same samples.
            temperature: divides the logits; 0 takes the most likely code (greedy).
            prime: codes (T0,) to start from; default one code of silence (mu_law_encode(0)).

        Each step recomputes the last ``receptive_field`` samples (simple, O(n * receptive_field)).
        """
        if self.config.task != "generation":
            raise KilnValueError("generate() needs a WaveNet built with task='generation'.")
        if not isinstance(n_samples, int) or n_samples < 0:
            raise KilnValueError(f"`n_samples` must be a non-negative integer; received n_samples={n_samples!r}")
        if temperature < 0:
            raise KilnValueError(f"`temperature` must be >= 0; received temperature={temperature!r}")
        device = self.device
        if prime is None:
            prime = mu_law_encode(torch.zeros(1), self.config.quantization)
        seq = torch.as_tensor(np.asarray(prime) if not torch.is_tensor(prime) else prime).long().flatten().cpu()
        generator = torch.Generator()
        if seed is not None:
            generator.manual_seed(int(seed))
        else:
            generator.seed()
        was_training = self.training
        self.eval()
        out = []
        try:
            for _ in range(n_samples):
                window = seq[-self.receptive_field:][None].to(device)            # (1, <= rf)
                logits = self(window)[0, -1].float().cpu()                       # (quantization,)
                if temperature == 0:
                    code = logits.argmax().view(1)
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    code = torch.multinomial(probs, 1, generator=generator)
                seq = torch.cat([seq, code])
                out.append(code)
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    def get_config(self) -> dict:
        return {**super().get_config(), **asdict(self.config)}


def wavenet(task: str = "classification", num_classes: int | None = None, layers: int = 8, stacks: int = 2,
            residual_channels: int = 32, skip_channels: int = 64, **fields) -> WaveNet:
    """A WaveNet; other ``WaveNetConfig`` fields (kernel_size, input, log_mel_frontend, n_mels, ...) as keywords.

    Example::

        kiln.zoo.wavenet("classification", num_classes=10, input="log_mel", n_mels=64)
    """
    return WaveNet(WaveNetConfig(task=task, num_classes=num_classes, layers=layers, stacks=stacks,
                                 residual_channels=residual_channels, skip_channels=skip_channels, **fields))
