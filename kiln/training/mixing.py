"""Batch mixing: MixUp and CutMix, training-batch transforms that change the labels too.

Unlike the augmentation layers (which sit inside the model and see only inputs), these
take a whole training batch ``(x, y)`` and return ``(x_mixed, y_soft)``: each sample is
blended with a partner from the same batch (a random permutation) and its label becomes the
matching mixture of the two labels. ``y`` may be integer class ids ``(B,)`` / ``(B, 1)`` or
one-hot / soft rows ``(B, C)``; ``y_soft`` is always ``(B, C)`` floats whose rows sum to 1,
so train with ``categorical_crossentropy`` (soft targets), not the sparse loss.

Apply them to training batches only (never to validation or test batches)::

    mix = MixUp(alpha=0.2, num_classes=10)
    for x, y in train_batches:
        x, y = mix(x, y)
        ...

Randomness: with ``seed=None`` every draw comes from torch's global generator (the mixing
weights through a NumPy generator seeded from it, since torch's Beta sampler takes no
generator), so ``kiln.utils.set_random_seed`` makes runs reproducible; with an int ``seed``
from the transform's own ``torch.Generator``, seeded once. Draws are made on the CPU and
moved to the batch's device. ``sample`` and ``apply`` split one call into its random part
and its deterministic part (useful to inspect or test a transform).

References: Zhang et al., "mixup: Beyond Empirical Risk Minimization" (2018);
Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features" (2019).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kiln.errors import KilnTypeError, KilnValueError, ShapeError

__all__ = ["MixUp", "CutMix", "MixParams", "to_soft_labels"]


@dataclass
class MixParams:
    """One random draw of a mixing transform.

    ``lam``: ``(B,)`` float64, the weight of each sample's own data (and label).
    ``perm``: ``(B,)`` int64, the index of each sample's partner.
    ``box``: CutMix only, ``(B, 4)`` int64 ``[top, left, bottom, right)`` of the pasted patch.
    """

    lam: torch.Tensor
    perm: torch.Tensor
    box: torch.Tensor | None = None


def to_soft_labels(y, num_classes: int | None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Class ids ``(B,)``/``(B, 1)`` or rows ``(B, C)`` -> ``(B, C)`` floats.

    Raises:
        KilnValueError: ids without ``num_classes``, ids out of range, or rows of another width.
        ShapeError: labels of another rank.
    """
    y = torch.as_tensor(y)
    if not y.is_floating_point() and y.dtype != torch.bool:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 1:
            if num_classes is None:
                raise KilnValueError("Integer class ids need `num_classes` to become soft labels: pass e.g. "
                                     "MixUp(num_classes=10), or pass one-hot labels (batch, classes).")
            if y.numel():
                low, high = torch.stack(torch.aminmax(y)).tolist()  # one reduction, one device sync per batch
                if low < 0 or high >= num_classes:
                    raise KilnValueError(f"Class ids must lie in [0, {num_classes}); received ids from "
                                         f"{low} to {high}. Check `num_classes`.")
            return F.one_hot(y.long(), num_classes).to(dtype)
    if y.ndim != 2:
        raise ShapeError(f"Expected labels of shape (batch,) (class ids) or (batch, classes) (one-hot). "
                         f"Received shape {tuple(y.shape)}.")
    if num_classes is not None and y.shape[1] != num_classes:
        raise KilnValueError(f"Labels have {y.shape[1]} columns but num_classes={num_classes}. "
                             "Pass one-hot labels of width num_classes, or fix `num_classes`.")
    return y.to(dtype)


class _Mixer:
    """Shared code: argument checks, the generator, Beta draws, labels."""

    def __init__(self, alpha, num_classes, seed):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
            raise KilnValueError(f"Received an invalid value for `alpha`, expected a positive number (the Beta "
                                 f"distribution's concentration). Received: alpha={alpha!r}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
                                        or num_classes < 1):
            raise KilnValueError(f"Received an invalid value for `num_classes`, expected a positive integer or "
                                 f"None. Received: num_classes={num_classes!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise KilnTypeError(f"Expected `seed` to be an int or None. Received: seed={seed!r}")
        self.alpha = float(alpha)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.seed = None if seed is None else int(seed)
        self._generator = None if seed is None else torch.Generator().manual_seed(self.seed)

    def _beta(self, size: int) -> torch.Tensor:
        """``(size,)`` float64 draws from Beta(alpha, alpha), driven by the torch generator."""
        seed = int(torch.randint(0, 2**62, (1,), generator=self._generator))
        return torch.from_numpy(np.random.default_rng(seed).beta(self.alpha, self.alpha, size=size))

    def _perm(self, batch: int) -> torch.Tensor:
        return torch.randperm(batch, generator=self._generator)

    def __call__(self, x, y):
        """Mix one training batch: ``(x, y) -> (x_mixed, y_soft)``."""
        x = torch.as_tensor(x)
        return self.apply(x, y, self.sample(x))

    def _mix_labels(self, y, x: torch.Tensor, params: MixParams) -> torch.Tensor:
        dtype = x.dtype if x.is_floating_point() else torch.float32
        y = to_soft_labels(y, self.num_classes, dtype).to(x.device)
        if y.shape[0] != x.shape[0]:
            raise ShapeError(f"x holds {x.shape[0]} samples but y holds {y.shape[0]}.")
        lam = params.lam.to(device=x.device, dtype=dtype)[:, None]  # (B, 1)
        return lam * y + (1 - lam) * y[params.perm.to(x.device)]

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "num_classes": self.num_classes, "seed": self.seed}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()) + ")"


