"""Turn what users pass to ``fit`` into batches, fast.

Two kinds of data:
- **In memory** (NumPy, torch tensors, pandas, lists/dicts of those): converted once,
  moved to the device once, shuffled once per epoch with one gather, then batched by
  slicing — no per-sample collation, no copies per step.
- **Streams** (a torch ``Dataset`` or ``DataLoader``, a Keras ``PyDataset``, a generator):
  iterated as they are, each batch moved to the device as it comes.

Both answer the same questions, so the trainer never asks which kind it holds:
``to(device)``, ``num_batches(batch_size)`` (None for a stream of unknown length),
``batches(batch_size, shuffle, generator, start_step)`` yielding ``(x, y, sample_weight)``,
``needs_steps_per_epoch`` (a generator has no end of epoch), ``example()`` (two samples to build the model on before training, when they can be read
without consuming the data), ``split_last(fraction)`` and ``with_class_weight(weights)``
(in-memory only; a stream says why not).
"""

from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.symbolic import flatten, map_structure
from kiln.utils.py_dataset import PyDataset

__all__ = ["ArrayData", "StreamData", "to_tensor", "adapt", "first_tensor"]


def to_tensor(value, name: str = "x", float_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One array-like -> a torch tensor; float64 becomes ``float_dtype`` (float32, Keras's
    floatx, unless the model computes in float64)."""
    if torch.is_tensor(value):
        t = value
    else:
        try:
            import pandas as pd
            if isinstance(value, (pd.DataFrame, pd.Series)):
                value = _pandas_to_numpy(value, name)
        except ImportError:  # pandas is optional
            pass
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind in "USO":
            raise KilnTypeError(f"`{name}` holds non-numeric values (dtype {arr.dtype}); "
                                f"convert them to numbers first (e.g. encode categories as ints).")
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if t.dtype == torch.float64 and float_dtype != torch.float64:
        t = t.to(float_dtype)
    elif t.dtype == torch.bool:
        t = t.to(float_dtype)
    elif t.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
        t = t.long()
    return t


def _pandas_to_numpy(frame, name: str):
    import pandas as pd
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    bad = [c for c in frame.columns if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise KilnTypeError(f"`{name}` has non-numeric column(s) {bad}; encode them as numbers first.")
    values = frame.to_numpy()
    return values[:, 0] if values.shape[1] == 1 and frame.shape[1] == 1 and name.startswith("y") else values


def _to_structure(value, name: str, float_dtype: torch.dtype = torch.float32):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: to_tensor(v, f"{name}[{k!r}]", float_dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(_is_array_like(v) for v in value):
        return tuple(to_tensor(v, f"{name}[{i}]", float_dtype) for i, v in enumerate(value))
    return to_tensor(value, name, float_dtype)


def _is_array_like(v) -> bool:
    return torch.is_tensor(v) or isinstance(v, np.ndarray) or type(v).__name__ in ("DataFrame", "Series")


def first_tensor(structure):
    return flatten(structure)[0]


@dataclass
class ArrayData:
    """In-memory data: ``x``/``y`` are a tensor or a tuple/dict of tensors of equal length."""

    x: Any
    y: Any = None
    sample_weight: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return first_tensor(self.x).shape[0]

    needs_steps_per_epoch = False  # an epoch ends when the samples do

    def example(self) -> tuple:
        """``(x, y)`` of the first two samples: enough to build lazy layers and check shapes."""
        return map_structure(lambda t: t[:2], self.x), None if self.y is None else map_structure(lambda t: t[:2], self.y)

    def to(self, device) -> "ArrayData":
        """The data on ``device``, moved once (batches are then views of it)."""
        move = lambda t: t.to(device, non_blocking=True) if torch.is_tensor(t) else t  # noqa: E731
        return ArrayData(map_structure(move, self.x), map_structure(move, self.y),
                         None if self.sample_weight is None else self.sample_weight.to(device))

    def take(self, index) -> "ArrayData":
        pick = lambda t: t[index]  # noqa: E731
        return ArrayData(map_structure(pick, self.x), None if self.y is None else map_structure(pick, self.y),
                         None if self.sample_weight is None else self.sample_weight[index])

    def split_last(self, fraction: float) -> tuple["ArrayData", "ArrayData"]:
        """Keras's validation_split: the last ``fraction`` of the samples, taken before shuffling."""
        n = self.size
        n_val = int(math.floor(n * fraction))
        if n_val == 0 or n_val == n:
            raise KilnValueError(f"validation_split={fraction} leaves {n - n_val} training and {n_val} validation "
                                 f"samples out of {n}; choose a fraction that keeps both non-empty.")
        cut = n - n_val
        return self.take(slice(0, cut)), self.take(slice(cut, n))

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(self.size / batch_size)

    def with_class_weight(self, class_weight: dict) -> "ArrayData":
        """The data with each sample weighted by its class's weight (times its own sample weight)."""
        return ArrayData(self.x, self.y, _class_weighted(self.y, self.sample_weight, class_weight))

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                start_step: int = 0) -> Iterator[tuple]:
        """Yield ``(x, y, sample_weight)`` batches: one gather per epoch, then slices (views).

        ``start_step`` skips the epoch's first batches (after drawing the same order), which is
        how a resumed run continues inside an epoch."""
        data = self
        if shuffle:
            perm = torch.randperm(self.size, generator=generator)
            data = self.take(perm.to(first_tensor(self.x).device))
        x, y, sw = data.x, data.y, data.sample_weight
        n = data.size
        if torch.is_tensor(x) and (y is None or torch.is_tensor(y)):
            for start in range(start_step * batch_size, n, batch_size):  # the common case: no tree walking
                end = start + batch_size
                yield x[start:end], (None if y is None else y[start:end]), (None if sw is None else sw[start:end])
            return
        for start in range(start_step * batch_size, n, batch_size):
            cut = lambda t, s=start: t[s:s + batch_size]  # noqa: E731
            yield (map_structure(cut, x), None if y is None else map_structure(cut, y),
                   None if sw is None else sw[start:start + batch_size])


