"""Keras's weight constraints: formulas, serialisation, and the projection after each optimizer step."""

import numpy as np
import pytest
import torch

import kiln
from kiln import constraints
from kiln.errors import KilnError
from kiln.layers import Conv2D, Dense, Embedding

EPS = 1e-7


def _np_norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=tuple(np.atleast_1d(axis)), keepdims=True))


@pytest.fixture
def w():
    return np.random.default_rng(0).normal(size=(4, 3, 5)).astype(np.float64)


@pytest.mark.parametrize("axis", [0, 1, [0, 1]])
def test_max_norm_matches_numpy(w, axis):
    n = _np_norms(w, axis)
    expected = w * np.clip(n, 0, 1.5) / (EPS + n)
    got = constraints.MaxNorm(max_value=1.5, axis=axis)(torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_min_max_norm_matches_numpy(w):
    n = _np_norms(w, 0)
    desired = 0.3 * np.clip(n, 1.0, 1.2) + 0.7 * n
    got = constraints.MinMaxNorm(min_value=1.0, max_value=1.2, rate=0.3, axis=0)(torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(got, w * desired / (EPS + n), rtol=1e-12)


def test_non_neg_and_unit_norm_match_numpy(w):
    np.testing.assert_array_equal(constraints.NonNeg()(torch.from_numpy(w)).numpy(), w * (w >= 0))
    got = constraints.UnitNorm(axis=2)(torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(got, w / (EPS + _np_norms(w, 2)), rtol=1e-12)


@pytest.mark.parametrize("name,cls", [("max_norm", constraints.MaxNorm), ("min_max_norm", constraints.MinMaxNorm),
                                      ("non_neg", constraints.NonNeg), ("unit_norm", constraints.UnitNorm),
                                      ("MaxNorm", constraints.MaxNorm)])
def test_get_by_name_and_serialize_round_trip(name, cls):
    c = constraints.get(name)
    assert type(c) is cls
    again = constraints.deserialize(constraints.serialize(c))
    assert type(again) is cls and again.get_config() == c.get_config()


def test_unknown_name_is_a_kiln_error_with_a_suggestion():
    with pytest.raises(KilnError, match=r"Unknown constraint: 'max_nrom'\. Did you mean 'max_norm'\?"):
        constraints.get("max_nrom")
    with pytest.raises(KilnError, match="Unknown constraint: 'max_nrom'"):
        Dense(2, kernel_constraint="max_nrom")


def test_dense_max_norm_three_steps_equals_a_torch_loop_that_clamps():
    torch.manual_seed(0)
    x, y = torch.randn(16, 6) * 5, torch.randn(16, 3) * 5
    layer = Dense(3, kernel_constraint=constraints.MaxNorm(0.5), bias_constraint="non_neg")
    model = kiln.Sequential([kiln.Input((6,)), layer])
    kernel0, bias0 = layer.kernel.detach().clone(), layer.bias.detach().clone()
    model.compile(optimizer=kiln.optimizers.SGD(0.5), loss="mse")
    for _ in range(3):
        model.train_on_batch(x, y)

    k, b = kernel0.clone().requires_grad_(), bias0.clone().requires_grad_()
    for _ in range(3):
        loss = torch.mean((x @ k + b - y) ** 2)
        gk, gb = torch.autograd.grad(loss, [k, b])
        with torch.no_grad():
            k -= 0.5 * gk
            b -= 0.5 * gb
            norms = k.norm(dim=0, keepdim=True)
            k.mul_(norms.clamp(0, 0.5) / (EPS + norms))
            b.mul_((b >= 0).to(b.dtype))
    torch.testing.assert_close(layer.kernel.detach(), k.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.bias.detach(), b.detach(), rtol=1e-5, atol=1e-6)
    assert (layer.kernel.detach().norm(dim=0) <= 0.5 + 1e-6).all()
    assert not torch.equal(layer.kernel.detach(), kernel0)


def test_non_neg_on_a_conv_kernel_after_a_step():
    torch.manual_seed(0)
    layer = Conv2D(4, 3, kernel_constraint="non_neg")
    model = kiln.Sequential([kiln.Input((6, 6, 2)), layer])
    model.compile(optimizer=kiln.optimizers.SGD(0.1), loss="mse")
    assert (layer.kernel.detach() < 0).any()
    model.train_on_batch(torch.randn(2, 6, 6, 2), torch.randn(2, 4, 4, 4))
    assert (layer.kernel.detach() >= 0).all() and (layer.kernel.detach() > 0).any()


def test_conv_max_norm_uses_keras_axes():
    # Keras's conv kernel is (kh, kw, in, out) and axis=[0, 1, 2] bounds each filter; kiln's is
    # (out, in, kh, kw), so the same constraint must bound the norm over dims (1, 2, 3).
    w = torch.randn(4, 2, 3, 3) * 3
    wrapped = constraints.for_torch_conv_kernel(constraints.MaxNorm(1.0, axis=[0, 1, 2]))
    keras_w = w.permute(2, 3, 1, 0)
    expected = constraints.MaxNorm(1.0, axis=[0, 1, 2])(keras_w).permute(3, 2, 0, 1)
    torch.testing.assert_close(wrapped(w), expected)
    assert (wrapped(w).flatten(1).norm(dim=1) <= 1.0 + 1e-6).all()


def test_save_load_round_trip_keeps_constraints(tmp_path):
    model = kiln.Sequential([kiln.Input((5,)), Embedding(7, 3, embeddings_constraint="unit_norm"),
                             Dense(2, kernel_constraint=constraints.MinMaxNorm(0.1, 0.9, rate=0.5, axis=1)),
                             ])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kiln.models.load_model(path)
    emb, dense = loaded.layers[0], loaded.layers[1]
    assert type(emb.embeddings_constraint) is constraints.UnitNorm
    assert dense.kernel_constraint.get_config() == {"min_value": 0.1, "max_value": 0.9, "rate": 0.5, "axis": 1}
    assert dense.bias_constraint is None and "bias_constraint" not in dense.get_config()
    assert dense.get_config() == model.layers[1].get_config()
    assert dense.kernel.constraint is dense.kernel_constraint  # applied again after loading


def test_layers_without_support_still_refuse():
    with pytest.raises(KilnError, match="does not support weight constraints yet"):
        kiln.layers.DepthwiseConv2D(3, depthwise_constraint="non_neg")


def test_conv_transpose_max_norm_bounds_keras_axes_after_a_step():
    # Keras's Conv2DTranspose kernel is (kh, kw, out, in); axis=[0, 1, 2] bounds each input
    # channel's slice, which is dim 0 of kiln's (in, out, kh, kw) kernel.
    torch.manual_seed(0)
    layer = kiln.layers.Conv2DTranspose(3, 2, kernel_constraint=constraints.MaxNorm(0.2, axis=[0, 1, 2]))
    model = kiln.Sequential([kiln.Input((4, 4, 2)), layer])
    model.compile(optimizer=kiln.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(torch.randn(2, 4, 4, 2), torch.randn(2, 5, 5, 3))
    norms = layer.kernel.detach().flatten(1).norm(dim=1)
    assert norms.shape == (2,) and (norms <= 0.2 + 1e-6).all() and (norms > 0.19).all()


def test_a_wrapped_torch_optimizer_applies_constraints_too():
    layer = Dense(2, kernel_constraint="non_neg")
    model = kiln.Sequential([kiln.Input((3,)), layer])
    model.compile(optimizer=kiln.optimizers.TorchOptimizer(torch.optim.SGD(model.parameters(), lr=0.1)), loss="mse")
    assert (layer.kernel.detach() < 0).any()
    model.train_on_batch(torch.randn(4, 3), torch.randn(4, 2))
    assert (layer.kernel.detach() >= 0).all()
