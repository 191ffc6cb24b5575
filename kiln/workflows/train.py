"""The `kiln train` workflow: one YAML file -> a trained, evaluated, reported run folder.

Steps (each a small function below): setup (seed, run folder) -> data (read, check
columns, split) -> features (fit on the training split, encode every split) -> model
(from the features and the model config) -> fit (checkpoints every N steps; resumable) ->
evaluate (test split) -> save (model + preprocessors) -> report.

Raises:
    ConfigError: an invalid config (all problems at once).
    DataError: data that does not fit the config (names the file, column or row).
A failed run keeps its folder and its last good checkpoint; `kiln train --resume RUN`
continues it.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import kiln
from kiln.distribution.run_folder import shared_run_folder
from kiln.errors import DataError, KilnError, closest_match
from kiln.workflows.model_builder import build_model
from kiln.workflows.run import as_probabilities
from kiln_edge.run import data_unit_names, metrics_in_data_units, standardised_metrics

__all__ = ["train", "RunResult", "LOSS_FOR_TYPE", "METRICS_FOR_TYPE"]

LOSS_FOR_TYPE = {
    "category": lambda logits: kiln.losses.SparseCategoricalCrossentropy(from_logits=logits),
    "binary": lambda logits: kiln.losses.BinaryCrossentropy(from_logits=logits),
    "numeric": lambda logits: kiln.losses.MeanSquaredError(),
}
METRICS_FOR_TYPE = {
    "category": lambda logits: ["accuracy"],
    "binary": lambda logits: [kiln.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logits else 0.5),
                              kiln.metrics.AUC(name="auc")],
    "numeric": lambda logits: ["mae", "rmse", kiln.metrics.R2Score(name="r2")],
}


@dataclass
class RunResult:
    """What a finished run left behind."""

    run_dir: Path
    history: dict
    test_metrics: dict
    model: Any = field(repr=False)
    features: dict = field(repr=False)


# ---------------------------------------------------------------------- setup
def _run_dir(config, output_dir, resume) -> Path:
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").exists():
            raise DataError(f"--resume {run_dir}: not a kiln run folder (no config.yaml). Pass the folder "
                            f"that `kiln train` printed, e.g. runs/{config.name}-20261129-101500.")
        if (run_dir / "evaluation.json").exists() and (run_dir / "model" / "roles.json").exists():
            # Resuming would re-run the last epoch from its checkpoint and overwrite the results.
            raise DataError(f"--resume {run_dir}: the run is finished (it has its model and evaluation.json); "
                            f"there is nothing to resume. Start a new run with `kiln train "
                            f"{run_dir / 'config.yaml'}` (raise training.epochs there to train longer).")
        return run_dir
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir or config.output_dir)
    run_dir = base / f"{config.name}-{stamp}"
    n = 1
    while run_dir.exists():
        run_dir = base / f"{config.name}-{stamp}-{n}"
        n += 1
    run_dir.mkdir(parents=True)
    return run_dir


# ---------------------------------------------------------------------- data
def read_and_split(config):
    """The run's table and its splits: ``(frame, {"train", "validation", "test"})`` (also for ``kiln card``)."""
    from kiln.data import read_source, split_frame
    data = config.data
    frame = read_source(data.source, format=data.format, **(data.options or {}))
    columns = list(frame.columns)
    for feature in [*config.input_features, *config.output_features]:
        column = feature.column or feature.name
        if column not in columns:
            hint = closest_match(column, columns)
            raise DataError(f"Feature {feature.name!r} reads column {column!r}, which {data.source} does not have"
                            + (f"; did you mean {hint!r}?" if hint else ".") + f" Its columns: {columns}. Set the "
                            f"feature's `column:` to one of them.")
    split = data.split
    return frame, split_frame(frame, train=split.train, validation=split.validation, test=split.test,
                              stratify=split.stratify, by_column=split.by_column, seed=split.seed)


