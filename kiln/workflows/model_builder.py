"""Build a kiln functional model from a run's features and its ``model`` config.

The model takes a dict of tensors keyed by input feature name and returns one output per
output feature (a dict when there are several). Three ways, as the config says:

- ``model.layers``: a Keras-style list, ``[{Conv2D: {filters: 32, ...}}, ...]``, applied to
  the input (several inputs are first encoded and concatenated). If it ends in a Dense
  layer as wide as the (single) output feature needs, that layer is the output, as in a
  Keras model; otherwise kiln adds each output feature's head (a Dense giving logits).
- ``model.zoo``: a model-zoo architecture by name (kiln.zoo, when present).
- neither: automatic — an encoder per input type, concatenated, then Dense(128) + Dropout.

Augmentation layers for a feature go right after its Input; they only act in training.

The config is a validated ``kiln.config.KilnConfig`` (its sections typed, layer names and
arguments and zoo options already checked against ``kiln.config.catalog``); what can still go
wrong here is a value only the layer or zoo builder judges, reported as a ``ConfigError``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import kiln
from kiln import layers as L
from kiln.errors import ConfigError

if TYPE_CHECKING:  # the config types, for annotations only: this module reads them, never builds them
    from kiln.config import AugmentationConfig, ModelConfig, RegularizationConfig, ZooConfig

__all__ = ["build_model", "head_for"]


def _layer_from_entry(entry: dict, index: int, regularizer=None):
    """One ``{LayerName: {args}}`` entry of ``model.layers`` (name and argument names validated) as a layer."""
    (name, args), = entry.items()
    cls = getattr(L, name)
    args = dict(args)
    if regularizer is not None and "kernel_regularizer" in inspect.signature(cls).parameters:
        args.setdefault("kernel_regularizer", regularizer)
    try:
        return cls(**args)
    except TypeError as err:  # e.g. a positional argument missing
        raise ConfigError(f"model.layers[{index}] ({name}): {err}") from err


def _augmentation_layers(feature_type: str, aug: AugmentationConfig | None, shape: tuple = ()) -> list:
    """Keras preprocessing layers for one feature's augmentation config (training only).

    ``shape`` is the feature's per-example shape (audio: ``(frames, n_mels, 1)``), which turns
    the config's SpecAugment band widths, in frames and mel bins, into the layer's fractions.
    """
    if aug is None:
        return []
    out = []
    if feature_type == "image":
        if aug.flip:
            out.append(L.RandomFlip(aug.flip))
        if aug.rotation:
            out.append(L.RandomRotation(aug.rotation, fill_mode="constant"))
        if aug.crop:
            h, w = aug.crop
            out.append(L.RandomCrop(h, w))
        jitter = aug.color_jitter
        if jitter is not None and jitter.brightness:
            out.append(L.RandomBrightness(jitter.brightness, value_range=(0.0, 1.0)))
        if jitter is not None and jitter.contrast:
            out.append(L.RandomContrast(jitter.contrast, value_range=(0.0, 1.0)))
        if aug.noise:
            out.append(L.GaussianNoise(aug.noise))
    elif feature_type == "audio":
        if aug.noise:
            out.append(L.GaussianNoise(aug.noise))
        if aug.time_shift:
            out.append(L.RandomTimeShift(aug.time_shift))
        if aug.spec_augment is not None:
            spec = aug.spec_augment
            frames, mels = shape[0], shape[1]
            out.append(L.SpecAugment(time_masks=spec.time_masks, time_width=_fraction(spec.time_width, frames),
                                     freq_masks=spec.freq_masks, freq_width=_fraction(spec.freq_width, mels)))
    elif feature_type == "text":
        if aug.token_dropout:
            out.append(L.TokenDropout(aug.token_dropout))
    return out


def _fraction(width: int, length: int) -> float:
    """``width`` cells of an axis of ``length`` as the fraction SpecAugment takes (it uses ``int(f * length)``).

    Why the half cell: ``int((width / length) * length)`` may round down to ``width - 1`` in
    floats; ``width + 0.5`` cannot. A band as wide as the axis, or wider, is the whole axis.
    """
    return 1.0 if width >= length else (width + 0.5) / length


def _encoder(feature_type: str, spec: dict, x):
    """The automatic encoder of one input feature: a flat (batch, n) tensor."""
    if feature_type in ("numeric", "binary"):
        return x if tuple(spec["shape"]) == (1,) else L.Reshape((1,))(x)
    if feature_type == "sequence":
        return L.Dense(64, activation="relu")(x)
    if feature_type == "category" and spec["dtype"].startswith("float"):
        return x  # encoding: onehot, already (batch, vocab_size)
    if feature_type == "category":
        dim = max(2, min(50, (spec["vocab_size"] + 1) // 2))
        return L.Flatten()(L.Embedding(spec["vocab_size"], dim)(L.Reshape((1,))(x)))
    if feature_type == "text":
        # fastText-style: averaged word vectors hold up best on small labelled sets.
        h = L.Embedding(spec["vocab_size"], 64)(x)
        return L.GlobalAveragePooling1D()(h)
    if feature_type in ("image", "audio"):
        h = L.Conv2D(32, 3, padding="same", activation="relu")(x)
        h = L.MaxPooling2D(2)(h)
        h = L.Conv2D(64, 3, padding="same", activation="relu")(h)
        h = L.MaxPooling2D(2)(h)
        return L.Flatten()(h)
    raise ConfigError(f"No automatic encoder for feature type {feature_type!r}.")


def head_for(feature_type: str, spec: dict, name: str):
    """The output layer of one output feature: logits for classes, one unit for values."""
    if feature_type == "category":
        return L.Dense(len(spec["classes"]), name=name)
    if feature_type in ("binary", "numeric"):
        return L.Dense(1, name=name)
    raise ConfigError(f"Output features of type {feature_type!r} are not supported; use category, binary or numeric.")


def _inputs(input_features: list) -> tuple[dict, dict]:
    """One ``Input`` per feature (named after it), and the same after its augmentation layers."""
    inputs, augmented = {}, {}
    for feature in input_features:
        spec = feature.spec()
        x = kiln.Input(shape=tuple(spec["shape"]), dtype=spec["dtype"], name=feature.name)
        inputs[feature.name] = x
        for layer in _augmentation_layers(feature.type, getattr(feature, "augmentation", None), spec["shape"]):
            x = layer(x)
        augmented[feature.name] = x
    return inputs, augmented


def build_model(model_config: ModelConfig, input_features: list, output_features: list, name: str = "model",
                regularization: RegularizationConfig | None = None):
    """A functional model (dict of input tensors -> one output per output feature), and for
    each output whether it gives "logits" or "probabilities" (the loss and decoding need it).

    ``regularization`` (l1, l2, dropout): the penalties go on every Dense/Conv kernel of the
    config's layers and of the automatic model; dropout on the automatic model's body."""
    if model_config.zoo is not None:
        return _zoo_model(model_config.zoo, input_features, output_features, name)
    l1, l2, dropout = (0.0, 0.0, 0.0) if regularization is None else (
        regularization.l1, regularization.l2, regularization.dropout)
    regularizer = kiln.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    body_layers = list(model_config.layers or [])
    inputs, augmented = _inputs(input_features)
    encoded = []
    for feature in input_features:
        x = augmented[feature.name]
        if body_layers and len(input_features) == 1:
            encoded.append(x)  # the user's layers see the raw (preprocessed) input
        else:
            encoded.append(_encoder(feature.type, feature.spec(), x))
    h = encoded[0] if len(encoded) == 1 else L.Concatenate()(encoded)
    layers = [_layer_from_entry(entry, i, regularizer) for i, entry in enumerate(body_layers)]
    own_head = _user_output_layer(layers, output_features)
    if own_head is not None:
        layers = layers[:-1]
    for layer in layers:
        h = layer(h)
    if not body_layers:
        h = L.Dense(128, activation="relu", kernel_regularizer=regularizer)(h)
        h = L.Dropout(dropout or 0.2)(h)  # a little dropout by default: tabular data overfits fast
    elif len(h.shape) > 2:
        h = L.Flatten()(h)
    if own_head is not None:
        feature = output_features[0]
        activation = kiln.activations.serialize(own_head.activation)
        kinds = {feature.name: "probabilities" if activation in ("softmax", "sigmoid") else "logits"}
        return kiln.Model(inputs, own_head(h), name=name), kinds
    outputs = {f.name: head_for(f.type, f.spec(), f.name)(h) for f in output_features}
    kinds = {f.name: "logits" for f in output_features}
    if len(outputs) == 1:
        outputs = next(iter(outputs.values()))
    return kiln.Model(inputs, outputs, name=name), kinds


def _user_output_layer(layers: list, output_features: list):
    """The user's last layer, if it is a Dense of exactly the width the one output needs."""
    if len(output_features) != 1 or not layers or not isinstance(layers[-1], L.Dense):
        return None
    feature = output_features[0]
    width = len(feature.spec()["classes"]) if feature.type == "category" else 1
    return layers[-1] if layers[-1].units == width else None


