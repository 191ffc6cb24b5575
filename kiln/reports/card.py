"""MODEL_CARD.md for a run: the nine sections of Mitchell et al. 2019, filled from facts kiln has.

The card opens with YAML front matter in the form published model cards use (``license``,
``datasets``, ``tags``, ``model-index`` with the evaluated metrics), then: model details
(architecture, parameters, versions, lineage), intended use (from the config's ``card:``
section, or one line saying it is not stated), factors (the ``card.slices`` columns), metrics
(each with a bootstrap 95% interval), evaluation data and training data (source, content hash,
split sizes, class balance), quantitative analyses (per-slice metrics, explanations,
compression and latency when the run folder has them), ethical considerations (privacy:
epsilon spent, or "not private"), caveats and recommendations.

Everything is read from the run folder (config.yaml, evaluation.json, explanations.json, ...)
and the loaded run (``kiln.workflows.run.load_run``, passed in: components do not import
workflows), so `kiln card RUN` can write it again at any time.

Intervals: bootstrap percentiles (Efron & Tibshirani 1993). The evaluated rows are resampled
with replacement ``n_resamples`` times; the metric of each resample gives its distribution,
and the 2.5th and 97.5th percentiles bound the interval. The point estimate is the metric on
the rows as they are. With more rows the resamples agree more, so the interval shrinks (about
as 1/sqrt(rows)).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from kiln.errors import KilnValueError

__all__ = ["write_card", "card_facts", "render_card", "bootstrap_ci", "CARD_FILE", "SECTIONS"]

CARD_FILE = "MODEL_CARD.md"
SECTIONS = ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
            "Quantitative analyses", "Ethical considerations", "Caveats and recommendations")


# ---------------------------------------------------------------------- bootstrap intervals
def _accuracy(y_true, y_pred):
    return (y_true == y_pred).mean(axis=-1)


def _mae(y_true, y_pred):
    return np.abs(y_true - y_pred).mean(axis=-1)


def _rmse(y_true, y_pred):
    return np.sqrt(((y_true - y_pred) ** 2).mean(axis=-1))


def _r2(y_true, y_pred):
    total = ((y_true - y_true.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    return 1 - ((y_true - y_pred) ** 2).sum(axis=-1) / np.where(total > 0, total, np.nan)


METRICS = {"accuracy": _accuracy, "mae": _mae, "rmse": _rmse, "r2": _r2}


def bootstrap_ci(metric: str, y_true, y_pred, *, n_resamples: int = 1000, level: float = 0.95,
                 seed: int = 0) -> dict:
    """A metric with its bootstrap confidence interval.

    Args:
        metric: "accuracy" (labels compared as they are), "mae", "rmse" or "r2".
        y_true, y_pred: ``(rows,)`` targets and predictions.
        n_resamples: bootstrap resamples (default 1000). level: the interval's coverage (0.95).
        seed: the resampling seed.

    Returns:
        ``{"value", "low", "high", "rows"}``.

    Example::

        bootstrap_ci("accuracy", ["a", "b", "a"], ["a", "b", "b"])  # {"value": 0.667, "low": ..., ...}
    """
    if metric not in METRICS:
        raise KilnValueError(f"No bootstrap for metric {metric!r}; expected one of {list(METRICS)}.")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise KilnValueError(f"y_true and y_pred need the same, non-zero number of rows; received {len(y_true)} "
                             f"and {len(y_pred)}.")
    fn = METRICS[metric]
    if metric != "accuracy":
        y_true, y_pred = y_true.astype(float), y_pred.astype(float)
    rows = len(y_true)
    index = np.random.default_rng(seed).integers(0, rows, size=(n_resamples, rows))  # (resamples, rows)
    samples = fn(y_true[index], y_pred[index])
    low, high = np.nanpercentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {"value": float(fn(y_true[None, :], y_pred[None, :])[0]), "low": float(low), "high": float(high),
            "rows": rows}


# ---------------------------------------------------------------------- the card
def _read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _content_hash(frame) -> str:
    import pandas as pd
    return hashlib.sha256(pd.util.hash_pandas_object(frame.astype(str), index=True).values.tobytes()).hexdigest()


def _metrics_of(feature, truth, predicted, seed: int) -> dict:
    if feature.type in ("category", "binary"):
        return {"accuracy": bootstrap_ci("accuracy", [str(v) for v in truth], [str(v) for v in predicted],
                                         seed=seed)}
    return {name: bootstrap_ci(name, truth, predicted, seed=seed) for name in ("mae", "rmse", "r2")}


def _slice_values(column, max_values: int = 10):
    """Slice keys for a column: its values, or quartile bins for a numeric column with many values."""
    import pandas as pd
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > max_values:
        return pd.qcut(column, 4, duplicates="drop").astype(str)
    return column.astype(str)


def card_facts(run, run_dir, frame, splits, *, seed: int = 0) -> dict:
    """Every fact the card states, as a dict (also what the tests read).

    ``frame`` and ``splits`` are the run's table and its splits as training read them
    (``kiln.workflows.train.read_and_split``): the card describes the data the model saw, and
    ``kiln train`` hands over what it already holds instead of reading the source again.
    """
    import yaml

    import kiln
    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    card = config.get("card") or {}
    output = run.outputs[0]
    evaluation_split = (config.get("evaluation") or {}).get("split", "test")
    if not len(splits.get(evaluation_split, ())):
        evaluation_split = "validation"
    evaluated = splits[evaluation_split]
    predicted = run.predict_frame(evaluated)[output.name].tolist()
    truth = evaluated[output.column].tolist()
    slices = {}
    for column in card.get("slices") or []:
        keys = _slice_values(evaluated[column])
        slices[column] = {}
        for key in sorted(set(keys)):
            rows = np.flatnonzero((keys == key).to_numpy())
            slices[column][key] = _metrics_of(output, [truth[i] for i in rows], [predicted[i] for i in rows], seed)
    balance = {}
    if output.type in ("category", "binary"):
        balance = {name: {str(k): int(v) for k, v in part[output.column].astype(str).value_counts().sort_index()
                          .items()} for name, part in splits.items() if len(part)}
    environment = {"kiln": kiln.__version__}
    try:
        import torch
        environment["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - the card needs the model, hence torch
        pass
    privacy = _read_json(run_dir / "privacy.json")  # written by a private run (kiln.privacy record)
    return {
        "name": config.get("name", run_dir.name), "run": run_dir.name, "card": card,
        "task": "regression" if output.type == "numeric" else "classification",
        "output": {"name": output.name, "type": output.type},
        "inputs": [{"name": f.name, "type": f.type, "column": f.column} for f in run.inputs],
        "architecture": type(run.model).__name__,
        "layers": [f"{name} ({type(layer).__name__})" for name, layer in getattr(run.model, "named_layers",
                                                                                 lambda: [])()],
        "parameters": int(sum(p.numel() for p in run.model.parameters())),
        "environment": environment, "seed": config.get("seed"),
        "model_config": config.get("model") or {},
        "data": {"source": str(config["data"]["source"]), "rows": len(frame), "hash": _content_hash(frame),
                 "splits": {name: len(part) for name, part in splits.items()}, "class_balance": balance},
        "evaluation_split": evaluation_split,
        "metrics": _metrics_of(output, truth, predicted, seed),
        "slices": slices,
        "evaluation": _read_json(run_dir / "evaluation.json") or {},
        "explanations": _read_json(run_dir / "explanations.json"),
        "privacy": privacy,
        "compression": _read_json(run_dir / "compression.json"),
        "latency": _read_json(run_dir / "latency.json"),
    }


def _front_matter(facts: dict) -> str:
    import yaml
    kind = "tabular" if all(i["type"] in ("numeric", "binary", "category") for i in facts["inputs"]) else \
        "-".join(sorted({i["type"] for i in facts["inputs"]}))
    task = f"{kind}-{facts['task']}"
    metrics = [{"type": name, "value": round(m["value"], 6), "name": f"{facts['evaluation_split']} {name}"}
               for name, m in facts["metrics"].items()]
    matter = {
        "license": facts["card"].get("license") or "unknown",
        "datasets": [facts["data"]["source"]],
        "tags": ["kiln", task],
        "model-index": [{"name": facts["name"], "results": [{
            "task": {"type": task},
            "dataset": {"name": facts["data"]["source"], "type": facts["data"]["source"],
                        "split": facts["evaluation_split"]},
            "metrics": metrics}]}],
    }
    return "---\n" + yaml.safe_dump(matter, sort_keys=False) + "---\n"


def _ci(m: dict) -> str:
    return f"{m['value']:.4f} (95% CI {m['low']:.4f}–{m['high']:.4f}, {m['rows']} rows)"


def render_card(facts: dict) -> str:
    """MODEL_CARD.md's text from ``card_facts``."""
    card, data = facts["card"], facts["data"]
    out = [f"# Model card: {facts['name']}\n\nWritten by kiln from run `{facts['run']}`; `kiln card RUN` writes "
           f"it again.\n"]

    def section(title: str, lines: list) -> None:
        out.append(f"## {title}\n\n" + "\n".join(lines) + "\n")

    inputs = ", ".join(f"{i['name']} ({i['type']})" for i in facts["inputs"])
    section("Model details", [
        f"- Task: {facts['task']} of `{facts['output']['name']}` ({facts['output']['type']}) from {inputs}.",
        f"- Architecture: {facts['architecture']}"
        + (f", layers: {', '.join(facts['layers'])}" if facts["layers"] else "")
        + (f"; model config: `{json.dumps(facts['model_config'])}`" if facts["model_config"] else "") + ".",
        f"- Parameters: {facts['parameters']:,}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in facts["environment"].items()) + ".",
        f"- Lineage: trained by `kiln train` from the run's config.yaml (seed {facts['seed']}) on "
        f"`{data['source']}` (content hash sha256:{data['hash'][:16]}…).",
    ])
    if card.get("intended_use") or card.get("out_of_scope"):
        section("Intended use", [f"- Intended use: {card.get('intended_use') or 'not stated'}.",
                                 f"- Out of scope: {card.get('out_of_scope') or 'not stated'}."])
    else:
        section("Intended use", ["Not stated: the config has no `card.intended_use`; nothing is known about who "
                                 "should use this model, for what."])
    slices = list(facts["slices"])
    section("Factors", [f"Metrics are broken down by {', '.join(f'`{s}`' for s in slices)} (card.slices)."
                        if slices else "No slices were named (card.slices), so no factor is evaluated separately; "
                        "the metrics below are for the whole evaluation split."])
    section("Metrics", [f"- {name} on the {facts['evaluation_split']} split: {_ci(m)}"
                        for name, m in facts["metrics"].items()]
            + ["", "Intervals: bootstrap percentiles over 1,000 resamples of the evaluated rows."])
    rows = data["splits"]
    section("Evaluation data", [f"- The {facts['evaluation_split']} split of `{data['source']}`: "
                                f"{rows.get(facts['evaluation_split'], 0)} rows."]
            + ([f"- Class balance: {json.dumps(data['class_balance'].get(facts['evaluation_split'], {}))}."]
               if data["class_balance"] else []))
    section("Training data", [f"- Source: `{data['source']}`, {data['rows']} rows, content hash "
                              f"sha256:{data['hash']}.",
                              "- Split sizes: " + ", ".join(f"{k} {v}" for k, v in rows.items()) + "."]
            + ([f"- Class balance (train): {json.dumps(data['class_balance'].get('train', {}))}."]
               if data["class_balance"] else []))
    analyses = []
    for split, metrics in facts["evaluation"].items():
        analyses.append(f"- {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                                    if isinstance(v, (int, float))))
    for column, values in facts["slices"].items():
        analyses.append(f"\n| {column} | " + " | ".join(facts["metrics"]) + " |")  # a table needs a blank line above
        analyses.append("|---|" + "---|" * len(facts["metrics"]))
        for key, metrics in values.items():
            analyses.append(f"| {key} | " + " | ".join(_ci(m) for m in metrics.values()) + " |")
        analyses.append("")
    explanations = facts["explanations"]
    if explanations and explanations.get("global_importance"):
        importance = explanations["global_importance"]
        top = list(importance["importances"].items())[:5]
        analyses.append(f"- Explanations: permutation importance on the {importance.get('split')} split "
                        f"({importance['metric']} lost when shuffled): "
                        + ", ".join(f"{n} {v['mean']:.4f}" for n, v in top) + ".")
    if explanations and explanations.get("checks"):
        checks = explanations["checks"]
        analyses.append("- Explanation checks: " + ", ".join(f"{k} {'passed' if v['passed'] else 'failed'}"
                                                             for k, v in checks.items()) + ".")
    if not (explanations and (explanations.get("global_importance") or explanations.get("checks"))):
        analyses.append("- Explanations: none computed (explain.enabled is false; `kiln explain RUN` adds them).")
    for name in ("compression", "latency"):
        if facts[name]:
            analyses.append(f"- {name.capitalize()}: `{json.dumps(facts[name])}`.")
    section("Quantitative analyses", analyses)
    privacy = facts["privacy"]
    epsilon = privacy.get("epsilon_spent") if isinstance(privacy, dict) else None
    section("Ethical considerations", [
        f"- Privacy: differentially private training (DP-SGD), epsilon {epsilon:.3g} spent of "
        f"{privacy.get('epsilon_target')} (delta {privacy.get('delta')}, noise multiplier "
        f"{privacy.get('noise_multiplier', float('nan')):.3g}, clipping norm {privacy.get('max_grad_norm')})."
        if epsilon is not None else "- Privacy: not private (trained without differential privacy); the model may "
        "memorise training rows."])
    caveats = []
    evaluated_rows = rows.get(facts["evaluation_split"], 0)
    if evaluated_rows < 100:
        caveats.append(f"- The evaluation split has {evaluated_rows} rows: the intervals above are wide.")
    balance = data["class_balance"].get("train") or {}
    if balance and max(balance.values()) > 3 * max(min(balance.values()), 1):
        caveats.append(f"- The classes are imbalanced in training ({json.dumps(balance)}); accuracy flatters "
                       f"a model that favours the large class.")
    for column, values in facts["slices"].items():
        small = [k for k, m in values.items() if next(iter(m.values()))["rows"] < 30]
        if small:
            caveats.append(f"- Slices of `{column}` with under 30 rows ({', '.join(small)}): too few to judge.")
    if card.get("caveats"):
        caveats.append(f"- {card['caveats']}")
    caveats.append("- Evaluated on one split of one dataset; performance on data from elsewhere is unknown.")
    section("Caveats and recommendations", caveats)
    return _front_matter(facts) + "\n" + "\n".join(out)


def write_card(run, run_dir, frame, splits, *, seed: int = 0) -> Path:
    """Write ``run_dir``/MODEL_CARD.md and return its path (``frame``/``splits``: see ``card_facts``)."""
    path = Path(run_dir) / CARD_FILE
    path.write_text(render_card(card_facts(run, run_dir, frame, splits, seed=seed)), encoding="utf-8")
    return path
