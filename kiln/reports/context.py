"""``ReportContext``: everything a report shows, checked once when it is built.

The numbers derived from it live in ``analysis`` and the page in ``html``; this file is the
input's shape and its validation (every problem listed at once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["ReportContext", "TASKS"]

TASKS = ("classification", "regression", "multi")


@dataclass
class ReportContext:
    """Everything ``write_report`` shows; all but the first three fields are optional.

    Args:
        title: the page's heading, e.g. "Iris classifier".
        run_name: the run's folder name, e.g. "iris-20250101-120000".
        task: "classification", "regression" or "multi" (several outputs: the report shows
            curves, metrics, model, data and environment, but no per-prediction analysis).
        history: one dict per epoch, as in metrics.jsonl:
            ``{"epoch": 1, "loss": ..., "accuracy": ..., "val_loss": ..., ...}``.
        final_metrics: split -> metric -> value, e.g. ``{"test": {"loss": 0.2, "accuracy": 0.9}}``.
        y_true, y_pred: per-example targets and predictions of the evaluated split.
            Classification: class labels (any hashable, or integer indices into
            ``class_names``; a 2-D one-hot/probability array is reduced with argmax).
            Regression: numbers, shape (rows,) or (rows, outputs).
        class_names: classification only: the classes in order (rows of the confusion
            matrix, columns of ``y_score``). Default: the sorted labels found in y_true/y_pred.
        y_score: classification only, optional: probabilities, (rows, classes) — or (rows,)
            for the positive class of a binary task. Adds ROC curves and per-class AUC.
        model_summary: the text of kiln's ``model.summary()`` (box-drawing characters kept).
        data_summary: any of ``"rows"``: {split: row count}; ``"features"``: a list of dicts
            ``{"feature": ..., "type": ..., <statistic>: value, ...}``; ``"class_balance"``:
            {split: {class: count}}. Other keys are shown as a key/value table.
        environment: key -> value, e.g. kiln and torch versions, device, seed, wall time,
            python, platform, started at.
        config_yaml: the resolved config, shown verbatim in a collapsible block.
        notes: short remarks shown under the header (e.g. "stopped early at epoch 14").
        standardised_curves: history metric names (without ``val_``) whose values are on a
            standardised target (a numeric output is trained as (value - mean) / std): their
            curves and per-epoch columns say "(standardised)", so nobody reads a z-score MAE
            as one in the data's units. Default none.
        standardised_metrics: names in ``final_metrics`` on a standardised target (e.g. the
            loss of a numeric output; kiln's MAE/RMSE/R² there are in data units). Default none.
        explanations: optional, the run's explanations.json (kiln/explain) as a dict: adds an
            "Explanations" section (rendered by kiln.explain.render). explanations_folder: where
            its pictures lie (the run folder).
        model_card: optional, the run's MODEL_CARD.md, relative to the report: linked from a
            "Model card" section.
        compression: a compressed run's ``compression.json`` (``kiln compress``): adds a
            "Compression" section with the measured table, the chosen variant, the layers kept
            fp32 and the lineage. Default None: no section, the page is as before.

    Raises:
        KilnValueError / KilnTypeError listing every problem found, e.g. an unknown task or
        y_true and y_pred of different lengths.

    Example:
        >>> ctx = ReportContext("Iris", "iris-1", "classification",
        ...                     history=[{"epoch": 1, "loss": 0.9, "val_loss": 1.0}],
        ...                     y_true=["a", "b"], y_pred=["a", "a"], class_names=["a", "b"])
    """

    title: str
    run_name: str
    task: str
    history: list[dict] = field(default_factory=list)
    final_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    y_true: Any = None
    y_pred: Any = None
    class_names: Sequence | None = None
    y_score: Any = None
    model_summary: str = ""
    data_summary: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    config_yaml: str = ""
    notes: list[str] = field(default_factory=list)
    standardised_curves: Sequence[str] = ()
    standardised_metrics: Sequence[str] = ()
    explanations: dict | None = None
    explanations_folder: str | None = None
    model_card: str | None = None
    compression: Mapping | None = None

    def __post_init__(self):
        problems = []
        if self.task not in TASKS:
            problems.append(f"`task` must be one of {', '.join(TASKS)}. "
                            f"Received: task={self.task!r}.")
        if not isinstance(self.history, Sequence) or not all(
                isinstance(r, Mapping) for r in self.history):
            problems.append("`history` must be a list of dicts, one per epoch "
                            "(e.g. [{'epoch': 1, 'loss': 0.5}]). "
                            f"Received: {type(self.history).__name__}.")
        if not isinstance(self.final_metrics, Mapping) or not all(
                isinstance(v, Mapping) for v in self.final_metrics.values()):
            problems.append("`final_metrics` must map split -> metric -> value, e.g. "
                            "{'test': {'loss': 0.2}}. Received: "
                            f"{type(self.final_metrics).__name__}.")
        if (self.y_true is None) != (self.y_pred is None):
            problems.append("`y_true` and `y_pred` go together: pass both or neither. Received: "
                            f"y_true={'None' if self.y_true is None else 'given'}, "
                            f"y_pred={'None' if self.y_pred is None else 'given'}.")
        elif self.y_true is not None and len(self.y_true) != len(self.y_pred):
            problems.append("`y_true` and `y_pred` must have one entry per example. Received: "
                            f"len(y_true)={len(self.y_true)}, len(y_pred)={len(self.y_pred)}.")
        if self.y_score is not None:
            rows = np.shape(self.y_score)[0] if np.ndim(self.y_score) else 0
            if self.y_true is None or rows != len(self.y_true):
                problems.append("`y_score` must have one row per example of y_true. Received: "
                                f"y_score shape {np.shape(self.y_score)}, "
                                f"y_true {'None' if self.y_true is None else len(self.y_true)}.")
            elif (self.class_names is not None and np.ndim(self.y_score) == 2
                  and np.shape(self.y_score)[1] != len(self.class_names)):
                problems.append("`y_score` must have one column per class of class_names. "
                                f"Received: {np.shape(self.y_score)[1]} columns, "
                                f"{len(self.class_names)} class names.")
        if self.compression is not None and not isinstance(self.compression, Mapping):
            problems.append("`compression` must be a dict (a run's compression.json) or None. Received: "
                            f"{type(self.compression).__name__}.")
        for name in ("data_summary", "environment"):
            if not isinstance(getattr(self, name), Mapping):
                problems.append(f"`{name}` must be a dict. Received: "
                                f"{type(getattr(self, name)).__name__}.")
        for name in ("standardised_curves", "standardised_metrics"):
            if isinstance(getattr(self, name), str):
                problems.append(f"`{name}` must be a list of metric names. Received: one str; "
                                "wrap it in a list.")
        if isinstance(self.notes, str):
            problems.append("`notes` must be a list of strings. Received: one str; "
                            "wrap it in a list.")
        if problems:
            error = KilnTypeError if all("must be a" in p for p in problems) else KilnValueError
            raise error("Invalid ReportContext:\n  - " + "\n  - ".join(problems))