def _zoo_model(zoo: ZooConfig, input_features: list, output_features: list, name: str):
    """A kiln.zoo architecture sized from the features, behind the features' Inputs (and their
    augmentation layers). Sizes the config does not give are filled in: ``num_classes`` from
    the output feature, ``input_shape``/``input_dim``/``vocab_size`` (and, for token ids, the
    ``max_length``) from the input feature,
    and for ``fusion`` the list of inputs."""
    import kiln.zoo
    builder = kiln.zoo.get(zoo.name)  # the name is checked by the config
    if len(output_features) != 1 or output_features[0].type not in ("category", "binary", "numeric"):
        raise ConfigError("model.zoo: zoo models take one output feature (category, binary or numeric).")
    output = output_features[0]
    options = dict(zoo.options)
    accepts = inspect.signature(builder).parameters
    width = len(output.spec()["classes"]) if output.type == "category" else 1
    if "num_classes" in accepts:
        options.setdefault("num_classes", width)
    elif "units" in accepts:
        options.setdefault("units", width)
    inputs, symbolic = _inputs(input_features)
    if zoo.name == "fusion":
        options.setdefault("inputs", [{"name": f.name, "type": f.type, "shape": list(f.spec()["shape"]),
                                       **({"vocab_size": f.spec()["vocab_size"]} if "vocab_size" in f.spec() else {})}
                                      for f in input_features])
        model = builder(**options)
        return kiln.Model(inputs, model(symbolic), name=name), {output.name: "logits"}
    if len(input_features) != 1:
        raise ConfigError(f"model.zoo: {zoo.name} takes one input feature; use zoo name 'fusion' for several.")
    spec = input_features[0].spec()
    if "input_shape" in accepts:
        options.setdefault("input_shape", tuple(spec["shape"]))
    if "input_dim" in accepts:
        options.setdefault("input_dim", int(spec["shape"][0]) if spec["shape"] else 1)
    if "vocab_size" in accepts and "vocab_size" in spec:
        options.setdefault("vocab_size", spec["vocab_size"])
        if "max_length" in accepts and spec.get("shape"):  # token ids (rows, max_length)
            options.setdefault("max_length", int(spec["shape"][0]))
    try:
        model = builder(**options)
    except (TypeError, kiln.errors.KilnError) as err:
        raise ConfigError(f"model.zoo ({zoo.name}): {err}") from err
    return kiln.Model(inputs, model(next(iter(symbolic.values()))), name=name), {output.name: "logits"}
