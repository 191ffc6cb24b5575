"""ImageFeature: image files (decoded with Pillow) or in-memory arrays as float32 (rows, H, W, C).

Values are paths (PNG, JPEG, anything Pillow reads) or arrays ``(H, W)`` / ``(H, W, C)`` with C
in 1, 3, 4 (alpha is dropped). Every image becomes ``channels`` channels — 1 via Pillow's "L"
(ITU-R 601-2 luma), 3 via "RGB" — and, when ``height``/``width`` are given, is resized to that
size with Pillow (8-bit images as "L"/"RGB" images, others channel by channel as 32-bit float
images). Without ``height``/``width`` every image must have the size of the first training
image; one that differs is a ``DataError`` naming it.

Scaling ("unit") divides by a divisor fixed at ``fit`` from the training split: 255 for uint8
images, 65535 for uint16, else (float or wide-int arrays, e.g. sklearn's 0..16 digits) the
training maximum when it is above 1, otherwise 1. Output is channels-last, as in Keras.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_choice, check_int, is_missing, progress
from kiln.errors import DataError, KilnValueError
from kiln_edge import image as edge_image
from kiln_edge.errors import EdgeDataError

__all__ = ["ImageFeature"]

_SCALES = ("unit", "none")
_RESAMPLING = ("bilinear", "nearest", "bicubic", "lanczos")


class ImageFeature(Feature):
    """Images as a float32 tensor ``(rows, height, width, channels)``.

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: must stay False: images cannot be outputs (no ``decode``).
        height, width: resize every image to this size (default None: the first training
            image's size, and every image must have it). Give both or neither.
        channels: 1 (grayscale) or 3 (RGB) (default None: the first training image's).
        scale: "unit" (default: to [0, 1], see the module notes) or "none" (pixel values as they are).
        resize: Pillow's resampling filter: "bilinear" (default), "nearest", "bicubic", "lanczos".

    Example::

        f = ImageFeature("image", height=32, width=32, channels=3).fit(train["image"])
        f.transform(valid["image"]).shape   # (rows, 32, 32, 3)
    """

    type = "image"
    can_be_output = False

    def __init__(self, name: str, column: str | None = None, *, output: bool = False, height: int | None = None,
                 width: int | None = None, channels: int | None = None, scale: str = "unit",
                 resize: str = "bilinear"):
        super().__init__(name, column, output=output)
        self.height = check_int("height", height, allow_none=True)
        self.width = check_int("width", width, allow_none=True)
        if (self.height is None) != (self.width is None):
            raise KilnValueError(f"Give both `height` and `width` (to resize every image) or neither (to keep the "
                                 f"first training image's size). Received: height={height!r}, width={width!r}")
        if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
            raise KilnValueError(f"Received an invalid value for `channels`, expected 1 (grayscale), 3 (RGB) or "
                                 f"None. Received: channels={channels!r}")
        self.channels = None if channels is None else int(channels)
        self.scale = check_choice("scale", scale, _SCALES)
        self.resize = check_choice("resize", resize, _RESAMPLING)
        self.shape: tuple[int, int, int] | None = None  # fitted (H, W, C)
        self.divisor = 1.0

    def get_config(self) -> dict:
        return {"height": self.height, "width": self.width, "channels": self.channels, "scale": self.scale,
                "resize": self.resize}

    # ---- decoding (kiln_edge.image's NumPy + Pillow code, so both packages give the same bytes) ---------
    def _read(self, value, row) -> np.ndarray:
        """One image as ``(H, W, C)`` in its own dtype, C = 1 or 3 (alpha dropped)."""
        try:
            return edge_image.read_image(value, row, self._where())
        except EdgeDataError as err:
            raise DataError(str(err)) from err.__cause__

    def _conform(self, array: np.ndarray, row, value) -> np.ndarray:
        """``(H, W, c)`` -> ``(height, width, channels)`` float32 in [0, 1] ("unit")."""
        try:
            return edge_image.conform(array, self.shape, self.divisor, self.resize, self.height is not None, row,
                                      value, self._where())
        except EdgeDataError as err:
            raise DataError(str(err)) from err.__cause__

    # ---- the protocol ----------------------------------------------------------------------------
    def _fit(self, series: pd.Series) -> None:
        values, rows = series.tolist(), list(series.index)
        present = [i for i, v in enumerate(values) if not is_missing(v)]
        if not present:
            raise DataError(f"{self._where()}: every training value is missing.")
        first = self._read(values[present[0]], rows[present[0]])
        height = self.height if self.height is not None else first.shape[0]
        width = self.width if self.width is not None else first.shape[1]
        channels = self.channels if self.channels is not None else first.shape[2]
        self.shape = (int(height), int(width), int(channels))
        self.divisor = self._fit_divisor(first, values, rows, present)

    def _fit_divisor(self, first: np.ndarray, values: list, rows: list, present: list) -> float:
        if self.scale == "none":
            return 1.0
        if first.dtype == np.uint8:
            return 255.0
        if first.dtype == np.uint16:
            return 65535.0
        # Float or wide-int images: the training maximum (arrays are in memory; files are decoded).
        # `first` is present[0], decoded already: the scan reads only the rest.
        rest = present[1:]
        iterator = progress(rest, len(rest), f"{self.name}: scanning images") if rest else rest
        peak = max([float(np.max(first))] + [float(np.max(self._read(values[i], rows[i]))) for i in iterator])
        return peak if peak > 1 else 1.0

    def _transform(self, series: pd.Series) -> torch.Tensor:
        values, rows = series.tolist(), list(series.index)
        out = np.empty((len(values), *self.shape), dtype=np.float32)  # (rows, H, W, C)
        for i in progress(range(len(values)), len(values), f"{self.name}: decoding images"):
            out[i] = self._conform(self._read(values[i], rows[i]), rows[i], values[i])
        return torch.from_numpy(out)

    def _spec(self) -> dict:
        height, width, channels = self.shape
        return {"shape": self.shape, "dtype": "float32", "channels": channels, "height": height, "width": width}

    def _fitted_state(self):
        return {"shape": list(self.shape), "divisor": self.divisor}, {}

    def _load_fitted(self, fitted, tensors):
        self.shape = tuple(int(s) for s in fitted["shape"])
        self.divisor = float(fitted["divisor"])
