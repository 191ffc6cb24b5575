"""Per-row, per-feature attributions of a run's model, in the terms of the run's features.

``attribute`` (kiln/explain/attribute.py) works on tensors; this speaks features: raw rows in
(a DataFrame), the run's fitted features encode them, and each input feature gets one number
per row, whatever its encoding — a numeric column, a binary flag, a category through its
embedding or its one-hot columns, a text through its token embeddings (the per-token values
are kept too), an image or a spectrogram (the per-pixel map is kept too). For a multimodal
model that is the per-input total the issue asks for.

Baselines ("the feature absent") follow the encoding, so that no feature gets zero merely
for sitting at the baseline: numeric 0 (the training mean: numeric features are
standardised), binary 0.5 (neither value; 0.0 would give every negative row exactly zero — the
common IG complaint), one-hot category 1/K in each column, an embedded category the ``<unk>``
embedding (id 0), text the ``<pad>`` embedding, images and spectrograms zeros.

``run`` is any object with ``model``, ``inputs``, ``outputs``, ``output_kinds`` and
``encode_inputs(frame)`` — the one ``kiln.workflows.run.load_run`` gives (components never
import workflows, so it is passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kiln.errors import KilnValueError, closest_match
from kiln.explain.attribute import Attribution, attribute

__all__ = ["FeatureAttributions", "feature_attributions", "baselines_for", "resolve_target", "output_feature"]


@dataclass
class FeatureAttributions:
    """Attributions of a run's model for some rows.

    Attributes:
        table: a DataFrame, one row per explained row, one column per input feature.
        attribution: the tensor-level :class:`~kiln.explain.attribute.Attribution` (per token, per pixel).
        target_names: the class (or output) each row's attributions explain.
        kinds: input feature name -> its type.
    """

    table: object
    attribution: Attribution
    target_names: list
    kinds: dict = field(default_factory=dict)


def output_feature(run, output: str | None):
    """The run's output feature named ``output`` (default: its only one)."""
    names = [f.name for f in run.outputs]
    if output is None:
        if len(names) > 1:
            raise KilnValueError(f"The run has {len(names)} outputs {names}; pass output= (--output) one of them.")
        return run.outputs[0]
    for feature in run.outputs:
        if feature.name == output:
            return feature
    hint = closest_match(output, names)
    raise KilnValueError(f"The run has no output {output!r}; its outputs: {names}"
                         + (f" (did you mean {hint!r}?)" if hint else "") + ".")


def resolve_target(feature, target):
    """A class label of ``feature`` (or None) -> the output unit index ``attribute`` takes."""
    if target is None:
        return None
    if feature.type != "category":
        raise KilnValueError(f"Output {feature.name!r} is {feature.type}: it has one unit, explained as it is; "
                             f"leave the target out (received target={target!r}).")
    classes = list(feature.spec()["classes"])
    for i, cls in enumerate(classes):
        if cls == target or str(cls) == str(target):
            return i
    raise KilnValueError(f"Target class {target!r} does not exist in output {feature.name!r}; its classes: "
                         f"{classes}. Pass one of them (or none for the predicted class).")


def baselines_for(run) -> dict:
    """The "absent" value of each input feature, in the model's input space (see the module doc)."""
    out = {}
    for feature in run.inputs:
        spec = feature.spec()
        if feature.type == "binary":
            out[feature.name] = torch.full((1, *spec["shape"]), 0.5)
        elif feature.type == "category" and str(spec["dtype"]).startswith("float"):
            width = spec["shape"][-1]
            out[feature.name] = torch.full((1, width), 1.0 / width)
    return out  # the rest: zeros / id 0, attribute's defaults


def feature_attributions(run, frame, method: str = "ig", target=None, *, output: str | None = None,
                         features: list | None = None, background_frame=None, n_steps: int = 32,
                         max_steps: int = 512, n_samples: int = 10) -> FeatureAttributions:
    """Attribute the run's prediction for each row of ``frame`` to its input features.

    Args:
        run: a loaded run (see the module doc).
        frame: raw rows (a DataFrame with the input columns).
        method: "ig" (default), "saliency", "smoothgrad", "occlusion" or "shap".
        target: a class label of the output to explain (default: each row's predicted class;
            binary and numeric outputs: their single unit).
        output: the output feature (default: the only one).
        features: report only these input features (default: all).
        background_frame: shap: rows to play the features against (default: the baselines).
        n_steps, max_steps: IG's first step count and its cap (completeness within 1%).
        n_samples: shap: feature orderings sampled.

    Raises:
        KilnValueError: a feature the model does not have, a class the output does not have, a
            method that does not apply to the inputs (each names the value and the fix).
    """
    import pandas as pd
    names = [f.name for f in run.inputs]
    for name in features or []:
        if name not in names:
            hint = closest_match(name, names)
            raise KilnValueError(f"The model has no input feature {name!r}" + (f"; did you mean {hint!r}?" if hint
                                 else "") + f" Its input features: {names}.")
    out_feature = output_feature(run, output)
    x = run.encode_inputs(frame)
    kinds = {f.name: f.type for f in run.inputs}
    background = run.encode_inputs(background_frame) if background_frame is not None else None
    several = len(run.outputs) > 1
    result = attribute(run.model, x, method=method, target=resolve_target(out_feature, target),
                       output=out_feature.name if several else None, baselines=baselines_for(run), kinds=kinds,
                       n_steps=n_steps, max_steps=max_steps, background=background, n_samples=n_samples)
    totals = result.totals()
    shown = features or names
    table = pd.DataFrame({n: totals[n].numpy() for n in shown}, index=frame.index)
    if out_feature.type == "category":
        classes = list(out_feature.spec()["classes"])
        target_names = [classes[int(i)] for i in result.target]
    else:
        target_names = [out_feature.name] * len(frame)
    return FeatureAttributions(table, result, target_names, kinds)
