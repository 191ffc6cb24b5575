"""The Layer base class: a ``torch.nn.Module`` with Keras's build/call/get_config contract.

Why lazy building: a Keras user writes ``Dense(64)`` without saying how many inputs it
gets; the weights can only be created once the first input (or an ``input_shape=``) shows
the shape. ``build(input_shape)`` runs once, just before the first ``call``.

Shapes given to ``build`` include the batch axis as ``None``: ``(None, 10)``.

Example::

    class Scale(kiln.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight("w", (input_shape[-1],), initializer="ones")
        def call(self, x):
            return x * self.w
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from kiln import constraints, initializers, regularizers
from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.specs import normalize_shape, torch_dtype
from kiln.layers.symbolic import KerasTensor, call_symbolically, contains_symbolic

__all__ = ["Layer", "snake_case", "normalize_shape"]



def snake_case(name: str) -> str:
    """``"GlobalAveragePooling2D"`` -> ``"global_average_pooling2d"`` (Keras's default layer names)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


class Layer(nn.Module):
    """Base class of every kiln layer.

    Args:
        name: unique name inside its model; defaults to the snake-cased class name.
        input_shape: shape of one sample (no batch axis), as in Keras: lets a model
            build its weights before seeing data.
        dtype: dtype of the weights (default float32).
        trainable: False freezes the weights (``requires_grad=False``).
        activity_regularizer: penalty on the layer's output, added to the training loss
            (divided by the batch size, as Keras 3 does).
    """

    def __init__(self, *, name=None, input_shape=None, input_dim=None, batch_size=None, dtype=None,
                 trainable=True, activity_regularizer=None, **kwargs):
        super().__init__()
        if kwargs:
            raise KilnTypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        if name is not None and (not isinstance(name, str) or not name):
            raise KilnValueError(f"`name` must be a non-empty string. Received: name={name!r}")
        self.name = name or snake_case(type(self).__name__)
        if input_shape is None and input_dim is not None:
            input_shape = (input_dim,)
        self._input_shape_arg = normalize_shape(input_shape) if input_shape is not None else None
        self.dtype = torch_dtype(dtype)
        self._trainable = bool(trainable)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._weight_regularizers: list[tuple[str, Any]] = []
        self.built = False
        self._build_input_shape = None
        self._activity_loss = None
        call_params = inspect.signature(self.call).parameters
        self._accepts_training = "training" in call_params
        self._accepts_mask = "mask" in call_params  # functional/Sequential pass masks only then
        self._accepts_query_mask = "query_mask" in call_params  # attention: query/value/key masks
        self._added_losses: list[torch.Tensor] = []  # add_loss terms of the latest call
        self._uses_add_loss = False  # set once add_loss is called: the trainer then collects them

    # ------------------------------------------------------------------ Keras contract
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis included, as None)."""
        self.built = True

    def call(self, inputs, *args, **kwargs):
        """The layer's computation; override it. ``training`` is optional in subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(inputs)")

    # Keras's masking contract: a layer with ``supports_masking = True`` passes the mask of its
    # input on unchanged; layers that make, change or drop masks override ``compute_mask``.
    supports_masking = False

    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output: ``mask`` when ``supports_masking``, else None.

        Masks are boolean tensors shaped like the input without its feature axis, e.g.
        ``(batch, timesteps)``; True marks the steps that count.
        """
        return mask if self.supports_masking else None

    def add_loss(self, loss) -> None:
        """Keras's ``add_loss``: a scalar tensor computed in ``call`` that is added to the training
        loss (and listed in ``layer.losses``) until this layer's next call."""
        if not torch.is_tensor(loss):
            loss = torch.as_tensor(loss, dtype=torch.float32)
        self._added_losses.append(loss)
        self._uses_add_loss = True

    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments; ``type(self).from_config(cfg)`` rebuilds it."""
        config = {"name": self.name, "trainable": self._trainable}
        if self.dtype != torch.float32:
            config["dtype"] = str(self.dtype).replace("torch.", "")
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # ------------------------------------------------------------------ weights
    def add_weight(self, *args, shape=None, initializer=None, regularizer=None, trainable=True, dtype=None,
                   name=None, constraint=None, layout="keras", **keras_options):
        """Create, register and return an ``nn.Parameter`` (Keras's ``add_weight``).

        Both Keras spellings work: Keras 3's ``add_weight(shape=(3,), initializer="zeros",
        name="w")`` (shape first when positional) and kiln's/Keras 2's name-first
        ``add_weight("w", (3,), "zeros", regularizer)``. An unnamed weight is called
        ``variable``, ``variable_1``, ... ``constraint`` (kiln.constraints.get) is applied by the
        optimizer after each update. ``layout="torch"`` tells the initializer that the
        shape is in torch's conv layout (out, in, *kernel) so fan-in/fan-out are right.
        Keras's ``autocast``/``aggregation``/``synchronization`` options are accepted and
        have no effect in kiln.
        """
        positional = list(args)
        if positional and isinstance(positional[0], str):
            name = positional.pop(0)
            slots = ("shape", "initializer", "regularizer", "trainable", "dtype")
        else:
            slots = ("shape", "initializer", "dtype", "trainable", "autocast", "regularizer")
        values = {"shape": shape, "initializer": initializer, "regularizer": regularizer,
                  "trainable": trainable, "dtype": dtype}
        for slot, value in zip(slots, positional):
            values[slot] = value
        unknown = set(keras_options) - {"autocast", "aggregation", "synchronization", "overwrite_with_gradient",
                                        "use_resource", "experimental_autocast", "partitioner", "caching_device"}
        if unknown:
            raise KilnTypeError(f"add_weight() got unexpected keyword arguments {sorted(unknown)}")
        if values["shape"] is None:
            values["shape"] = ()
        if name is None:
            from kiln.utils.naming import unique_name
            name = unique_name("variable", dict(self.named_parameters(recurse=False)))
        init = initializers.get(values["initializer"] if values["initializer"] is not None else "glorot_uniform")
        value = init(tuple(values["shape"]), dtype=torch_dtype(values["dtype"]) if values["dtype"] else self.dtype,
                     layout=layout)
        param = nn.Parameter(value, requires_grad=bool(values["trainable"]) and self._trainable)
        constraint = constraints.get(constraint)
        if constraint is not None:
            # Kept on the parameter (as Keras's variable.constraint) so the optimizer applies it
            # after each step without knowing which layer owns the weight.
            param.constraint = constraint
        self.register_parameter(name, param)
        reg = regularizers.get(values["regularizer"])
        if reg is not None:
            self._weight_regularizers.append((name, reg))
        return param

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool):
        self._trainable = bool(value)
        for p in self.parameters():
            p.requires_grad_(self._trainable)

    @property
    def weights(self) -> list[torch.Tensor]:
        return list(self.parameters()) + [b for b in self.buffers()]

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        return [p for p in self.parameters() if not p.requires_grad] + list(self.buffers())

    def count_params(self) -> int:
        """Number of weights, trainable or not (buffers such as moving statistics included)."""
        return sum(p.numel() for p in self.parameters()) + sum(
            b.numel() for b in self.buffers() if b.is_floating_point())

    def get_weights(self) -> list:
        """The weights as NumPy arrays, in ``state_dict`` order."""
        return [t.detach().cpu().numpy().copy() for t in self.state_dict().values()]

    def set_weights(self, weights) -> None:
        """Set the weights from NumPy arrays in the order of ``get_weights()``."""
        state = self.state_dict()
        if len(weights) != len(state):
            raise KilnValueError(f"{self.name}: expected {len(state)} weight arrays, received {len(weights)}")
        new = {}
        for (key, old), value in zip(state.items(), weights):
            value = torch.as_tensor(value)
            if tuple(value.shape) != tuple(old.shape):
                raise ShapeError(f"{self.name}: weight {key!r} has shape {tuple(old.shape)}, "
                                 f"received an array of shape {tuple(value.shape)}")
            new[key] = value.to(dtype=old.dtype)
        self.load_state_dict(new)

    def regularization_losses(self) -> list[torch.Tensor]:
        """Weight and activity penalties of this layer only (models gather them over layers)."""
        losses = [reg(getattr(self, name)) for name, reg in self._weight_regularizers]
        if self._activity_loss is not None:
            losses.append(self._activity_loss)
        losses.extend(self._added_losses)
        return losses

    @property
    def has_penalties(self) -> bool:
        """True when this layer itself has a weight or activity regularizer, or has used ``add_loss``."""
        return bool(self._weight_regularizers) or self.activity_regularizer is not None or self._uses_add_loss

    @property
    def losses(self) -> list[torch.Tensor]:
        """Keras's ``layer.losses``: every penalty of this layer and the layers inside it."""
        out = []
        for module in self.modules():
            if isinstance(module, Layer):
                out.extend(module.regularization_losses())
        return out

    # ------------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs):
        # Fast path first: a real tensor as the first input is by far the common call.
        if args and isinstance(args[0], torch.Tensor):
            return super().__call__(*args, **kwargs)
        if contains_symbolic(args) or contains_symbolic(kwargs):
            return call_symbolically(self, args, kwargs)
        if args and _holds_numpy(args[0]):
            # Keras lets you call a model on NumPy data and read `.numpy()` off the result:
            # convert to tensors on the layer's device and run without recording gradients.
            inputs = _numpy_to_tensors(args[0], self)
            with torch.no_grad():
                return super().__call__(inputs, *args[1:], **kwargs)
        return super().__call__(*args, **kwargs)

    def forward(self, inputs, *args, **kwargs):
        if not self.built:
            self.build_for(inputs)
        if "training" in kwargs and not self._accepts_training:
            kwargs.pop("training")
        if self._added_losses:
            self._added_losses = []  # add_loss terms live for one call, as in Keras
        try:
            outputs = self.call(inputs, *args, **kwargs)
        except RuntimeError as err:
            if _looks_like_dtype_error(err):
                raise KilnTypeError(self._dtype_message(inputs, err)) from err
            if _looks_like_shape_error(err):
                raise ShapeError(self._shape_message(inputs, err)) from err
            raise
        if self.activity_regularizer is not None and torch.is_tensor(outputs):
            self._activity_loss = self.activity_regularizer(outputs) / max(outputs.shape[0], 1)
        return outputs

    def build_for(self, inputs) -> None:
        """Build from example inputs, then move new weights to the inputs' device."""
        self._build_from_shape(_shape_tree(inputs))
        example = _first_tensor(inputs)
        if example is not None:
            self.to(example.device)

    def _build_from_shape(self, shape) -> None:
        """Check ``shape`` against the declared ``input_shape``, build, and remember the shape."""
        self._check_declared_shape(shape)
        self.build(shape)
        self.built = True
        self._build_input_shape = shape

    def _check_declared_shape(self, shape) -> None:
        declared = self._input_shape_arg
        if declared is None or not isinstance(shape, tuple) or (shape and isinstance(shape[0], tuple)):
            return
        received = shape[1:]
        if len(received) != len(declared) or any(d is not None and d != r for d, r in zip(declared, received)):
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) expects inputs of shape "
                             f"{(None,) + declared}, but received shape {shape}.")

    def _shape_message(self, inputs, err) -> str:
        received = _shape_tree(inputs)
        built = self._build_input_shape
        msg = f"Layer '{self.name}' ({type(self).__name__}) received an input of shape {received}"
        if built is not None:
            msg += f", but it was built for inputs of shape {built}"
        return msg + f". Check the data's shape or the layer's input_shape. (torch said: {err})"

    def _dtype_message(self, inputs, err) -> str:
        received = getattr(_first_tensor(inputs), "dtype", None)
        weights = next((p.dtype for p in self.parameters()), None)
        return (f"Layer '{self.name}' ({type(self).__name__}) received {received} inputs but computes in "
                f"{weights}. Cast the data (e.g. x.astype('float32')) or build the layer with dtype={received}. "
                f"(torch said: {err})")

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def _holds_numpy(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, np.ndarray) for v in value)
    if isinstance(value, dict) and value:
        return all(isinstance(v, np.ndarray) for v in value.values())
    return False


