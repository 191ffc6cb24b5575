"""TimeDistributed: apply one layer to every time step of a sequence, with shared weights.

How: the time axis is folded into the batch axis, ``(B, T, ...) -> (B * T, ...)``, the inner
layer runs once on that big batch, and the result is unfolded to ``(B, T, ...)``. That is one
call instead of ``T`` (fast), and exactly a per-step application because the inner layer
treats every row of its batch independently (true of Dense, Conv2D, pooling, Dropout, ...;
not of BatchNormalization in training, whose statistics then cover all steps, as in Keras).

The inner layer is saved inside this layer's config (``{"class_name", "config"}``) and rebuilt
from it on load, as Bidirectional does with its recurrent layers; custom inner layers need
``@kiln.saving.register_serializable()`` or ``custom_objects``.
"""

from __future__ import annotations

import torch

from kiln.errors import KilnTypeError, ShapeError
from kiln.layers.layer import Layer
from kiln.utils.tree import map_structure

__all__ = ["TimeDistributed"]


class TimeDistributed(Layer):
    """Apply ``layer`` to every temporal slice (axis 1) of the input.

    Args:
        layer: a kiln Layer instance (Dense, Conv2D, a Sequential model, ...).

    Call: ``layer(inputs, training=None)``.

    Shapes: ``(batch, timesteps, *in)`` -> ``(batch, timesteps, *out)``, where ``layer`` maps
    ``(batch, *in)`` to ``(batch, *out)``.

    Example::

        TimeDistributed(Dense(8))  # (B, 10, 16) -> (B, 10, 8): one Dense, shared across the 10 steps
    """

    supports_masking = True  # the (batch, timesteps) mask passes through unchanged

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise KilnTypeError("Please initialize `TimeDistributed` layer with a `kiln.layers.Layer` instance, e.g. "
                                f"TimeDistributed(Dense(8)). Received: layer={layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def _check_rank(self, shape) -> None:
        if not isinstance(shape, tuple) or len(shape) < 3 or isinstance(shape[0], tuple):
            raise ShapeError(f"Layer '{self.name}' (TimeDistributed) needs inputs of rank 3 or more, "
                             f"(batch, timesteps, ...). Received shape {shape}.")

    def build(self, input_shape):
        self._check_rank(input_shape)
        step_shape = (None,) + tuple(input_shape[2:])  # what the inner layer sees: one step of each sample
        if not self.layer.built:
            self.layer._build_from_shape(step_shape)
        self.built = True

    def call(self, inputs, training=None, mask=None):
        self._check_rank(tuple(inputs.shape))
        batch, steps = inputs.shape[:2]
        folded = inputs.reshape((batch * steps,) + tuple(inputs.shape[2:]))  # (B * T, *in)
        kwargs = {"training": training} if training is not None else {}
        if mask is not None:
            from kiln.layers.masking import check_mask
            check_mask(self, mask, inputs)
        outputs = self.layer(folded, **kwargs)
        # (B * T, *out) -> (B, T, *out)
        return map_structure(lambda y: y.reshape((batch, steps) + tuple(y.shape[1:]))
                             if torch.is_tensor(y) else y, outputs)

    def get_config(self):
        from kiln.saving.serialization import serialize_layer
        config = super().get_config()
        config["layer"] = serialize_layer(self.layer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kiln.saving.serialization import deserialize_layer
        config = dict(config)
        if not isinstance(config.get("layer"), Layer):
            config["layer"] = deserialize_layer(config["layer"], custom_objects)
        return cls(**config)

    def extra_repr(self):
        return f"name={self.name!r}"
