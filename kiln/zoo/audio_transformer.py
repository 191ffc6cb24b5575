"""Audio Spectrogram Transformer (AST-like, Gong et al., 2021): a ViT over the log-mel image.

The log-mel spectrogram (B, frames, n_mels) is cut into non-overlapping patches of
``patch = (pf, pm)`` frames x mels (the end is zero-padded to whole patches), each patch
flattened and projected by one Linear layer, a learned position added per (time, frequency)
patch, a class token prepended, then ``depth`` pre-LayerNorm Transformer blocks
(``scaled_dot_product_attention``), a final LayerNorm, and a Linear head on the class token.

Input: waveform (B, T) through the ``LogMel`` front end, or a log-mel (B, frames, n_mels[, 1]).
Positions are learned for up to ``max_frames`` frames; shorter inputs use the first ones.

Example::

    model = kiln.zoo.audio_transformer(num_classes=10)
    model(torch.randn(2, 16000)).shape  # (2, 10): 101 frames x 64 mels -> 13 x 8 patches + class token
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.models.model import Model
from kiln.zoo.audio_frontend import LogMel
from kiln.zoo.common import single_input

__all__ = ["AudioTransformerConfig", "AudioTransformer", "audio_transformer", "Block"]


@dataclass
class AudioTransformerConfig:
    num_classes: int = 10
    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 400                 # 25 ms at 16 kHz, as AudioFeature
    hop_length: int = 160            # 10 ms frames
    patch: tuple = (8, 8)            # (frames, mels) per patch
    depth: int = 4
    heads: int = 4
    width: int = 128
    mlp_ratio: int = 4               # hidden size of each block's MLP = mlp_ratio * width
    dropout: float = 0.0
    max_frames: int = 512            # longest input the learned positions cover (5.1 s at hop 160)

    def __post_init__(self):
        self.patch = tuple(self.patch)
        problems = []
        for field in ("num_classes", "sample_rate", "n_mels", "n_fft", "hop_length", "depth", "heads", "width",
                      "mlp_ratio", "max_frames"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"`{field}` must be a positive integer; received {field}={value!r}")
        if len(self.patch) != 2 or not all(isinstance(p, int) and p >= 1 for p in self.patch):
            problems.append(f"`patch` must be two positive integers (frames, mels); received patch={self.patch!r}")
        if isinstance(self.width, int) and isinstance(self.heads, int) and self.heads >= 1 \
                and self.width % self.heads:
            problems.append(f"`width`={self.width} must be divisible by `heads`={self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1); received dropout={self.dropout!r}")
        if problems:
            raise KilnValueError("Invalid AudioTransformerConfig: " + "; ".join(problems) + ".")

    @property
    def grid(self) -> tuple[int, int]:
        """Most patches along time and along frequency."""
        return math.ceil(self.max_frames / self.patch[0]), math.ceil(self.n_mels / self.patch[1])


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                   # (B, N, D)
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, N, hs)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """Pre-LN Transformer block: x + attn(ln(x)), then x + mlp(ln(x)). (B, N, D) -> (B, N, D)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int = 4, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(),
                                 nn.Linear(mlp_ratio * width, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class AudioTransformer(Model):
    """Spectrogram Transformer classifier (see the module docstring).

    Args:
        config: an ``AudioTransformerConfig``; or give its fields as keyword arguments.
        name, trainable: as every kiln Model.

    Shapes: (B, T) waveform or (B, frames, n_mels[, 1]) log-mel -> (B, num_classes) logits.
    """

    def __init__(self, config: AudioTransformerConfig | None = None, *, name: str | None = None,
                 trainable: bool = True, **fields):
        super().__init__(name=name, trainable=trainable)
        self.config = c = config if config is not None else AudioTransformerConfig(**fields)
        pf, pm = c.patch
        self.frontend = LogMel(c.sample_rate, c.n_fft, c.hop_length, c.n_mels)
        self.patch_embed = nn.Linear(pf * pm, c.width)
        self.pos = nn.Parameter(torch.randn(*c.grid, c.width) * 0.02)   # (time patches, freq patches, D)
        self.cls = nn.Parameter(torch.zeros(1, 1, c.width))
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.depth))
        self.ln = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.num_classes)

    def _log_mel(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() == 2:
            return self.frontend(x)                                         # (B, frames, n_mels)
        if x.dim() == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.dim() != 3 or x.shape[-1] != c.n_mels:
            raise ShapeError(f"AudioTransformer expects a waveform (batch, samples) or a log-mel (batch, frames, "
                             f"{c.n_mels}[, 1]); received shape {tuple(x.shape)}. Set n_mels to match.")
        return x.float()

    def call(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        pf, pm = c.patch
        mel = self._log_mel(single_input(x))
        B, frames, mels = mel.shape
        if frames > c.max_frames:
            raise ShapeError(f"AudioTransformer: {frames} frames is more than max_frames={c.max_frames} its "
                             f"positions cover. Cut the clips or build with max_frames >= {frames}.")
        mel = F.pad(mel, (0, -mels % pm, 0, -frames % pf))                  # whole patches
        nt, nm = mel.shape[1] // pf, mel.shape[2] // pm
        patches = mel.view(B, nt, pf, nm, pm).permute(0, 1, 3, 2, 4).reshape(B, nt, nm, pf * pm)
        tokens = self.patch_embed(patches) + self.pos[:nt, :nm]             # (B, nt, nm, D)
        tokens = torch.cat([self.cls.expand(B, -1, -1), tokens.flatten(1, 2)], dim=1)  # (B, 1 + nt*nm, D)
        h = self.drop(tokens)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h[:, 0]))                                  # (B, num_classes)

    def get_config(self) -> dict:
        config = asdict(self.config)
        config["patch"] = list(config["patch"])
        return {**super().get_config(), **config}


def audio_transformer(num_classes: int, sample_rate: int = 16000, n_mels: int = 64, patch=(8, 8), depth: int = 4,
                      heads: int = 4, width: int = 128, **fields) -> AudioTransformer:
    """An AST-like classifier; other ``AudioTransformerConfig`` fields (n_fft, hop_length, dropout,
    max_frames, mlp_ratio) as keywords.

    Example::

        kiln.zoo.audio_transformer(num_classes=10, patch=(4, 8), depth=2)
    """
    return AudioTransformer(AudioTransformerConfig(num_classes=num_classes, sample_rate=sample_rate, n_mels=n_mels,
                                                   patch=tuple(patch), depth=depth, heads=heads, width=width,
                                                   **fields))
