"""Functional models: ``Model(inputs, outputs)`` replays the graph of layer calls.

The graph is recorded by calling layers on symbolic ``Input`` tensors (kiln/layers/
symbolic.py). Here it is turned into an ordered list of nodes; ``call`` feeds real
tensors through them. Inputs may be one tensor, a list, or a dict keyed by Input names.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from kiln.errors import KilnTypeError, KilnValueError, SerializationError
from kiln.layers.symbolic import Input, KerasTensor, Node
from kiln.models.model import Model
from kiln.saving.serialization import deserialize_layer, serialize_layer
from kiln.utils.naming import attach_layer
from kiln.utils.tree import flatten, map_structure

__all__ = ["Functional"]


class Functional(Model):
    """A model defined by its input and output symbolic tensors.

    Example::

        inputs = kiln.Input(shape=(784,))
        h = kiln.layers.Dense(64, activation="relu")(inputs)
        outputs = kiln.layers.Dense(10, activation="softmax")(h)
        model = kiln.Model(inputs, outputs)
    """

    def __init__(self, inputs, outputs, name=None, trainable=True):
        super().__init__(name=name or "functional", trainable=trainable)
        self._inputs = inputs
        self._outputs = outputs
        for t in flatten(inputs):
            if not isinstance(t, KerasTensor) or t.node is not None:
                raise KilnTypeError(f"Model inputs must be tensors made by kiln.Input(...); received {t!r}")
        for t in flatten(outputs):
            if not isinstance(t, KerasTensor):
                raise KilnTypeError(f"Model outputs must be symbolic tensors from layer calls; received {t!r}")
        self._nodes = _topological_nodes(outputs, flatten(inputs))
        self._layer_names: list[str] = []
        for node in self._nodes:
            if any(node.layer is layer for layer in self.layers):
                continue  # a shared layer, called more than once
            name = attach_layer(self, getattr(node.layer, "name", None) or type(node.layer).__name__.lower(),
                                node.layer)
            if hasattr(node.layer, "name"):
                node.layer.name = name
            self._layer_names.append(name)
        self._example_input = map_structure(lambda t: t.example, inputs)
        from kiln.layers.masking import produces_masks
        self._carries_masks = any(produces_masks(node.layer) for node in self._nodes)

    @property
    def layers(self) -> list[nn.Module]:
        return [self._modules[name] for name in self._layer_names]

    def named_layers(self) -> list[tuple[str, nn.Module]]:
        return [(name, self._modules[name]) for name in self._layer_names]

    def _variable_length_example(self):
        """Inputs with other lengths on variable axes (for summary's None dims), or None."""
        flat = flatten(self._inputs)
        if all(t.alt_example is None for t in flat):
            return None
        return map_structure(lambda t: t.alt_example if t.alt_example is not None else t.example, self._inputs)

    @property
    def inputs(self):
        return self._inputs

    @property
    def outputs(self):
        return self._outputs

    @property
    def input_shape(self):
        return map_structure(lambda t: t.shape, self._inputs)

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self._carries_masks:
            return self._call_with_masks(inputs, training, mask)
        values = {}
        flat_inputs = flatten(self._inputs)
        for symbolic, real in zip(flat_inputs, self._flatten_real_inputs(inputs, flat_inputs)):
            values[id(symbolic)] = real
        lookup = lambda s: values[id(s)] if isinstance(s, KerasTensor) else s  # noqa: E731
        for node in self._nodes:
            args = map_structure(lookup, node.args)
            kwargs = map_structure(lookup, node.kwargs)
            if training is not None and getattr(node.layer, "_accepts_training", False):
                kwargs["training"] = training
            out = node.layer(*args, **kwargs)
            for sym, real in zip(flatten(node.outputs), flatten(out)):
                values[id(sym)] = real
        return map_structure(lookup, self._outputs)

    def _call_with_masks(self, inputs, training, mask):
        """``call`` with Keras's masks: each node's layer gets the masks of its inputs
        (``mask=``, or ``query_mask``/``value_mask``/``key_mask`` for attention) and
        ``compute_mask`` gives the masks of its outputs. ``mask``: masks of the model inputs."""
        from kiln.layers.layer import Layer
        from kiln.layers.masking import mask_call_kwargs
        values, masks = {}, {}
        flat_inputs = flatten(self._inputs)
        flat_masks = flatten(mask) if mask is not None else [None] * len(flat_inputs)
        for symbolic, real, m in zip(flat_inputs, self._flatten_real_inputs(inputs, flat_inputs), flat_masks):
            values[id(symbolic)] = real
            masks[id(symbolic)] = m
        lookup = lambda s: values[id(s)] if isinstance(s, KerasTensor) else s  # noqa: E731
        mask_of = lambda s: masks.get(id(s)) if isinstance(s, KerasTensor) else None  # noqa: E731
        for node in self._nodes:
            args = map_structure(lookup, node.args)
            kwargs = map_structure(lookup, node.kwargs)
            if training is not None and getattr(node.layer, "_accepts_training", False):
                kwargs["training"] = training
            if getattr(node.layer, "_accepts_query_mask", False):  # query, value[, key]
                positional = list(node.args[:3]) + [node.kwargs.get(k) for k in ("value", "key")[len(node.args) - 1:]]
                arg_masks = [mask_of(s) for s in positional]
            else:
                arg_masks = [map_structure(mask_of, node.args[0])] if node.args else []
            kwargs.update(mask_call_kwargs(node.layer, arg_masks, kwargs))
            out = node.layer(*args, **kwargs)
            in_mask = arg_masks[0] if arg_masks else None
            out_mask = node.layer.compute_mask(args[0], in_mask) if isinstance(node.layer, Layer) and args else None
            out_masks = out_mask if isinstance(out_mask, (list, tuple)) else [out_mask]
            for i, (sym, real) in enumerate(zip(flatten(node.outputs), flatten(out))):
                values[id(sym)] = real
                masks[id(sym)] = out_masks[i] if i < len(out_masks) else None
        flat_outputs = flatten(self._outputs)
        # One output: its mask as a tensor (what the loss uses); several: the same structure.
        self._output_mask = mask_of(flat_outputs[0]) if len(flat_outputs) == 1 else \
            map_structure(mask_of, self._outputs)
        return map_structure(lookup, self._outputs)

    def compute_mask(self, inputs, mask=None):
        """The masks of the outputs, from the latest call."""
        return getattr(self, "_output_mask", None)

    def _flatten_real_inputs(self, inputs, flat_inputs):
        if isinstance(inputs, dict):
            missing = [t.name for t in flat_inputs if t.name not in inputs]
            if missing:
                raise KilnValueError(f"Model '{self.name}' expects input keys {[t.name for t in flat_inputs]}; "
                                     f"missing: {missing}. Received keys: {sorted(inputs)}")
            return [inputs[t.name] for t in flat_inputs]
        real = flatten(inputs)
        if len(real) != len(flat_inputs):
            raise KilnValueError(f"Model '{self.name}' expects {len(flat_inputs)} input(s), received {len(real)}. "
                                 f"Pass a list with one array per Input.")
        return real

    def get_config(self) -> dict:
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return functional_from_config(cls, config, custom_objects=custom_objects)


def _topological_nodes(outputs, inputs) -> list[Node]:
    """Nodes needed to compute ``outputs``, each after the nodes it depends on."""
    order: list[Node] = []
    seen: set[int] = set()
    input_ids = {id(t) for t in inputs}

    def visit(tensor):
        if not isinstance(tensor, KerasTensor) or id(tensor) in input_ids:
            return
        node = tensor.node
        if node is None:
            raise KilnValueError(f"Output depends on {tensor!r}, which is not one of the model's inputs. "
                                 f"Pass every Input the outputs use to Model(inputs=...).")
        if id(node) in seen:
            return
        for parent in flatten(node.args) + flatten(node.kwargs):
            visit(parent)
        seen.add(id(node))
        order.append(node)

    for out in flatten(outputs):
        visit(out)
    return order


# ---------------------------------------------------------------------- functional graphs
def functional_config(model) -> dict[str, Any]:
    """Describe a functional model's graph: layers, the calls between them, inputs and outputs."""
    tensor_ids: dict[int, int] = {}

    def ref(t):
        if isinstance(t, KerasTensor):
            return {"__tensor__": tensor_ids[id(t)]}
        if isinstance(t, (int, float, str, bool)) or t is None:
            return t
        raise SerializationError(f"Cannot save a functional model whose layer call takes {t!r}.")

    inputs = []
    for t in flatten(model.inputs):
        tensor_ids[id(t)] = len(tensor_ids)
        inputs.append({"shape": list(t.input_shape), "dtype": str(t.dtype).replace("torch.", ""), "name": t.name})
    layer_names = {id(layer): name for name, layer in model.named_layers()}
    nodes = []
    for node in model._nodes:
        args = map_structure(ref, node.args)
        kwargs = map_structure(ref, node.kwargs)
        for t in flatten(node.outputs):
            tensor_ids[id(t)] = len(tensor_ids)
        nodes.append({"layer": layer_names[id(node.layer)], "args": args, "kwargs": kwargs,
                      "outputs": map_structure(ref, node.outputs)})
    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": {name: serialize_layer(layer) for name, layer in model.named_layers()},
        "inputs": inputs,
        "input_structure": map_structure(ref, model.inputs),
        "nodes": nodes,
        "outputs": map_structure(ref, model.outputs),
    }


