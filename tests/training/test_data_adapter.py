"""In-memory and streamed data answer the same interface, so the trainer never asks which it has."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from kiln.errors import KilnTypeError, KilnValueError
from kiln.training.data_adapter import ArrayData, StreamData, adapt


def arrays(n=10):
    x = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    y = torch.arange(n, dtype=torch.float32).reshape(n, 1)
    return x, y


def as_lists(batches):
    return [tuple(None if t is None else t.tolist() for t in batch) for batch in batches]


def test_arrays_and_a_loader_give_the_same_batches_through_one_interface():
    x, y = arrays()
    in_memory = adapt(x, y).to("cpu")
    streamed = adapt(DataLoader(TensorDataset(x, y), batch_size=4)).to("cpu")
    assert in_memory.num_batches(4) == streamed.num_batches(4) == 3
    assert as_lists(in_memory.batches(4)) == as_lists(streamed.batches(4))
    # start_step skips the first batches of the same order (how a resumed run continues)
    assert as_lists(in_memory.batches(4, start_step=2)) == as_lists(streamed.batches(4, start_step=2))
    assert as_lists(in_memory.batches(4, start_step=2)) == [(x[8:].tolist(), y[8:].tolist(), None)]


def test_shuffled_arrays_use_one_permutation_from_the_generator():
    x, y = arrays()
    data = ArrayData(x, y, torch.linspace(0, 1, 10))
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(5))
    batches = list(data.batches(3, shuffle=True, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(torch.cat([b[0] for b in batches]), x[perm])
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.linspace(0, 1, 10)[perm])
    resumed = list(data.batches(3, shuffle=True, generator=torch.Generator().manual_seed(5), start_step=3))
    assert torch.equal(resumed[0][0], x[perm][9:])


def test_a_stream_is_moved_to_its_device_batch_by_batch():
    x, y = arrays(4)
    stream = StreamData(iter([(x.numpy(), y.numpy())]))
    assert stream.device is None
    moved = stream.to("cpu")
    assert moved.device == "cpu" and moved.loader is stream.loader
    (xb, yb, swb), = list(moved.batches())
    assert torch.is_tensor(xb) and torch.equal(xb, x) and torch.equal(yb, y) and swb is None


def test_what_only_in_memory_data_can_do():
    x, y = arrays()
    data = ArrayData(x, y)
    ex, ey = data.example()
    assert torch.equal(ex, x[:2]) and torch.equal(ey, y[:2])
    assert not data.needs_steps_per_epoch
    loader = StreamData(DataLoader(TensorDataset(x, y), batch_size=4))
    assert loader.example() is None and loader.size is None
    assert not loader.needs_steps_per_epoch  # restarted each epoch
    assert StreamData(iter([])).needs_steps_per_epoch  # a generator is not
    with pytest.raises(KilnValueError, match="^validation_split works only with in-memory arrays; for a Dataset "
                                             "or DataLoader pass validation_data instead.$"):
        loader.split_last(0.2)
    with pytest.raises(KilnValueError, match="^class_weight works with in-memory arrays"):
        loader.with_class_weight({0: 1.0})
    with pytest.raises(KilnTypeError, match="class_weight must be a dict"):
        loader.with_class_weight([1.0])


def test_class_weight_multiplies_each_samples_weight_by_its_class_weight():
    x = torch.zeros(5, 2)
    y = torch.tensor([0, 2, 1, 2, 0])
    weighted = ArrayData(x, y).with_class_weight({0: 1.0, 1: 3.0, 2: 0.5})
    assert torch.equal(weighted.sample_weight, torch.tensor([1.0, 0.5, 3.0, 0.5, 1.0]))
    one_hot = torch.nn.functional.one_hot(y, 3).float()
    both = ArrayData(x, one_hot, torch.full((5,), 2.0)).with_class_weight({0: 1.0, 1: 3.0, 2: 0.5})
    assert torch.equal(both.sample_weight, torch.tensor([2.0, 1.0, 6.0, 1.0, 2.0]))
    with pytest.raises(KilnValueError, match=r"class_weight has no entry for class\(es\) \[1\]"):
        ArrayData(x, y).with_class_weight({0: 1.0, 2: 1.0})
