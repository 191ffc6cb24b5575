"""The direct fused-kernel step gives exactly torch's own optimizer step, and is really taken."""

import copy

import pytest
import torch

import kiln
from kiln.optimizers.direct_step import DirectFusedStep


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))


CASES = [
    (lambda: kiln.optimizers.Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7, fused=True)),
    (lambda: kiln.optimizers.Adam(0.01, amsgrad=True), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7, amsgrad=True, fused=True)),
    (lambda: kiln.optimizers.AdamW(0.01), lambda p: torch.optim.AdamW(p, lr=0.01, eps=1e-7, weight_decay=0.004, fused=True)),
    (lambda: kiln.optimizers.SGD(0.05), lambda p: torch.optim.SGD(p, lr=0.05, fused=True)),
    (lambda: kiln.optimizers.SGD(0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, fused=True)),
    (lambda: kiln.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, fused=True)),
]


def train(model, step, zero, n=8):
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        x = torch.randn(4, 5, generator=g)
        zero()
        model(x).square().mean().backward()
        step()


@pytest.mark.parametrize("make_kiln, make_torch", CASES)
def test_direct_step_equals_torch_step(make_kiln, make_torch, monkeypatch):
    a, b = net(), net()
    ours, theirs = make_kiln(), make_torch(b.parameters())
    ours.build(a.parameters())
    assert ours._direct is not None
    taken = []
    original = DirectFusedStep.step
    monkeypatch.setattr(DirectFusedStep, "step", lambda self: taken.append(original(self)) or taken[-1])
    train(a, ours.step, ours.zero_grad)
    train(b, theirs.step, lambda: theirs.zero_grad(set_to_none=True))
    assert taken.count(True) >= 7  # every step after torch created the state
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)


def test_direct_step_after_load_state_dict_and_lr_change():
    a, b = net(), net()
    ours, theirs = kiln.optimizers.Adam(0.01), torch.optim.Adam(b.parameters(), lr=0.01, eps=1e-7, fused=True)
    ours.build(a.parameters())
    train(a, ours.step, ours.zero_grad, n=3)
    train(b, theirs.step, lambda: theirs.zero_grad(set_to_none=True), n=3)
    # round-trip the state (new tensors), change the lr, and keep going
    ours.load_state_dict(copy.deepcopy(ours.state_dict()))
    ours.learning_rate = 0.002
    for group in theirs.param_groups:
        group["lr"] = 0.002
    train(a, ours.step, ours.zero_grad, n=4)
    train(b, theirs.step, lambda: theirs.zero_grad(set_to_none=True), n=4)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)


def test_missing_gradient_falls_back_to_torch():
    model = net()
    opt = kiln.optimizers.Adam(0.01)
    opt.build(model.parameters())
    train(model, opt.step, opt.zero_grad, n=2)
    frozen = list(model.parameters())[0]
    opt.zero_grad()
    model[2](torch.randn(3, 7)).sum().backward()  # the first layer gets no gradient
    assert frozen.grad is None
    before = frozen.detach().clone()
    opt.step()  # torch's own step handles the partial gradients
    assert torch.equal(frozen, before)
