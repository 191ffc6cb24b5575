"""Image values decoded exactly as ``kiln.data.features.image`` decodes them, with Pillow and NumPy only.

kiln's ``ImageFeature`` decodes with these very functions (it only adds ``torch.from_numpy``
and re-raises their errors as kiln's ``DataError``), so both sides give the same bytes:

    read_image(value)   a path (anything Pillow reads) or an array (H, W) / (H, W, 1|3|4)
                        -> (H, W, C) in its own dtype, C = 1 ("L", or a 16/32-bit mode) or 3
                        ("RGB"); alpha dropped
    conform(array)      -> the fitted (height, width, channels) float32: channels repeated or
                        mixed with Pillow's "L" weights, resized with Pillow (8-bit images as
                        "L"/"RGB" images, others plane by plane as 32-bit float images), divided
                        by the fitted divisor

Bytes are not accepted (a 0-d array is refused). Errors are ``EdgeDataError`` with kiln's
wording: the column, the row, the file, and the fix.
Pillow is imported when an image is first decoded, so the rest of kiln_edge does not need it.
"""

from __future__ import annotations

import os

import numpy as np

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.preprocessing.common import is_missing

__all__ = ["read_image", "conform", "file_label"]

_GRAY_MODES = ("1", "L", "LA", "La")
_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")  # 16/32-bit single-channel images
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)         # Pillow's "L" weights (ITU-R 601-2)


def pillow():
    """``PIL.Image``, or an EdgeError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as err:
        raise EdgeError(f"Image features need Pillow on the torch-free path: pip install pillow ({err}).") from err
    return Image


def file_label(value) -> str:
    """How an error names a media value: the file path, or 'an in-memory array' (kiln's wording)."""
    if isinstance(value, (str, os.PathLike)):
        return f"file {os.fspath(value)!r}"
    return f"an in-memory {type(value).__name__}"


def _where_row(where: str, row, value) -> str:
    label = f"row {row}" if not isinstance(value, (str, os.PathLike)) else f"row {row} ({file_label(value)})"
    return f"{where}, {label}"


def read_image(value, row, where: str) -> np.ndarray:
    """One image as ``(H, W, C)`` in its own dtype, C = 1 or 3 (alpha dropped).

    Args:
        value: a path (str or os.PathLike) or an array ``(H, W)`` / ``(H, W, 1|3|4)`` of numbers.
        row: the row label, for errors.
        where: the start of every error, e.g. "Column 'image' (input image feature 'image')".
    """
    if is_missing(value):
        raise EdgeDataError(f"{where}: row {row} has no image (NaN/None). Drop the row or fill it.")
    if isinstance(value, (str, os.PathLike)):
        return _read_file(value, row, where)
    array = np.asarray(value)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[:, :, :3]
    elif array.ndim == 2:
        array = array[:, :, None]
    else:
        raise EdgeDataError(f"{where}: row {row} holds an array of shape {array.shape}; an image is "
                            f"(height, width) or (height, width, 1|3|4).")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise EdgeDataError(f"{where}: row {row} holds a {array.dtype} array; images are numeric arrays.")
    return np.ascontiguousarray(array)


def _read_file(path, row, where: str) -> np.ndarray:
    Image = pillow()
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
        raise EdgeDataError(f"{_where_row(where, row, path)}: the file does not exist. Fix the path (relative "
                            f"paths are read from {os.getcwd()!r}).") from err
    except Exception as err:  # Pillow raises many types for a broken or foreign file
        raise EdgeDataError(f"{_where_row(where, row, path)}: cannot be read as an image ({type(err).__name__}: "
                            f"{err}). Replace or remove the file.") from err
    return array if array.ndim == 3 else array[:, :, None]


def conform(array: np.ndarray, shape: tuple, divisor: float, resample: str, may_resize: bool, row, value,
            where: str) -> np.ndarray:
    """``(H, W, c)`` -> the fitted ``shape`` ``(height, width, channels)`` as float32, divided by ``divisor``.

    Args:
        array: ``read_image``'s output.
        shape: the fitted ``(height, width, channels)``.
        divisor: the fitted divisor (255, 65535, the training maximum, or 1).
        resample: Pillow's filter name: "bilinear", "nearest", "bicubic" or "lanczos".
        may_resize: True when the feature sets ``height``/``width``; otherwise a size other
            than the fitted one is an error (as in kiln).
        row, value, where: for errors.
    """
    height, width, channels = shape
    if array.shape[2] != channels:
        if channels == 3:
            array = np.repeat(array, 3, axis=2)
        elif array.dtype == np.uint8:
            array = np.asarray(pillow().fromarray(array).convert("L"))[:, :, None]
        else:  # Pillow's "L" weights, on non-8-bit data
            array = (array.astype(np.float32) @ _LUMA)[:, :, None]
    if array.shape[:2] != (height, width):
        if not may_resize:
            raise EdgeDataError(f"{_where_row(where, row, value)}: the image is {array.shape[0]}x{array.shape[1]} "
                                f"(height x width), but the first training image is {height}x{width}. Set `height` "
                                f"and `width` on the image feature to resize every image to one size.")
        array = _resized(array, shape, resample)
    return array.astype(np.float32) / np.float32(divisor)


def _resized(array: np.ndarray, shape: tuple, resample: str) -> np.ndarray:
    """Pillow's resize: one "L"/"RGB" image for uint8, else one 32-bit float image per channel."""
    Image = pillow()
    height, width, channels = shape
    method = getattr(Image.Resampling, resample.upper())
    if array.dtype == np.uint8:
        image = Image.fromarray(array[:, :, 0] if channels == 1 else array)  # mode "L" or "RGB"
        resized = np.asarray(image.resize((width, height), method))
        return resized if resized.ndim == 3 else resized[:, :, None]
    planes = [np.asarray(Image.fromarray(array[:, :, c].astype(np.float32)).resize((width, height), method))
              for c in range(channels)]
    return np.stack(planes, axis=2)
