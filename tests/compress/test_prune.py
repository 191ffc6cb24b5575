"""kiln.compress.prune: exact sparsity, magnitude order, and structurally pruned models that
compute what the masked original computes."""

import copy

import pytest
import torch
from torch import nn

import kiln
from kiln import layers as L
from kiln.compress import prune, sparsity
from kiln.errors import KilnValueError


def cnn():
    return kiln.Sequential([kiln.Input(shape=(8, 8, 1)), L.Conv2D(6, 3, activation="relu", padding="same"),
                            L.BatchNormalization(), L.MaxPooling2D(2), L.Conv2D(8, 3, activation="relu"),
                            L.Flatten(), L.Dense(16, activation="sigmoid"), L.Dropout(0.1), L.Dense(3)])


def randomize_batchnorm(model):
    bn = model.get_layer("batch_normalization")
    with torch.no_grad():
        for tensor in list(bn.parameters()) + list(bn.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)


def dropped(kept, n):
    return [i for i in range(n) if i not in kept]


@pytest.mark.parametrize("amount", [0.3, 0.7])
def test_global_unstructured_zeroes_exactly_the_smallest_weights(amount):
    model = cnn()
    before = {n: l.kernel.detach().clone() for n, l in [(n, l) for n, l in model.named_layers() if hasattr(l, "kernel")]}
    result = prune(model, amount)
    total = sum(w.numel() for w in before.values())
    zeros = {n: int((l.kernel == 0).sum()) for n, l in result.model.named_layers() if hasattr(l, "kernel")}
    assert sum(zeros.values()) == round(amount * total)
    for name, w in before.items():  # the reported sparsity is the layer's own, exactly
        assert result.sparsity[name] == zeros[name] / w.numel()
    removed = torch.cat([w[getattr(result.model, n).kernel == 0].abs() for n, w in before.items()])
    kept = torch.cat([w[getattr(result.model, n).kernel != 0].abs() for n, w in before.items()])
    assert removed.max() <= kept.min()
    assert all(torch.equal(getattr(model, n).kernel, w) for n, w in before.items())  # the input is untouched


def test_layer_scope_prunes_each_layer_by_the_amount():
    result = prune(cnn(), 0.5, scope="layer")
    for name, layer in result.model.named_layers():
        if hasattr(layer, "kernel"):
            assert int((layer.kernel == 0).sum()) == round(0.5 * layer.kernel.numel()), name


def test_fine_tuning_follows_the_schedule_and_keeps_pruned_weights_zero():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, 8, 1, generator=g), torch.randint(0, 3, (64,), generator=g)
    model = cnn()
    model.compile(optimizer="adam", loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = prune(model, 0.6, x=x, y=y, epochs=2, batch_size=16)
    total = sum(l.kernel.numel() for _, l in result.model.named_layers() if hasattr(l, "kernel"))
    zeros = sum(int((l.kernel == 0).sum()) for _, l in result.model.named_layers() if hasattr(l, "kernel"))
    assert zeros == round(0.6 * total)


def test_structured_kiln_sequential_equals_the_masked_original():
    model = cnn().eval()
    randomize_batchnorm(model)
    result = prune(model, 0.5, structured=True)
    kept = result.kept
    assert set(kept) == {"conv2d", "conv2d_1", "dense"} and "dense_1" in result.skipped
    masked = copy.deepcopy(model)
    with torch.no_grad():  # zero every input of a consumer that reads a removed unit/channel
        masked.conv2d_1.kernel[:, dropped(kept["conv2d"], 6)] = 0
        rows = [r for r in range(masked.dense.kernel.shape[0]) if r % 8 in dropped(kept["conv2d_1"], 8)]
        masked.dense.kernel[rows] = 0
        masked.dense_1.kernel[dropped(kept["dense"], 16)] = 0
    x = torch.randn(7, 8, 8, 1)
    torch.testing.assert_close(result.model(x), masked(x), rtol=1e-5, atol=1e-5)
    small = result.model
    assert (small.conv2d.filters, small.conv2d_1.filters, small.dense.units) == (3, 4, 8)
    assert small.count_params() < model.count_params()


def test_structured_model_saves_and_loads_as_the_smaller_architecture(tmp_path):
    small = prune(cnn().eval(), 0.5, structured=True).model
    small.save(tmp_path / "m")
    loaded = kiln.load_model(tmp_path / "m")
    x = torch.randn(3, 8, 8, 1)
    torch.testing.assert_close(loaded.eval()(x), small(x))
    assert loaded.dense.units == 8


def test_structured_plain_nn_sequential_with_nchw_flatten():
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 10), nn.ReLU(), nn.Linear(10, 2)).eval()
    result = prune(model, 0.5, structured=True)
    masked = copy.deepcopy(model)
    with torch.no_grad():
        masked[2].weight[:, dropped(result.kept["0"], 6)] = 0
        cols = [c for c in range(144) if c // 36 in dropped(result.kept["2"], 4)]
        masked[4].weight[:, cols] = 0
        masked[6].weight[:, dropped(result.kept["4"], 10)] = 0
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(result.model(x), masked(x), rtol=1e-5, atol=1e-5)
    assert result.model[4].in_features == 2 * 36 and result.model[4].out_features == 5


def test_structured_functional_skips_what_it_cannot_slice():
    inputs = kiln.Input(shape=(10,))
    a = L.Dense(12, activation="relu")(inputs)
    b = L.Dense(6)(a)
    merged = L.Add()([L.Dense(6)(a), b])
    model = kiln.Model(inputs, L.Dense(2)(merged)).eval()
    result = prune(model, 0.5, structured=True)
    assert result.skipped["dense"] == "its output feeds more than one layer"
    assert "Add" in result.skipped["dense_1"] and "Add" in result.skipped["dense_2"]
    chain_in = kiln.Input(shape=(10,))
    chain = kiln.Model(chain_in, L.Dense(2)(L.Dense(8, activation="tanh")(chain_in))).eval()
    small = prune(chain, 0.25, structured=True)
    masked = copy.deepcopy(chain)
    with torch.no_grad():
        masked.dense_1.kernel[dropped(small.kept["dense"], 8)] = 0
    x = torch.randn(4, 10)
    torch.testing.assert_close(small.model(x), masked(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("amount", [1.5, -0.1, 1.0, "half", True])
def test_bad_amount_names_value_and_fix(amount):
    with pytest.raises(KilnValueError, match=r"expected a number in \[0, 1\)\. Received: amount=.*Use e\.g\. 0\.5"):
        prune(cnn(), amount)


def test_fine_tuning_without_data_says_what_to_pass():
    with pytest.raises(KilnValueError, match="pass training data x=, y="):
        prune(cnn(), 0.5, epochs=2)


def test_sparsity_of_an_unpruned_model_is_zero():
    assert set(sparsity(cnn()).values()) == {0.0}
