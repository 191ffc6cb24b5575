"""Image augmentation layers (Keras 3's preprocessing layers): active in training, identity at inference.

They sit at the front of a model, as in Keras, so they are saved and loaded with it::

    model = kiln.Sequential([
        kiln.Input(shape=(32, 32, 3)),
        RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.1),
        ...])

Images are ``(batch, height, width, channels)`` (``data_format="channels_first"``:
``(batch, channels, height, width)``); a single unbatched image (rank 3) works too, as in
Keras. Integer images (uint8) come out as floats in the layer's dtype. Every random choice
is drawn once per sample, in one tensor for the whole batch; see ``random_base.py`` for
seeds. ``GaussianNoise`` (kiln/layers/noise.py) is the noise layer of this family.

The geometric layers (RandomRotation, RandomTranslation, RandomZoom) share one sampler:
each output pixel's centre is mapped to a point of the input by a per-sample affine matrix,
read there with ``grid_sample``; points outside the image are filled per ``fill_mode``:

- ``"reflect"``: ``(d c b a | a b c d | d c b a)``, reflected about the edge of the last pixel.
- ``"constant"``: ``(k k k k | a b c d | k k k k)`` with ``k = fill_value``.
- ``"nearest"``: ``(a a a a | a b c d | d d d d)``.
- ``"wrap"``: ``(a b c d | a b c d | a b c d)``.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError
from kiln.layers.conv import normalize_data_format
from kiln.layers.random_base import (RandomLayer, check_range_factor, check_ranks, check_value_range,
                                     config_factor)

__all__ = ["RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomCrop", "RandomContrast",
           "RandomBrightness"]

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


class _ImageLayer(RandomLayer):
    """Shared code: rank and layout handling around ``_augment`` (training) and ``_infer``."""

    _changes_at_inference = False  # True: ``_infer`` runs at inference (RandomCrop's centre crop)

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.data_format = normalize_data_format(data_format)

    def call(self, inputs, training=None):
        layout = ("(batch, height, width, channels) or one image (height, width, channels)"
                  if self.data_format == "channels_last" else
                  "(batch, channels, height, width) or one image (channels, height, width)")
        check_ranks(self, inputs, (3, 4), layout)
        images = inputs if inputs.is_floating_point() else inputs.to(self.dtype)
        training = self._is_training(training)
        if not training and not self._changes_at_inference:
            return images
        unbatched = images.ndim == 3
        if unbatched:
            images = images[None]
        if self.data_format == "channels_first":
            images = images.permute(0, 2, 3, 1)  # (B, H, W, C)
        outputs = self._augment(images) if training else self._infer(images)
        if self.data_format == "channels_first":
            outputs = outputs.permute(0, 3, 1, 2)
        return outputs[0] if unbatched else outputs

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H', W', C), random."""
        raise NotImplementedError

    def _infer(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


# ---------------------------------------------------------------------- flips
class RandomFlip(_ImageLayer):
    """Flip images left-right and/or top-bottom at random in training.

    Each sample is flipped horizontally with probability 1/2 and, independently, vertically
    with probability 1/2 (for ``"horizontal_and_vertical"``).

    Args:
        mode: "horizontal" (left-right), "vertical" (top-bottom) or "horizontal_and_vertical"
            (default).
        seed: None (torch's global generator) or an int (the layer's own generator).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> the same shape.

    Example::

        RandomFlip("horizontal")
    """

    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in self._MODES:
            raise KilnValueError(f"Received an invalid value for `mode`, expected one of {self._MODES}. "
                                 f"Received: mode={mode!r}")
        self.mode = mode

    def _augment(self, images):
        batch, device = images.shape[0], images.device
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            flip = self._uniform((batch, 1, 1, 1), 0.0, 1.0, device) < 0.5
            images = torch.where(flip, images.flip(2), images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            flip = self._uniform((batch, 1, 1, 1), 0.0, 1.0, device) < 0.5
            images = torch.where(flip, images.flip(1), images)
        return images

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config

    def extra_repr(self):
        return f"name={self.name!r}, mode={self.mode!r}"


# ---------------------------------------------------------------------- affine transforms
def affine_transform(images: torch.Tensor, matrix: torch.Tensor, interpolation: str = "bilinear",
                     fill_mode: str = "reflect", fill_value: float = 0.0) -> torch.Tensor:
    """Resample each image at ``matrix @ (x, y, 1)`` of every output pixel centre ``(x, y)``.

    Args:
        images: ``(B, H, W, C)`` floats.
        matrix: ``(B, 2, 3)``: output pixel coordinates (x = column, y = row, pixel centres at
            integers) -> input pixel coordinates.
        interpolation: "bilinear" or "nearest".
        fill_mode: "reflect", "constant", "nearest" or "wrap" (see the module docstring).
        fill_value: the value outside the image for "constant".

    Returns: ``(B, H, W, C)``.
    """
    batch, height, width, _ = images.shape
    x = images.permute(0, 3, 1, 2)  # (B, C, H, W): grid_sample's layout
    ys, xs = torch.meshgrid(torch.arange(height, device=images.device, dtype=matrix.dtype),
                            torch.arange(width, device=images.device, dtype=matrix.dtype), indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)  # (H, W, 3)
    source = torch.einsum("hwk,bjk->bhwj", points, matrix)  # (B, H, W, 2): input (x, y)
    size = torch.tensor([width, height], device=images.device, dtype=matrix.dtype)
    padding = {"reflect": "reflection", "nearest": "border", "constant": "zeros", "wrap": "border"}[fill_mode]
    if fill_mode == "wrap":
        # Fold the points into [-0.5, size - 0.5) and pad one pixel circularly, so bilinear reads
        # across the seam see the opposite edge.
        source = torch.remainder(source + 0.5, size) - 0.5 + 1.0
        x = F.pad(x, (1, 1, 1, 1), mode="circular")
        size = size + 2
    if fill_mode == "constant" and fill_value != 0:
        x = x - fill_value  # zeros padding then fills with fill_value once shifted back
    grid = (2.0 * source + 1.0) / size - 1.0  # align_corners=False: pixel edges at -1 and 1
    out = F.grid_sample(x, grid.to(x.dtype), mode=interpolation, padding_mode=padding, align_corners=False)
    if fill_mode == "constant" and fill_value != 0:
        out = out + fill_value
    return out.permute(0, 2, 3, 1)


def _centred(linear: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2, 2) linear maps about the image centre -> (B, 2, 3) affine matrices."""
    centre = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], dtype=linear.dtype, device=linear.device)
    offset = centre - linear @ centre  # maps the centre to itself
    return torch.cat([linear, offset[..., None]], dim=-1)


class _AffineLayer(_ImageLayer):
    """Shared code of the geometric layers: fill_mode, interpolation, fill_value and ``_matrix``."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if fill_mode not in _FILL_MODES:
            raise KilnValueError(f"Received an invalid value for `fill_mode`, expected one of {_FILL_MODES}. "
                                 f"Received: fill_mode={fill_mode!r}")
        if interpolation not in _INTERPOLATIONS:
            raise KilnValueError(f"Received an invalid value for `interpolation`, expected one of "
                                 f"{_INTERPOLATIONS}. Received: interpolation={interpolation!r}")
        if not isinstance(fill_value, numbers.Real) or isinstance(fill_value, bool):
            raise KilnValueError(f"Received an invalid value for `fill_value`, expected a number. "
                                 f"Received: fill_value={fill_value!r}")
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = float(fill_value)

    def _matrix(self, batch: int, height: int, width: int, device) -> torch.Tensor:
        """(B, 2, 3) float32: output pixel -> input pixel, one random transform per sample."""
        raise NotImplementedError

    def _augment(self, images):
        batch, height, width, _ = images.shape
        matrix = self._matrix(batch, height, width, images.device)
        return affine_transform(images, matrix.to(images.dtype), self.interpolation, self.fill_mode,
                                self.fill_value)

    def get_config(self):
        config = super().get_config()
        config.update(fill_mode=self.fill_mode, interpolation=self.interpolation, fill_value=self.fill_value)
        return config


class RandomRotation(_AffineLayer):
    """Rotate images about their centre by a random angle in training.

    Args:
        factor: a fraction of a full turn (2 pi): a number ``f`` draws each angle from
            ``[-f * 2 pi, f * 2 pi]``; a pair ``(low, high)`` from ``[low * 2 pi, high * 2 pi]``.
            Positive angles turn counter-clockwise. Numbers in [-1, 1].
        fill_mode: "reflect" (default), "constant", "nearest" or "wrap": what fills the corners.
        interpolation: "bilinear" (default) or "nearest".
        seed: None (torch's global generator) or an int (the layer's own generator).
        fill_value: the value of "constant" fill (default 0.0).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> the same shape.

    Example::

        RandomRotation(0.1)  # up to +-36 degrees
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.lower, self.upper = check_range_factor(factor, "factor")
        self.factor = config_factor(factor)

    def _matrix(self, batch, height, width, device):
        angle = self._uniform((batch,), self.lower, self.upper, device) * (2.0 * math.pi)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Counter-clockwise on screen (rows grow downwards): output (x, y) reads the input at
        # the point turned back, x' = cos x - sin y, y' = sin x + cos y about the centre.
        linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
        return _centred(linear, height, width)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config

    def extra_repr(self):
        return f"name={self.name!r}, factor={self.factor}"


class RandomTranslation(_AffineLayer):
    """Shift images by a random fraction of their height and width in training.

    Args:
        height_factor: a fraction of the height: a number ``f`` shifts by up to ``f * height``
            up or down; a pair ``(low, high)`` by ``[low, high] * height`` (negative: up).
            Numbers in [-1, 1].
        width_factor: the same for the width (negative: left).
        fill_mode: "reflect" (default), "constant", "nearest" or "wrap".
        interpolation: "bilinear" (default) or "nearest".
        seed: None or an int.
        fill_value: the value of "constant" fill (default 0.0).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> the same shape.

    Example::

        RandomTranslation(0.1, 0.1)
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_lower, self.height_upper = check_range_factor(height_factor, "height_factor")
        self.width_lower, self.width_upper = check_range_factor(width_factor, "width_factor")
        self.height_factor = config_factor(height_factor)
        self.width_factor = config_factor(width_factor)

    def _matrix(self, batch, height, width, device):
        dy = self._uniform((batch,), self.height_lower, self.height_upper, device) * height
        dx = self._uniform((batch,), self.width_lower, self.width_upper, device) * width
        one, zero = torch.ones_like(dx), torch.zeros_like(dx)
        # The output at (x, y) is the input at (x - dx, y - dy): the image moves by (+dx, +dy).
        return torch.stack([torch.stack([one, zero, -dx], -1), torch.stack([zero, one, -dy], -1)], -2)

    def get_config(self):
        config = super().get_config()
        config.update(height_factor=self.height_factor, width_factor=self.width_factor)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, height_factor={self.height_factor}, width_factor={self.width_factor}"


class RandomZoom(_AffineLayer):
    """Zoom in or out of images by a random amount about their centre in training.

    Args:
        height_factor: a fraction: a number ``f`` zooms the height by ``1 + [-f, f]``; a pair
            ``(low, high)`` by ``1 + [low, high]``. Positive values zoom out (the image gets
            smaller), negative values zoom in. Numbers in [-1, 1].
        width_factor: the same for the width; None (default) keeps the aspect ratio (the
            width zooms by the height's draw).
        fill_mode: "reflect" (default), "constant", "nearest" or "wrap".
        interpolation: "bilinear" (default) or "nearest".
        seed: None or an int.
        fill_value: the value of "constant" fill (default 0.0).
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> the same shape.

    Example::

        RandomZoom(0.2)       # zoom in or out by up to 20%, same on both axes
        RandomZoom((-0.3, 0)) # zoom in only
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_lower, self.height_upper = check_range_factor(height_factor, "height_factor")
        self.height_factor = config_factor(height_factor)
        self.width_factor = None
        if width_factor is not None:
            self.width_lower, self.width_upper = check_range_factor(width_factor, "width_factor")
            self.width_factor = config_factor(width_factor)

    def _matrix(self, batch, height, width, device):
        zy = 1.0 + self._uniform((batch,), self.height_lower, self.height_upper, device)
        zx = zy if self.width_factor is None else 1.0 + self._uniform((batch,), self.width_lower,
                                                                        self.width_upper, device)
        zero = torch.zeros_like(zx)
        # A zoom factor z > 1 reads a window z times the image: the content shrinks (zooms out).
        linear = torch.stack([torch.stack([zx, zero], -1), torch.stack([zero, zy], -1)], -2)
        return _centred(linear, height, width)

    def get_config(self):
        config = super().get_config()
        config.update(height_factor=self.height_factor, width_factor=self.width_factor)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, height_factor={self.height_factor}, width_factor={self.width_factor}"


# ---------------------------------------------------------------------- crop
class RandomCrop(_ImageLayer):
    """Crop a random ``height x width`` window of each image in training; a centre crop at inference.

    Keras 3's semantics: in training each sample gets its own random window. At inference
    (and in training when the image is smaller than the window) the layer takes the largest
    centred window with the target's aspect ratio and resizes it (bilinear) to
    ``(height, width)``: a plain centre crop when the image is as large as the target on one
    axis, a centre crop then a downscale otherwise.

    Args:
        height: int, the output height.
        width: int, the output width.
        seed: None or an int.
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, H, W, channels)`` -> ``(batch, height, width, channels)``.

    Example::

        RandomCrop(24, 24)  # on 32 x 32 images
    """

    _changes_at_inference = True

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise KilnValueError(f"Received an invalid value for `{name}`, expected a positive integer. "
                                     f"Received: {name}={value!r}")
        self.height = int(height)
        self.width = int(width)

    def _augment(self, images):
        batch, in_height, in_width, _ = images.shape
        if in_height < self.height or in_width < self.width:
            return self._infer(images)
        device = images.device
        top = self._randint(0, in_height - self.height + 1, (batch,), device)
        left = self._randint(0, in_width - self.width + 1, (batch,), device)
        rows = top[:, None] + torch.arange(self.height, device=device)  # (B, height)
        cols = left[:, None] + torch.arange(self.width, device=device)  # (B, width)
        samples = torch.arange(batch, device=device)
        return images[samples[:, None, None], rows[:, :, None], cols[:, None, :]]  # (B, height, width, C)

    def _infer(self, images):
        _, in_height, in_width, _ = images.shape
        crop_height = max(min(in_height, int(in_width * self.height / self.width)), 1)
        crop_width = max(min(in_width, int(in_height * self.width / self.height)), 1)
        top, left = (in_height - crop_height) // 2, (in_width - crop_width) // 2
        images = images[:, top:top + crop_height, left:left + crop_width]
        if (crop_height, crop_width) == (self.height, self.width):
            return images
        resized = F.interpolate(images.permute(0, 3, 1, 2), size=(self.height, self.width), mode="bilinear",
                                align_corners=False)
        return resized.permute(0, 2, 3, 1)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, height={self.height}, width={self.width}"


# ---------------------------------------------------------------------- colour
class _ColourLayer(_ImageLayer):
    """Shared code of RandomContrast and RandomBrightness: ``factor`` (read by ``_bounds``) and ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.lower, self.upper = self._bounds(factor)
        self.factor = config_factor(factor)
        self.value_range = check_value_range(value_range)

    def _bounds(self, factor) -> tuple[float, float]:
        """The constructor's ``factor`` -> ``(lower, upper)``; a ``KilnValueError`` when invalid."""
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, value_range=self.value_range)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, factor={self.factor}"