@dataclass
class StreamData:
    """Batches from a ``DataLoader``, a Keras ``PyDataset`` or a Python generator.

    Each batch is ``x``, ``(x, y)`` or ``(x, y, sample_weight)``. A generator is not restarted
    between epochs (as in Keras): each epoch takes the next ``steps_per_epoch`` batches.
    ``device`` is where each batch is moved as it comes (None: left where it is).
    """

    loader: Any
    device: torch.device | None = None

    @property
    def size(self) -> None:
        return None  # a stream's sample count is not known without reading it

    @property
    def needs_steps_per_epoch(self) -> bool:
        """True for a generator or iterator: it has no length and is not restarted between
        epochs, so only ``steps_per_epoch`` can say where an epoch ends."""
        return not hasattr(self.loader, "__len__")

    def example(self) -> None:
        return None  # reading two samples would consume a generator: the model is built on the first batch

    def to(self, device) -> "StreamData":
        return StreamData(self.loader, device)

    def num_batches(self, batch_size: int | None = None) -> int | None:
        try:
            return len(self.loader)
        except TypeError:
            return None

    def split_last(self, fraction: float):
        raise KilnValueError("validation_split works only with in-memory arrays; for a Dataset or "
                             "DataLoader pass validation_data instead.")

    def with_class_weight(self, class_weight: dict):
        _check_class_weight_type(class_weight)
        raise KilnValueError("class_weight works with in-memory arrays; for a DataLoader yield sample weights "
                             "as a third element of each batch instead.")

    def batches(self, batch_size=None, shuffle=False, generator=None, start_step: int = 0) -> Iterator[tuple]:
        """Yield ``(x, y, sample_weight)`` on ``self.device``; ``start_step`` skips the first
        batches (a resumed run draws the same order, then continues where it stopped)."""
        batches = self._moved_batches(shuffle, generator)
        return itertools.islice(batches, start_step, None) if start_step else batches

    def _moved_batches(self, shuffle, generator) -> Iterator[tuple]:
        device = self.device
        move = lambda t: to_tensor(t).to(device, non_blocking=True)  # noqa: E731
        for batch in self._raw_batches(shuffle, generator):
            if isinstance(batch, (list, tuple)) and 2 <= len(batch) <= 3:
                x, y = batch[0], batch[1]
                sw = batch[2] if len(batch) == 3 else None
            elif isinstance(batch, (list, tuple)) and len(batch) == 1:
                x, y, sw = batch[0], None, None  # e.g. a TensorDataset of inputs only
            else:
                x, y, sw = batch, None, None
            yield (map_structure(move, x), None if y is None else map_structure(move, y),
                   None if sw is None else move(sw))

    def _raw_batches(self, shuffle, generator):
        source = self.loader
        if _is_batch_sequence(source):
            order = torch.randperm(len(source), generator=generator).tolist() if shuffle else range(len(source))
            for index in order:
                yield source[index]
            end = getattr(source, "on_epoch_end", None)
            if callable(end):
                end()
            return
        for batch in source:  # not `yield from`: closing this wrapper must not close the user's generator
            yield batch


