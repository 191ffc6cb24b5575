"""Dynamic int8: predictions agree with fp32 on the digits test split, for each backend."""

import warnings

import numpy as np
import pytest
import torch

import kiln
from kiln import layers as L
from kiln.compress import quantize, quantize_onnx
from kiln.compress.quantize import DenseAsLinear, as_linear, int8_weights
from kiln.errors import KilnValueError


@pytest.fixture(scope="module")
def digits_model():
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x), generator=g)
    train, test = order[:1400], order[1400:]
    kiln.utils.set_random_seed(0)
    inputs = kiln.Input(shape=(64,), name="x")  # named: a run's models take {feature: tensor}
    model = kiln.Model(inputs, L.Dense(10)(L.Dense(64, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[train], y[train], epochs=4, batch_size=32, verbose=0)
    return model.eval(), x[test], y[test]


def test_dense_as_linear_is_exact(digits_model):
    model, x, _ = digits_model
    converted, swapped, fp32 = as_linear(model)
    assert swapped == ["dense", "dense_1"] and fp32 == {}
    assert isinstance(converted.dense, DenseAsLinear)
    torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "torchao"])
def test_int8_predictions_agree_with_fp32_on_the_test_split(digits_model, backend):
    model, x, y = digits_model
    result = quantize(model, "int8", backend=backend)
    assert result.quantized_layers == ["dense", "dense_1"]
    with torch.no_grad():
        ref, got = model(x).argmax(1), result.model(x).argmax(1)
    assert (ref == got).float().mean().item() >= 0.99
    assert (got == y).float().mean().item() >= 0.85 # a trained model, not a constant


def test_keep_fp32_leaves_those_layers_exact(digits_model):
    model, x, _ = digits_model
    result = quantize(model, "int8", keep_fp32=["dense_1"])
    assert result.quantized_layers == ["dense"] and result.fp32_layers == {"dense_1": "kept fp32 by the accuracy fallback"}
    assert type(result.model.dense_1) is L.Dense


def test_conv_layers_are_named_as_kept_fp32():
    model = kiln.Sequential([kiln.Input(shape=(6, 6, 1)), L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])
    result = quantize(model, "int8")
    assert result.quantized_layers == ["dense"]
    assert "no convolution kernels" in result.fp32_layers["conv2d"]


@pytest.mark.slow  # the dynamo ONNX export takes seconds
def test_onnx_int8_graph_agrees_with_fp32(digits_model, tmp_path):
    import onnxruntime as ort

    from kiln.export.onnx import export_model_onnx
    model, x, _ = digits_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = export_model_onnx(model, {"x": x[:4]}, tmp_path / "fp32.onnx")
    int8 = quantize_onnx(fp32, tmp_path / "int8.onnx")
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.99


def test_int8_weights_round_trip_within_half_a_step():
    w = torch.randn(5, 7)
    q, scale = int8_weights(w)
    assert q.dtype == torch.int8 and q.abs().max() == 127
    assert torch.all((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-7)


def test_bad_dtype_and_backend_name_the_fix(digits_model):
    model = digits_model[0]
    with pytest.raises(KilnValueError, match="expected 'int8'.*Received: dtype='int4'"):
        quantize(model, "int4")
    with pytest.raises(KilnValueError, match="Received: backend='onnx'. Quantize an exported graph with"):
        quantize(model, "int8", backend="onnx")


def test_model_quantize_is_keras_3s_in_place_int8(digits_model):
    import copy
    model, x, _ = digits_model
    q = copy.deepcopy(model)
    assert q.quantize("int8") is None
    assert type(q.dense).__name__ == "DenseAsLinear" and "quantized" in type(q.dense.linear).__module__
    with torch.no_grad():
        assert (q(x).argmax(1) == model(x).argmax(1)).float().mean().item() >= 0.99
