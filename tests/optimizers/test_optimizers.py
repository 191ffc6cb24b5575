"""kiln.optimizers: same weights as torch.optim, clipping, schedules, state and config round trips."""

import copy
import json
import math

import pytest
import torch

from kiln import optimizers
from kiln.errors import KilnError, KilnTypeError, KilnValueError
from kiln.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop, TorchOptimizer, schedules


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _train(model, step, zero_grad, steps=5):
    """Run a few steps on fixed data; ``step``/``zero_grad`` are the optimizer's."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 5, generator=gen), torch.randn(16, 3, generator=gen)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        step()
        zero_grad()


def _assert_same_weights(a, b, atol=1e-6):
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=atol, rtol=1e-5)


EQUIVALENT = {
    "adam": (lambda: Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7)),
    "adam_amsgrad": (lambda: Adam(0.01, beta_1=0.8, beta_2=0.99, amsgrad=True),
                     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-7, amsgrad=True)),
    "adam_weight_decay": (lambda: Adam(0.01, weight_decay=0.1),
                          lambda p: torch.optim.AdamW(p, lr=0.01, eps=1e-7, weight_decay=0.1)),
    "adamw": (lambda: AdamW(0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, eps=1e-7, weight_decay=0.1)),
    "sgd": (lambda: SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_nesterov": (lambda: SGD(0.1, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "rmsprop": (lambda: RMSprop(0.01, rho=0.8, momentum=0.5, centered=True),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.8, eps=1e-7, momentum=0.5, centered=True)),
    "adagrad": (lambda: Adagrad(0.1),
                lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-7)),
}


@pytest.mark.parametrize("name", sorted(EQUIVALENT))
def test_matches_torch_optimizer(name):
    make_kiln, make_torch = EQUIVALENT[name]
    model_kiln, model_torch = _model(), _model()
    opt = make_kiln()
    opt.build(model_kiln.parameters())
    reference = make_torch(model_torch.parameters())
    _train(model_kiln, opt.step, opt.zero_grad)
    _train(model_torch, reference.step, reference.zero_grad)
    _assert_same_weights(model_kiln, model_torch)
    assert opt.iterations == 5


def test_fused_kernel_used_on_cpu_and_foreach_otherwise():
    params = list(_model().parameters())
    for cls in (Adam, AdamW, SGD, Adagrad):
        opt = cls()
        opt.build(params)
        assert opt.torch_optimizer.defaults["fused"] is True, cls
    rms = RMSprop()
    rms.build(params)
    assert rms.torch_optimizer.defaults["foreach"] is True
    assert not optimizers._fused_supported([torch.zeros(1, device="meta")], ("cpu", "cuda"))


def test_sgd_weight_decay_is_keras_decoupled():
    w = torch.nn.Parameter(torch.tensor([2.0, -4.0]))
    opt = SGD(0.1, weight_decay=0.5)
    opt.build([w])
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()
    # Keras: w <- w * (1 - lr * wd), then w <- w - lr * g
    torch.testing.assert_close(w.detach(), torch.tensor([2.0 * 0.95 - 0.1, -4.0 * 0.95 - 0.1]))


def _two_params_with_grads():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([-0.5])  # norms 5 and 0.5
    return a, b


def test_clipvalue():
    a, b = _two_params_with_grads()
    opt = SGD(1.0, clipvalue=1.0)
    opt.build([a, b])
    opt.step()
    torch.testing.assert_close(a.detach(), torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(b.detach(), torch.tensor([0.5]))


def test_clipnorm_is_per_variable():
    a, b = _two_params_with_grads()
    opt = SGD(1.0, clipnorm=1.0)
    opt.build([a, b])
    opt.step()
    torch.testing.assert_close(a.detach(), torch.tensor([-0.6, -0.8]))  # scaled to norm 1
    torch.testing.assert_close(b.detach(), torch.tensor([0.5]))  # under the limit: untouched


def test_global_clipnorm_scales_all_together():
    a, b = _two_params_with_grads()
    opt = SGD(1.0, global_clipnorm=1.0)
    opt.build([a, b])
    opt.step()
    scale = 1.0 / math.sqrt(25.25)
    torch.testing.assert_close(a.detach(), torch.tensor([-3.0, -4.0]) * scale, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.detach(), torch.tensor([0.5]) * scale, atol=1e-5, rtol=1e-5)


def test_only_one_clip_option():
    with pytest.raises(KilnValueError, match="Only one of"):
        Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(KilnValueError, match="expected a positive float. Received: clipnorm=0"):
        Adam(clipnorm=0)


def test_learning_rate_property_writes_param_groups():
    opt = Adam(0.01)
    assert opt.learning_rate == 0.01
    opt.build([{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [torch.nn.Parameter(torch.zeros(2))]}])
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    assert [g["lr"] for g in opt.torch_optimizer.param_groups] == [0.5, 0.5]
    assert isinstance(opt.torch_optimizer.param_groups[0]["lr"], float)


def test_schedule_sets_lr_every_step_and_setting_a_float_replaces_it():
    schedule = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    w = torch.nn.Parameter(torch.zeros(1))
    opt = SGD(schedule)
    opt.build([w])
    positions = []
    for step in range(3):
        assert opt.learning_rate == schedule(step)
        w.grad = torch.ones(1)
        opt.step()
        positions.append(w.item())
    # The step taken at iteration k uses schedule(k), as Keras: 1, 0.5, 0.25.
    assert positions == pytest.approx([-1.0, -1.5, -1.75])
    opt.learning_rate = 0.1
    assert opt.learning_rate == 0.1
    w.grad = torch.ones(1)
    opt.step()
    assert w.item() == pytest.approx(-1.85)


def test_state_dict_round_trip_resumes_identically():
    model = _model()
    opt = Adam(0.01)
    opt.build(model.parameters())
    _train(model, opt.step, opt.zero_grad, steps=3)
    state = copy.deepcopy(opt.state_dict())
    resumed_model = copy.deepcopy(model)
    resumed = Adam(0.01)
    resumed.load_state_dict(state)  # before build: applied at build
    resumed.build(resumed_model.parameters())
    assert resumed.iterations == 3
    _train(model, opt.step, opt.zero_grad, steps=2)
    _train(resumed_model, resumed.step, resumed.zero_grad, steps=2)
    _assert_same_weights(model, resumed_model, atol=0)
    assert resumed.iterations == 5


def test_load_state_dict_rejects_other_dicts():
    with pytest.raises(KilnValueError, match="state_dict"):
        Adam().load_state_dict({"state": {}})


def test_step_before_build_raises():
    with pytest.raises(KilnError, match="has not been built"):
        Adam().step()


def test_zero_grad_sets_none():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = SGD()
    opt.build([w])
    w.grad = torch.ones(1)
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("name,cls", [("adam", Adam), ("ADAM", Adam), ("sgd", SGD), ("AdamW", AdamW),
                                      ("rmsprop", RMSprop), ("adagrad", Adagrad)])
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls


def test_get_instance_dict_and_errors():
    opt = SGD(0.3)
    assert optimizers.get(opt) is opt
    assert optimizers.get({"class_name": "Adam", "config": {"learning_rate": 0.02}}).learning_rate == 0.02
    with pytest.raises(KilnValueError, match="Did you mean 'adam'"):
        optimizers.get("adma")
    with pytest.raises(KilnTypeError):
        optimizers.get(3)


def test_wrapped_torch_optimizer_behaves_like_kiln():
    model, reference = _model(), _model()
    opt = optimizers.get(torch.optim.NAdam(model.parameters(), lr=0.01))
    assert isinstance(opt, TorchOptimizer)
    assert opt.build(model.parameters()) is opt.torch_optimizer  # kept as the user built it
    assert opt.learning_rate == 0.01
    ref = torch.optim.NAdam(reference.parameters(), lr=0.01)
    _train(model, opt.step, opt.zero_grad, steps=3)
    _train(reference, ref.step, ref.zero_grad, steps=3)
    _assert_same_weights(model, reference, atol=0)
    opt.learning_rate = 0.001
    assert opt.torch_optimizer.param_groups[0]["lr"] == 0.001
    assert opt.state_dict()["iterations"] == 3
    rebuilt = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    rebuilt.build(_model().parameters())
    assert type(rebuilt.torch_optimizer) is torch.optim.NAdam
    assert rebuilt.learning_rate == 0.001


def test_torch_optimizer_by_name_builds_later():
    opt = TorchOptimizer("RAdam", torch_config={"lr": 0.002}, clipvalue=0.5)
    assert opt.learning_rate == 0.002
    opt.build(_model().parameters())
    assert type(opt.torch_optimizer) is torch.optim.RAdam
    with pytest.raises(KilnValueError, match="Unknown torch optimizer"):
        TorchOptimizer("Adamm")


@pytest.mark.parametrize("opt", [
    SGD(0.05, momentum=0.9, nesterov=True, clipnorm=1.0),
    Adam(schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10), amsgrad=True),
    AdamW(weight_decay=0.01, global_clipnorm=2.0),
    RMSprop(0.01, centered=True, clipvalue=0.1),
    Adagrad(0.05, initial_accumulator_value=0.2, name="my_adagrad"),
])
def test_config_round_trip(opt):
    config = json.loads(json.dumps(optimizers.serialize(opt)))
    restored = optimizers.deserialize(config)
    assert type(restored) is type(opt)
    assert restored.get_config() == opt.get_config()


def test_invalid_values_use_keras_wording():
    expected = r"Received an invalid value for `learning_rate`, expected a positive float\. Received: learning_rate=-1"
    with pytest.raises(KilnValueError, match=expected):
        Adam(learning_rate=-1)
    with pytest.raises(KilnValueError, match="`momentum`"):
        SGD(momentum=1.5)
    with pytest.raises(KilnValueError, match="`beta_1`"):
        Adam(beta_1=1.0)
    with pytest.raises(KilnValueError, match="`weight_decay`"):
        AdamW(weight_decay=None)
    with pytest.raises(KilnTypeError, match="learning_rate"):
        Adam(learning_rate="fast")
    opt = SGD()
    with pytest.raises(KilnValueError, match="non-negative"):
        opt.learning_rate = -0.1
    opt.learning_rate = 0.0  # allowed afterwards: schedules and callbacks may anneal to zero


def test_build_without_parameters_raises():
    with pytest.raises(KilnValueError, match="no parameters"):
        Adam().build([])
