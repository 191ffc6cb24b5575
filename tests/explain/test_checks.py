"""The completeness summary and the model-randomisation sanity check (Adebayo et al. 2018)."""

import pytest
import torch

from kiln.explain import attribute
from kiln.explain.checks import completeness_summary, randomisation_check, reinitialise


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def test_integrated_gradients_pass_the_randomisation_check():
    x = torch.randn(40, 10)
    check = randomisation_check(_mlp(), x, lambda model, x: attribute(model, x, method="ig", target=0).values)
    assert check["passed"] and check["spearman"] < check["threshold"]


def test_a_broken_explainer_that_ignores_the_model_fails_the_check():
    # an "explainer" that returns the input itself (an edge detector in disguise): the same for any weights
    check = randomisation_check(_mlp(), torch.randn(40, 10), lambda model, x: {"input": x})
    assert not check["passed"]
    assert check["spearman"] == pytest.approx(1.0)


def test_reinitialise_changes_every_weight_and_leaves_the_model_alone():
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    fresh = reinitialise(model, seed=1)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert all(not torch.equal(a, p) for a, p in zip(before, fresh.parameters()))


def test_completeness_summary_reports_the_steps_and_the_largest_miss():
    result = attribute(_mlp(), torch.randn(8, 10), method="ig")
    summary = completeness_summary(result)
    assert summary["passed"] and summary["max_relative_error"] < 0.01
    assert summary["n_steps"] == result.n_steps
