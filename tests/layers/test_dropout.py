"""Dropout and SpatialDropout: identity at inference; in training, the dropped fraction, the
1 / (1 - rate) scaling, shared draws along noise_shape axes, and seeded reproducibility."""

import json

import pytest
import torch

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.dropout import Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from kiln.layers.symbolic import Input
from kiln.models.summary import count_params


def kept(y):
    return y != 0


@pytest.mark.parametrize("layer", [Dropout(0.5), Dropout(0.3, seed=1), SpatialDropout2D(0.4),
                                   Dropout(0.5, noise_shape=(None, 1, None, 1))])
def test_identity_at_inference(layer):
    x = torch.randn(4, 5, 6, 3)
    assert torch.equal(layer(x, training=False), x)
    layer.eval()
    assert torch.equal(layer(x), x)


@pytest.mark.parametrize("seed", [None, 7])
def test_training_drops_rate_and_scales_the_rest(seed):
    layer = Dropout(0.3, seed=seed)
    layer.train()
    x = torch.ones(200, 500)
    y = layer(x)
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    torch.testing.assert_close(y[kept(y)], torch.full_like(y[kept(y)], 1 / 0.7))
    assert abs(y.mean().item() - 1.0) < 0.02  # expectation preserved


def test_training_argument_overrides_module_mode():
    layer = Dropout(0.5).eval()
    x = torch.ones(100, 100)
    assert (layer(x, training=True) == 0).any()
    layer.train()
    assert torch.equal(layer(x, training=False), x)


def test_rate_zero_is_identity():
    x = torch.randn(3, 4)
    assert torch.equal(Dropout(0.0)(x, training=True), x)


def test_noise_shape_shares_the_draw_along_size_one_axes():
    layer = Dropout(0.5, noise_shape=(None, 1, None))
    x = torch.ones(8, 10, 16)
    y = layer(x, training=True)
    mask = kept(y)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))  # same features kept at every step
    assert mask.any() and not mask.all()


def test_seed_makes_the_masks_reproducible():
    x = torch.ones(32, 32)
    a, b, c = Dropout(0.5, seed=3), Dropout(0.5, seed=3), Dropout(0.5, seed=4)
    ya1, ya2 = a(x, training=True), a(x, training=True)
    yb1, yb2 = b(x, training=True), b(x, training=True)
    assert torch.equal(ya1, yb1) and torch.equal(ya2, yb2)
    assert not torch.equal(ya1, ya2)              # the sequence moves on
    assert not torch.equal(c(x, training=True), ya1)


@pytest.mark.parametrize("layer,shape,spatial_axes", [
    (SpatialDropout1D(0.5), (8, 12, 16), (1,)),
    (SpatialDropout2D(0.5), (8, 5, 6, 16), (1, 2)),
    (SpatialDropout2D(0.5, data_format="channels_first"), (8, 16, 5, 6), (2, 3)),
    (SpatialDropout3D(0.5), (4, 3, 3, 3, 16), (1, 2, 3)),
])
def test_spatial_dropout_drops_whole_channels(layer, shape, spatial_axes):
    x = torch.ones(*shape)
    mask = kept(layer(x, training=True))
    per_channel = mask.amax(dim=spatial_axes, keepdim=True)
    assert torch.equal(mask, per_channel.expand_as(mask))
    assert per_channel.any() and not per_channel.all()


def test_gradients_flow_only_through_kept_units():
    x = torch.ones(10, 10, requires_grad=True)
    y = Dropout(0.5, seed=0)(x, training=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() * 2)


def test_no_weights_and_symbolic_identity():
    layer = Dropout(0.5)
    assert layer(Input(shape=(3,))).shape == (None, 3)
    assert count_params(layer) == (0, 0)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_invalid_rate(rate):
    with pytest.raises(KilnValueError) as err:
        Dropout(rate)
    assert "Invalid value received for argument `rate`" in str(err.value)


def test_invalid_noise_shape_and_seed():
    with pytest.raises(KilnValueError, match="noise_shape"):
        Dropout(0.5, noise_shape=(None, 0))
    with pytest.raises(KilnTypeError, match="seed"):
        Dropout(0.5, seed="abc")
    with pytest.raises(ShapeError, match="noise_shape"):
        Dropout(0.5, noise_shape=(None, 1))(torch.randn(2, 3, 4), training=True)
    with pytest.raises(ShapeError, match="broadcast"):
        Dropout(0.5, noise_shape=(None, 2, 4))(torch.randn(2, 3, 4), training=True)
    with pytest.raises(ShapeError, match="rank 4"):
        SpatialDropout2D(0.5)(torch.randn(2, 3, 4), training=True)


@pytest.mark.parametrize("layer", [Dropout(0.2, noise_shape=(None, 1), seed=5, name="d"), SpatialDropout1D(0.1),
                                   SpatialDropout2D(0.3, data_format="channels_first", seed=2)])
def test_config_round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    if layer.seed is not None:  # same seed, same first mask
        x = torch.ones(4, 3, 5, 6) if isinstance(layer, SpatialDropout2D) else torch.ones(4, 6)
        assert torch.equal(clone(x, training=True), type(layer).from_config(config)(x, training=True))


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [Dropout(0.1), SpatialDropout1D(0.1), SpatialDropout2D(0.1), SpatialDropout3D(0.1)]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
