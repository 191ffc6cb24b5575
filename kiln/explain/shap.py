"""Shapley values of whole input features, sampled by permutation, with their expected value.

Each input feature is one player. For a background row b, Shapley value sampling (Strumbelj &
Kononenko 2010; Captum's ShapleyValueSampling) walks random orderings of the features, switching
each from b to x and crediting it with the change in the output; every ordering telescopes to
f(x) - f(b), so the values add up exactly. Averaging over the background rows gives the
interventional SHAP values, which add up to f(x) - E[f(background)]: that mean is the
*expected value* SHAP plots start from, reported beside the values.

Used through ``attribute(..., method="shap")`` (kiln/explain/attribute.py), which hands over
the model wrapped for Captum (integer inputs already replaced by their embedding outputs).
"""

from __future__ import annotations

import torch

__all__ = ["shapley_values"]


def shapley_values(explained, bases: tuple, target: torch.Tensor, scores: torch.Tensor, *,
                   background: dict | None = None, n_samples: int = 25) -> dict:
    """Shapley values per input feature, averaged over ``background`` rows.

    Args:
        explained: the Captum-facing model (``attribute``'s ``_Explained``).
        bases: one baseline per input in Captum's space (used when ``background`` is None).
        target: ``(rows,)`` the output unit explained per row.
        scores: ``(rows, units)`` the model's outputs for the explained rows.
        background: name -> ``(k, ...)`` rows in the model's input space (ids for embedded inputs).
        n_samples: feature orderings sampled per background row (default 25).

    Returns:
        ``values`` (a tuple, one tensor per input, Captum's space), ``expected_value`` ``(rows,)``,
        ``gap`` = f(x) - expected value, ``delta`` = sum(values) - gap (zero up to rounding).
    """
    from captum.attr import ShapleyValueSampling
    rows = target.shape[0]
    rows_of_background = [bases] if background is None else _background_rows(explained, background)
    # one group per input: the whole feature (all its one-hot columns, its whole embedding) plays as one
    mask = tuple(torch.full((1, *t.shape[1:]), i, dtype=torch.long) for i, t in enumerate(explained.inputs))
    sampler = ShapleyValueSampling(explained)
    total, expected = None, torch.zeros(rows)
    for base in rows_of_background:
        values = sampler.attribute(explained.inputs, baselines=base, target=target,
                                   additional_forward_args=explained.extra or None, feature_mask=mask,
                                   n_samples=n_samples, perturbations_per_eval=len(explained.inputs) + 1)
        total = values if total is None else tuple(a + v for a, v in zip(total, values))
        with torch.no_grad():
            base_rows = tuple(b.expand_as(t) for b, t in zip(base, explained.inputs))
            expected += explained(*base_rows, *explained.extra).gather(1, target[:, None])[:, 0]
    k = len(rows_of_background)
    # Captum gives every element of a group the group's whole value: spread it, so an input's sum is its value
    values = tuple(v / k / max(1, v[0].numel()) for v in total)
    expected = expected / k
    gap = scores.gather(1, target[:, None])[:, 0] - expected
    delta = sum(v.reshape(rows, -1).sum(dim=1) for v in values) - gap
    return {"values": values, "expected_value": expected, "gap": gap, "delta": delta.detach()}


def _background_rows(explained, background: dict) -> list[tuple]:
    """The background as a list of per-row baselines (each a tuple of ``(1, ...)`` tensors)."""
    from kiln.errors import KilnValueError
    missing = [n for n in explained.names if n not in background]
    if missing:
        raise KilnValueError(f"`background` lacks input(s) {missing}; give rows for every input {explained.names}.")
    sizes = {len(background[n]) for n in explained.names}
    if len(sizes) != 1:
        raise KilnValueError(f"`background` inputs have different row counts {sorted(sizes)}; give the same rows.")
    rows = []
    for i in range(sizes.pop()):
        row = []
        for name, like in zip(explained.names, explained.inputs):
            value = background[name][i:i + 1]
            if name in explained.embeddings:
                value = explained.embed(name, value)
            row.append(torch.as_tensor(value, dtype=like.dtype).reshape(1, *like.shape[1:]))
        rows.append(tuple(row))
    return rows
