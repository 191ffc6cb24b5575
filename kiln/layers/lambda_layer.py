"""Lambda: wrap any Python callable as a layer (``Lambda(lambda x: x / 255)``).

Why it cannot be saved: kiln's model files are JSON plus safetensors and loading never runs
code from a file (Keras itself only loads a Lambda with ``safe_mode=False``, by unmarshalling
bytecode). So ``get_config`` raises a ``SerializationError`` that names the fix: a small
custom Layer registered with ``@kiln.saving.register_serializable()``. Weights of a model
with a Lambda still save with ``model.save_weights``.
"""

from __future__ import annotations

import inspect

from kiln.errors import KilnTypeError, SerializationError
from kiln.layers.layer import Layer

__all__ = ["Lambda"]


class Lambda(Layer):
    """Apply ``function(inputs, **arguments)`` as a layer without weights.

    Args:
        function: any callable taking the inputs (a tensor, or the list a merge-like
            function receives); it may also take ``mask=`` and ``training=``, which are then passed.
        output_shape: accepted for Keras compatibility (kiln infers shapes by running the
            function) and kept on the layer.
        mask: accepted for Keras compatibility and kept on the layer (kiln does not propagate masks).
        arguments: optional dict of extra keyword arguments for ``function``.

    Shapes: whatever ``function`` returns.

    Example::

        Lambda(lambda x: x[:, -1, :])  # (B, T, F) -> (B, F): the last time step
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise KilnTypeError(f"Received an invalid value for `function`, expected a callable. "
                                f"Received: function={function!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise KilnTypeError(f"Received an invalid value for `arguments`, expected a dict of keyword arguments "
                                f"for `function`. Received: arguments={arguments!r}")
        self.function = function
        self.output_shape = output_shape
        self.mask = mask
        self.arguments = dict(arguments or {})
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):  # some builtins have no signature
            params = {}
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._fn_takes_mask = "mask" in params or takes_kwargs
        self._fn_takes_training = "training" in params or takes_kwargs

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_takes_mask and mask is not None:
            kwargs["mask"] = mask
        if self._fn_takes_training and training is not None:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def get_config(self):
        fn = getattr(self.function, "__qualname__", None) or repr(self.function)
        raise SerializationError(
            f"Layer '{self.name}' (Lambda) wraps the Python function {fn}, which kiln cannot save: model files "
            "hold JSON configs and loading never runs code from a file. Replace the Lambda with a custom layer "
            "registered for saving, e.g.\n\n"
            "    @kiln.saving.register_serializable()\n"
            "    class MyOp(kiln.layers.Layer):\n"
            "        def call(self, inputs):\n"
            "            return ...  # the Lambda's computation\n\n"
            "or keep the Lambda and save only the weights with model.save_weights(...).")

    def extra_repr(self):
        fn = getattr(self.function, "__qualname__", None) or repr(self.function)
        return f"name={self.name!r}, function={fn}"
