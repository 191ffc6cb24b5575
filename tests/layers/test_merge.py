"""Merge layers against NumPy, Keras's broadcasting of lower-rank inputs, and clear shape errors."""

import json

import numpy as np
import pytest
import torch

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                               concatenate, dot, maximum, minimum, multiply, subtract)
from kiln.layers.symbolic import Input
from kiln.models.summary import count_params

A, B, C = (torch.randn(4, 3, 5) for _ in range(3))


@pytest.mark.parametrize("cls,fn", [
    (Add, lambda xs: xs[0] + xs[1] + xs[2]),
    (Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
    (Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
    (Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    (Minimum, lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
])
def test_elementwise_merges_match_numpy(cls, fn):
    y = cls()([A, B, C])
    np.testing.assert_allclose(y.numpy(), fn([A.numpy(), B.numpy(), C.numpy()]), rtol=1e-6)


def test_subtract():
    np.testing.assert_allclose(Subtract()([A, B]).numpy(), A.numpy() - B.numpy())


def test_single_input_and_tuple_input():
    assert torch.equal(Add()([A]), A)
    assert torch.equal(Maximum()((A, B)), torch.maximum(A, B))


def test_lower_rank_inputs_get_axes_after_the_batch_axis():
    x, v = torch.randn(4, 3, 5), torch.randn(4, 5)
    torch.testing.assert_close(Add()([x, v]), x + v[:, None, :])
    s = torch.randn(4, 3, 1)
    torch.testing.assert_close(Multiply()([x, s]), x * s)


def test_incompatible_shapes_are_named():
    with pytest.raises(ShapeError) as err:
        Add()([torch.randn(2, 3), torch.randn(2, 4)])
    assert "(2, 3)" in str(err.value) and "(2, 4)" in str(err.value)
    with pytest.raises(ShapeError, match="different batch sizes"):
        Multiply()([torch.randn(2, 3), torch.randn(5, 3)])


def test_subtract_needs_exactly_two_inputs():
    with pytest.raises(KilnValueError, match="exactly 2 inputs"):
        Subtract()([A, B, C])
    with pytest.raises(KilnValueError, match="exactly 2 inputs"):
        Subtract()([A])


def test_merge_needs_a_list():
    with pytest.raises(KilnTypeError, match="list of tensors"):
        Add()(A)
    with pytest.raises(KilnValueError, match="at least 1 input"):
        Add()([])


def test_gradients_reach_every_input():
    xs = [torch.randn(2, 3, requires_grad=True) for _ in range(2)]
    Average()(xs).sum().backward()
    for x in xs:
        torch.testing.assert_close(x.grad, torch.full((2, 3), 0.5))


# ---------------------------------------------------------------------- Concatenate
@pytest.mark.parametrize("axis", [-1, 1, 2, -2])
def test_concatenate_matches_numpy(axis):
    x, y = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    np.testing.assert_array_equal(Concatenate(axis)([x, y]).numpy(), np.concatenate([x.numpy(), y.numpy()], axis))


def test_concatenate_different_sizes_on_the_axis():
    y = Concatenate()([torch.randn(2, 64), torch.randn(2, 8)])
    assert y.shape == (2, 72)


def test_concatenate_shape_errors():
    with pytest.raises(ShapeError, match="matching shapes except for the concatenation axis"):
        Concatenate()([torch.randn(2, 3, 4), torch.randn(2, 5, 4)])
    with pytest.raises(ShapeError, match="rank"):
        Concatenate()([torch.randn(2, 3, 4), torch.randn(2, 4)])
    with pytest.raises(ShapeError, match="axis=3"):
        Concatenate(axis=3)([torch.randn(2, 3), torch.randn(2, 3)])
    with pytest.raises(KilnValueError, match="axis"):
        Concatenate(axis="last")


# ---------------------------------------------------------------------- functional API and config
def test_symbolic_merges():
    a, b = Input(shape=(8,)), Input(shape=(8,))
    assert Add()([a, b]).shape == (None, 8)
    assert (a + b).shape == (None, 8)
    assert (a * b).shape == (None, 8)
    assert Concatenate()([a, b]).shape == (None, 16)


@pytest.mark.parametrize("layer", [Add(name="add_1"), Subtract(), Multiply(), Average(), Maximum(), Minimum(),
                                   Concatenate(axis=1)])
def test_config_round_trip(layer):
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    torch.testing.assert_close(clone([A, B]), layer([A, B]))
    assert count_params(layer) == (0, 0)


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [Add(), Subtract(), Multiply(), Average(), Maximum(), Minimum(), Concatenate()]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"


# ---------------------------------------------------------------------- Dot
def test_dot_of_vectors_is_a_batch_of_dot_products():
    u, v = torch.randn(4, 6), torch.randn(4, 6)
    y = Dot(axes=1)([u, v])
    assert y.shape == (4, 1)
    np.testing.assert_allclose(y.numpy()[:, 0], (u.numpy() * v.numpy()).sum(axis=1), rtol=1e-5)


@pytest.mark.parametrize("axes,einsum,shape", [
    (2, "bnd,bmd->bnm", (4, 3, 5)), ((1, 1), "bdn,bdm->bnm", None), ((2, 1), "bnd,bdm->bnm", None)])
def test_dot_matches_einsum(axes, einsum, shape):
    a = torch.randn(2, 3, 4)
    b = torch.randn(2, 5, 4) if axes == 2 else (torch.randn(2, 3, 5) if axes == (1, 1) else torch.randn(2, 4, 5))
    expected = np.einsum(einsum, a.numpy(), b.numpy())
    np.testing.assert_allclose(Dot(axes=axes)([a, b]).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_dot_negative_axes_and_mixed_ranks():
    a, v = torch.randn(2, 3, 4), torch.randn(2, 4)
    np.testing.assert_allclose(Dot(axes=-1)([a, v]).numpy(), np.einsum("bnd,bd->bn", a.numpy(), v.numpy()),
                               rtol=1e-5, atol=1e-6)


def test_dot_normalize_gives_cosine_similarity():
    u, v = torch.randn(5, 8), torch.randn(5, 8)
    cos = torch.nn.functional.cosine_similarity(u, v, dim=1)
    torch.testing.assert_close(Dot(axes=1, normalize=True)([u, v])[:, 0], cos)


def test_dot_errors():
    with pytest.raises(KilnTypeError, match="`axes`"):
        Dot(axes="1")
    with pytest.raises(KilnValueError, match="two elements"):
        Dot(axes=(1, 2, 3))
    with pytest.raises(KilnValueError, match="integers"):
        Dot(axes=(1, 1.0))
    with pytest.raises(ShapeError, match="Incompatible input shapes"):
        Dot(axes=1)([torch.randn(2, 3), torch.randn(2, 4)])
    with pytest.raises(KilnValueError, match="batch axis"):
        Dot(axes=0)([torch.randn(2, 3), torch.randn(2, 3)])
    with pytest.raises(KilnValueError, match="exactly 2 inputs"):
        Dot(axes=1)([torch.randn(2, 3)] * 3)


def test_dot_config_round_trip():
    for layer in (Dot(axes=(2, 1), normalize=True), Dot(axes=-1)):
        config = layer.get_config()
        assert Dot.from_config(json.loads(json.dumps(config))).get_config() == config


# ---------------------------------------------------------------------- functional forms
@pytest.mark.parametrize("fn,cls", [(add, Add), (subtract, Subtract), (multiply, Multiply), (average, Average),
                                    (maximum, Maximum), (minimum, Minimum)])
def test_functional_forms_equal_their_layers_on_tensors_and_inputs(fn, cls):
    torch.testing.assert_close(fn([A, B]), cls()([A, B]))
    x, y = Input(shape=(3, 5)), Input(shape=(3, 5))
    out = fn([x, y])
    assert out.shape == (None, 3, 5) and isinstance(out.node.layer, cls)


def test_concatenate_and_dot_functional_forms():
    torch.testing.assert_close(concatenate([A, B], axis=1), torch.cat([A, B], dim=1))
    x, y = Input(shape=(4,)), Input(shape=(2,))
    assert concatenate([x, y]).shape == (None, 6)
    assert concatenate([x, x], axis=1, name="joined").node.layer.name == "joined"
    u, v = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(dot([u, v], axes=1), Dot(axes=1)([u, v]))
    assert dot([x, x], axes=1).shape == (None, 1)