def functional_from_config(cls, config: dict, custom_objects=None):
    """Rebuild the graph ``functional_config`` described, by replaying its layer calls on new Inputs."""
    layers = {name: deserialize_layer(spec, custom_objects) for name, spec in config["layers"].items()}
    tensors: dict[int, Any] = {}
    flat_inputs = []
    for i, spec in enumerate(config["inputs"]):
        t = Input(shape=tuple(spec["shape"]), dtype=spec["dtype"], name=spec.get("name"))
        tensors[i] = t
        flat_inputs.append(t)

    def resolve(value):
        if isinstance(value, dict) and set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        return value

    def resolve_tree(tree):
        if isinstance(tree, dict) and set(tree) == {"__tensor__"}:
            return resolve(tree)
        if isinstance(tree, list):
            return [resolve_tree(t) for t in tree]
        if isinstance(tree, dict):
            return {k: resolve_tree(v) for k, v in tree.items()}
        return tree

    def ids(tree):
        if isinstance(tree, dict) and set(tree) == {"__tensor__"}:
            return [tree["__tensor__"]]
        if isinstance(tree, list):
            return [i for t in tree for i in ids(t)]
        if isinstance(tree, dict):
            return [i for v in tree.values() for i in ids(v)]
        return []

    for node in config["nodes"]:
        layer = layers[node["layer"]]
        out = layer(*resolve_tree(node["args"]), **resolve_tree(node["kwargs"]))
        for tid, real in zip(ids(node["outputs"]), flatten(out)):
            tensors[tid] = real
    inputs = resolve_tree(config["input_structure"])
    outputs = resolve_tree(config["outputs"])
    return cls(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))
