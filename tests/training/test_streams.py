"""Batch streams: Keras PyDataset/Sequence, Python generators, DataLoaders of inputs only."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import kiln
from kiln.layers import Dense


class Batches(kiln.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0
        self.seen = []

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        self.seen.append(i)
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_ended += 1


def model():
    m = kiln.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(1)])
    m.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return m


@pytest.fixture
def data():
    g = np.random.default_rng(0)
    return g.random((40, 3)), g.random((40, 1))


def test_py_dataset_equals_arrays_without_shuffle(data):
    x, y = data
    kiln.utils.set_random_seed(1)
    a = model()
    kiln.utils.set_random_seed(1)
    b = model()
    batches = Batches(x, y, 8)
    ha = a.fit(batches, epochs=2, shuffle=False, verbose=0)
    hb = b.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    assert batches.epochs_ended == 2
    assert batches.seen[:5] == [0, 1, 2, 3, 4]
    assert a.evaluate(batches, verbose=0) == pytest.approx(a.evaluate(x, y, batch_size=8, verbose=0))
    assert a.predict(batches, verbose=0).shape == (40, 1)


def test_py_dataset_shuffles_batch_order(data):
    x, y = data
    batches = Batches(x, y, 4)
    model().fit(batches, epochs=1, shuffle=True, verbose=0)
    assert sorted(batches.seen) == list(range(10)) and batches.seen != list(range(10))


def test_generator_with_steps_per_epoch(data):
    x, y = data

    def forever():
        while True:
            for i in range(0, 40, 8):
                yield x[i:i + 8], y[i:i + 8]

    history = model().fit(forever(), steps_per_epoch=5, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3


def test_generator_for_several_epochs_needs_steps(data):
    x, y = data
    with pytest.raises(kiln.errors.KilnValueError, match="steps_per_epoch"):
        model().fit(((x[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)), epochs=2, verbose=0)


def test_dataloader_of_inputs_only_for_predict(data):
    x, _ = data
    m = model()
    loader = DataLoader(TensorDataset(torch.tensor(x, dtype=torch.float32)), batch_size=16)
    np.testing.assert_allclose(m.predict(loader, verbose=0), m.predict(x, verbose=0), atol=1e-6)