class MixUp(_Mixer):
    """Blend every sample with a partner: ``lam * x + (1 - lam) * x[perm]``, labels alike.

    One ``lam ~ Beta(alpha, alpha)`` per batch (as in the paper and Keras's ``MixUp``); works
    on floating inputs of any shape (images, features, waveforms, spectrograms).

    Args:
        alpha: positive float (default 0.2): small values keep samples mostly themselves.
        num_classes: int, needed when ``y`` holds class ids; None for one-hot labels.
        seed: None (torch's global generator) or an int (the transform's own generator).

    Shapes: ``x`` ``(B, ...)`` floats, ``y`` ``(B,)``/``(B, 1)`` ids or ``(B, C)`` ->
    ``x_mixed`` like ``x``, ``y_soft`` ``(B, C)``.

    Example::

        x, y = MixUp(alpha=0.2, num_classes=10)(images, labels)
    """

    def __init__(self, alpha=0.2, num_classes=None, seed=None):
        super().__init__(alpha, num_classes, seed)

    def sample(self, x: torch.Tensor) -> MixParams:
        """Draw ``lam`` (the same for every sample) and the partners for a batch like ``x``."""
        batch = x.shape[0]
        lam = self._beta(1).expand(batch).clone()
        return MixParams(lam=lam, perm=self._perm(batch))

    def apply(self, x: torch.Tensor, y, params: MixParams):
        """Mix ``x`` and ``y`` as ``params`` says; deterministic."""
        if not x.is_floating_point():
            raise KilnTypeError(f"MixUp blends values, so it needs floating inputs; received {x.dtype}. "
                                "Token ids cannot be blended: mix embeddings inside the model instead.")
        perm = params.perm.to(x.device)
        lam = params.lam.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))  # (B, 1, ...)
        return lam * x + (1 - lam) * x[perm], self._mix_labels(y, x, params)


class CutMix(_Mixer):
    """Paste a random box of a partner image into every image; labels mix by the box's area.

    Per sample: ``lam ~ Beta(alpha, alpha)``; a box of ``int(H * sqrt(1 - lam))`` by
    ``int(W * sqrt(1 - lam))`` pixels centred on a uniform random pixel, clipped to the image;
    then, as in the paper, ``lam`` is corrected to the exact kept area
    ``1 - box_area / (H * W)``, which weights the labels.

    Args:
        alpha: positive float (default 1.0, the paper's: a uniform ``lam``).
        num_classes: int, needed when ``y`` holds class ids; None for one-hot labels.
        seed: None (torch's global generator) or an int (the transform's own generator).
        data_format: None/"channels_last" (default, ``(B, H, W[, C])``) or "channels_first"
            (``(B, C, H, W)``).

    Shapes: ``x`` images, ``y`` ``(B,)``/``(B, 1)`` ids or ``(B, C)`` -> ``x_mixed`` like
    ``x``, ``y_soft`` ``(B, C)``.

    Example::

        x, y = CutMix(num_classes=10)(images, labels)
    """

    def __init__(self, alpha=1.0, num_classes=None, seed=None, data_format=None):
        super().__init__(alpha, num_classes, seed)
        if data_format not in (None, "channels_last", "channels_first"):
            raise KilnValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                                 f"Received: data_format={data_format!r}")
        self.data_format = data_format or "channels_last"

    def _height_width(self, x: torch.Tensor) -> tuple[int, int]:
        if self.data_format == "channels_first":
            if x.ndim != 4:
                raise ShapeError(f"CutMix expects images (batch, channels, height, width); received shape "
                                 f"{tuple(x.shape)}.")
            return x.shape[2], x.shape[3]
        if x.ndim not in (3, 4):
            raise ShapeError(f"CutMix expects images (batch, height, width[, channels]); received shape "
                             f"{tuple(x.shape)}.")
        return x.shape[1], x.shape[2]

    def sample(self, x: torch.Tensor) -> MixParams:
        """Draw a box and a partner per sample; ``lam`` is the kept area of each image."""
        batch = x.shape[0]
        height, width = self._height_width(x)
        ratio = torch.sqrt(1.0 - self._beta(batch))  # (B,) side of the box / side of the image
        cut_h, cut_w = (height * ratio).long(), (width * ratio).long()
        centre_y = torch.randint(0, height, (batch,), generator=self._generator)
        centre_x = torch.randint(0, width, (batch,), generator=self._generator)
        top = (centre_y - cut_h // 2).clamp(0, height)
        bottom = (centre_y - cut_h // 2 + cut_h).clamp(0, height)
        left = (centre_x - cut_w // 2).clamp(0, width)
        right = (centre_x - cut_w // 2 + cut_w).clamp(0, width)
        area = (bottom - top) * (right - left)
        lam = 1.0 - area.double() / (height * width)  # the paper's correction for a clipped box
        return MixParams(lam=lam, perm=self._perm(batch), box=torch.stack([top, left, bottom, right], dim=1))

    def apply(self, x: torch.Tensor, y, params: MixParams):
        """Paste the boxes of ``params`` and mix ``y``; deterministic."""
        height, width = self._height_width(x)
        box = params.box.to(x.device)
        rows = torch.arange(height, device=x.device)[None, :, None]  # (1, H, 1)
        cols = torch.arange(width, device=x.device)[None, None, :]  # (1, 1, W)
        inside = ((rows >= box[:, 0, None, None]) & (rows < box[:, 2, None, None])
                  & (cols >= box[:, 1, None, None]) & (cols < box[:, 3, None, None]))  # (B, H, W)
        if self.data_format == "channels_first":
            inside = inside[:, None]  # (B, 1, H, W)
        elif x.ndim == 4:
            inside = inside[..., None]  # (B, H, W, 1)
        return torch.where(inside, x[params.perm.to(x.device)], x), self._mix_labels(y, x, params)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}
