"""The numbers of a report: what report.html shows, computed without any HTML.

    analyse(ctx)  # -> the task's analysis dict (classification or regression), or None

Classification: confusion matrix, per-class precision / recall / F1 / support (scikit-learn's
definitions, in numpy), ROC curves and AUCs when scores are given. Regression: kiln's one
``regression_metrics`` (``kiln_edge.regression``: the function evaluation.json and
`kiln evaluate` use) per output and pooled, and the residuals the plots draw. Also the split a
report calls "the" evaluated one and the learning curves' series. ``kiln.reports.html`` turns
these into the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kiln.errors import KilnValueError
from kiln.reports.context import ReportContext
from kiln_edge.regression import regression_metrics

__all__ = ["analyse", "classification_analysis", "regression_analysis", "curve_series", "primary_split",
           "per_class_scores", "roc", "is_number"]

# At most this many ROC curves in one plot; beyond that the lines are unreadable (the table
# still lists every class's AUC).
MAX_ROC_CURVES = 10


def analyse(ctx: ReportContext) -> dict | None:
    """The task's per-prediction analysis, or None (no predictions given, or a multi-output task)."""
    if ctx.y_true is not None and ctx.task == "classification":
        return classification_analysis(ctx)
    if ctx.y_true is not None and ctx.task == "regression":
        return regression_analysis(ctx)
    return None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def primary_split(final_metrics: Mapping) -> str | None:
    for name in ("test", "validation", "val"):
        if final_metrics.get(name):
            return name
    return next((k for k, v in final_metrics.items() if v), None)