def _numpy_to_tensors(value, layer: "Layer"):
    device = next((p.device for p in layer.parameters()), torch.device("cpu"))
    float_dtype = next((p.dtype for p in layer.parameters() if p.is_floating_point()), torch.float32)

    def convert(array):
        t = torch.as_tensor(array)
        if t.is_floating_point() or t.dtype == torch.bool:
            t = t.to(float_dtype)
        elif t.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
            t = t.long()
        return t.to(device)
    if isinstance(value, dict):
        return {k: convert(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(convert(v) for v in value)
    return convert(value)


def _shape_tree(inputs):
    if torch.is_tensor(inputs) or isinstance(inputs, KerasTensor):
        return (None,) + tuple(inputs.shape[1:])
    if isinstance(inputs, (list, tuple)):
        return tuple(_shape_tree(x) for x in inputs)
    if isinstance(inputs, dict):
        return {k: _shape_tree(v) for k, v in inputs.items()}
    return None


def _first_tensor(inputs):
    if torch.is_tensor(inputs):
        return inputs
    if isinstance(inputs, (list, tuple)):
        for x in inputs:
            t = _first_tensor(x)
            if t is not None:
                return t
    if isinstance(inputs, dict):
        return _first_tensor(list(inputs.values()))
    return None


_SHAPE_WORDS = ("shape", "size of tensor", "mat1 and mat2", "must match", "expected input", "Expected",
                "dimension", "channels")


def _looks_like_dtype_error(err: RuntimeError) -> bool:
    text = str(err)
    return "dtype" in text or "expected scalar type" in text or "should be the same" in text


def _looks_like_shape_error(err: RuntimeError) -> bool:
    text = str(err)
    return any(word in text for word in _SHAPE_WORDS)
