"""QAT: the fake-quant forward is what the int8 model computes; the original model is untouched."""

import pytest
import torch

import kiln as keras
from kiln.compress.qat import fake_quant_input, fake_quant_weight, finish_qat, prepare_qat, qat_fine_tune
from kiln.compress.quantize import int8_weights, quantize
from kiln.errors import KilnValueError


def _model():
    torch.manual_seed(0)
    model = keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    model(x[:2])
    return model, x, y


def test_fake_quant_weight_is_the_stored_grid_and_passes_gradients_straight_through():
    kernel = torch.randn(5, 7, requires_grad=True)  # kiln layout (in, units)
    out = fake_quant_weight(kernel)
    q, scale = int8_weights(kernel.detach().t())
    assert torch.equal(out.detach(), (q.float() * scale[:, None]).t())
    out.sum().backward()
    assert torch.equal(kernel.grad, torch.ones_like(kernel))


def test_fake_quant_input_matches_torch_quantize_per_tensor_with_reduce_range():
    x = torch.randn(8, 6) * 3
    low, high = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = (high - low) / 127
    zero_point = round(-low / scale)
    reference = torch.quantize_per_tensor(x, scale, zero_point, torch.quint8).dequantize()
    assert torch.allclose(fake_quant_input(x), reference, atol=1e-6)


def test_fake_quant_forward_matches_the_converted_int8_model():
    model, x, y = _model()
    prepared = prepare_qat(model)
    qat_fine_tune(prepared, x, y, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), epochs=2,
                  batch_size=16)
    with torch.no_grad():
        fake = prepared.model(x)
    trained = finish_qat(prepared)
    assert type(trained.layers[0]) is keras.layers.Dense  # no parametrization left behind
    assert sorted(trained.state_dict()) == sorted(model.state_dict())
    int8 = quantize(trained, "int8", backend="torch", per_channel=True)
    assert int8.quantized_layers == ["dense", "dense_1"]
    with torch.no_grad():
        real = int8.model(x)
    # fbgemm's int8 GEMM is exact in int32; only the float rescaling differs (measured 1.2e-7 on
    # outputs of magnitude ~1.4), so 1e-5 absolute is a tight bound that still allows reordering.
    torch.testing.assert_close(real, fake, atol=1e-5, rtol=0)
    assert not torch.equal(trained.layers[0].kernel, model.layers[0].kernel)  # the source was copied


def test_prepare_qat_refuses_a_model_without_dense_layers():
    model = keras.Sequential([keras.layers.Dense(3)])
    model(torch.randn(2, 4))
    with pytest.raises(KilnValueError, match=r"no Dense layer to train for int8 .*keep_fp32=\['dense'\]"):
        prepare_qat(model, keep_fp32=("dense",))
