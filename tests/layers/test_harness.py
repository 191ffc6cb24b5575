"""The shared layer harness: every public layer in ``kiln.layers.__all__`` passes the same checks.

For each entry of ``CASES``: (1) the output shape on a real batch, (2) the parameter count as
Keras reports it (trainable weights + non-trainable ones such as BatchNorm's moving statistics),
(3) a save/load round trip inside a model (identical predictions and layer config), and
(4) ``get_config()`` is JSON-serialisable and ``from_config`` rebuilds the same config.

A layer that cannot be saved by design (``Lambda``: a Python function has no JSON config) has
an entry with ``saveable=False``: the harness then checks that saving it, and its
``get_config()``, raise a ``SerializationError`` instead of the round trips.

Adding a layer to ``kiln.layers.__all__`` without a ``CASES`` entry fails
``test_every_public_layer_has_a_harness_entry``.

The parameter counts are Keras 3's numbers, worked out by hand beside each entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import kiln
from kiln import layers as L
from kiln.errors import SerializationError
from kiln.models.summary import count_params

# Not layers one puts in a model, or the abstract base: no harness entry.
_NOT_HARNESSED = {"Layer", "Input", "InputLayer", "KerasTensor"}
# Keras's lowercase functional forms of the merge layers (functions, tested in test_merge.py).
_FUNCTIONAL_FORMS = {"add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"}


@dataclass(frozen=True)
class Case:
    """One harness entry.

    ``inputs``: per-sample shapes (no batch axis); one shape for a single-input layer, a list of
    shapes for a layer called on several tensors. ``call`` says how those tensors are passed:
    "single" -> ``layer(x)``, "list" -> ``layer([a, b])`` (merges, Attention),
    "args" -> ``layer(a, b)`` (MultiHeadAttention's query, value).
    """

    factory: Callable[[], L.Layer]
    inputs: tuple | list
    output: tuple
    params: int
    call: str = "single"
    dtype: str = "float32"
    int_high: int = 0  # for integer inputs (Embedding ids): values drawn from [0, int_high)
    saveable: bool = True  # False: saving must refuse with a SerializationError (Lambda)

    @property
    def input_shapes(self) -> list[tuple]:
        return list(self.inputs) if self.call != "single" else [self.inputs]


_MERGE_IN = [(3,), (3,)]


def _adapted_normalization():
    layer = L.Normalization()
    layer.adapt(np.random.default_rng(0).normal(2.0, 3.0, size=(64, 5)))
    return layer


CASES: dict[str, Case] = {
    "Activation": Case(lambda: L.Activation("relu"), (5,), (5,), 0),
    "Softmax": Case(lambda: L.Softmax(), (5,), (5,), 0),
    "ReLU": Case(lambda: L.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5), (5,), (5,), 0),
    "LeakyReLU": Case(lambda: L.LeakyReLU(negative_slope=0.2), (5,), (5,), 0),
    "ELU": Case(lambda: L.ELU(alpha=0.5), (5,), (5,), 0),
    # alpha of shape (1, 3): axis 1 shared
    "PReLU": Case(lambda: L.PReLU(alpha_initializer="random_uniform", shared_axes=[1]), (4, 3), (4, 3), 3),
    "Identity": Case(lambda: L.Identity(), (5,), (5,), 0),
    "Lambda": Case(lambda: L.Lambda(lambda x: 2.0 * x + 1.0), (5,), (5,), 0, saveable=False),
    # q, k, v kernels 3 * (4 * 2 * 3) + biases 3 * (2 * 3) + output kernel 2 * 3 * 4 + bias 4
    "MultiHeadAttention": Case(lambda: L.MultiHeadAttention(num_heads=2, key_dim=3), [(3, 4), (5, 4)], (3, 4),
                               72 + 18 + 24 + 4, call="args"),
    # use_scale: one scalar; score_mode="concat": one more scalar
    "Attention": Case(lambda: L.Attention(use_scale=True, score_mode="concat"), [(3, 4), (5, 4)], (3, 4), 2,
                      call="list"),
    # kernel 3 * 2 * 4 + bias 4
    "Conv1D": Case(lambda: L.Conv1D(4, 3), (10, 2), (8, 4), 28),
    # kernel 3 * 3 * 1 * 8 + bias 8
    "Conv2D": Case(lambda: L.Conv2D(8, 3), (6, 6, 1), (4, 4, 8), 80),
    # kernel 2 * 2 * 2 * 3 * 2 + bias 2
    "Conv3D": Case(lambda: L.Conv3D(2, 2), (4, 4, 4, 3), (3, 3, 3, 2), 50),
    # kernel 3 * 4 * 2 + bias 4; length (5 - 1) * 2 + 3 = 11
    "Conv1DTranspose": Case(lambda: L.Conv1DTranspose(4, 3, strides=2), (5, 2), (11, 4), 28),
    # kernel 2 * 2 * 3 * 2 + bias 3
    "Conv2DTranspose": Case(lambda: L.Conv2DTranspose(3, 2, strides=2), (4, 4, 2), (8, 8, 3), 27),
    # kernel 2 * 2 * 2 * 2 * 1 + bias 2
    "Conv3DTranspose": Case(lambda: L.Conv3DTranspose(2, 2), (3, 3, 3, 1), (4, 4, 4, 2), 18),
    # depthwise kernel 3 * 3 * 3 * 2 + bias 3 * 2
    "DepthwiseConv2D": Case(lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 3), (3, 3, 6), 60),
    # depthwise 3 * 3 * 4 + pointwise 4 * 8 + bias 8
    "SeparableConv2D": Case(lambda: L.SeparableConv2D(8, 3), (6, 6, 4), (4, 4, 8), 76),
    # kernel 3 * 4 + bias 4
    "Dense": Case(lambda: L.Dense(4), (3,), (4,), 16),
    "Dropout": Case(lambda: L.Dropout(0.5), (5,), (5,), 0),
    "SpatialDropout1D": Case(lambda: L.SpatialDropout1D(0.5), (4, 3), (4, 3), 0),
    "SpatialDropout2D": Case(lambda: L.SpatialDropout2D(0.5), (4, 4, 3), (4, 4, 3), 0),
    "SpatialDropout3D": Case(lambda: L.SpatialDropout3D(0.5), (2, 2, 2, 3), (2, 2, 2, 3), 0),
    # table 10 * 4
    "Embedding": Case(lambda: L.Embedding(10, 4), (5,), (5, 4), 40, dtype="int64", int_high=10),
    "Add": Case(lambda: L.Add(), _MERGE_IN, (3,), 0, call="list"),
    "Subtract": Case(lambda: L.Subtract(), _MERGE_IN, (3,), 0, call="list"),
    "Multiply": Case(lambda: L.Multiply(), _MERGE_IN, (3,), 0, call="list"),
    "Average": Case(lambda: L.Average(), _MERGE_IN, (3,), 0, call="list"),
    "Maximum": Case(lambda: L.Maximum(), _MERGE_IN, (3,), 0, call="list"),
    "Minimum": Case(lambda: L.Minimum(), _MERGE_IN, (3,), 0, call="list"),
    "Concatenate": Case(lambda: L.Concatenate(), [(3,), (2,)], (5,), 0, call="list"),
    "Dot": Case(lambda: L.Dot(axes=1), _MERGE_IN, (1,), 0, call="list"),
    "GaussianNoise": Case(lambda: L.GaussianNoise(0.1), (5,), (5,), 0),
    "GaussianDropout": Case(lambda: L.GaussianDropout(0.2), (5,), (5,), 0),
    "ActivityRegularization": Case(lambda: L.ActivityRegularization(l1=0.01, l2=0.02), (5,), (5,), 0),
    # gamma, beta (trainable) + moving mean, moving variance (non-trainable): 4 * 5
    "BatchNormalization": Case(lambda: L.BatchNormalization(), (5,), (5,), 20),
    # gamma, beta: 2 * 5
    "LayerNormalization": Case(lambda: L.LayerNormalization(), (5,), (5,), 10),
    # adapted on random data: mean 5 + variance 5 + count 1, all non-trainable
    "Normalization": Case(lambda: _adapted_normalization(), (5,), (5,), 11),
    "ZeroPadding1D": Case(lambda: L.ZeroPadding1D(2), (4, 3), (8, 3), 0),
    "ZeroPadding2D": Case(lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (4, 4, 3), (5, 7, 3), 0),
    "Cropping1D": Case(lambda: L.Cropping1D((1, 2)), (6, 3), (3, 3), 0),
    "Cropping2D": Case(lambda: L.Cropping2D(((1, 0), (2, 1))), (5, 6, 3), (4, 3, 3), 0),
    "MaxPooling1D": Case(lambda: L.MaxPooling1D(), (6, 3), (3, 3), 0),
    "MaxPooling2D": Case(lambda: L.MaxPooling2D(), (4, 4, 3), (2, 2, 3), 0),
    "MaxPooling3D": Case(lambda: L.MaxPooling3D(), (4, 4, 4, 2), (2, 2, 2, 2), 0),
    "AveragePooling1D": Case(lambda: L.AveragePooling1D(), (6, 3), (3, 3), 0),
    "AveragePooling2D": Case(lambda: L.AveragePooling2D(), (4, 4, 3), (2, 2, 3), 0),
    "AveragePooling3D": Case(lambda: L.AveragePooling3D(), (4, 4, 4, 2), (2, 2, 2, 2), 0),
    "GlobalAveragePooling1D": Case(lambda: L.GlobalAveragePooling1D(), (6, 3), (3,), 0),
    "GlobalAveragePooling2D": Case(lambda: L.GlobalAveragePooling2D(), (4, 4, 3), (3,), 0),
    "GlobalAveragePooling3D": Case(lambda: L.GlobalAveragePooling3D(), (2, 2, 2, 3), (3,), 0),
    "GlobalMaxPooling1D": Case(lambda: L.GlobalMaxPooling1D(), (6, 3), (3,), 0),
    "GlobalMaxPooling2D": Case(lambda: L.GlobalMaxPooling2D(), (4, 4, 3), (3,), 0),
    "GlobalMaxPooling3D": Case(lambda: L.GlobalMaxPooling3D(), (2, 2, 2, 3), (3,), 0),
    # kernel 3 * 4 + recurrent 4 * 4 + bias 4
    "SimpleRNN": Case(lambda: L.SimpleRNN(4), (5, 3), (4,), 32),
    # 4 gates * (3 * 4 + 4 * 4 + 4)
    "LSTM": Case(lambda: L.LSTM(4), (5, 3), (4,), 128),
    # reset_after: 3 gates * (3 * 4 + 4 * 4 + 2 * 4)
    "GRU": Case(lambda: L.GRU(4), (5, 3), (4,), 108),
    # two LSTM(4) on 3 features; "concat" doubles the features
    "Bidirectional": Case(lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)), (5, 3), (5, 8), 2 * 128),
    "RepeatVector": Case(lambda: L.RepeatVector(3), (4,), (3, 4), 0),
    "Masking": Case(lambda: L.Masking(0.0), (4, 3), (4, 3), 0),
    "Rescaling": Case(lambda: L.Rescaling(1 / 255, offset=-1.0), (5,), (5,), 0),
    "Flatten": Case(lambda: L.Flatten(), (2, 3), (6,), 0),
    "Reshape": Case(lambda: L.Reshape((3, 2)), (6,), (3, 2), 0),
    "Permute": Case(lambda: L.Permute((2, 1)), (2, 3), (3, 2), 0),
    # one Dense(4) on 3 features, shared over the 5 steps: 3 * 4 + 4
    "TimeDistributed": Case(lambda: L.TimeDistributed(L.Dense(4)), (5, 3), (5, 4), 16),
    "UpSampling1D": Case(lambda: L.UpSampling1D(2), (3, 2), (6, 2), 0),
    "UpSampling2D": Case(lambda: L.UpSampling2D((2, 3), interpolation="bilinear"), (2, 2, 3), (4, 6, 3), 0),
    # Augmentation: identity at inference (RandomCrop: a centre crop), no weights.
    "RandomFlip": Case(lambda: L.RandomFlip("horizontal", seed=1), (4, 4, 3), (4, 4, 3), 0),
    "RandomRotation": Case(lambda: L.RandomRotation((-0.1, 0.2), fill_mode="constant", fill_value=0.5), (4, 4, 3),
                           (4, 4, 3), 0),
    "RandomTranslation": Case(lambda: L.RandomTranslation(0.1, (-0.2, 0.1)), (4, 4, 3), (4, 4, 3), 0),
    "RandomZoom": Case(lambda: L.RandomZoom(0.2, width_factor=(-0.1, 0.3), interpolation="nearest"), (4, 4, 3),
                       (4, 4, 3), 0),
    # inference: the centred 6 x 6 window of the aspect ratio 4:4, resized to 4 x 4
    "RandomCrop": Case(lambda: L.RandomCrop(4, 4), (6, 6, 3), (4, 4, 3), 0),
    "RandomContrast": Case(lambda: L.RandomContrast(0.3, value_range=(0, 1)), (4, 4, 3), (4, 4, 3), 0),
    "RandomBrightness": Case(lambda: L.RandomBrightness((-0.2, 0.1), seed=3), (4, 4, 3), (4, 4, 3), 0),
    "SpecAugment": Case(lambda: L.SpecAugment(time_masks=1, freq_masks=3, freq_width=0.2, mask_value="mean"),
                        (10, 8, 1), (10, 8, 1), 0),
    "RandomTimeShift": Case(lambda: L.RandomTimeShift((-0.1, 0.2)), (16,), (16,), 0),
    "TokenDropout": Case(lambda: L.TokenDropout(0.2, pad_id=0, unk_id=1), (6,), (6,), 0, dtype="int64",
                         int_high=10),
}

# Layers whose round trip also goes through the folder format (a path without a suffix).
_FOLDER_CASES = ["Dense", "BatchNormalization", "Conv2D", "LSTM", "Bidirectional", "MultiHeadAttention",
                 "Concatenate", "Embedding", "TimeDistributed", "SeparableConv2D"]


# ---------------------------------------------------------------------- helpers
def _batch(case: Case, batch: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = []
    for shape in case.input_shapes:
        if case.dtype.startswith("int"):
            out.append(torch.randint(0, case.int_high, (batch, *shape), generator=g, dtype=getattr(torch, case.dtype)))
        else:
            out.append(torch.randn((batch, *shape), generator=g))
    return out


def _call(case: Case, layer, xs):
    if case.call == "single":
        return layer(xs[0])
    if case.call == "list":
        return layer(list(xs))
    return layer(*xs)


def _model(case: Case, layer):
    """Sequential for single-input layers; functional Model for the rest (and Bidirectional)."""
    if case.call == "single" and not isinstance(layer, L.Bidirectional):
        return kiln.Sequential([kiln.Input(shape=case.inputs, dtype=case.dtype), layer])
    inputs = [kiln.Input(shape=s, dtype=case.dtype) for s in case.input_shapes]
    outputs = _call(case, layer, inputs)
    return kiln.Model(inputs[0] if case.call == "single" else inputs, outputs)


def _model_inputs(case: Case, xs):
    return xs[0] if case.call == "single" else [x.numpy() for x in xs]


def _find(model, cls):
    found = [l for l in model.layers if type(l) is cls]
    assert len(found) == 1, f"expected one {cls.__name__} in {model.layers}"
    return found[0]


def _randomize_non_trainable(layer) -> None:
    """Give buffers (e.g. moving statistics) non-default values so the round trip must carry them."""
    with torch.no_grad():
        for name, b in layer.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand_like(b) + 0.5)


# ---------------------------------------------------------------------- the harness
def test_every_public_layer_has_a_harness_entry():
    public = set(L.__all__) - _NOT_HARNESSED - _FUNCTIONAL_FORMS
    missing = sorted(public - set(CASES))
    assert not missing, f"Add a harness entry to CASES in {__file__} for: {missing}"
    unknown = sorted(set(CASES) - public)
    assert not unknown, f"CASES names layers that are not in kiln.layers.__all__: {unknown}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_and_param_count(name):
    case = CASES[name]
    layer = case.factory()
    assert type(layer) is getattr(L, name)
    xs = _batch(case)
    layer.eval()
    with torch.no_grad():
        y = _call(case, layer, xs)
    assert tuple(y.shape) == (3, *case.output), f"{name}: output shape {tuple(y.shape)}"
    trainable, frozen = count_params(layer)
    assert trainable + frozen == case.params, f"{name}: {trainable} trainable + {frozen} non-trainable"


@pytest.mark.parametrize("name", sorted(CASES))
def test_save_load_round_trip(name, tmp_path):
    case = CASES[name]
    model = _model(case, case.factory())
    layer = _find(model, getattr(L, name))
    _randomize_non_trainable(layer)
    xs = _batch(case)
    before = model.predict(_model_inputs(case, xs), verbose=0)
    assert tuple(before.shape) == (3, *case.output)

    path = tmp_path / "m.keras"
    if not case.saveable:
        with pytest.raises(SerializationError, match="register_serializable"):
            model.save(path)
        assert not path.exists(), "a refused save must not leave a file behind"
        return
    model.save(path)
    loaded = kiln.load_model(path)
    after = loaded.predict(_model_inputs(case, xs), verbose=0)
    np.testing.assert_array_equal(after, before)
    assert _find(loaded, getattr(L, name)).get_config() == layer.get_config()
    assert sum(count_params(loaded)) == case.params


@pytest.mark.parametrize("name", _FOLDER_CASES)
def test_save_load_round_trip_folder_format(name, tmp_path):
    case = CASES[name]
    model = _model(case, case.factory())
    xs = _batch(case)
    before = model.predict(_model_inputs(case, xs), verbose=0)
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved").is_dir()
    loaded = kiln.load_model(tmp_path / "saved")
    np.testing.assert_array_equal(loaded.predict(_model_inputs(case, xs), verbose=0), before)
    cls = getattr(L, name)
    assert _find(loaded, cls).get_config() == _find(model, cls).get_config()


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_is_json_and_from_config_rebuilds_it(name):
    case = CASES[name]
    layer = case.factory()
    if not case.saveable:
        with pytest.raises(SerializationError, match="register_serializable"):
            layer.get_config()
        return
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config, f"{name}: get_config() is not plain JSON"
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert type(clone) is type(layer)
    assert clone.get_config() == config
    # A built layer reports the same config as a fresh one (building adds no constructor argument).
    _call(case, layer, _batch(case))
    assert layer.get_config() == config
