"""kiln.initializers: statistics match Keras's formulas; seeds, layouts, orthogonality, config."""

import json
import math

import pytest
import torch

from kiln import initializers
from kiln.errors import KilnTypeError, KilnValueError
from kiln.initializers import (Constant, GlorotNormal, GlorotUniform, HeNormal, HeUniform, Identity, LecunNormal,
                               LecunUniform, Ones, Orthogonal, RandomNormal, RandomUniform, TruncatedNormal,
                               VarianceScaling, Zeros, compute_fans)

SHAPE = (400, 600)  # fan_in 400, fan_out 600: 240k samples keep the checks tight


def test_compute_fans_keras_and_torch_layouts():
    assert compute_fans(()) == (1, 1)
    assert compute_fans((7,)) == (7, 7)
    assert compute_fans((3, 5)) == (3, 5)  # Dense (in, out)
    assert compute_fans((3, 3, 16, 32)) == (9 * 16, 9 * 32)  # Conv2D (kh, kw, in, out)
    assert compute_fans((32, 16, 3, 3), layout="torch") == (9 * 16, 9 * 32)  # same conv, torch layout
    assert compute_fans((5, 3), layout="torch") == (3, 5)  # torch Linear (out, in)
    with pytest.raises(KilnValueError, match="layout"):
        compute_fans((3, 3), layout="tf")


@pytest.mark.parametrize("cls,variance", [
    (GlorotUniform, 2 / 1000), (GlorotNormal, 2 / 1000), (HeUniform, 2 / 400), (HeNormal, 2 / 400),
    (LecunUniform, 1 / 400), (LecunNormal, 1 / 400),
])
def test_variance_scaling_presets(cls, variance):
    w = cls(seed=0)(SHAPE)
    assert w.shape == SHAPE and w.dtype == torch.float32
    assert abs(w.mean().item()) < 0.01 * math.sqrt(variance) * 10
    assert w.var().item() == pytest.approx(variance, rel=0.02)
    if "Uniform" in cls.__name__:
        assert w.abs().max().item() <= math.sqrt(3 * variance)
    else:  # truncated at two standard deviations of the underlying normal
        assert w.abs().max().item() <= 2 * math.sqrt(variance) / 0.87962566103423978 + 1e-6


def test_torch_layout_gives_keras_fans():
    w = HeNormal(seed=1)((64, 32, 3, 3), layout="torch")
    assert w.shape == (64, 32, 3, 3)
    assert w.var().item() == pytest.approx(2 / (32 * 9), rel=0.03)


def test_random_uniform_normal_truncated():
    u = RandomUniform(-0.2, 0.4, seed=0)(SHAPE)
    assert u.min().item() >= -0.2 and u.max().item() < 0.4
    assert u.mean().item() == pytest.approx(0.1, abs=0.002)
    assert u.var().item() == pytest.approx(0.6 ** 2 / 12, rel=0.02)
    n = RandomNormal(mean=1.0, stddev=0.5, seed=0)(SHAPE)
    assert n.mean().item() == pytest.approx(1.0, abs=0.005)
    assert n.std().item() == pytest.approx(0.5, rel=0.02)
    t = TruncatedNormal(mean=0.0, stddev=0.5, seed=0)(SHAPE)
    assert t.abs().max().item() <= 1.0
    assert t.std().item() == pytest.approx(0.5 * 0.87962566103423978, rel=0.02)
    assert RandomUniform().get_config() == {"minval": -0.05, "maxval": 0.05, "seed": None}
    assert RandomNormal().get_config() == {"mean": 0.0, "stddev": 0.05, "seed": None}


