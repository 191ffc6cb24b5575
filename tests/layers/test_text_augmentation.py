"""TokenDropout: identity at inference, the observed rate, padding untouched, seeds."""

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnTypeError, KilnValueError
from kiln.layers.text_augmentation import TokenDropout


def _ids(batch=64, length=50, pad_from=40):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 1000, (batch, length), generator=g)
    ids[:, pad_from:] = 0  # padding at the end of every row
    return ids


def test_identity_at_inference():
    layer, x = TokenDropout(0.3), _ids()
    assert layer(x, training=False) is x
    layer.eval()
    assert layer(x) is x


def test_replaces_about_rate_of_the_tokens_and_never_padding():
    x = _ids(batch=400)
    out = TokenDropout(0.2, pad_id=0, unk_id=1)(x, training=True)
    assert out.dtype == x.dtype and out.shape == x.shape
    pad = x == 0
    assert torch.equal(out[pad], x[pad]), "padding is never replaced"
    changed = out != x
    assert (out[changed] == 1).all(), "dropped tokens become unk_id"
    fraction = changed[~pad].float().mean().item()
    assert abs(fraction - 0.2) < 0.01  # 16,000 tokens: the standard error is 0.003


def test_rate_one_replaces_every_real_token():
    x = _ids()
    out = TokenDropout(1.0, unk_id=7)(x, training=True)
    assert (out[x != 0] == 7).all() and (out[x == 0] == 0).all()


def test_custom_pad_id():
    x = torch.full((4, 10), 5)
    x[:, :3] = 9
    out = TokenDropout(1.0, pad_id=5, unk_id=2)(x, training=True)
    assert (out[:, :3] == 2).all() and (out[:, 3:] == 5).all()


def test_reproducible_under_set_random_seed_and_with_a_seed():
    x = _ids()
    kiln.utils.set_random_seed(3)
    a = TokenDropout(0.3)(x, training=True)
    kiln.utils.set_random_seed(3)
    assert torch.equal(TokenDropout(0.3)(x, training=True), a)
    kiln.utils.set_random_seed(4)
    assert not torch.equal(TokenDropout(0.3)(x, training=True), a)
    assert torch.equal(TokenDropout(0.3, seed=1)(x, training=True), TokenDropout(0.3, seed=1)(x, training=True))
    assert not torch.equal(TokenDropout(0.3, seed=1)(x, training=True), TokenDropout(0.3, seed=2)(x, training=True))


def test_one_draw_per_sample():
    x = _ids(batch=1).expand(16, -1).contiguous()
    out = TokenDropout(0.3)(x, training=True)
    assert len({tuple(row.tolist()) for row in out}) > 1


def test_in_front_of_an_embedding_in_a_model(tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(12,), dtype="int64"), TokenDropout(0.1),
                             kiln.layers.Embedding(50, 4), kiln.layers.GlobalAveragePooling1D(),
                             kiln.layers.Dense(2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 50, (16, 12))
    model.fit(x, np.arange(16) % 2, epochs=1, batch_size=8, verbose=0)
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(kiln.load_model(tmp_path / "m.keras").predict(x, verbose=0), before)


@pytest.mark.parametrize("rate", [-0.1, 1.5, "0.1", None, True])
def test_invalid_rate(rate):
    with pytest.raises(KilnValueError, match="Received an invalid value for `rate`"):
        TokenDropout(rate)


@pytest.mark.parametrize("kwargs,name", [({"pad_id": 0.5}, "pad_id"), ({"unk_id": "1"}, "unk_id")])
def test_invalid_ids(kwargs, name):
    with pytest.raises(KilnValueError, match=f"`{name}`"):
        TokenDropout(0.1, **kwargs)


def test_float_inputs_are_refused():
    with pytest.raises(KilnTypeError, match="integer token ids"):
        TokenDropout(0.1)(torch.rand(2, 5), training=True)
