"""U-Net (Ronneberger et al., 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation").

An encoder that halves the map ``depth`` times, a bottleneck, and a decoder that doubles it back,
concatenating the encoder's map of the same size at each step (the skip connections that keep
fine detail). Unlike the paper, convs are padded ("same"), so the output is the input's size, and
each conv is followed by batch norm. Inputs and outputs are channels_last like Keras:
(B, H, W, C) images -> (B, H, W, num_classes) per-pixel logits.

``DiceLoss`` (soft Dice on softmax probabilities vs integer masks) lives here too: it is the
loss U-Nets are usually trained with when the foreground is small.

    model = kiln.zoo.unet(num_classes=3, input_shape=(64, 64, 1), depth=3, width=16)
    model.compile(optimizer="adam", loss=DiceLoss())
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

import kiln
from kiln.errors import KilnValueError
from kiln.zoo.common import build_for_first_batch, single_input

__all__ = ["UNetConfig", "UNet", "DiceLoss", "unet"]


@dataclass
class UNetConfig:
    num_classes: int = 2
    input_shape: tuple | None = None  # (H, W, C); H and W divisible by 2**depth; None: inferred
    depth: int = 3                    # down-sampling steps; the paper uses 4 at 572x572
    width: int = 16                   # channels of the first level, doubled at each level (paper: 64)

    def __post_init__(self):
        problems = []
        if not isinstance(self.num_classes, int) or self.num_classes <= 0:
            problems.append(f"`num_classes` must be a positive integer. Received: num_classes={self.num_classes!r}")
        if not isinstance(self.depth, int) or self.depth <= 0:
            problems.append(f"`depth` must be a positive integer. Received: depth={self.depth!r}")
        if not isinstance(self.width, int) or self.width <= 0:
            problems.append(f"`width` must be a positive integer. Received: width={self.width!r}")
        self.input_shape = None if self.input_shape is None else tuple(self.input_shape)
        if self.input_shape is None:
            pass
        elif len(self.input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in self.input_shape):
            problems.append(f"`input_shape` must be (H, W, C) with positive ints. Received: input_shape={self.input_shape!r}")
        elif isinstance(self.depth, int) and self.depth > 0 and any(d % 2 ** self.depth for d in self.input_shape[:2]):
            problems.append(f"H and W must divide by 2**depth = {2 ** self.depth}, so the decoder's maps line up "
                            f"with the encoder's. Received: input_shape={self.input_shape!r}, depth={self.depth}; "
                            f"pad the images or lower depth.")
        if problems:
            raise KilnValueError("Invalid U-Net config:\n  " + "\n  ".join(problems))


class DoubleConv(nn.Sequential):
    """(3x3 conv -> BN -> ReLU) twice; padded, so H and W are kept."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class Up(nn.Module):
    """2x2 transposed conv to double H and W, concatenate the skip, then DoubleConv."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.conv = DoubleConv(2 * out_ch, out_ch)

    def forward(self, x, skip):                          # x (B, in_ch, h, w), skip (B, out_ch, 2h, 2w)
        x = torch.cat([skip, self.up(x)], dim=1)         # (B, 2*out_ch, 2h, 2w)
        return self.conv(x)                              # (B, out_ch, 2h, 2w)


class UNet(kiln.Model):
    """U-Net: (B, H, W, C) channels_last images -> (B, H, W, num_classes) per-pixel logits.

    Args: the fields of ``UNetConfig``; also ``name``/``trainable`` as any kiln Model.
    Accepts a tensor or a one-entry dict ``{"x": tensor}``.
    """

    def __init__(self, num_classes=2, input_shape=None, depth=3, width=16, **kwargs):
        super().__init__(**kwargs)
        self.config = UNetConfig(num_classes, input_shape, depth, width)
        if self.config.input_shape is not None:
            self._build()

    def _build(self):
        """Create the layers for ``config.input_shape`` (at the first call when it was left out)."""
        c = self.config
        chans = [c.width * 2 ** i for i in range(c.depth + 1)]  # e.g. 16, 32, 64, 128
        ins = [c.input_shape[-1]] + chans[:-2]
        self.down = nn.ModuleList(DoubleConv(i, o) for i, o in zip(ins, chans[:-1]))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(chans[-2], chans[-1])
        self.up = nn.ModuleList(Up(chans[i + 1], chans[i]) for i in reversed(range(c.depth)))
        self.head = nn.Conv2d(chans[0], c.num_classes, 1)  # per-pixel linear classifier

    def call(self, inputs):
        x = single_input(inputs)                  # (B, H, W, C) channels_last
        if self.config.input_shape is None:
            build_for_first_batch(self, x)
        x = x.permute(0, 3, 1, 2)                 # (B, C, H, W)
        skips = []
        for down in self.down:
            x = down(x)                           # (B, width*2^i, H/2^i, W/2^i)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)                    # (B, width*2^depth, H/2^depth, W/2^depth)
        for up, skip in zip(self.up, reversed(skips)):
            x = up(x, skip)                       # doubles H and W, halves channels
        return self.head(x).permute(0, 2, 3, 1)   # (B, H, W, num_classes)

    def get_config(self) -> dict:
        config = asdict(self.config)
        if config["input_shape"] is not None:
            config["input_shape"] = list(config["input_shape"])
        return {**super().get_config(), **config}


def unet(num_classes: int = 2, input_shape=None, depth: int = 3, width: int = 16) -> UNet:
    """A U-Net with ``depth`` down/up steps and ``width`` channels at full resolution (doubling per level)."""
    return UNet(num_classes=num_classes, input_shape=input_shape, depth=depth, width=width)


class DiceLoss(kiln.losses.Loss):
    """Soft Dice loss: 1 - mean over classes of (2|P∩T| + smooth) / (|P| + |T| + smooth), per sample.

    P is the softmax of the logits over the last axis, T the one-hot of the integer mask. Why
    soft Dice: it scores overlap, so a small foreground class counts as much as the background,
    where per-pixel cross-entropy is dominated by the many background pixels.

    Args:
        smooth: (1.0) added to numerator and denominator: keeps an empty class (absent from both
            prediction and mask) at a perfect score instead of 0/0.
        name: (None) defaults to "dice_loss".
        reduction: ("sum_over_batch_size") as for ``kiln.losses.Loss``.

    Shapes: y_true (B, H, W) or (B, H, W, 1) integer class ids; y_pred (B, H, W, classes) logits;
    per-sample loss (B,). Use two classes (not one) for a binary mask.

    Saving a model compiled with it: ``kiln.load_model(path, custom_objects={"DiceLoss": DiceLoss})``.
    """

    default_name = "dice_loss"

    def __init__(self, smooth: float = 1.0, name: str | None = None, reduction: str | None = "sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        if not smooth >= 0:
            raise KilnValueError(f"Received an invalid value for `smooth`, expected a number >= 0. Received: smooth={smooth}")
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        y_pred = torch.as_tensor(y_pred)
        y_true = torch.as_tensor(y_true, device=y_pred.device)
        if y_true.dim() == y_pred.dim():
            y_true = y_true.squeeze(-1)                           # (B, H, W, 1) -> (B, H, W)
        classes = y_pred.shape[-1]
        probs = y_pred.float().softmax(dim=-1).flatten(1, -2)     # (B, HW, classes)
        target = F.one_hot(y_true.long(), classes).to(probs.dtype).flatten(1, -2)  # (B, HW, classes)
        inter = (probs * target).sum(dim=1)                       # (B, classes)
        total = probs.sum(dim=1) + target.sum(dim=1)              # (B, classes)
        dice = (2 * inter + self.smooth) / (total + self.smooth)  # (B, classes)
        return 1.0 - dice.mean(dim=-1)                            # (B,)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}
