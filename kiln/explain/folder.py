"""A run's explanations written into its folder: ``explanations.json`` plus pictures.

What `kiln explain RUN --data rows.csv` and `kiln train` (global importance, by default) call.
Per row and feature attributions (kiln/explain/tabular.py), the checks (kiln/explain/checks.py),
permutation importance when the rows carry the labels (kiln/explain/importance.py), and the
pictures (kiln/explain/render.py): heat maps for image and spectrogram inputs, highlighted
tokens for text, a bar chart of the features. report.html shows the file as its
"Explanations" section.

``run`` is a loaded run (``kiln.workflows.run.load_run``), passed in by the workflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

__all__ = ["explain_run", "run_importance", "add_to_report", "EXPLANATIONS_FILE", "PICTURES_DIR"]

EXPLANATIONS_FILE = "explanations.json"
PICTURES_DIR = "explanations"


def _has_labels(run, frame) -> bool:
    return all(f.column in frame.columns for f in run.outputs)


def run_importance(run, frame, *, split: str = "test", n_repeats: int = 5, seed: int = 0) -> dict:
    """Permutation importance of the run's input features on labelled rows (``frame``)."""
    from kiln.explain.importance import permutation_importance
    result = permutation_importance(run.model, run.encode_inputs(frame), run.encode_targets(frame),
                                    n_repeats=n_repeats, seed=seed)
    return {**result, "split": split, "n_repeats": n_repeats, "rows": len(frame)}


def explain_run(run, frame, out_dir, *, method: str = "ig", target=None, output: str | None = None,
                features: list | None = None, checks: bool = True, importance: bool = True,
                max_pictures: int = 4, n_steps: int = 32, seed: int = 0) -> dict:
    """Explain ``frame``'s rows with the run's model; write explanations.json and pictures into ``out_dir``.

    Args:
        run: a loaded run. frame: raw rows (a DataFrame).
        out_dir: the folder to write into (usually the run folder).
        method, target, output, features: as ``feature_attributions``.
        checks: run the completeness (IG) and randomisation checks (default True).
        importance: add permutation importance when the rows have the label column(s).
        max_pictures: heat maps / highlighted rows drawn per image, audio or text input.

    Returns:
        The written explanations (the JSON's content).
    """
    from kiln.explain.attribute import attribute
    from kiln.explain.checks import completeness_summary, randomisation_check
    from kiln.explain.tabular import baselines_for, feature_attributions
    out_dir = Path(out_dir)
    background = frame.sample(n=min(8, len(frame)), random_state=seed) if method == "shap" else None
    found = feature_attributions(run, frame, method, target, output=output, features=features,
                                 background_frame=background, n_steps=n_steps)
    table, result = found.table, found.attribution
    explanations = {
        "method": method, "output": result.output or run.outputs[0].name if output is None else output,
        "rows": len(frame), "features": {n: found.kinds[n] for n in table.columns},
        "mean_abs_attribution": {n: float(v) for n, v in table.abs().mean().sort_values(ascending=False).items()},
        "per_row": [{"row": _plain(index), "target": _plain(found.target_names[i]),
                     "attributions": {n: float(table.iloc[i][n]) for n in table.columns}}
                    for i, index in enumerate(table.index)],
        "checks": {}, "pictures": [], "tokens_html": [],
    }
    if result.expected_value is not None:
        explanations["expected_value"] = [float(v) for v in result.expected_value]
    if checks:
        if result.delta is not None:
            explanations["checks"]["completeness"] = completeness_summary(result)
        sample = {n: v[:64] for n, v in run.encode_inputs(frame.iloc[:64]).items()}
        kinds = dict(found.kinds)
        baselines = baselines_for(run)
        several = len(run.outputs) > 1
        name = explanations["output"] if several else None

        def explainer(model, x):  # the same method, on the model as given
            return attribute(model, x, method=method, output=name, baselines=baselines, kinds=kinds,
                             n_steps=n_steps).values
        explanations["checks"]["randomisation"] = randomisation_check(run.model, sample, explainer, seed=seed)
    if importance and _has_labels(run, frame):
        explanations["global_importance"] = run_importance(run, frame, split="given rows", seed=seed)
    _pictures(run, frame, found, out_dir, explanations, max_pictures)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / EXPLANATIONS_FILE).write_text(json.dumps(explanations, indent=2))
    return explanations


def add_to_report(report: Path, explanations: dict, folder: Path) -> bool:
    """Put (or replace) the "Explanations" section of an existing report.html; False when there is none.

    `kiln explain` runs after training, when the report's other sections are long written; the
    section is swapped in place (and linked from the page's navigation) rather than the report
    being rebuilt from the training state it no longer has.
    """
    import re

    from kiln.explain.render import report_section
    report = Path(report)
    if not report.exists():
        return False
    text = report.read_text(encoding="utf-8")
    section = (f'<section id="explanations">\n<h2>Explanations</h2>\n{report_section(explanations, folder)}\n'
               f'</section>')
    existing = re.compile(r'<section id="explanations">.*?</section>', re.S)
    if existing.search(text):
        text = existing.sub(lambda _: section, text, count=1)
    else:
        anchor = '<section id="model">' if '<section id="model">' in text else "<footer>"
        text = text.replace(anchor, section + "\n" + anchor, 1)
        text = text.replace('<a href="#model">', '<a href="#explanations">Explanations</a> <a href="#model">', 1)
    report.write_text(text, encoding="utf-8")
    return True


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _pictures(run, frame, found, out_dir: Path, explanations: dict, max_pictures: int) -> None:
    """Heat maps (image, audio), highlighted tokens (text), and a bar chart of the features."""
    try:
        from kiln.explain import render
        import matplotlib  # noqa: F401  (pictures need it; the JSON does not)
    except ImportError:
        explanations["notes"] = ["pictures need matplotlib: pip install 'kiln[explain]'"]
        return
    pictures = out_dir / PICTURES_DIR
    x = None
    for feature in run.inputs:
        kind = feature.type
        if kind not in ("image", "audio", "text") or feature.name not in found.table.columns:
            continue
        if x is None:
            x = run.encode_inputs(frame.iloc[:max_pictures])
        values = found.attribution.values[feature.name][:max_pictures]
        for i in range(min(max_pictures, len(values))):
            if kind == "text":
                ids = x[feature.name][i]
                kept = torch.nonzero(ids != 0).reshape(-1)  # <pad> (id 0) carries nothing
                tokens = feature.tokens(ids[None, :])[0]
                explanations["tokens_html"].append(render.tokens_html(
                    tokens, values[i][kept][:len(tokens)].numpy(), f"row {frame.index[i]} -> "
                    f"{found.target_names[i]}"))
            else:
                pictures.mkdir(parents=True, exist_ok=True)
                name = f"{PICTURES_DIR}/{feature.name}_{i}.png"
                (out_dir / name).write_bytes(render.heatmap_png(x[feature.name][i].numpy(), values[i].numpy(),
                                                                f"{feature.name}, row {frame.index[i]} -> "
                                                                f"{found.target_names[i]}"))
                explanations["pictures"].append(name)
    pictures.mkdir(parents=True, exist_ok=True)
    name = f"{PICTURES_DIR}/mean_abs_attribution.png"
    (out_dir / name).write_bytes(render.importance_png(explanations["mean_abs_attribution"],
                                                       f"mean |attribution| ({explanations['method']})"))
    explanations["pictures"].append(name)
