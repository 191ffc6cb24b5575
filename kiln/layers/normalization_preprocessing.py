"""Normalization: Keras 3's preprocessing layer that standardises features with adapted statistics.

``adapt(data)`` computes the mean and (biased) variance of ``data`` over every axis except
``axis``; ``call`` then returns ``(x - mean) / max(sqrt(variance), 1e-7)`` (Keras's formula and
``backend.epsilon()``), or ``mean + x * max(sqrt(variance), 1e-7)`` with ``invert=True``.

Why streaming statistics: ``adapt`` accepts an iterable of batches (a generator, a
``DataLoader``), so it cannot hold all the data. Each batch contributes its count, mean and sum
of squared deviations (in float64); batches are merged with Chan et al.'s pairwise formula,
which gives the same mean and variance as NumPy on the concatenated data, without the
cancellation of ``E[x^2] - E[x]^2`` when the mean is large next to the spread.

The adapted statistics are buffers ``mean``, ``variance`` and ``count`` (``count``: Keras keeps
it for old saved models; here it holds the number of values each statistic was computed from):
they are saved in the ``state_dict`` and count as non-trainable weights, as in Keras —
9 features give 9 + 9 + 1 = 19. ``mean``/``variance`` given to the constructor are constants,
not weights (0 parameters, as in Keras), and are saved in the config instead.
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np
import torch

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.layer import Layer
from kiln.layers.symbolic import contains_symbolic

__all__ = ["Normalization"]

EPSILON = 1e-7  # keras.backend.epsilon(): the smallest standard deviation divided by


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_axis(axis):
    """None, an int, or a non-empty list of ints (stored as given, lists for JSON)."""
    if axis is None or _is_int(axis):
        return None if axis is None else int(axis)
    if isinstance(axis, (list, tuple)) and axis and all(_is_int(a) for a in axis):
        return [int(a) for a in axis]
    raise KilnValueError(f"Received an invalid value for `axis`, expected an integer, a tuple of integers or "
                         f"None. Received: axis={axis!r}")


def _check_statistic(value, name: str):
    """A number or a (nested) list of numbers, kept as plain Python for the config."""
    if value is None:
        return None
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a number or a list of numbers. "
                             f"Received: {name}={value!r}") from err
    return arr.tolist()


def _positive_int_or_none(value, name: str):
    if value is not None and (not _is_int(value) or value <= 0):
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a positive integer or None. "
                             f"Received: {name}={value!r}")
    return value


class Normalization(Layer):
    """Shift and scale inputs to mean 0 and standard deviation 1 per feature, as Keras does.

    The statistics come from ``adapt(data)`` or from the ``mean``/``variance`` arguments;
    calling the layer before either raises an error that says to call ``adapt()``.

    Args:
        axis: the axis or axes that keep a separate mean and variance per index (default -1:
            one per feature of the last axis); ``None``: one scalar mean and variance.
            The batch axis cannot be kept.
        mean: optional mean value(s), broadcast to the kept axes (give ``variance`` with it).
        variance: optional variance value(s), same shape as ``mean``.
        invert: apply the inverse transformation, ``mean + x * std`` (default False).

    Shapes: any ``(batch, ...)`` -> the same shape, in the layer's float dtype for integer
    inputs. Adapting on ``(N, T, C)`` data keeps ``(C,)`` statistics with ``axis=-1``,
    ``(T,)`` with ``axis=1``, a scalar with ``axis=None``.

    Example::

        normalizer = Normalization(axis=-1)
        normalizer.adapt(x_train)  # (N, 9) -> mean and variance of shape (9,)
        model = Sequential([normalizer, Dense(64, activation="relu"), Dense(1)])
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis)
        if (mean is None) != (variance is None):
            raise KilnValueError(f"When setting values directly, both `mean` and `variance` must be set. "
                                 f"Received: mean={mean!r} and variance={variance!r}")
        self.input_mean = _check_statistic(mean, "mean")
        self.input_variance = _check_statistic(variance, "variance")
        if mean is not None:
            mean_shape, variance_shape = np.shape(self.input_mean), np.shape(self.input_variance)
            if mean_shape != variance_shape:
                raise KilnValueError(f"When setting values directly, `mean` and `variance` must have the same shape. "
                                     f"Received: mean shape {mean_shape} and variance shape {variance_shape}")
            if len(mean_shape) > len(self._axes()):
                raise KilnValueError(f"The rank of `mean` must be at most the number of kept axes "
                                     f"({len(self._axes())}). Received: mean shape {mean_shape} for axis={self.axis}")
            if np.any(np.asarray(self.input_variance) < 0):
                raise KilnValueError(f"Received an invalid value for `variance`, expected values >= 0. "
                                     f"Received: variance={self.input_variance!r}")
        self.invert = bool(invert)
        # True once the statistics are real: adapted, given, or loaded from a state_dict.
        self._adapted = mean is not None
        # A layer rebuilt by from_config (load_model) is called on a zero batch to build before
        # its saved statistics are loaded; that call must not raise "call adapt()".
        self._restoring = False
        self._tracing = False

    def _axes(self) -> tuple:
        if self.axis is None:
            return ()
        return (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)

    # ------------------------------------------------------------------ building
    def build(self, input_shape):
        ndim = len(input_shape)
        axes = self._axes()
        if any(not -ndim <= a < ndim for a in axes):
            raise ShapeError(f"Layer '{self.name}' (Normalization) has axis={self.axis}, which is out of range for "
                             f"inputs of rank {ndim} (shape {input_shape}).")
        keep = tuple(sorted({a % ndim for a in axes}))  # sorted: the statistics never transpose axes
        if 0 in keep:
            raise ShapeError(f"Layer '{self.name}' (Normalization) cannot keep statistics per index of the batch "
                             f"axis (axis={self.axis} for inputs of shape {input_shape}); use a feature axis, "
                             f"or axis=None for one scalar mean and variance.")
        if any(input_shape[d] is None for d in keep):
            raise ShapeError(f"Layer '{self.name}' (Normalization) needs known sizes on the kept axes "
                             f"axis={self.axis}; received shape {input_shape}.")
        self._ndim = ndim
        self._keep_axis = keep
        self._reduce_axis = tuple(d for d in range(ndim) if d not in keep)
        self._stat_shape = tuple(input_shape[d] for d in keep)  # (C,) for axis=-1 on (None, T, C)
        self._broadcast_shape = tuple(input_shape[d] if d in keep else 1 for d in range(ndim))  # (1, 1, C)
        if self.input_mean is None:
            self.register_buffer("mean", torch.zeros(self._stat_shape, dtype=self.dtype))
            self.register_buffer("variance", torch.ones(self._stat_shape, dtype=self.dtype))
            # Floating so that it counts as a weight, as Keras counts its int "count" variable.
            self.register_buffer("count", torch.zeros((), dtype=self.dtype))
        else:
            self._fixed_mean = self._broadcast_given(self.input_mean, "mean")
            self._fixed_variance = self._broadcast_given(self.input_variance, "variance")
        self.built = True

    def _broadcast_given(self, value, name: str) -> torch.Tensor:
        """Align a given mean/variance with the kept axes from the right, as Keras does."""
        arr = np.asarray(value, dtype=np.float64)
        expanded = [1] * self._ndim
        for i in range(1, arr.ndim + 1):
            expanded[self._keep_axis[-i]] = arr.shape[-i]
        try:
            arr = np.broadcast_to(arr.reshape(expanded), self._broadcast_shape)
        except ValueError as err:
            raise ShapeError(f"Layer '{self.name}' (Normalization): `{name}` of shape {np.shape(value)} cannot be "
                             f"broadcast to the kept axes axis={self.axis} of size {self._stat_shape}.") from err
        return torch.tensor(arr, dtype=self.dtype)

    # ------------------------------------------------------------------ adapt
    def adapt(self, data, batch_size=None, steps=None):
        """Compute the mean and variance of ``data`` over every axis except ``axis``.

        Args:
            data: a NumPy array, torch tensor, pandas DataFrame/Series or nested list of
                numbers (all the data), or an iterable of batches: a list of arrays, a
                generator, a ``DataLoader``. A batch may be ``(x, y)``: only ``x`` is used.
            batch_size: for in-memory data, the number of samples per step (the result is
                the same; default: all at once). Not allowed for an iterable of batches.
            steps: use only the first ``steps`` batches (needed for an endless generator);
                for in-memory data the batches have ``batch_size`` samples (default 32).

        Raises:
            KilnValueError: no samples, or a bad ``batch_size``/``steps``.
            KilnTypeError: non-numeric data, or a batch that is not array-like.
            ShapeError: batches whose kept axes differ from each other or from the built layer.
        """
        batch_size = _positive_int_or_none(batch_size, "batch_size")
        steps = _positive_int_or_none(steps, "steps")
        if self.input_mean is not None:
            raise KilnValueError(f"Layer '{self.name}' (Normalization) was given `mean` and `variance`; adapt() "
                                 f"cannot change them. Create the layer without mean/variance to adapt it.")
        if _is_in_memory(data):
            array = _to_float64(data, "data")
            if batch_size is None and steps is None:
                batches = iter([array])
            else:
                size = batch_size or 32  # Keras 2's default batch_size for adapt
                batches = (array[i:i + size] for i in range(0, len(array), size))
        else:
            if batch_size is not None:
                raise KilnValueError(f"Do not pass `batch_size` to adapt() with an iterable of batches (it already "
                                     f"yields batches). Received: batch_size={batch_size}")
            try:
                batches = (_to_float64(_features(b), "a batch of data") for b in data)
            except TypeError as err:
                raise KilnTypeError(f"adapt() expects a NumPy array, a torch tensor, a DataFrame or an iterable of "
                                    f"batches. Received: {type(data).__name__}") from err
        if steps is not None:
            batches = itertools.islice(batches, steps)

        first = next(batches, None)
        if first is None:
            raise KilnValueError("adapt() received no batches. Pass the training features, e.g. "
                                 "normalizer.adapt(x_train), or a non-empty iterable of batches.")
        self._prepare_for(first.shape)
        count, mean, m2 = 0, np.zeros(self._stat_shape), np.zeros(self._stat_shape)
        for batch in itertools.chain([first], batches):
            self._check_batch(batch.shape, first.shape)
            n = math.prod(batch.shape[d] for d in self._reduce_axis)
            if n == 0:
                continue
            batch_mean = batch.mean(axis=self._reduce_axis)
            batch_m2 = np.square(batch - batch_mean.reshape(self._broadcast_shape)).sum(axis=self._reduce_axis)
            # Chan et al.: merge (count, mean, M2) of two disjoint sets exactly.
            delta = batch_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + np.square(delta) * (count * n / total)
            count = total
        if count == 0:
            raise KilnValueError("adapt() received batches without any samples; pass non-empty data.")
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(np.asarray(mean)))
            self.variance.copy_(torch.as_tensor(np.asarray(m2 / count)))  # biased variance, as Keras and np.var
            self.count.fill_(count)
        self._adapted = True

    def _prepare_for(self, shape) -> None:
        """Build from the data's shape, or check it against the shape the layer was built for."""
        if len(shape) == 0:
            raise ShapeError(f"Layer '{self.name}' (Normalization): adapt() needs data with a batch axis; "
                             f"received a scalar.")
        if not self.built:
            self.build((None,) + tuple(shape[1:]))
            self._build_input_shape = (None,) + tuple(shape[1:])
        else:
            self._check_batch(shape, None)

    def _check_batch(self, shape, first_shape) -> None:
        if len(shape) != self._ndim or any(shape[d] != self._broadcast_shape[d] for d in self._keep_axis):
            expected = tuple("?" if d not in self._keep_axis else self._broadcast_shape[d] for d in range(self._ndim))
            raise ShapeError(f"Layer '{self.name}' (Normalization) keeps statistics of shape {self._stat_shape} on "
                             f"axis={self.axis}, so its data must have shape {expected} (? = any size); "
                             f"received a batch of shape {tuple(shape)}"
                             + (f" (the first batch had shape {tuple(first_shape)})." if first_shape else "."))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Loading saved statistics (load_model, load_weights, set_weights) counts as adapting.
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + "mean" in state_dict:
            self._adapted = True
            self._restoring = False

    @classmethod
    def from_config(cls, config: dict):
        layer = cls(**config)
        layer._restoring = not layer._adapted  # its statistics follow in the saved state
        return layer

    # ------------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs):
        # Tracing a functional model (symbolic inputs) only needs shapes: allowed before adapt.
        # A real tensor first is the common call: skip the structure walk then.
        if not (args and torch.is_tensor(args[0])) and (contains_symbolic(args) or contains_symbolic(kwargs)):
            self._tracing = True
            try:
                return super().__call__(*args, **kwargs)
            finally:
                self._tracing = False
        return super().__call__(*args, **kwargs)

    def call(self, inputs):
        if not (self._adapted or self._tracing or self._restoring):
            raise KilnValueError(f"Layer '{self.name}' (Normalization) has no mean and variance yet. Call "
                                 f"`{self.name}.adapt(x_train)` before using it (or pass `mean` and `variance` "
                                 f"to the constructor).")
        x = inputs if inputs.is_floating_point() else inputs.to(self.dtype)
        if self.axis is not None:
            self._check_batch(x.shape, None)
        mean, variance = self._statistics(x)
        std = torch.sqrt(variance).clamp_min(EPSILON)  # Keras: maximum(sqrt(variance), epsilon)
        if self.invert:
            return mean + x * std
        return (x - mean) / std

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance shaped to broadcast against ``x``: (1, .., C, .., 1)."""
        if self.input_mean is not None:
            if self._fixed_mean.device != x.device:  # constants are not buffers: follow the inputs once
                self._fixed_mean = self._fixed_mean.to(x.device)
                self._fixed_variance = self._fixed_variance.to(x.device)
            mean, variance = self._fixed_mean, self._fixed_variance
            if self.axis is None:  # scalar statistics apply to inputs of any rank
                mean, variance = mean.reshape(()), variance.reshape(())
        else:
            shape = self._broadcast_shape if self.axis is not None else ()
            mean, variance = self.mean.reshape(shape), self.variance.reshape(shape)
        return mean.to(x.dtype), variance.to(x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, invert=self.invert, mean=self.input_mean, variance=self.input_variance)
        return config

    def extra_repr(self):
        return f"name={self.name!r}, axis={self.axis}, invert={self.invert}, adapted={self._adapted}"


# ---------------------------------------------------------------------- data helpers
def _is_in_memory(data) -> bool:
    """All the data at once (an array, tensor, DataFrame, nested list of numbers), not batches."""
    if torch.is_tensor(data) or isinstance(data, np.ndarray) or type(data).__name__ in ("DataFrame", "Series"):
        return True
    if isinstance(data, (list, tuple)):
        # A list of arrays is a list of batches (as in Keras 3); a list of numbers/lists is the data.
        return not any(_has_shape(item) or isinstance(item, (list, tuple)) and item and _has_shape(item[0])
                       for item in data)
    return isinstance(data, numbers.Number)


def _has_shape(value) -> bool:
    return torch.is_tensor(value) or isinstance(value, np.ndarray) or type(value).__name__ in ("DataFrame", "Series")


def _features(batch):
    """``(x, y)`` or ``(x, y, sample_weight)`` batches (a DataLoader's lists too) -> ``x``."""
    if isinstance(batch, (list, tuple)) and 1 <= len(batch) <= 3 and _has_shape(batch[0]):
        return batch[0]
    if isinstance(batch, dict):
        raise KilnTypeError(f"adapt() cannot use dict batches (keys {list(batch)}); yield the features array, "
                            f"e.g. batch['x'].")
    return batch


def _to_float64(value, what: str) -> np.ndarray:
    if torch.is_tensor(value):
        return value.detach().cpu().double().numpy()
    if type(value).__name__ in ("DataFrame", "Series"):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise KilnTypeError(f"adapt() needs numeric data, but {what} could not be converted to numbers "
                            f"({type(value).__name__}); encode categories as numbers first. ({err})") from err
    return arr