def _build_features(config, splits):
    from kiln.data.features import build_feature
    built = {}
    for role, specs in (("input", config.input_features), ("output", config.output_features)):
        for spec in specs:
            feature = build_feature(spec.name, spec.type, column=spec.column or spec.name,
                                    output=role == "output", **spec.preprocessing.model_dump())
            feature.augmentation = spec.augmentation
            feature.fit(splits["train"][feature.column])
            built[spec.name] = (role, feature)
    return built


def _encode(features, frame):
    x = {name: f.transform(frame[f.column]) for name, (role, f) in features.items() if role == "input"}
    y = {name: f.transform(frame[f.column]) for name, (role, f) in features.items() if role == "output"}
    if len(y) == 1:
        y = next(iter(y.values()))
    return x, y


# ---------------------------------------------------------------------- the workflow
def train(config, *, output_dir=None, resume=None, verbose: int = 1, callbacks=()) -> RunResult:
    """Run the whole lifecycle for ``config`` (a KilnConfig); returns where it all went.

    ``callbacks`` are added to the run's own (checkpoints, metrics log, early stopping), e.g.
    ``kiln tune``'s pruning callback; default none.
    """
    from kiln.config import dump_config
    started = time.time()
    seed = config.training.seed if config.training.seed is not None else config.seed
    kiln.utils.set_random_seed(seed)
    # Distributed (kiln train --nproc N): rank 0's run folder; the other ranks write to scratch.
    run_dir = shared_run_folder(lambda: _run_dir(config, output_dir, resume))
    config_yaml = dump_config(config)
    (run_dir / "config.yaml").write_text(config_yaml)
    if verbose:
        print(f"run folder: {run_dir}", flush=True)

    frame, splits = read_and_split(config)
    if config.data.split.k_folds:
        _cross_validate(config, splits, seed, run_dir, verbose)
    try:
        fitted = _fit_once(config, splits, seed, callbacks=_callbacks(config, run_dir, verbose) + list(callbacks),
                           verbose=verbose)
    except KilnError:
        if config.training.privacy is not None and resume is None:
            _discard_unstarted_run(run_dir)  # a refused private fit leaves no folder that claims privacy
        raise
    model, features, output_kinds, encoded = fitted["model"], fitted["features"], fitted["kinds"], fitted["encoded"]
    history = fitted["history"]
    test_metrics = _evaluate_splits(model, encoded, splits, fitted["outputs"], config.training.batch_size)
    (run_dir / "evaluation.json").write_text(json.dumps(test_metrics, indent=2))
    privacy = model.fit_state.privacy.record() if config.training.privacy is not None else None
    if privacy is not None:
        (run_dir / "privacy.json").write_text(json.dumps(privacy, indent=2))

    _save_model(model, features, output_kinds, run_dir)
    if "onnx" in config.export.formats:
        from kiln.export.onnx import export_onnx
        from kiln.workflows.run import load_run
        (run_dir / "export").mkdir(exist_ok=True)
        export_onnx(load_run(run_dir), run_dir / "export" / "model.onnx")
    explanations = _write_explanations(config, model, encoded, splits, run_dir, seed)
    _write_card(run_dir, seed, frame, splits)
    report_path = _write_report(config, config_yaml, run_dir, model, features, output_kinds, splits, encoded,
                                history.history, test_metrics, seed, time.time() - started, explanations,
                                privacy=privacy)
    if verbose:
        headline = test_metrics.get(config.evaluation.split) or {}
        print("test metrics: " + _format_metrics(headline), flush=True)
        standardised = standardised_metrics(fitted["outputs"], [k for k in headline
                                                                if k not in data_unit_names(fitted["outputs"])])
        if standardised:
            print(f"  ({', '.join(standardised)}: on the standardised target; the rest in the data's units)",
                  flush=True)
        print(f"report: {report_path}", flush=True)
    return RunResult(run_dir, history.history, test_metrics, model, {n: f for n, (_, f) in features.items()})


