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

import os

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_choice, check_int, file_label, is_missing, progress
from kiln.errors import DataError, KilnValueError

__all__ = ["ImageFeature"]

_SCALES = ("unit", "none")
_RESAMPLING = ("bilinear", "nearest", "bicubic", "lanczos")
_GRAY_MODES = ("1", "L", "LA", "La")
_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")  # 16/32-bit single-channel images


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

    # ---- decoding ----------------------------------------------------------------------------------
    def _where_row(self, row, value) -> str:
        label = f"row {row}" if not isinstance(value, (str, os.PathLike)) else f"row {row} ({file_label(value)})"
        return f"{self._where()}, {label}"

    def _read(self, value, row) -> np.ndarray:
        """One image as ``(H, W, C)`` in its own dtype, C = 1 or 3 (alpha dropped)."""
        if is_missing(value):
            raise DataError(f"{self._where()}: row {row} has no image (NaN/None). Drop the row or fill it.")
        if isinstance(value, (str, os.PathLike)):
            return self._read_file(value, row)
        array = np.asarray(value)
        if array.ndim == 3 and array.shape[2] in (1, 3, 4):
            array = array[:, :, :3]
        elif array.ndim == 2:
            array = array[:, :, None]
        else:
            raise DataError(f"{self._where()}: row {row} holds an array of shape {array.shape}; an image is "
                            f"(height, width) or (height, width, 1|3|4).")
        if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{self._where()}: row {row} holds a {array.dtype} array; images are numeric arrays.")
        return np.ascontiguousarray(array)

    def _read_file(self, path, row) -> np.ndarray:
        from PIL import Image
        try:
            with Image.open(path) as image:
                image.load()  # decode now, so a corrupt file fails here, named
                if image.mode in _WIDE_MODES:
                    array = np.asarray(image)
                elif image.mode in _GRAY_MODES:
                    array = np.asarray(image.convert("L"))
                else:
                    array = np.asarray(image.convert("RGB"))
        except FileNotFoundError as err:
            raise DataError(f"{self._where_row(row, path)}: the file does not exist. Fix the path (relative "
                            f"paths are read from {os.getcwd()!r}).") from err
        except Exception as err:  # Pillow raises many types for a broken or foreign file
            raise DataError(f"{self._where_row(row, path)}: cannot be read as an image ({type(err).__name__}: "
                            f"{err}). Replace or remove the file.") from err
        return array if array.ndim == 3 else array[:, :, None]

    def _conform(self, array: np.ndarray, row, value) -> np.ndarray:
        """``(H, W, c)`` -> ``(height, width, channels)`` float32 in [0, 1] ("unit")."""
        from PIL import Image
        height, width, channels = self.shape
        if array.shape[2] != channels:
            if channels == 3:
                array = np.repeat(array, 3, axis=2)
            elif array.dtype == np.uint8:
                array = np.asarray(Image.fromarray(array).convert("L"))[:, :, None]
            else:  # Pillow's "L" weights, on non-8-bit data
                array = (array.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
        if array.shape[:2] != (height, width):
            if self.height is None:
                raise DataError(f"{self._where_row(row, value)}: the image is {array.shape[0]}x{array.shape[1]} "
                                f"(height x width), but the first training image is {height}x{width}. Set `height` "
                                f"and `width` on the image feature to resize every image to one size.")
            array = self._resized(array)
        return array.astype(np.float32) / np.float32(self.divisor)

    def _resized(self, array: np.ndarray) -> np.ndarray:
        from PIL import Image
        height, width, channels = self.shape
        method = getattr(Image.Resampling, self.resize.upper())
        if array.dtype == np.uint8:
            image = Image.fromarray(array[:, :, 0] if channels == 1 else array)  # mode "L" or "RGB"
            resized = np.asarray(image.resize((width, height), method))
            return resized if resized.ndim == 3 else resized[:, :, None]
        planes = [np.asarray(Image.fromarray(array[:, :, c].astype(np.float32)).resize((width, height), method))
                  for c in range(channels)]
        return np.stack(planes, axis=2)

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
        iterator = progress(present, len(present), f"{self.name}: scanning images") if len(present) > 1 else present
        peak = max(float(np.max(self._read(values[i], rows[i]))) for i in iterator)
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