def curve_series(history: Sequence[Mapping]) -> tuple[list[float], dict[str, tuple]]:
    """epochs, and metric base name -> (train values or None, validation values or None)."""
    epochs = [float(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    bases: list[str] = []
    for record in history:
        for key, value in record.items():
            if key == "epoch" or not (is_number(value) or value is None):
                continue
            base = key[4:] if key.startswith("val_") else key
            if base not in bases:
                bases.append(base)

    def column(key):
        if not any(key in r for r in history):
            return None
        return [float(r[key]) if is_number(r.get(key)) else float("nan") for r in history]

    return epochs, {b: (column(b), column("val_" + b)) for b in bases}


# ----------------------------------------------------------------------------- classification

def _as_list(values: Any) -> list:
    """Labels as a list of Python objects; a 2-D (rows, classes) array becomes argmax indices."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    if not isinstance(values, np.ndarray):
        values = list(values)
        if not (values and isinstance(values[0], (list, np.ndarray))):
            return values  # plain labels, kept as they are (np.asarray would turn 1 into "1")
        values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] > 1:
        return np.argmax(values, axis=1).tolist()  # one-hot or probabilities -> index
    return values.reshape(len(values)).tolist()


def _resolve_labels(y_true, y_pred, class_names) -> tuple[np.ndarray, np.ndarray, list]:
    """Map labels to indices 0..C-1 and return (true_idx, pred_idx, class_names)."""
    true, pred = _as_list(y_true), _as_list(y_pred)
    found = list(dict.fromkeys(true + pred))
    if class_names is None:
        try:
            names = sorted(found)
        except TypeError:  # labels of mixed types: keep first-seen order
            names = found
    else:
        names = list(class_names)
    index = {name: i for i, name in enumerate(names)}
    if all(label in index for label in found):
        lookup = index.__getitem__
    elif all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) and 0 <= x < len(names)
             for x in found):
        lookup = int  # integer indices into class_names
    else:
        missing = [x for x in found if x not in index][:5]
        raise KilnValueError(
            "`y_true`/`y_pred` hold labels that are not in `class_names`: "
            f"{missing}. Expected class names from {names[:10]} or integer indices "
            f"0..{len(names) - 1}. Pass class_names listing every class.")
    return (np.array([lookup(x) for x in true], dtype=np.int64),
            np.array([lookup(x) for x in pred], dtype=np.int64), names)


def per_class_scores(counts: np.ndarray) -> tuple:
    """precision, recall, F1, support per class from a confusion matrix (rows: true).

    The definitions of ``sklearn.metrics.precision_recall_fscore_support(...,
    zero_division=0)`` (the tests check equality), in numpy: importing scikit-learn costs
    about a second, half the report's time budget.
    """
    counts = counts.astype(float)
    tp = np.diag(counts)
    predicted = counts.sum(axis=0)  # tp + fp
    support = counts.sum(axis=1)  # tp + fn
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = predicted + support  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support.astype(np.int64)


def roc(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, AUC) of one class vs the rest; sklearn's ``roc_curve`` + ``auc`` in numpy."""
    order = np.argsort(-score, kind="mergesort")
    score, positive = score[order], positive[order]
    # One point per distinct score: tied examples move the curve together.
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(positive)[last_of_tie]
    fps = last_of_tie + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
    return fpr, tpr, area


def classification_analysis(ctx: ReportContext) -> dict:
    true, pred, names = _resolve_labels(ctx.y_true, ctx.y_pred, ctx.class_names)
    n_classes = len(names)
    counts = np.bincount(true * n_classes + pred, minlength=n_classes ** 2)
    counts = counts.reshape(n_classes, n_classes)  # (true, predicted)
    precision, recall, f1, support = per_class_scores(counts)
    total = max(int(support.sum()), 1)
    macro = (precision.mean(), recall.mean(), f1.mean(), None)
    weighted = (precision @ support / total, recall @ support / total, f1 @ support / total, None)
    aucs, curves = None, []
    if ctx.y_score is not None:
        score = np.asarray(ctx.y_score.detach().cpu() if hasattr(ctx.y_score, "detach")
                           else ctx.y_score, dtype=float)
        if score.ndim == 1 and n_classes == 2:
            score = np.stack([1.0 - score, score], axis=1)  # positive-class probability
        if score.ndim == 2 and score.shape[1] == n_classes:
            aucs = []
            for k in range(n_classes):
                positive = true == k
                if positive.all() or not positive.any():
                    aucs.append(float("nan"))  # AUC is undefined with one class only
                    continue
                fpr, tpr, area = roc(positive, score[:, k])
                aucs.append(area)
                # A binary task's two curves mirror each other: draw the positive class only.
                if (n_classes > 2 or k == 1) and len(curves) < MAX_ROC_CURVES:
                    if len(fpr) > 500:  # enough points for the eye, a small SVG
                        keep = np.unique(np.linspace(0, len(fpr) - 1, 500).astype(int))
                        fpr, tpr = fpr[keep], tpr[keep]
                    curves.append((str(names[k]), fpr, tpr, area))
    split = primary_split(ctx.final_metrics) or "evaluated split"
    return {"names": names, "counts": counts, "per_class": (precision, recall, f1, support),
            "macro": macro, "weighted": weighted, "aucs": aucs, "curves": curves,
            "accuracy": float(np.trace(counts) / total),
            "split_label": split, "n": int(len(true))}


# ----------------------------------------------------------------------------- regression

def _as_float_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    return array.reshape(len(array), -1)  # (rows, outputs)


def regression_analysis(ctx: ReportContext) -> dict:
    true, pred = _as_float_array(ctx.y_true), _as_float_array(ctx.y_pred)
    if true.shape != pred.shape:
        raise KilnValueError("`y_true` and `y_pred` must have the same shape for regression. "
                             f"Received: {true.shape} and {pred.shape}.")
    # A diverged model can predict NaN/inf: those rows are left out (and counted) rather than
    # failing the whole report.
    finite = np.isfinite(true).all(axis=1) & np.isfinite(pred).all(axis=1)
    dropped = int((~finite).sum())
    true, pred = true[finite], pred[finite]
    if len(true) == 0:
        raise KilnValueError("`y_true`/`y_pred` hold no finite values: nothing to analyse. "
                             "Received only NaN or infinite predictions or targets.")
    rows = []
    if true.shape[1] > 1:
        rows = [(f"output {k}", regression_metrics(true[:, k], pred[:, k]))
                for k in range(true.shape[1])]
    rows.append(("all outputs" if rows else "all", regression_metrics(true.ravel(), pred.ravel())))
    return {"true": true.ravel(), "pred": pred.ravel(), "rows": rows,
            "outputs": true.shape[1], "n": len(true), "dropped": dropped,
            "split_label": primary_split(ctx.final_metrics) or "evaluated split"}