class RandomContrast(_ColourLayer):
    """Scale each image's deviation from its per-channel mean by a random factor in training.

    Each output value is ``(x - mean) * c + mean`` with ``mean`` the mean of its image's
    channel and ``c`` drawn per image from ``[1 - lower, 1 + upper]``, then clipped to
    ``value_range``.

    Args:
        factor: a number ``f`` in [0, 1] (``lower = upper = f``) or a pair ``(lower, upper)``.
        value_range: ``(low, high)`` of the pixel values (default ``(0, 255)``; use ``(0, 1)``
            after ``Rescaling(1 / 255)``); outputs are clipped to it.
        seed: None or an int.
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> the same shape.

    Example::

        RandomContrast(0.2, value_range=(0, 1))
    """

    def _bounds(self, factor):
        bounds = list(factor) if isinstance(factor, (tuple, list)) else [factor, factor]
        if len(bounds) != 2 or not all(isinstance(f, numbers.Real) and not isinstance(f, bool) and 0 <= f <= 1
                                       for f in bounds):
            raise KilnValueError("Received an invalid value for `factor`, expected a number or a list of two "
                                 f"numbers in the range [0, 1]. Received: factor={factor!r}")
        return float(bounds[0]), float(bounds[1])

    def _augment(self, images):
        contrast = self._uniform((images.shape[0], 1, 1, 1), 1.0 - self.lower, 1.0 + self.upper, images.device)
        mean = images.mean(dim=(1, 2), keepdim=True)  # (B, 1, 1, C)
        out = (images - mean) * contrast.to(images.dtype) + mean
        return out.clamp(self.value_range[0], self.value_range[1])


class RandomBrightness(_ColourLayer):
    """Add a random offset to each image in training, as a fraction of ``value_range``.

    Each image gets one offset ``d * (high - low)`` with ``d`` drawn from ``[lower, upper]``
    (-1 turns any image black, +1 white); the output is clipped to ``value_range``.

    Args:
        factor: a number ``f`` in [-1, 1] (``[-|f|, |f|]``) or a pair ``(lower, upper)``.
        value_range: ``(low, high)`` of the pixel values (default ``(0, 255)``).
        seed: None or an int.
        data_format: None/"channels_last" (default) or "channels_first".

    Shapes: ``(batch, height, width, channels)`` -> the same shape.

    Example::

        RandomBrightness(0.2, value_range=(0, 1))
    """

    def _bounds(self, factor):
        return check_range_factor(factor, "factor")

    def _augment(self, images):
        low, high = self.value_range
        delta = self._uniform((images.shape[0], 1, 1, 1), self.lower, self.upper, images.device) * (high - low)
        return (images + delta.to(images.dtype)).clamp(low, high)
