"""Label helpers: one-hot encoding and normalisation, as in ``keras.utils``."""

from __future__ import annotations

import numpy as np

from kiln.errors import KilnValueError

__all__ = ["to_categorical", "normalize"]


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels -> one-hot float32 array of shape ``x.shape + (num_classes,)``.

    A trailing axis of size 1 is dropped first, as Keras does: (n, 1) -> (n, num_classes).

    Example: ``to_categorical([0, 2], 3)`` -> ``[[1, 0, 0], [0, 0, 1]]``.
    """
    labels = np.asarray(x)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise KilnValueError("to_categorical needs integer class labels; received non-integer values.")
    labels = labels.astype("int64")
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.size and labels.min() < 0:
        raise KilnValueError(f"to_categorical received a negative label ({labels.min()}); labels must be 0..n-1.")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise KilnValueError(f"to_categorical received label {labels.max()} but num_classes={num_classes}; "
                             f"labels must be in 0..{num_classes - 1}.")
    out = np.zeros(labels.shape + (num_classes,), dtype="float32")
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """Scale ``x`` to unit ``order``-norm along ``axis`` (zero vectors stay zero)."""
    arr = np.asarray(x, dtype="float32")
    norm = np.linalg.norm(arr, ord=order, axis=axis, keepdims=True)
    return arr / np.where(norm == 0, 1, norm)
