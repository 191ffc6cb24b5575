"""Embedding: a row lookup in the (input_dim, output_dim) table, with a clear error for bad ids."""

import json

import pytest
import torch

from kiln.errors import KilnValueError, ShapeError
from kiln.layers.embedding import Embedding
from kiln.layers.symbolic import Input
from kiln.models.summary import count_params


def test_lookup_returns_table_rows():
    layer = Embedding(10, 4)
    ids = torch.tensor([[1, 2, 9], [0, 0, 3]])
    y = layer(ids)
    assert y.shape == (2, 3, 4)
    torch.testing.assert_close(y, layer.embeddings[ids])
    torch.testing.assert_close(y[1, 2], layer.embeddings[3])


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.int16, torch.uint8, torch.float32, torch.float64])
def test_any_integer_or_float_ids(dtype):
    layer = Embedding(10, 3)
    ids = torch.tensor([[1, 7], [2, 0]], dtype=dtype)
    torch.testing.assert_close(layer(ids), layer.embeddings[ids.long()])


def test_out_of_range_id_names_the_id_and_input_dim():
    layer = Embedding(10, 4)
    with pytest.raises(ShapeError) as err:
        layer(torch.tensor([[1, 2], [12, 3]]))
    assert "id 12" in str(err.value) and "input_dim=10" in str(err.value)
    with pytest.raises(ShapeError, match="id -1"):
        layer(torch.tensor([[-1, 2]]))
    with pytest.raises(ShapeError, match="id 10"):
        layer(torch.tensor([10.0]))


def test_default_initializer_is_uniform_005_and_counts_match_keras():
    layer = Embedding(1000, 64)
    layer(torch.tensor([[0]]))
    assert layer.embeddings.shape == (1000, 64)
    assert layer.embeddings.abs().max().item() <= 0.05 and layer.embeddings.abs().max().item() > 0.049
    assert count_params(layer) == (64000, 0)


def test_builds_lazily_and_learns():
    layer = Embedding(5, 2)
    assert not layer.built
    layer(torch.tensor([[1, 1, 4]])).sum().backward()
    grad = layer.embeddings.grad
    torch.testing.assert_close(grad[1], torch.full((2,), 2.0))
    torch.testing.assert_close(grad[0], torch.zeros(2))


def test_mask_zero():
    ids = torch.tensor([[3, 1, 0, 0]])
    assert torch.equal(Embedding(5, 2, mask_zero=True).compute_mask(ids), torch.tensor([[True, True, False, False]]))
    assert Embedding(5, 2).compute_mask(ids) is None


def test_symbolic_input():
    assert Embedding(100, 8)(Input(shape=(12,), dtype="int64")).shape == (None, 12, 8)


def test_input_length_is_accepted_and_ignored():
    layer = Embedding(10, 2, input_length=5)
    assert layer(torch.tensor([[1, 2, 3]])).shape == (1, 3, 2)


@pytest.mark.parametrize("args,word", [((0, 4), "input_dim"), ((10, 0), "output_dim"), ((10.5, 4), "input_dim"),
                                       ((10, "4"), "output_dim")])
def test_invalid_dimensions(args, word):
    with pytest.raises(KilnValueError) as err:
        Embedding(*args)
    assert f"Received an invalid value for `{word}`, expected a positive integer" in str(err.value)


def test_config_round_trip():
    layer = Embedding(20, 3, mask_zero=True, embeddings_initializer="random_normal", input_length=7, name="emb")
    ids = torch.tensor([[1, 5, 19]])
    expected = layer(ids)
    clone = Embedding.from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    clone(ids)
    clone.set_weights(layer.get_weights())
    torch.testing.assert_close(clone(ids), expected)


def test_embeddings_regularizer():
    from kiln.regularizers import L2
    layer = Embedding(4, 2, embeddings_regularizer=L2(0.5))
    layer(torch.tensor([[1]]))
    torch.testing.assert_close(layer.losses[0], 0.5 * layer.embeddings.pow(2).sum())


def test_config_holds_every_constructor_argument():
    import inspect

    from kiln.layers.layer import Layer
    base = set(inspect.signature(Layer.__init__).parameters)  # name, dtype, ...: the base config's business
    for layer in [Embedding(3, 2)]:
        wanted = set(inspect.signature(type(layer).__init__).parameters) - base - {"self", "kwargs"}
        missing = wanted - set(layer.get_config())
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
