"""jit_compile's functional step: the same gradients as autograd, and the right fallbacks."""

import copy

import numpy as np
import pytest
import torch

import kiln
from kiln.layers import BatchNormalization, Dense
from kiln.training.compiled_step import CompiledGradStep


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # compiled steps can stall under CPU contention with 2 OpenMP threads


@pytest.mark.slow
def test_compiled_gradients_equal_autograd():
    kiln.utils.set_random_seed(0)
    model = kiln.Sequential([Dense(8, activation="tanh", input_shape=(5,), kernel_regularizer=kiln.regularizers.L2(0.01)),
                             Dense(3)])
    reference = copy.deepcopy(model)
    model.compile(optimizer="sgd", loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    x = torch.randn(16, 5)
    y = torch.randint(0, 3, (16,))
    model.fit(x[:2], y[:2], epochs=0, verbose=0)  # builds the trainer without training
    trainer = model._trainer
    trainer._prepare(x, y)
    assert isinstance(trainer._grad_step, CompiledGradStep)
    loss, _ = trainer._grad_step(x, y, None)

    ref_loss = torch.nn.functional.cross_entropy(reference(x), y) + 0.01 * reference.layers[0].kernel.square().sum()
    ref_loss.backward()
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_models_with_buffers_fall_back_to_compiling_the_forward_pass():
    model = kiln.Sequential([Dense(4, input_shape=(3,)), BatchNormalization(), Dense(1)])
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    history = model.fit(np.random.rand(32, 3), np.random.rand(32, 1), epochs=2, verbose=0)
    assert model._trainer._grad_step is None and model._trainer._compiled_loss_fn is not None
    assert np.isfinite(history.history["loss"]).all()
