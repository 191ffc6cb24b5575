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
"""

from __future__ import annotations

import inspect
from typing import Any

import kiln
from kiln import layers as L
from kiln.errors import ConfigError, closest_match

__all__ = ["build_model", "head_for"]


def _layer_from_entry(entry: dict, index: int, regularizer=None):
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"model.layers[{index}] must be a mapping with one layer name, e.g. "
                          f"{{Dense: {{units: 64}}}}; found {entry!r}")
    (name, args), = entry.items()
    cls = getattr(L, name, None)
    if not isinstance(cls, type) or not issubclass(cls, L.Layer):
        hint = closest_match(name, [n for n in L.__all__ if n[0].isupper()])
        raise ConfigError(f"model.layers[{index}]: unknown layer {name!r}" + (f"; did you mean {hint!r}?" if hint else ""))
    args = dict(args or {})
    if regularizer is not None and "kernel_regularizer" in inspect.signature(cls).parameters:
        args.setdefault("kernel_regularizer", regularizer)
    try:
        return cls(**args)
    except TypeError as err:
        raise ConfigError(f"model.layers[{index}] ({name}): {err}") from err


def _augmentation_layers(feature_type: str, aug: Any) -> list:
    """Keras preprocessing layers for one feature's augmentation config (training only)."""
    if aug is None:
        return []
    get = (lambda key: getattr(aug, key, None)) if not isinstance(aug, dict) else aug.get
    out = []
    if feature_type == "image":
        if get("flip"):
            out.append(L.RandomFlip(get("flip")))
        if get("rotation"):
            out.append(L.RandomRotation(get("rotation"), fill_mode="constant"))
        if get("crop"):
            h, w = get("crop")
            out.append(L.RandomCrop(h, w))
        jitter = get("color_jitter") or {}
        if jitter.get("brightness"):
            out.append(L.RandomBrightness(jitter["brightness"], value_range=(0.0, 1.0)))
        if jitter.get("contrast"):
            out.append(L.RandomContrast(jitter["contrast"], value_range=(0.0, 1.0)))
        if get("noise"):
            out.append(L.GaussianNoise(get("noise")))
    elif feature_type == "audio":
        if get("noise"):
            out.append(L.GaussianNoise(get("noise")))
        if get("time_shift"):
            out.append(L.RandomTimeShift(get("time_shift")))
        if get("spec_augment"):
            out.append(L.SpecAugment(**get("spec_augment")))
    elif feature_type == "text":
        if get("token_dropout"):
            out.append(L.TokenDropout(get("token_dropout")))
    return out


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
        for layer in _augmentation_layers(feature.type, getattr(feature, "augmentation", None)):
            x = layer(x)
        augmented[feature.name] = x
    return inputs, augmented


def build_model(model_config, input_features: list, output_features: list, name: str = "model",
                regularization=None):
    """A functional model (dict of input tensors -> one output per output feature), and for
    each output whether it gives "logits" or "probabilities" (the loss and decoding need it).

    ``regularization`` (l1, l2, dropout): the penalties go on every Dense/Conv kernel of the
    config's layers and of the automatic model; dropout on the automatic model's body."""
    if getattr(model_config, "zoo", None) is not None:
        return _zoo_model(model_config.zoo, input_features, output_features, name)
    l1 = getattr(regularization, "l1", 0.0) or 0.0
    l2 = getattr(regularization, "l2", 0.0) or 0.0
    dropout = getattr(regularization, "dropout", 0.0) or 0.0
    regularizer = kiln.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    body_layers = list(getattr(model_config, "layers", None) or []) if model_config is not None else []
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


def _zoo_model(zoo, input_features: list, output_features: list, name: str):
    """A kiln.zoo architecture sized from the features, behind the features' Inputs (and their
    augmentation layers). Sizes the config does not give are filled in: ``num_classes`` from
    the output feature, ``input_shape``/``input_dim``/``vocab_size`` (and, for token ids, the
    ``max_length``) from the input feature,
    and for ``fusion`` the list of inputs."""
    import kiln.zoo
    try:
        builder = kiln.zoo.get(zoo.name)
    except kiln.errors.KilnValueError as err:
        raise ConfigError(f"model.zoo.name: {err}") from err
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
