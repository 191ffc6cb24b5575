"""InputLayer: Keras's ``Sequential([InputLayer(shape=(28, 28)), ...])``, as a symbolic ``Input``.

kiln has no separate input-layer object: a model's input is the symbolic tensor ``Input``
returns, and ``Sequential`` takes one as its first entry. This function accepts the argument
names of both Keras versions — Keras 3's ``shape=`` / ``batch_shape=`` and Keras 2's
``input_shape=`` / ``batch_input_shape=`` / ``input_tensor=`` — and returns that tensor.
"""

from __future__ import annotations

from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.symbolic import Input

__all__ = ["InputLayer"]


def InputLayer(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, input_tensor=None,
               name=None, **kwargs):
    """Keras's ``InputLayer``: a symbolic tensor standing for one batch of model inputs.

    Args:
        shape: shape of one sample, without the batch axis, e.g. ``(28, 28)``. Keras 2's
            ``input_shape=`` means the same.
        batch_size: optional fixed batch size (accepted, not enforced).
        dtype: "float32" (default) or an integer dtype such as "int64" for token ids.
        sparse: accepted for Keras compatibility.
        batch_shape: shape with the batch axis first, e.g. ``(None, 28, 28)``; Keras 2's
            ``batch_input_shape=`` means the same.
        input_tensor: accepted for Keras compatibility (Keras 2's name for ``tensor=``).
        name: name of the input.

    Shapes: returns a ``KerasTensor`` of shape ``(None, *shape)``.

    Example::

        Sequential([InputLayer(shape=(28, 28)), Flatten(), Dense(10)])
    """
    # Keras 2's names for the same two arguments.
    if "input_shape" in kwargs:
        if shape is not None:
            raise KilnValueError("InputLayer received both `shape` and its Keras 2 name `input_shape`; pass only "
                                 f"one. Received: shape={shape!r}, input_shape={kwargs['input_shape']!r}")
        shape = kwargs.pop("input_shape")
    if "batch_input_shape" in kwargs:
        if batch_shape is not None:
            raise KilnValueError("InputLayer received both `batch_shape` and its Keras 2 name `batch_input_shape`; "
                                 f"pass only one. Received: batch_shape={batch_shape!r}, "
                                 f"batch_input_shape={kwargs['batch_input_shape']!r}")
        batch_shape = kwargs.pop("batch_input_shape")
    if kwargs:
        raise KilnTypeError(f"Unrecognized keyword arguments passed to InputLayer: {kwargs}")
    if shape is None and batch_shape is None:
        raise KilnValueError("InputLayer needs `shape`, the shape of one sample without the batch axis, "
                             "e.g. InputLayer(shape=(10,)).")
    return Input(shape=shape, batch_size=batch_size, dtype=dtype, name=name, sparse=sparse,
                 batch_shape=batch_shape, tensor=input_tensor)
