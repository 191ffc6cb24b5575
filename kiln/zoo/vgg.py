"""VGG (Simonyan & Zisserman, 2014, "Very Deep Convolutional Networks"): 11, 13, 16, 19 layers.

Stacks of 3x3 convs with 2x2 max-pools between them (the paper's configurations A, B, D, E),
optionally with batch norm after each conv (not in the paper; it makes VGG train without the
paper's staged initialisation). Inputs are channels_last like Keras, (B, H, W, C).

Two classifiers:
- "small" (default): global average pool -> Linear(C, 512) -> ReLU -> Dropout -> Linear(512, classes);
  sized for 32x32 images, where the five pools leave a 1x1 map anyway.
- "imagenet": the paper's 7x7 pool -> 4096 -> 4096 -> classes head (VGG-16: 138,357,544 parameters
  without batch norm, 1000 classes).

    model = kiln.zoo.vgg11(num_classes=10, input_shape=None, width=64)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

import kiln
from kiln.errors import KilnValueError
from kiln.zoo.common import build_for_first_batch, single_input

__all__ = ["VGGConfig", "VGG", "LAYOUTS", "vgg11", "vgg13", "vgg16", "vgg19"]

# The paper's table 1: conv widths at width=64, "M" a 2x2 max-pool.
LAYOUTS: dict[int, list] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                     # A
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],            # B
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # D
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],                                                             # E
}


@dataclass
class VGGConfig:
    num_classes: int = 10
    input_shape: tuple | None = None  # (H, W, C); H and W at least 32: five 2x2 pools; None: inferred
    depth: int = 11                   # 11, 13, 16 or 19 (weight layers, as in the paper)
    width: int = 64                   # channels of the first conv; the paper's 64 scales every layer
    batch_norm: bool = True           # BN after each conv: trains from scratch without tricks
    classifier: str = "small"         # "small" (one 512 hidden layer) or "imagenet" (the paper's 4096x2)
    dropout: float = 0.5              # in the classifier, as the paper

    def __post_init__(self):
        problems = []
        if not isinstance(self.num_classes, int) or self.num_classes <= 0:
            problems.append(f"`num_classes` must be a positive integer. Received: num_classes={self.num_classes!r}")
        self.input_shape = None if self.input_shape is None else tuple(self.input_shape)
        if self.input_shape is None:
            pass
        elif len(self.input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in self.input_shape):
            problems.append(f"`input_shape` must be (H, W, C) with positive ints. Received: input_shape={self.input_shape!r}")
        elif min(self.input_shape[:2]) < 32:
            problems.append(f"VGG halves the image five times, so H and W must be at least 32. "
                            f"Received: input_shape={self.input_shape!r}; resize or pad the images.")
        if self.depth not in LAYOUTS:
            problems.append(f"`depth` must be one of {sorted(LAYOUTS)}. Received: depth={self.depth!r}")
        if not isinstance(self.width, int) or self.width <= 0:
            problems.append(f"`width` must be a positive integer. Received: width={self.width!r}")
        if self.classifier not in ("small", "imagenet"):
            problems.append(f"`classifier` must be 'small' or 'imagenet'. Received: classifier={self.classifier!r}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if problems:
            raise KilnValueError("Invalid VGG config:\n  " + "\n  ".join(problems))


class VGG(kiln.Model):
    """VGG classifier: (B, H, W, C) channels_last images -> (B, num_classes) logits.

    Args: the fields of ``VGGConfig``; also ``name``/``trainable`` as any kiln Model.
    Accepts a tensor or a one-entry dict ``{"x": tensor}``.
    """

    def __init__(self, num_classes=10, input_shape=None, depth=11, width=64, batch_norm=True,
                 classifier="small", dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.config = VGGConfig(num_classes, input_shape, depth, width, batch_norm, classifier, dropout)
        if self.config.input_shape is not None:
            self._build()

    def _build(self):
        """Create the layers for ``config.input_shape`` (at the first call when it was left out)."""
        c = self.config
        layers, ch = [], c.input_shape[-1]
        for v in LAYOUTS[c.depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = v * c.width // 64
            layers.append(nn.Conv2d(ch, out, 3, padding=1))  # bias kept even with BN, as torchvision
            if c.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            ch = out
        self.features = nn.Sequential(*layers)
        if c.classifier == "imagenet":
            hidden = 4096 * c.width // 64
            self.pool = nn.AdaptiveAvgPool2d(7)  # 224x224 inputs leave 7x7 maps; others are pooled to it
            self.head = nn.Sequential(
                nn.Linear(ch * 7 * 7, hidden), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
                nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
                nn.Linear(hidden, c.num_classes))
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Sequential(
                nn.Linear(ch, 512), nn.ReLU(inplace=True), nn.Dropout(c.dropout), nn.Linear(512, c.num_classes))

    def call(self, inputs):
        x = single_input(inputs)       # (B, H, W, C) channels_last
        if self.config.input_shape is None:
            build_for_first_batch(self, x)
        x = x.permute(0, 3, 1, 2)      # (B, C, H, W) for nn.Conv2d
        x = self.features(x)           # (B, 8*width, H/32, W/32)
        x = self.pool(x).flatten(1)    # (B, 8*width) small, (B, 8*width*49) imagenet
        return self.head(x)            # (B, num_classes)

    def get_config(self) -> dict:
        config = asdict(self.config)
        if config["input_shape"] is not None:
            config["input_shape"] = list(config["input_shape"])
        return {**super().get_config(), **config}


def vgg11(num_classes: int = 10, input_shape=None, width: int = 64, batch_norm: bool = True,
          classifier: str = "small") -> VGG:
    """VGG-11 (configuration A): 8 convs + 3 dense layers."""
    return VGG(num_classes=num_classes, input_shape=input_shape, depth=11, width=width, batch_norm=batch_norm,
               classifier=classifier)


def vgg13(num_classes: int = 10, input_shape=None, width: int = 64, batch_norm: bool = True,
          classifier: str = "small") -> VGG:
    """VGG-13 (configuration B): 10 convs + 3 dense layers."""
    return VGG(num_classes=num_classes, input_shape=input_shape, depth=13, width=width, batch_norm=batch_norm,
               classifier=classifier)


def vgg16(num_classes: int = 10, input_shape=None, width: int = 64, batch_norm: bool = True,
          classifier: str = "small") -> VGG:
    """VGG-16 (configuration D): 13 convs + 3 dense layers; 138,357,544 parameters with
    classifier="imagenet", batch_norm=False, 1000 classes."""
    return VGG(num_classes=num_classes, input_shape=input_shape, depth=16, width=width, batch_norm=batch_norm,
               classifier=classifier)


def vgg19(num_classes: int = 10, input_shape=None, width: int = 64, batch_norm: bool = True,
          classifier: str = "small") -> VGG:
    """VGG-19 (configuration E): 16 convs + 3 dense layers."""
    return VGG(num_classes=num_classes, input_shape=input_shape, depth=19, width=width, batch_norm=batch_norm,
               classifier=classifier)