def test_seeded_is_reproducible_and_unseeded_follows_global_rng():
    init = GlorotUniform(seed=42)
    torch.testing.assert_close(init((10, 10)), GlorotUniform(seed=42)((10, 10)))
    torch.testing.assert_close(init((10, 10)), init((10, 10)))  # Keras 3: same values on every call
    assert not torch.equal(init((10, 10)), GlorotUniform(seed=43)((10, 10)))
    torch.manual_seed(7)
    a = GlorotUniform()((10, 10))
    torch.manual_seed(7)
    torch.testing.assert_close(a, GlorotUniform()((10, 10)))
    assert not torch.equal(GlorotUniform()((10, 10)), GlorotUniform()((10, 10)))


def test_dtypes():
    assert HeNormal(seed=0)((4, 4), dtype=torch.float16).dtype == torch.float16
    assert HeNormal(seed=0)((4, 4), dtype=torch.float64).dtype == torch.float64
    torch.testing.assert_close(Constant(3)((2,), dtype=torch.int64), torch.tensor([3, 3]))


def test_zeros_ones_constant_identity():
    assert torch.equal(Zeros()((2, 3)), torch.zeros(2, 3))
    assert torch.equal(Ones()(4), torch.ones(4))
    assert torch.equal(Constant(2.5)((2, 2)), torch.full((2, 2), 2.5))
    assert torch.equal(Identity(gain=2.0)((3, 4)), 2.0 * torch.eye(3, 4))
    with pytest.raises(KilnValueError, match="2-D"):
        Identity()((3, 3, 3))


@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (30, 30)])
def test_orthogonal(shape):
    w = Orthogonal(gain=1.5, seed=0)(shape).double()
    rows, cols = shape
    gram = w.T @ w if rows >= cols else w @ w.T
    torch.testing.assert_close(gram, 1.5 ** 2 * torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-5, rtol=0)


def test_orthogonal_torch_layout_keeps_output_units_orthonormal():
    w = Orthogonal(seed=0)((8, 4, 3, 3), layout="torch")  # (out, in, kh, kw)
    flat = w.reshape(8, -1).double()  # each output unit's filter as a row
    torch.testing.assert_close(flat @ flat.T, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)


def test_get_and_names():
    assert type(initializers.get("glorot_uniform")) is GlorotUniform
    assert type(initializers.get("HeNormal")) is HeNormal
    assert type(initializers.get("zeros")) is Zeros
    assert initializers.get(None) is None
    assert initializers.serialize(None) is None and initializers.deserialize(None) is None
    init = Orthogonal()
    assert initializers.get(init) is init
    assert type(initializers.get(Ones)) is Ones
    fn = lambda shape, dtype=None: torch.zeros(shape)  # noqa: E731
    assert initializers.get(fn) is fn
    with pytest.raises(KilnValueError, match="Did you mean 'he_normal'"):
        initializers.get("he_nromal")
    with pytest.raises(KilnTypeError):
        initializers.get(1.0)


@pytest.mark.parametrize("init", [
    GlorotUniform(seed=3), HeNormal(), LecunUniform(seed=1), RandomUniform(-1.0, 1.0, seed=2),
    TruncatedNormal(stddev=0.1), Constant(0.7), Orthogonal(gain=2.0, seed=5), Identity(3.0), Zeros(), Ones(),
    VarianceScaling(scale=0.5, mode="fan_avg", distribution="untruncated_normal", seed=9),
])
def test_serialize_round_trip(init):
    config = json.loads(json.dumps(initializers.serialize(init)))
    restored = initializers.deserialize(config)
    assert type(restored) is type(init) and restored.get_config() == init.get_config()
    if init.get_config().get("seed") is not None:
        torch.testing.assert_close(restored((6, 6)), init((6, 6)))


def test_invalid_values():
    with pytest.raises(KilnValueError, match="`mode`"):
        VarianceScaling(mode="fan_sum")
    with pytest.raises(KilnValueError, match=r"`stddev`, expected a positive float\. Received: stddev=0"):
        RandomNormal(stddev=0)
    with pytest.raises(KilnTypeError, match="seed"):
        GlorotUniform(seed="a")
    with pytest.raises(KilnValueError, match="custom"):
        initializers.serialize(lambda shape: torch.zeros(shape))