def _is_batch_sequence(value) -> bool:
    """A Keras ``PyDataset`` or any batch sequence like it: indexable by batch number, with a
    length, not array data."""
    if isinstance(value, PyDataset):
        return True
    return (hasattr(value, "__getitem__") and hasattr(value, "__len__") and not isinstance(value, (list, tuple, dict))
            and not _is_array_like(value) and not isinstance(value, (Dataset, DataLoader)))


def adapt(x, y=None, sample_weight=None, *, batch_size: int = 32, shuffle: bool = False, what: str = "fit",
          float_dtype: torch.dtype = torch.float32):
    """Wrap user data as ``ArrayData`` or ``StreamData``, checking lengths and NaNs once."""
    if x is None:
        raise KilnValueError(f"`{what}` needs data: pass x (and y), e.g. model.{what}(x_train, y_train).")
    if isinstance(x, DataLoader):
        _no_y_for_streams(y, what)
        return StreamData(x)
    if isinstance(x, Dataset) and not torch.is_tensor(x):
        _no_y_for_streams(y, what)
        return StreamData(DataLoader(x, batch_size=batch_size, shuffle=shuffle))
    if _is_batch_sequence(x) or inspect.isgenerator(x) or \
            (isinstance(x, Iterator) and not _is_array_like(x)):
        _no_y_for_streams(y, what)
        return StreamData(x)
    data = ArrayData(_to_structure(x, "x", float_dtype), _to_structure(y, "y", float_dtype),
                     None if sample_weight is None else to_tensor(sample_weight, "sample_weight").to(float_dtype))
    _check_lengths(data)
    _check_finite(data)
    return data


def _class_weighted(y, sample_weight, class_weight: dict) -> torch.Tensor:
    """Per-sample weights ``class_weight[class of y] * sample_weight`` (Keras's class_weight)."""
    _check_class_weight_type(class_weight)
    if not torch.is_tensor(y):
        raise KilnValueError("class_weight is only supported for models with a single output.")
    classes = y.argmax(dim=-1) if (y.ndim > 1 and y.shape[-1] > 1) else y.reshape(-1).round().long()
    n_classes = int(classes.max().item()) + 1
    missing = [c for c in range(n_classes) if c not in class_weight and int((classes == c).sum()) > 0]
    if missing:
        raise KilnValueError(f"class_weight has no entry for class(es) {missing}, present in y; give every class a weight.")
    table = torch.ones(max(n_classes, max(int(k) for k in class_weight) + 1))
    for cls, weight in class_weight.items():
        table[int(cls)] = float(weight)
    weights = table[classes]
    return weights if sample_weight is None else sample_weight * weights


def _check_class_weight_type(class_weight) -> None:
    if not isinstance(class_weight, dict):
        raise KilnTypeError(f"class_weight must be a dict {{class index: weight}}; received {type(class_weight).__name__}")


def _no_y_for_streams(y, what):
    if y is not None:
        raise KilnValueError(f"`y` must not be given when `x` is a Dataset or DataLoader (it yields (x, y) pairs); "
                             f"call model.{what}(loader) instead.")


def _check_lengths(data: ArrayData) -> None:
    named = [("x", t) for t in flatten(data.x)]
    if data.y is not None:
        named += [("y", t) for t in flatten(data.y)]
    if data.sample_weight is not None:
        named.append(("sample_weight", data.sample_weight))
    for name, t in named:
        if t.ndim == 0:
            raise ShapeError(f"`{name}` is a scalar; it needs a first (sample) axis.")
    sizes = {name: t.shape[0] for name, t in named}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise ShapeError(f"x, y and sample_weight must have the same number of samples, but {detail}. "
                         f"Check that they come from the same rows.")
    if named and named[0][1].shape[0] == 0:
        raise KilnValueError("The data is empty (0 samples); pass at least one sample.")


def _check_finite(data: ArrayData) -> None:
    for name, structure in (("x", data.x), ("y", data.y)):
        if structure is None:
            continue
        for t in flatten(structure):
            if t.is_floating_point() and not torch.isfinite(t).all():
                bad = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1).nonzero().flatten()
                rows = bad[:5].tolist()
                raise KilnValueError(f"`{name}` contains NaN or infinite values in {len(bad)} sample(s), "
                                     f"first at row(s) {rows}. Fill or drop them before training.")