def _fit_once(config, splits, seed, callbacks, verbose) -> dict:
    """Features fitted on ``splits["train"]``, a model built from them, and fit."""
    features = _build_features(config, splits)
    encoded = {name: _encode(features, part) for name, part in splits.items() if len(part)}
    inputs = [f for role, f in features.values() if role == "input"]
    outputs = [f for role, f in features.values() if role == "output"]

    kiln.utils.set_random_seed(seed)  # the model's initial weights do not depend on data reading
    model, output_kinds = build_model(config.model, inputs, outputs, name=config.name.replace("-", "_"),
                                      regularization=config.training.regularization)
    mixer = _mixer(config, inputs, outputs)
    if mixer is not None:  # mixed labels are soft: train and evaluate on one-hot targets
        encoded = {k: (x, _one_hot(y, outputs[0])) for k, (x, y) in encoded.items()}
    steps_per_epoch = -(-len(splits["train"]) // config.training.batch_size)
    _compile(model, config, outputs, output_kinds, soft_labels=mixer is not None,
             total_steps=steps_per_epoch * config.training.epochs)
    if verbose:
        model.summary()
        _say_standardised(config, outputs)
    x_train, y_train = encoded["train"]
    history = model.fit(x_train, y_train, epochs=config.training.epochs, batch_size=config.training.batch_size,
                        validation_data=encoded.get("validation"), callbacks=callbacks, verbose=verbose,
                        batch_transform=mixer, privacy=_privacy(config))
    return {"model": model, "features": features, "kinds": output_kinds, "encoded": encoded, "history": history,
            "outputs": outputs}


def _privacy(config):
    """``training.privacy`` as ``kiln.privacy.DP`` (None when off); imported only when used."""
    if config.training.privacy is None:
        return None
    from kiln.privacy import DP
    return DP.from_config(config.training.privacy.model_dump())


def _discard_unstarted_run(run_dir: Path) -> None:
    """Remove a run folder that holds nothing but its config.yaml (the fit was refused before any step)."""
    if {p.name for p in run_dir.iterdir()} <= {"config.yaml"}:
        (run_dir / "config.yaml").unlink(missing_ok=True)
        run_dir.rmdir()


def _evaluate_splits(model, encoded, splits, outputs, batch_size) -> dict:
    metrics = {}
    for split_name in ("train", "validation", "test"):
        if split_name in encoded:
            x, y = encoded[split_name]
            metrics[split_name] = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
            metrics[split_name].update(_metrics_in_data_units(model, x, splits[split_name], outputs, batch_size))
    return metrics


def _cross_validate(config, splits, seed, run_dir: Path, verbose) -> dict:
    """k-fold cross-validation over the training and validation rows (the test split stays
    untouched); per-fold validation metrics and their mean and spread go to cross_validation.json."""
    import pandas as pd

    from kiln.data import kfold
    split = config.data.split
    pool = pd.concat([splits["train"], splits["validation"]])  # keeps the file rows for errors
    results = []
    for i, (train_part, val_part) in enumerate(kfold(pool, split.k_folds, stratify=split.stratify, seed=split.seed)):
        fitted = _fit_once(config, {"train": train_part, "validation": val_part}, seed, callbacks=[], verbose=0)
        scores = _evaluate_splits(fitted["model"], {"validation": fitted["encoded"]["validation"]},
                                  {"validation": val_part}, fitted["outputs"], config.training.batch_size)
        results.append(scores["validation"])
        if verbose:
            print(f"fold {i + 1}/{split.k_folds}: " + _format_metrics(results[-1]), flush=True)
    # A fold whose target is constant has no R² (None): the mean and spread are over the others.
    defined = {k: [r[k] for r in results if r.get(k) is not None] for k in results[0]}
    summary = {"folds": results,
               "mean": {k: float(np.mean(v)) if v else None for k, v in defined.items()},
               "std": {k: float(np.std(v)) if v else None for k, v in defined.items()}}
    (run_dir / "cross_validation.json").write_text(json.dumps(summary, indent=2))
    if verbose:
        print("cross-validation mean: " + ", ".join(
            f"{k} {_format_value(v)} ± {_format_value(summary['std'][k])}" for k, v in summary["mean"].items()),
            flush=True)
    return summary


def _mixer(config, inputs, outputs):
    """MixUp/CutMix from the image feature's augmentation config, as a training-batch transform."""
    from kiln.errors import ConfigError
    from kiln.training.mixing import CutMix, MixUp
    specs = [(f, getattr(f, "augmentation", None)) for f in inputs]
    wanted = [(f, a) for f, a in specs if a is not None and (a.mixup or a.cutmix)]
    if not wanted:
        return None
    feature, aug = wanted[0]
    if len(inputs) != 1 or len(outputs) != 1 or outputs[0].type != "category":
        raise ConfigError("mixup/cutmix need exactly one (image) input feature and one category output feature.")
    classes = len(outputs[0].spec()["classes"])
    mix = MixUp(alpha=aug.mixup, num_classes=classes) if aug.mixup else CutMix(alpha=aug.cutmix, num_classes=classes)

    def transform(x, y):
        params = mix.sample(x[feature.name])
        mixed, soft = mix.apply(x[feature.name], y, params)
        return {feature.name: mixed}, soft
    return transform


def _one_hot(y, feature):
    return torch.nn.functional.one_hot(y.long(), len(feature.spec()["classes"])).float()


def _metrics_in_data_units(model, x, frame, outputs, batch_size) -> dict:
    """For numeric outputs (trained standardised): MAE, RMSE and R2 of the decoded predictions
    against the column's own values (``kiln_edge.run.metrics_in_data_units``, what `kiln evaluate`
    reports too), so evaluation.json speaks in the data's units."""
    if not any(f.type == "numeric" for f in outputs):
        return {}
    raw = model.predict(x, batch_size=batch_size, verbose=0)
    raw = raw if isinstance(raw, dict) else {outputs[0].name: raw}
    return metrics_in_data_units(outputs, frame, raw)


def _format_value(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"  # None: R² of a constant target (undefined)


def _format_metrics(metrics: dict) -> str:
    return ", ".join(f"{k} {_format_value(v)}" for k, v in metrics.items())


def _say_standardised(config, outputs) -> None:
    """One line before the per-epoch log: which of its numbers are on a standardised target."""
    names = ["loss"]
    for feature in (f for f in outputs if f.type == "numeric"):
        for metric in config.evaluation.metrics or METRICS_FOR_TYPE["numeric"](False):
            name = metric if isinstance(metric, str) else metric.name
            names.append(name if len(outputs) == 1 else f"{feature.name}_{name}")
    marked = standardised_metrics(outputs, names)
    if marked:
        print(f"note: the per-epoch {', '.join(marked)} below are on the standardised target "
              f"((value - mean) / std of the training split); the final test metrics are in the data's units.",
              flush=True)


def _schedule(schedule_config, learning_rate: float, total_steps: int):
    """The config's learning-rate schedule as a kiln schedule (None for none)."""
    if schedule_config is None:
        return None
    from kiln.optimizers import schedules
    c = schedule_config
    decay_steps = c.decay_steps or max(total_steps - c.warmup_steps, 1)
    after = {
        "constant": lambda: learning_rate,
        "cosine": lambda: schedules.CosineDecay(learning_rate, decay_steps, alpha=c.alpha),
        "exponential": lambda: schedules.ExponentialDecay(learning_rate, decay_steps, c.decay_rate),
        "inverse_time": lambda: schedules.InverseTimeDecay(learning_rate, decay_steps, c.decay_rate),
        "polynomial": lambda: schedules.PolynomialDecay(learning_rate, decay_steps, learning_rate * c.alpha,
                                                        power=c.power),
    }[c.name]()
    if c.warmup_steps:
        return schedules.LinearWarmup(after, c.warmup_steps)
    return after if not isinstance(after, float) else None


def _compile(model, config, outputs, output_kinds, soft_labels=False, total_steps=1) -> None:
    t = config.training
    options = t.optimizer.model_dump(exclude_none=True)  # name, learning_rate if set, and its arguments
    name = options.pop("name")
    schedule = _schedule(t.schedule, options.get("learning_rate", kiln.optimizers.get(name).learning_rate),
                         total_steps)
    if schedule is not None:
        options["learning_rate"] = schedule
    optimizer = kiln.optimizers.get({"class_name": name, "config": options}) if options else name
    logits = {f.name: output_kinds[f.name] == "logits" for f in outputs}
    losses = {f.name: LOSS_FOR_TYPE[f.type](logits[f.name]) for f in outputs}
    if soft_labels:
        losses = {f.name: kiln.losses.CategoricalCrossentropy(from_logits=logits[f.name]) for f in outputs}
    metrics = {f.name: METRICS_FOR_TYPE[f.type](logits[f.name]) for f in outputs}
    if config.evaluation.metrics:  # the config's list replaces the per-type defaults
        metrics = {f.name: list(config.evaluation.metrics) for f in outputs}
    if len(outputs) == 1:
        losses, metrics = next(iter(losses.values())), next(iter(metrics.values()))
    precision = None if t.precision == "float32" else t.precision
    model.compile(optimizer=optimizer, loss=losses, metrics=metrics, mixed_precision=precision)


def _callbacks(config, run_dir: Path, verbose: int = 0) -> list:
    t = config.training
    callbacks = [kiln.callbacks.BackupAndRestore(run_dir / "checkpoints", save_freq=t.checkpoint_every_steps or "epoch",
                                                 delete_checkpoint=False, verbose=verbose),
                 kiln.callbacks.JSONLLogger(run_dir / "metrics.jsonl")]
    if t.early_stopping is not None:
        es = t.early_stopping
        callbacks.append(kiln.callbacks.EarlyStopping(monitor=es.monitor, patience=es.patience,
                                                      min_delta=es.min_delta, mode=es.mode,
                                                      restore_best_weights=es.restore_best_weights))
    return callbacks


def _save_model(model, features, output_kinds, run_dir: Path) -> None:
    from kiln.data.features import save_features
    model_dir = run_dir / "model"
    model.save(model_dir)
    save_features([f for _, f in features.values()], model_dir)
    (model_dir / "roles.json").write_text(json.dumps(
        {"roles": {n: role for n, (role, _) in features.items()}, "outputs": output_kinds}, indent=2))


def _write_report(config, config_yaml, run_dir, model, features, output_kinds, splits, encoded, history,
                  test_metrics, seed, seconds, explanations=None, privacy=None):
    from kiln.reports import ReportContext, write_report
    outputs = [(name, f) for name, (role, f) in features.items() if role == "output"]
    lines = []
    model.summary(print_fn=lines.append)
    epochs = len(next(iter(history.values()), []))
    output_features = [f for _, f in outputs]
    curve_names = list(dict.fromkeys(k[4:] if k.startswith("val_") else k for k in history))
    final_names = list(dict.fromkeys(k for split in test_metrics.values() for k in split))
    replaced = data_unit_names(output_features)
    context = ReportContext(
        title=f"kiln run {run_dir.name}", run_name=run_dir.name,
        task="multi" if len(outputs) > 1 else ("regression" if outputs[0][1].type == "numeric" else "classification"),
        history=[{"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}} for i in range(epochs)],
        final_metrics=test_metrics, model_summary="\n".join(lines),
        data_summary=_data_summary(features, splits), environment=_environment(model, seed, seconds),
        config_yaml=config_yaml,
        # Per-epoch numbers of a numeric output are on its standardised target; evaluation.json's
        # MAE/RMSE/R² are in data units (only its loss is not): the report labels which is which.
        standardised_curves=standardised_metrics(output_features, curve_names),
        standardised_metrics=standardised_metrics(output_features, [k for k in final_names if k not in replaced]),
        explanations=explanations, explanations_folder=str(run_dir), model_card="MODEL_CARD.md")
    if privacy is not None:
        context.notes = list(context.notes or []) + [
            f"Differentially private training (DP-SGD): epsilon {privacy['epsilon_spent']:.3g} spent of "
            f"{privacy['epsilon_target']:g}, delta {privacy['delta']:g}, noise multiplier "
            f"{privacy['noise_multiplier']:.3g}, clipping norm {privacy['max_grad_norm']:g} (privacy.json)."]
        context.environment["privacy"] = f"epsilon {privacy['epsilon_spent']:.3g} (delta {privacy['delta']:g})"
    split = config.evaluation.split if config.evaluation.split in encoded else "validation"
    if split in encoded and len(outputs) == 1:
        name, feature = outputs[0]
        x, y = encoded[split]
        pred = model.predict(x, batch_size=config.training.batch_size, verbose=0)
        truth = splits[split][feature.column].tolist()
        decoded = list(feature.decode(as_probabilities(feature, pred, output_kinds[name])))
        if feature.type == "numeric":
            context.y_true, context.y_pred = np.asarray(truth, dtype=float), np.asarray(decoded, dtype=float)
        else:
            context.y_true, context.y_pred = truth, decoded
            context.class_names = list(feature.spec().get("classes", sorted(set(truth), key=str)))
            context.y_score = as_probabilities(feature, pred, output_kinds[name]).numpy()
    return write_report(run_dir / "report.html", context)


def _write_explanations(config, model, encoded, splits, run_dir: Path, seed) -> dict | None:
    """The explain hook (kiln/explain): unless ``explain.enabled`` is false, permutation importance
    on the evaluated split (and, with ``explain.method``, per-row attributions and their checks)
    go to explanations.json, which the report shows as its "Explanations" section."""
    if not config.explain.enabled:
        return None
    from kiln.explain.folder import EXPLANATIONS_FILE, explain_run
    from kiln.explain.importance import permutation_importance
    split = config.evaluation.split if config.evaluation.split in encoded else "validation"
    if split not in encoded:
        return None
    x, y = encoded[split]
    explanations = {}
    if config.explain.method is not None:
        from kiln.workflows.run import load_run
        explanations = explain_run(load_run(run_dir), splits[split], run_dir, method=config.explain.method,
                                   importance=False, seed=seed)
    importance = permutation_importance(model, x, y, n_repeats=config.explain.n_repeats, seed=seed,
                                        batch_size=config.training.batch_size)
    explanations["global_importance"] = {**importance, "split": split, "n_repeats": config.explain.n_repeats,
                                         "rows": len(splits[split])}
    (run_dir / EXPLANATIONS_FILE).write_text(json.dumps(explanations, indent=2))
    return explanations


def _write_card(run_dir: Path, seed, frame, splits) -> None:
    """The card hook (kiln/reports/card.py): MODEL_CARD.md from the saved run, linked from the report."""
    from kiln.reports.card import write_card
    from kiln.workflows.run import load_run
    write_card(load_run(run_dir), run_dir, frame, splits, seed=seed)


def _data_summary(features, splits) -> dict:
    summary = {"rows": {name: len(part) for name, part in splits.items()}, "features": [], "class_balance": {}}
    for name, (role, feature) in features.items():
        column = splits["train"][feature.column]
        row = {"feature": name, "role": role, "type": feature.type}
        if feature.type in ("numeric",):
            values = column.astype(float)
            row.update(mean=float(values.mean()), std=float(values.std()), min=float(values.min()),
                       max=float(values.max()), missing=int(values.isna().sum()))
        elif feature.type in ("category", "binary", "text"):
            row.update(unique=int(column.astype(str).nunique()), missing=int(column.isna().sum()))
        summary["features"].append(row)
        if role == "output" and feature.type in ("category", "binary"):
            summary["class_balance"] = {split: part[feature.column].astype(str).value_counts().sort_index().to_dict()
                                        for split, part in splits.items() if len(part)}
    return summary


def _environment(model, seed, seconds) -> dict:
    finished = datetime.now()
    started = datetime.fromtimestamp(finished.timestamp() - seconds)
    return {"kiln": kiln.__version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "device": str(model.device), "threads": torch.get_num_threads(),
            "seed": seed, "wall time": f"{seconds:.1f} s", "started_at": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds")}
