"""TimeDistributed equals the inner layer applied step by step, trains, and saves its inner layer."""

import json

import numpy as np
import pytest
import torch

import kiln
from kiln import layers as L
from kiln.errors import KilnTypeError, ShapeError
from kiln.layers.time_distributed import TimeDistributed


def test_dense_equals_dense_applied_per_step():
    td = TimeDistributed(L.Dense(4, activation="tanh"))
    x = torch.randn(3, 5, 6)
    y = td(x)
    assert y.shape == (3, 5, 4)
    per_step = torch.stack([td.layer(x[:, t]) for t in range(5)], dim=1)
    torch.testing.assert_close(y, per_step)
    assert sum(p.numel() for p in td.parameters()) == 6 * 4 + 4  # one Dense shared by every step


def test_conv2d_over_frames():
    td = TimeDistributed(L.Conv2D(2, 3))
    frames = torch.randn(2, 4, 6, 6, 1)  # (B, T, H, W, C): a short video
    y = td(frames)
    assert y.shape == (2, 4, 4, 4, 2)
    torch.testing.assert_close(y[:, 2], td.layer(frames[:, 2]))


def test_training_flag_reaches_the_inner_layer():
    td = TimeDistributed(L.Dropout(0.5))
    x = torch.ones(2, 3, 100)
    assert torch.equal(td(x, training=False), x)
    assert (td(x, training=True) == 0).any()


def test_sequence_tagger_trains():
    torch.manual_seed(0)
    model = kiln.Sequential([
        kiln.Input(shape=(7,), dtype="int64"),
        L.Embedding(20, 8),
        L.LSTM(16, return_sequences=True),
        TimeDistributed(L.Dense(3, activation="softmax")),
    ])
    ids = np.random.randint(0, 20, size=(64, 7))
    tags = ids % 3  # the tag is a function of the token
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(ids, tags, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(ids[:2], verbose=0).shape == (2, 7, 3)


def test_save_and_load_rebuilds_the_inner_layer(tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(5, 3)), TimeDistributed(L.Dense(2, activation="relu"))])
    x = np.random.rand(4, 5, 3).astype("float32")
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "td.keras")
    loaded = kiln.load_model(tmp_path / "td.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    inner = loaded.layers[0].layer
    assert isinstance(inner, L.Dense) and inner.units == 2


def test_config_holds_the_inner_layer():
    td = TimeDistributed(L.Dense(4, use_bias=False), name="td")
    config = json.loads(json.dumps(td.get_config()))
    assert config["layer"]["class_name"] == "kiln.layers.dense:Dense" and config["layer"]["config"]["use_bias"] is False
    clone = TimeDistributed.from_config(config)
    assert clone.get_config() == td.get_config()


def test_errors():
    with pytest.raises(KilnTypeError, match="TimeDistributed"):
        TimeDistributed(torch.nn.Linear(3, 4))
    with pytest.raises(ShapeError, match="rank 3 or more"):
        TimeDistributed(L.Dense(2))(torch.randn(4, 3))
