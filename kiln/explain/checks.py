"""Checks that an explanation explains the model: completeness and the randomisation test.

- Completeness (Sundararajan et al. 2017): IG's attributions of a row add up to
  f(x) - f(baseline). ``attribute`` checks it on every IG call and raises the step count until
  it holds within 1%; ``completeness_summary`` reports how it went.
- Model randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"): an explanation
  that stays the same when the model's weights are re-initialised explains the input, not the
  model (an edge detector passes for a saliency map). ``randomisation_check`` re-initialises a
  copy of the model, explains the same rows, and compares the two by the Spearman rank
  correlation of the absolute attributions; it passes when they differ (correlation below
  ``threshold``).
"""

from __future__ import annotations

import copy

import torch

from kiln.explain.attribute import Attribution

__all__ = ["completeness_summary", "randomisation_check", "reinitialise"]


def completeness_summary(attribution: Attribution, tolerance: float = 0.01) -> dict:
    """IG/shap: the largest relative miss of completeness, whether it is within ``tolerance``, the steps used."""
    error = attribution.completeness_error()
    return {"method": attribution.method, "max_relative_error": float(error.max()) if len(error) else 0.0,
            "tolerance": tolerance, "passed": bool((error <= tolerance).all()), "n_steps": attribution.n_steps,
            "notes": list(attribution.notes)}


def reinitialise(model, seed: int = 0):
    """A copy of ``model`` with every weight drawn afresh (normal, each tensor's own scale kept at 1/sqrt(fan_in))."""
    generator = torch.Generator().manual_seed(seed)
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for param in fresh.parameters():
            fan_in = param[0].numel() if param.dim() > 1 else param.numel()
            noise = torch.randn(param.shape, generator=generator) / max(fan_in, 1) ** 0.5
            param.copy_(noise.to(param))
    return fresh


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.norm() * rb.norm()).item()
    return float((ra * rb).sum() / denominator) if denominator > 0 else 1.0


def randomisation_check(model, x, explainer, *, threshold: float = 0.8, seed: int = 0) -> dict:
    """Adebayo et al.'s model-randomisation test of ``explainer``.

    Args:
        model: the trained model.
        x: the rows to explain (whatever ``explainer`` takes).
        explainer: ``explainer(model, x) -> {name: attributions}`` (or an Attribution).
        threshold: the highest rank correlation between the trained and randomised model's
            absolute attributions that still counts as "changed" (default 0.5).

    Returns:
        ``{"spearman": rho, "threshold": ..., "passed": rho < threshold}``.

    Example::

        check = randomisation_check(model, x, lambda m, x: attribute(m, x, "ig").values)
        check["passed"]   # True: the attributions depend on the weights
    """
    def flat(values):
        values = values.values if isinstance(values, Attribution) else values
        return torch.cat([v.detach().abs().reshape(-1).double() for v in values.values()])

    trained = flat(explainer(model, x))
    randomised = flat(explainer(reinitialise(model, seed), x))
    rho = _spearman(trained, randomised)
    return {"spearman": rho, "threshold": threshold, "passed": rho < threshold}
