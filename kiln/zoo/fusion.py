"""Fusion: one encoder per input (numbers, categories, text, images, audio), then a combiner.

Each input spec is a dict ``{"name", "type", "shape", ...}`` (shape without the batch axis):

- ``numeric``  shape (d,) float                 -> MLP (Linear, ReLU, Linear)
- ``category`` shape () or (1,) int, ``vocab_size`` -> Embedding
- ``text``     shape (L,) int token ids (0 = padding), ``vocab_size``; ``encoder``: "transformer"
  (default: token + position embeddings, one pre-LN block, masked mean pool) or "pool"
  (embedding, masked mean pool)
- ``image``    shape (H, W, C) float, channels last as Keras -> two stride-2 3x3 convs, global pool
- ``audio``    shape (frames, n_mels[, 1]) log-mel, or (T,) waveform (through ``LogMel``,
  ``sample_rate``/``n_mels`` keys) -> two 1-D convs over time, global pool

Every encoder ends in a ``hidden``-wide vector. ``combiner="concat"``: concatenate -> MLP ->
outputs; ``"transformer"``: each encoding is one token (plus a learned per-input embedding), two
pre-LN blocks, mean pool -> Linear. Outputs: (B, num_classes) logits, or (B, 1) when
``num_classes`` is None (regression).

Example::

    model = kiln.zoo.fusion([{"name": "age", "type": "numeric", "shape": (1,)},
                             {"name": "city", "type": "category", "vocab_size": 20},
                             {"name": "review", "type": "text", "shape": (32,), "vocab_size": 1000}],
                            num_classes=2)
    model({"age": ages, "city": cities, "review": token_ids})  # (B, 2)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from kiln.errors import KilnValueError, ShapeError, closest_match
from kiln.models.model import Model
from kiln.zoo.audio_frontend import LogMel
from kiln.zoo.audio_transformer import Block

__all__ = ["FusionConfig", "Fusion", "fusion"]

_TYPES = ("numeric", "category", "text", "image", "audio")
_COMBINERS = ("concat", "transformer")
_NEEDS_VOCAB = ("category", "text")


@dataclass
class FusionConfig:
    inputs: list = field(default_factory=list)   # the input specs (see the module docstring)
    num_classes: int | None = None               # None: one regression output
    combiner: str = "concat"
    hidden: int = 128                            # width of every encoding and of the combiner
    heads: int = 4                               # attention heads (text encoder, transformer combiner)
    dropout: float = 0.1

    def __post_init__(self):
        self.inputs = [_normalise_spec(s) for s in self.inputs] if isinstance(self.inputs, (list, tuple)) else []
        problems = []
        if not self.inputs:
            problems.append("`inputs` must be a non-empty list of input specs like "
                            "{'name': 'age', 'type': 'numeric', 'shape': [1]}")
        names = [s.get("name") for s in self.inputs]
        for i, spec in enumerate(self.inputs):
            where = f"inputs[{i}] ({spec.get('name')!r})"
            if not isinstance(spec.get("name"), str) or not spec.get("name"):
                problems.append(f"{where}: `name` must be a non-empty string")
            elif names.count(spec["name"]) > 1:
                problems.append(f"{where}: the name is used by more than one input")
            kind = spec.get("type")
            if kind not in _TYPES:
                hint = closest_match(str(kind), _TYPES)
                problems.append(f"{where}: `type` must be one of {_TYPES}; received {kind!r}"
                                + (f" (did you mean {hint!r}?)" if hint else ""))
                continue
            shape = spec["shape"]
            if kind in _NEEDS_VOCAB and (not isinstance(spec.get("vocab_size"), int) or spec["vocab_size"] < 1):
                problems.append(f"{where}: a {kind} input needs a positive integer `vocab_size`; received "
                                f"{spec.get('vocab_size')!r}")
            if kind == "numeric" and len(shape) != 1:
                problems.append(f"{where}: a numeric input has shape (features,); received {shape}")
            if kind == "text" and len(shape) != 1:
                problems.append(f"{where}: a text input has shape (tokens,); received {shape}")
            if kind == "image" and len(shape) != 3:
                problems.append(f"{where}: an image input has shape (height, width, channels); received {shape}")
            if kind == "audio" and len(shape) not in (1, 2, 3):
                problems.append(f"{where}: an audio input has shape (samples,) or (frames, n_mels[, 1]); "
                                f"received {shape}")
        if self.num_classes is not None and (not isinstance(self.num_classes, int) or self.num_classes < 1):
            problems.append(f"`num_classes` must be a positive integer or None; received {self.num_classes!r}")
        if self.combiner not in _COMBINERS:
            problems.append(f"`combiner` must be one of {_COMBINERS}; received combiner={self.combiner!r}")
        if not isinstance(self.hidden, int) or self.hidden < 1 or self.hidden % max(self.heads, 1):
            problems.append(f"`hidden` must be a positive integer divisible by `heads`={self.heads}; "
                            f"received hidden={self.hidden!r}")
        if problems:
            raise KilnValueError("Invalid fusion inputs/config: " + "; ".join(problems) + ".")


def _normalise_spec(spec) -> dict:
    if not isinstance(spec, dict):
        raise KilnValueError(f"Each fusion input spec must be a dict like {{'name': 'age', 'type': 'numeric', "
                             f"'shape': [1]}}; received {spec!r}")
    spec = copy.deepcopy(dict(spec))
    shape = spec.get("shape", ())
    spec["shape"] = [int(s) for s in (shape if isinstance(shape, (list, tuple)) else (shape,))]
    return spec


# ---------------------------------------------------------------------- encoders: input -> (B, hidden)
class NumericEncoder(nn.Module):
    def __init__(self, spec: dict, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(spec["shape"][0], hidden), nn.ReLU(), nn.Linear(hidden, hidden))

    def forward(self, x):                                          # (B, d) -> (B, hidden)
        return self.mlp(x.float().reshape(len(x), -1))


class CategoryEncoder(nn.Module):
    def __init__(self, spec: dict, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(spec["vocab_size"], hidden)

    def forward(self, x):                                          # (B,) or (B, 1) ids -> (B, hidden)
        return self.embed(x.long().reshape(len(x)))


class TextEncoder(nn.Module):
    """Token ids (B, L), 0 = padding -> masked mean of (contextual) token vectors (B, hidden)."""

    def __init__(self, spec: dict, hidden: int, heads: int):
        super().__init__()
        self.embed = nn.Embedding(spec["vocab_size"], hidden)
        contextual = spec.get("encoder", "transformer") == "transformer"
        self.pos = nn.Parameter(torch.randn(spec["shape"][0], hidden) * 0.02) if contextual else None
        self.block = Block(hidden, heads) if contextual else None

    def forward(self, x):
        x = x.long()
        mask = (x != 0).float()[..., None]                         # (B, L, 1)
        h = self.embed(x)                                          # (B, L, hidden)
        if self.block is not None:
            h = self.block(h + self.pos[: x.shape[1]])
        return (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class ImageEncoder(nn.Module):
    def __init__(self, spec: dict, hidden: int):
        super().__init__()
        channels = spec["shape"][2]
        self.net = nn.Sequential(nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, hidden))

    def forward(self, x):                                          # (B, H, W, C) -> (B, hidden)
        return self.net(x.float().permute(0, 3, 1, 2))


class AudioEncoder(nn.Module):
    def __init__(self, spec: dict, hidden: int):
        super().__init__()
        shape = spec["shape"]
        self.frontend = None
        if len(shape) == 1:                                        # waveform
            self.frontend = LogMel(spec.get("sample_rate", 16000), n_mels=spec.get("n_mels", 64))
            mels = self.frontend.n_mels
        else:
            mels = shape[1]
        self.net = nn.Sequential(nn.Conv1d(mels, 64, 5, padding=2), nn.ReLU(),
                                 nn.Conv1d(64, 64, 5, stride=2, padding=2), nn.ReLU(),
                                 nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, hidden))

    def forward(self, x):
        if self.frontend is not None:
            x = self.frontend(x)                                   # (B, frames, n_mels)
        elif x.dim() == 4:
            x = x[..., 0]
        return self.net(x.float().transpose(1, 2))                 # (B, n_mels, frames) -> (B, hidden)


def _encoder(spec: dict, hidden: int, heads: int) -> nn.Module:
    kind = spec["type"]
    if kind == "numeric":
        return NumericEncoder(spec, hidden)
    if kind == "category":
        return CategoryEncoder(spec, hidden)
    if kind == "text":
        return TextEncoder(spec, hidden, heads)
    if kind == "image":
        return ImageEncoder(spec, hidden)
    return AudioEncoder(spec, hidden)


class Fusion(Model):
    """Multimodal model over a dict of inputs (see the module docstring).

    Args:
        config: a ``FusionConfig``; or its fields (inputs, num_classes, combiner, hidden, heads,
            dropout) as keyword arguments.
        name, trainable: as every kiln Model.

    Shapes: {name: (B, *shape)} -> (B, num_classes) logits, or (B, 1) for regression.
    """

    def __init__(self, config: FusionConfig | None = None, *, name: str | None = None, trainable: bool = True,
                 **fields):
        super().__init__(name=name, trainable=trainable)
        self.config = c = config if config is not None else FusionConfig(**fields)
        self.input_names = [s["name"] for s in c.inputs]
        self.encoders = nn.ModuleDict({s["name"]: _encoder(s, c.hidden, c.heads) for s in c.inputs})
        out = c.num_classes or 1
        n = len(c.inputs)
        if c.combiner == "concat":
            self.combine = nn.Sequential(nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(n * c.hidden, c.hidden),
                                         nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.hidden, out))
        else:
            self.input_embed = nn.Parameter(torch.randn(n, c.hidden) * 0.02)   # which input each token is
            self.blocks = nn.ModuleList(Block(c.hidden, c.heads, dropout=c.dropout) for _ in range(2))
            self.ln = nn.LayerNorm(c.hidden)
            self.combine = nn.Linear(c.hidden, out)

    def call(self, inputs: dict) -> torch.Tensor:
        if not isinstance(inputs, dict):
            raise ShapeError(f"Fusion expects a dict keyed by input name {self.input_names}; received "
                             f"{type(inputs).__name__}.")
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ShapeError(f"Fusion inputs {missing} are missing; expected keys {self.input_names}, received "
                             f"{sorted(inputs)}.")
        encoded = [self.encoders[n](torch.as_tensor(inputs[n])) for n in self.input_names]  # n x (B, hidden)
        if self.config.combiner == "concat":
            return self.combine(torch.cat(encoded, dim=1))           # (B, out)
        h = torch.stack(encoded, dim=1) + self.input_embed           # (B, n, hidden)
        for block in self.blocks:
            h = block(h)
        return self.combine(self.ln(h).mean(dim=1))                  # (B, out)

    def get_config(self) -> dict:
        return {**super().get_config(), **asdict(self.config)}  # asdict copies the input specs


def fusion(inputs: list, num_classes: int | None, combiner: str = "concat", hidden: int = 128, **fields) -> Fusion:
    """A multimodal ``Fusion`` model; ``heads`` and ``dropout`` as keywords.

    Example::

        kiln.zoo.fusion([{"name": "x", "type": "numeric", "shape": [4]}], num_classes=3, combiner="transformer")
    """
    return Fusion(FusionConfig(inputs=list(inputs), num_classes=num_classes, combiner=combiner, hidden=hidden,
                               **fields))
