"""Sequential: a plain stack of layers, each feeding the next (``keras.Sequential``).

Layers are direct submodules named like Keras's layers, so a ``state_dict`` reads like
Keras's weight names (``dense.kernel``, ``dense_1.bias``). Any ``nn.Module`` may be a layer.
"""

from __future__ import annotations

import torch
from torch import nn

from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.layer import Layer
from kiln.layers.symbolic import VARIABLE_AXIS_LENGTHS, KerasTensor
from kiln.models.model import Model
from kiln.utils.naming import attach_layer

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: list of layers (kiln layers or any ``nn.Module``); an ``Input(shape=...)``
            first, or ``input_shape=`` on the first layer, builds the model at once.
        name: model name.

    Example::

        model = Sequential([Dense(64, activation="relu", input_shape=(10,)), Dense(1)])
    """

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name or "sequential", trainable=trainable)
        self._layer_names: list[str] = []
        self._input_spec = None  # (shape without batch, dtype) once known
        self._mask_layers = None  # whether a layer makes masks; None: not worked out since the last add/pop
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[nn.Module]:
        return [self._modules[name] for name in self._layer_names]

    def named_layers(self) -> list[tuple[str, nn.Module]]:
        return [(name, self._modules[name]) for name in self._layer_names]

    def add(self, layer) -> None:
        """Append a layer (or ``Input``); builds the model when the input shape is known."""
        if isinstance(layer, KerasTensor):
            if self._layer_names:
                raise KilnValueError("An Input can only be the first entry of a Sequential model.")
            self._input_spec = (tuple(layer.shape[1:]), layer.dtype)
            return
        if not isinstance(layer, nn.Module):
            raise KilnTypeError(f"Sequential.add expects a layer (an nn.Module); received {type(layer).__name__}: {layer!r}")
        first = not self._layer_names
        self._mask_layers = None
        name = attach_layer(self, getattr(layer, "name", None) or type(layer).__name__.lower(), layer)
        self._layer_names.append(name)
        if isinstance(layer, Layer):
            layer.name = name
            if first and self._input_spec is None and layer._input_shape_arg is not None:
                dtype = layer.dtype if layer.dtype.is_floating_point else torch.float32
                self._input_spec = (layer._input_shape_arg, dtype)
        if self._input_spec is not None:
            self._build_from_spec()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layer_names:
            raise KilnValueError("There are no layers in the model to pop.")
        name = self._layer_names.pop()
        self._mask_layers = None
        layer = self._modules[name]
        del self._modules[name]
        return layer

    def _variable_length_example(self):
        """An input with another length on variable axes (for summary's None dims), or None."""
        if self._input_spec is None or all(d is not None for d in self._input_spec[0]):
            return None
        shape, dtype = self._input_spec
        length = VARIABLE_AXIS_LENGTHS[1]
        return torch.zeros((2,) + tuple(length if d is None else d for d in shape), dtype=dtype, device=self.device)

    def _build_from_spec(self) -> None:
        """Run a tiny batch through the stack so every layer creates its weights now."""
        shape, dtype = self._input_spec
        length = VARIABLE_AXIS_LENGTHS[0]
        example = torch.zeros((2,) + tuple(length if d is None else d for d in shape), dtype=dtype, device=self.device)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                self(example)
        finally:
            self.train(was_training)

    @property
    def input_shape(self):
        return None if self._input_spec is None else (None,) + tuple(self._input_spec[0])

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self._carries_masks():
            return self._call_with_masks(inputs, training, mask)
        x = inputs
        if training is None:
            for name in self._layer_names:
                x = self._modules[name](x)
            return x
        for name in self._layer_names:
            layer = self._modules[name]
            x = layer(x, training=training) if getattr(layer, "_accepts_training", False) else layer(x)
        return x

    def _carries_masks(self) -> bool:
        """Whether some layer makes or changes masks (worked out once per list of layers)."""
        if self._mask_layers is None:
            from kiln.layers.masking import produces_masks
            self._mask_layers = any(produces_masks(self._modules[n]) for n in self._layer_names)
        return self._mask_layers

    def _call_with_masks(self, inputs, training, mask):
        """The stack with Keras's masks: each layer gets the mask of its input (when its call
        takes ``mask``) and ``compute_mask`` gives the mask of its output."""
        from kiln.layers.masking import mask_call_kwargs
        x = inputs
        for name in self._layer_names:
            layer = self._modules[name]
            kwargs = {"training": training} if training is not None and getattr(layer, "_accepts_training", False) \
                else {}
            if mask is not None:
                kwargs.update(mask_call_kwargs(layer, [mask], kwargs))
            out = layer(x, **kwargs)
            mask = layer.compute_mask(x, mask) if isinstance(layer, Layer) else None
            x = out
        self._output_mask = mask
        return x

    def compute_mask(self, inputs, mask=None):
        """The mask of the last layer's output, from the latest call on these inputs."""
        return getattr(self, "_output_mask", None)

    def get_config(self) -> dict:
        from kiln.saving.serialization import serialize_layer
        config = {"name": self.name, "trainable": self.trainable, "layers": [serialize_layer(l) for l in self.layers]}
        if self._input_spec is not None:
            config["input_shape"] = list(self._input_spec[0])
            config["input_dtype"] = str(self._input_spec[1]).replace("torch.", "")
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kiln.layers.symbolic import Input
        from kiln.saving.serialization import deserialize_layer
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("input_shape") is not None:
            model.add(Input(shape=tuple(config["input_shape"]), dtype=config.get("input_dtype")))
        for layer_config in config["layers"]:
            model.add(deserialize_layer(layer_config, custom_objects=custom_objects))
        return model
