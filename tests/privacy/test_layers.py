"""Layers DP-SGD cannot train are refused by name, or replaced with fix_layers."""

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnValueError
from kiln.layers import BatchNormalization, Dense, LayerNormalization
from kiln.privacy import DP
from kiln.privacy.layers import check_layers


def data():
    g = np.random.default_rng(0)
    x = g.normal(size=(120, 4)).astype("float32")
    return x, (x.sum(1, keepdims=True) > 0).astype("float32")


def bn_model():
    kiln.utils.set_random_seed(0)
    model = kiln.Sequential([Dense(8, input_shape=(4,)), BatchNormalization(name="bn"), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", num_threads=1)
    return model


def test_kiln_batch_norm_is_refused_naming_the_layer_and_the_fix():
    x, y = data()
    model = bn_model()
    with pytest.raises(KilnValueError) as err:
        model.fit(x, y, epochs=1, batch_size=20, verbose=0, privacy=DP(epsilon=3, delta=1e-3, accountant="rdp"))
    message = str(err.value)
    assert "layer(s) 'bn' (BatchNormalization)" in message
    assert "GroupNorm or LayerNormalization" in message and "`privacy.fix_layers: true`" in message


@pytest.mark.slow
def test_fix_layers_replaces_kiln_batch_norm_and_trains():
    x, y = data()
    model = bn_model()
    history = model.fit(x, y, epochs=1, batch_size=20, verbose=0,
                        privacy=DP(epsilon=3, delta=1e-3, accountant="rdp", fix_layers=True))
    assert isinstance(model.bn, LayerNormalization) and model.bn.built
    assert model.fit_state.privacy.record()["replaced_layers"] == ["bn"]
    assert np.isfinite(history.history["loss"][0])
    trained = {name for name, p in model.named_parameters()}
    assert {"bn.gamma", "bn.beta"} <= trained  # the new layer's weights are in the model (and the optimizer)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_torch_batch_norm_becomes_group_norm():
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64), torch.nn.ReLU())
    with pytest.raises(KilnValueError, match=r"layer\(s\) '1' \(BatchNorm2d\)"):
        check_layers(module, fix_layers=False)
    assert check_layers(module, fix_layers=True) == ["1"]
    assert isinstance(module[1], torch.nn.GroupNorm) and module[1].num_groups == 32 and module[1].num_channels == 64


def test_a_model_without_batch_norm_is_left_alone():
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    assert check_layers(module, fix_layers=True) == []
    assert isinstance(module[1], torch.nn.LayerNorm)


def test_layers_opacus_cannot_handle_are_refused_with_its_reason():
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LSTM(4, 4))
    with pytest.raises(KilnValueError, match=r"Opacus cannot make this model private: layer '1' \(LSTM\): "
                                             r"We do not support nn.LSTM .* DPLSTM"):
        check_layers(module, fix_layers=False)
