"""fit equals a hand-written PyTorch loop step for step: same initial weights, same batch order."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln.layers import Dense


def make_model():
    return kiln.Sequential([Dense(16, activation="relu", input_shape=(10,)), Dense(1)])


def hand_loop(model, x, y, *, optimizer, epochs, batch_size, order):
    """The reference: plain torch over the given per-epoch index orders; returns epoch losses."""
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for epoch in range(epochs):
        perm = order(epoch)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            pred = model(x[idx])
            loss = F.mse_loss(pred, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    return losses


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "sgd_nesterov", "rmsprop", "adamw"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_equals_hand_written_loop(regression_data, optimizer, shuffle):
    x, y = regression_data
    kiln_model = make_model()
    ref_model = copy.deepcopy(kiln_model)
    kiln_opt, torch_opt = {
        "adam": (kiln.optimizers.Adam(0.01), torch.optim.Adam(ref_model.parameters(), lr=0.01, eps=1e-7)),
        "sgd_momentum": (kiln.optimizers.SGD(0.05, momentum=0.9),
                         torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9)),
        "sgd_nesterov": (kiln.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                         torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9, nesterov=True)),
        "rmsprop": (kiln.optimizers.RMSprop(0.001),
                    torch.optim.RMSprop(ref_model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)),
        "adamw": (kiln.optimizers.AdamW(0.01),
                  torch.optim.AdamW(ref_model.parameters(), lr=0.01, weight_decay=0.004, eps=1e-7)),
    }[optimizer]
    kiln_model.compile(optimizer=kiln_opt, loss="mse", device="cpu")

    # kiln draws its shuffle generator's seed from torch's global RNG at fit(): replay that.
    state = torch.get_rng_state()
    seed = int(torch.randint(0, 2**62, (1,)).item())
    torch.set_rng_state(state)
    gen = torch.Generator().manual_seed(seed)
    order = (lambda e: torch.randperm(len(x), generator=gen)) if shuffle else (lambda e: torch.arange(len(x)))

    history = kiln_model.fit(x, y, epochs=3, batch_size=20, shuffle=shuffle, verbose=0)
    ref_losses = hand_loop(ref_model, x, y, optimizer=torch_opt, epochs=3, batch_size=20, order=order)

    np.testing.assert_allclose(history.history["loss"], ref_losses, rtol=0, atol=1e-6)
    for (name, a), (_, b) in zip(kiln_model.state_dict().items(), ref_model.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), name


def test_trainer_trains_a_plain_torch_module(regression_data):
    x, y = regression_data
    net = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    ref = copy.deepcopy(net)
    trainer = kiln.Trainer(net)
    trainer.compile(optimizer=kiln.optimizers.SGD(0.1), loss="mse", metrics=["mae"], device="cpu")
    history = trainer.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    losses = hand_loop(ref, x, y, optimizer=opt, epochs=2, batch_size=32, order=lambda e: torch.arange(len(x)))
    np.testing.assert_allclose(history.history["loss"], losses, atol=1e-6)
    assert set(history.history) == {"loss", "mae"}
    preds = trainer.predict(x, verbose=0)
    np.testing.assert_allclose(preds, ref(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


def test_same_seed_gives_identical_weights(regression_data):
    x, y = regression_data

    def run():
        kiln.utils.set_random_seed(7)
        model = kiln.Sequential([Dense(8, activation="relu"), kiln.layers.Dropout(0.2), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
