"""Attention-head pruning: removing heads whose output slice is zero changes nothing; the smaller
layer saves and loads."""

import pytest
import torch

import kiln as keras
from kiln.compress.heads import head_importance, prune_heads, prune_layer_heads
from kiln.errors import KilnValueError


def _model(heads=4):
    torch.manual_seed(0)
    inputs = keras.Input((5, 16))
    outputs = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=8, name="mha")(inputs, inputs)
    return keras.Model(inputs, outputs), torch.randn(3, 5, 16)


def test_pruning_the_heads_that_add_nothing_leaves_the_output_unchanged():
    model, x = _model()
    layer = model.get_layer("mha")
    with torch.no_grad():
        layer.output_kernel[1].zero_()
        layer.output_kernel[3].zero_()
        before = model(x)
    assert head_importance(layer)[[1, 3]].tolist() == [0.0, 0.0]
    assert prune_heads(model, 0.5) == {"mha": [0, 2]}
    assert layer.num_heads == 2 and layer.query_kernel.shape == (16, 2, 8) and layer.output_kernel.shape == (2, 8, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, atol=1e-6, rtol=0)


def test_a_pruned_model_saves_and_loads(tmp_path):
    model, x = _model()
    prune_heads(model, 0.75)
    model.save(tmp_path / "m")
    loaded = keras.load_model(tmp_path / "m")
    assert loaded.get_layer("mha").num_heads == 1 and loaded.count_params() == model.count_params()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_bad_requests_are_refused():
    model, _ = _model()
    with pytest.raises(KilnValueError, match=r"Received: amount=1.0. Use e.g. 0.5"):
        prune_heads(model, 1.0)
    with pytest.raises(KilnValueError, match=r"distinct head indices in \[0, 4\), at least one. Received: keep=\[4\]"):
        prune_layer_heads(model.get_layer("mha"), [4])
    dense = keras.Sequential([keras.layers.Dense(2)])
    dense(torch.randn(1, 3))
    with pytest.raises(KilnValueError, match="no built kiln MultiHeadAttention"):
        prune_heads(dense, 0.5)
