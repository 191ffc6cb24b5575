"""ResNet (He et al., 2015, "Deep Residual Learning for Image Recognition"): 18, 34 and 50 layers.

BasicBlock (two 3x3 convs) for ResNet-18/34, Bottleneck (1x1 -> 3x3 -> 1x1, 4x wider out) for
ResNet-50, with the stride on the 3x3 conv ("ResNet v1.5", as torchvision). Inputs are
channels_last like Keras, (B, H, W, C); the model permutes to torch's (B, C, H, W) once.

    model = kiln.zoo.resnet18(num_classes=10)    # any (H, W, C), inferred at the first call; small stem
    model = kiln.zoo.resnet50(num_classes=1000, input_shape=(224, 224, 3), stem="imagenet")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

import kiln
from kiln.errors import KilnValueError
from kiln.zoo.common import build_for_first_batch, single_input

__all__ = ["ResNetConfig", "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50"]


@dataclass
class ResNetConfig:
    num_classes: int = 10
    input_shape: tuple | None = None  # (H, W, C), channels_last; None: inferred at the first call
    block: str = "basic"              # "basic" (ResNet-18/34) or "bottleneck" (ResNet-50+)
    layers: tuple = (2, 2, 2, 2)      # blocks per stage; the paper's table 1
    stem: str = "small"               # "imagenet": 7x7/2 conv + 3x3/2 maxpool (4x smaller maps);
                                      # "small": one 3x3/1 conv, keeps 28x28/32x32 maps whole
    width: int = 64                   # channels of the first stage; stages use w, 2w, 4w, 8w

    def __post_init__(self):
        problems = []
        if not isinstance(self.num_classes, int) or self.num_classes <= 0:
            problems.append(f"`num_classes` must be a positive integer. Received: num_classes={self.num_classes!r}")
        self.input_shape = None if self.input_shape is None else tuple(self.input_shape)
        if self.input_shape is not None and (len(self.input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in self.input_shape)):
            problems.append(f"`input_shape` must be (H, W, C) with positive ints. Received: input_shape={self.input_shape!r}")
        if self.block not in ("basic", "bottleneck"):
            problems.append(f"`block` must be 'basic' or 'bottleneck'. Received: block={self.block!r}")
        self.layers = tuple(self.layers)
        if len(self.layers) != 4 or any(not isinstance(n, int) or n <= 0 for n in self.layers):
            problems.append(f"`layers` must be four positive ints, e.g. (2, 2, 2, 2). Received: layers={self.layers!r}")
        if self.stem not in ("imagenet", "small"):
            problems.append(f"`stem` must be 'imagenet' (7x7 stride 2 + maxpool) or 'small' (3x3 stride 1). "
                            f"Received: stem={self.stem!r}")
        if not isinstance(self.width, int) or self.width <= 0:
            problems.append(f"`width` must be a positive integer. Received: width={self.width!r}")
        if problems:
            raise KilnValueError("Invalid ResNet config:\n  " + "\n  ".join(problems))


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 conv + BN (the paper's option B)."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus the shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride=stride, padding=1, bias=False)  # BN adds the bias
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.shortcut = _shortcut(in_ch, ch, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):                      # (B, in_ch, H, W)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, ch, H/stride, W/stride)
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand to 4x ``ch``, plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        out_ch = ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = _shortcut(in_ch, out_ch, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):                         # (B, in_ch, H, W)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, ch, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, ch, H/stride, W/stride)
        out = self.bn3(self.conv3(out))           # (B, 4*ch, H/stride, W/stride)
        return self.relu(out + self.shortcut(x))


class ResNet(kiln.Model):
    """ResNet classifier: (B, H, W, C) channels_last images -> (B, num_classes) logits.

    Args: the fields of ``ResNetConfig``; also ``name``/``trainable`` as any kiln Model.
    Accepts a tensor or a one-entry dict ``{"x": tensor}``.
    """

    def __init__(self, num_classes=10, input_shape=None, block="basic", layers=(2, 2, 2, 2),
                 stem="small", width=64, **kwargs):
        super().__init__(**kwargs)
        self.config = ResNetConfig(num_classes, input_shape, block, tuple(layers), stem, width)
        if self.config.input_shape is not None:
            self._build()

    def _build(self):
        """Create the layers for ``config.input_shape`` (at the first call when it was left out)."""
        c = self.config
        in_ch = c.input_shape[-1]
        if c.stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_ch, c.width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(c.width),
                nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_ch, c.width, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(c.width),
                nn.ReLU(inplace=True))
        block_cls = BasicBlock if c.block == "basic" else Bottleneck
        stages, ch_in = [], c.width
        for i, n in enumerate(c.layers):
            ch = c.width * 2 ** i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1  # halve the map at the start of stages 2-4
                blocks.append(block_cls(ch_in, ch, stride))
                ch_in = ch * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(ch_in, c.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def call(self, inputs):
        x = single_input(inputs)        # (B, H, W, C) channels_last
        if self.config.input_shape is None:
            build_for_first_batch(self, x)
        x = x.permute(0, 3, 1, 2)       # (B, C, H, W) for nn.Conv2d
        x = self.stages(self.stem(x))   # (B, 8*width*expansion, H/8, W/8) with the small stem
        x = self.pool(x).flatten(1)     # (B, 8*width*expansion)
        return self.head(x)             # (B, num_classes)

    def get_config(self) -> dict:
        config = asdict(self.config)
        config["layers"] = list(config["layers"])
        if config["input_shape"] is not None:
            config["input_shape"] = list(config["input_shape"])
        return {**super().get_config(), **config}


def resnet18(num_classes: int = 10, input_shape=None, stem: str = "small", width: int = 64) -> ResNet:
    """ResNet-18: BasicBlocks (2, 2, 2, 2). 11,689,512 parameters with stem="imagenet", 1000 classes."""
    return ResNet(num_classes=num_classes, input_shape=input_shape, block="basic", layers=(2, 2, 2, 2),
                  stem=stem, width=width)


def resnet34(num_classes: int = 10, input_shape=None, stem: str = "small", width: int = 64) -> ResNet:
    """ResNet-34: BasicBlocks (3, 4, 6, 3). 21,797,672 parameters with stem="imagenet", 1000 classes."""
    return ResNet(num_classes=num_classes, input_shape=input_shape, block="basic", layers=(3, 4, 6, 3),
                  stem=stem, width=width)


def resnet50(num_classes: int = 10, input_shape=None, stem: str = "small", width: int = 64) -> ResNet:
    """ResNet-50: Bottlenecks (3, 4, 6, 3). 25,557,032 parameters with stem="imagenet", 1000 classes."""
    return ResNet(num_classes=num_classes, input_shape=input_shape, block="bottleneck", layers=(3, 4, 6, 3),
                  stem=stem, width=width)
