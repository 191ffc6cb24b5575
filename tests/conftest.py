import numpy as np
import pytest
import torch

import kiln


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Each test starts from the same seed; kiln's own thread choice is restored by kiln."""
    kiln.utils.set_random_seed(1234)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def regression_data():
    g = np.random.default_rng(0)
    x = g.random((96, 10)).astype("float32")
    y = (x @ g.random((10, 1)) + 0.05 * g.standard_normal((96, 1))).astype("float32")
    return x, y
