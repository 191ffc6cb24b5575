"""report.html: one self-contained page that shows how a run went.

``write_report(path, ReportContext(...))`` renders the page; ``render_report`` returns the
HTML text. The page has, top to bottom: a header with the headline metrics as cards, notes,
learning curves (one plot per metric, train vs validation), the final metrics per split,
the task's prediction analysis (classification: confusion matrix, per-class precision /
recall / F1 / support, ROC curves when scores are given; regression: predicted vs true,
residuals, MAE / RMSE / R²), the model summary, the data summary, the environment and the
resolved config.

Self-contained means: inline CSS, plots as inline SVG, no scripts, no fonts, no links to
anything outside the file, so it opens offline, attaches to an email and archives as is.
Every piece of user text (names, labels, config) is HTML-escaped.

Plots need matplotlib; without it the report is still written, with tables only and a note
saying what to install.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["ReportContext", "write_report", "render_report"]

TASKS = ("classification", "regression", "multi")
# At most this many ROC curves in one plot; beyond that the lines are unreadable (the table
# still lists every class's AUC).
MAX_ROC_CURVES = 10


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
        for name in ("data_summary", "environment"):
            if not isinstance(getattr(self, name), Mapping):
                problems.append(f"`{name}` must be a dict. Received: "
                                f"{type(getattr(self, name)).__name__}.")
        if isinstance(self.notes, str):
            problems.append("`notes` must be a list of strings. Received: one str; "
                            "wrap it in a list.")
        if problems:
            error = KilnTypeError if all("must be a" in p for p in problems) else KilnValueError
            raise error("Invalid ReportContext:\n  - " + "\n  - ".join(problems))


def write_report(path: str | os.PathLike, context: ReportContext) -> Path:
    """Write ``context`` as one self-contained HTML file and return its path.

    Args:
        path: the file to write (parents are created); an existing folder gets
            ``report.html`` inside it.
        context: the run to show.

    The file is written to a temporary name and moved into place, so a reader never sees
    half a report.

    Example:
        >>> write_report("runs/iris-1/report.html", ctx)  # doctest: +SKIP
        PosixPath('runs/iris-1/report.html')
    """
    if not isinstance(context, ReportContext):
        raise KilnTypeError("`context` must be a kiln.reports.ReportContext. "
                            f"Received: {type(context).__name__}.")
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(context)
    # open() (unlike mkstemp's 0600) gives the file the permissions the user's umask says.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def render_report(context: ReportContext) -> str:
    """Return the report's HTML text (what ``write_report`` writes)."""
    try:
        from kiln.reports import plots
    except ImportError as error:  # matplotlib missing: tables only
        if not (error.name or "").startswith("matplotlib"):
            raise
        plots = None
    ctx = context
    analysis = None
    if ctx.y_true is not None and ctx.task == "classification":
        analysis = _classification_analysis(ctx)
    elif ctx.y_true is not None and ctx.task == "regression":
        analysis = _regression_analysis(ctx)

    sections = [
        ("curves", "Learning curves", _curves_section(ctx.history, plots)),
        ("metrics", "Final metrics", _metrics_section(ctx.final_metrics)),
    ]
    if analysis is not None and ctx.task == "classification":
        sections.append(("classification", "Classification",
                         _classification_section(analysis, plots)))
    elif analysis is not None:
        sections.append(("regression", "Regression", _regression_section(analysis, plots)))
    sections += [
        ("model", "Model", _model_section(ctx.model_summary)),
        ("data", "Data", _data_section(ctx.data_summary)),
        ("environment", "Environment", _kv_table(ctx.environment, "environment-table")),
        ("config", "Config", _config_section(ctx.config_yaml)),
    ]
    notes = list(ctx.notes)
    if plots is None:
        notes.insert(0, "Plots need matplotlib, which is not installed: pip install matplotlib")

    from kiln import __version__
    title = _e(ctx.title or ctx.run_name or "kiln run")
    nav = " ".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{_e(name)}</h2>\n{content}\n</section>'
        for sid, name, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kiln {_e(__version__)}">
<title>{title} — kiln report</title>
<style>{_CSS}</style>
</head>
<body>
<main>
{_header(ctx, analysis)}
<nav>{nav}</nav>
{_notes(notes)}
{body}
<footer>Written by kiln {_e(__version__)} · one self-contained file, works offline</footer>
</main>
</body>
</html>
"""


# ----------------------------------------------------------------------------- formatting

def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _fmt(value: object) -> str:
    """A number as a person reads it: 4 decimals, thousands separated, '—' for missing."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "—" if math.isnan(v) else str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4f}"
    return str(value)


def _num_td(value: object, extra: str = "") -> str:
    # The full value rides along as a tooltip: the cell shows 4 decimals, a hover shows all.
    tip = f' title="{_e(repr(float(value)))}"' if isinstance(value, (float, np.floating)) else ""
    return f'<td class="num"{tip}{extra}>{_e(_fmt(value))}</td>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str = "",
           foot: Sequence[Sequence[str]] = (), numeric_from: int = 1) -> str:
    """An HTML table; ``rows`` hold ready-made ``<td>`` strings."""
    ths = "".join(f'<th{" class=num" if i >= numeric_from else ""}>{_e(h)}</th>'
                  for i, h in enumerate(head))
    body = "\n".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    tfoot = "".join(f"<tr>{''.join(r)}</tr>" for r in foot)
    tfoot = f"<tfoot>{tfoot}</tfoot>" if foot else ""
    ident = f' id="{table_id}"' if table_id else ""
    return (f'<div class="table-wrap"><table{ident}><thead><tr>{ths}</tr></thead>'
            f"<tbody>\n{body}\n</tbody>{tfoot}</table></div>")


def _kv_table(mapping: Mapping, table_id: str) -> str:
    if not mapping:
        return '<p class="muted">Not recorded.</p>'
    rows = [[f"<th>{_e(k)}</th>", f"<td>{_e(_plain(k, v))}</td>"] for k, v in mapping.items()]
    return (f'<div class="table-wrap"><table id="{table_id}" class="kv"><tbody>'
            + "".join(f"<tr>{''.join(r)}</tr>" for r in rows) + "</tbody></table></div>")


def _plain(key: object, value: object) -> str:
    """A value of a key/value table as recorded: a seed is 1234, not "1,234"."""
    if isinstance(value, (float, np.floating)) and "time" in str(key).lower():
        return f"{_duration(value)} ({float(value):.6g} s)" if value >= 60 else _duration(value)
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def _figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure class="plot">{svg}{cap}</figure>'


def _no_plots() -> str:
    return '<p class="muted">Plot omitted: matplotlib is not installed.</p>'


# ----------------------------------------------------------------------------- header

def _primary_split(final_metrics: Mapping) -> str | None:
    for name in ("test", "validation", "val"):
        if final_metrics.get(name):
            return name
    return next((k for k, v in final_metrics.items() if v), None)


def _header(ctx: ReportContext, analysis: dict | None) -> str:
    cards = []
    split = _primary_split(ctx.final_metrics)
    if split is not None:
        metrics = dict(ctx.final_metrics[split])
        # Quality metrics first, the loss last: "accuracy 0.93" says more at a glance.
        ordered = [k for k in metrics if "loss" not in k] + [k for k in metrics if "loss" in k]
        for key in ordered[:6]:
            cards.append((key, metrics[key], split))
    shown = {c[0] for c in cards}
    if analysis is not None and ctx.task == "classification":
        if "accuracy" not in shown:
            cards.append(("accuracy", analysis["accuracy"], analysis["split_label"]))
        cards.append(("macro F1", analysis["macro"][2], analysis["split_label"]))
    elif analysis is not None:
        overall = analysis["rows"][-1][1]
        for key in ("R²", "RMSE", "MAE"):
            if key.lower().replace("²", "2") not in {s.lower() for s in shown}:
                cards.append((key, overall[key], analysis["split_label"]))
    if ctx.history:
        cards.append(("epochs", len(ctx.history), "trained"))
    wall = next((ctx.environment[k] for k in ("wall_time", "wall time", "wall_time_s")
                 if k in ctx.environment), None)
    if wall is not None:
        cards.append(("wall time", _duration(wall) if _is_number(wall) else wall, "total"))
    card_html = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(_fmt(value))}</div><div class="sub">{_e(sub)}</div></div>'
        for label, value, sub in cards)
    started = ctx.environment.get("started_at") or ctx.environment.get("started at")
    meta = [f'<span class="pill">{_e(ctx.task)}</span>', f"<code>{_e(ctx.run_name)}</code>"]
    if started:
        meta.append(f"<span>started {_e(started)}</span>")
    return (f'<header class="hero"><h1>{_e(ctx.title or ctx.run_name)}</h1>'
            f'<div class="meta">{" ".join(meta)}</div>'
            f'<div class="cards" id="headline">{card_html}</div></header>')


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<aside class="notes" id="notes"><strong>Notes</strong><ul>{items}</ul></aside>'


# ----------------------------------------------------------------------------- curves + metrics

def _curve_series(history: Sequence[Mapping]) -> tuple[list[float], dict[str, tuple]]:
    """epochs, and metric base name -> (train values or None, validation values or None)."""
    epochs = [float(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    bases: list[str] = []
    for record in history:
        for key, value in record.items():
            if key == "epoch" or not (_is_number(value) or value is None):
                continue
            base = key[4:] if key.startswith("val_") else key
            if base not in bases:
                bases.append(base)

    def column(key):
        if not any(key in r for r in history):
            return None
        return [float(r[key]) if _is_number(r.get(key)) else float("nan") for r in history]

    return epochs, {b: (column(b), column("val_" + b)) for b in bases}


def _curves_section(history: Sequence[Mapping], plots) -> str:
    if not history:
        return '<p class="muted">No training history recorded.</p>'
    epochs, series = _curve_series(history)
    if plots is None:
        figures = _no_plots()
    else:
        figures = "".join(
            _figure(plots.learning_curve_svg(base, epochs, train, val,
                                             log_scale=base in ("lr", "learning_rate")))
            for base, (train, val) in series.items())
    keys = ["epoch"] + [k for b in series for k in (b, "val_" + b)
                        if any(k in r for r in history)]
    rows = [[_num_td(r.get(k)) for k in keys] for r in history]
    table = _table(keys, rows, "history-table", numeric_from=0)
    return (f'<div class="grid2">{figures}</div>'
            f"<details><summary>Per-epoch values ({len(history)} epochs)</summary>{table}"
            "</details>")


def _metrics_section(final_metrics: Mapping) -> str:
    splits = [s for s, m in final_metrics.items() if m]
    if not splits:
        return '<p class="muted">No final metrics recorded.</p>'
    names: list[str] = []
    for split in splits:
        names += [k for k in final_metrics[split] if k not in names]
    rows = [[f"<th>{_e(name)}</th>"] + [_num_td(final_metrics[s].get(name)) for s in splits]
            for name in names]
    return _table(["metric"] + splits, rows, "metrics-table")


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


def _per_class_scores(counts: np.ndarray) -> tuple:
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


def _roc(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
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


def _classification_analysis(ctx: ReportContext) -> dict:
    true, pred, names = _resolve_labels(ctx.y_true, ctx.y_pred, ctx.class_names)
    n_classes = len(names)
    counts = np.bincount(true * n_classes + pred, minlength=n_classes ** 2)
    counts = counts.reshape(n_classes, n_classes)  # (true, predicted)
    precision, recall, f1, support = _per_class_scores(counts)
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
                fpr, tpr, area = _roc(positive, score[:, k])
                aucs.append(area)
                # A binary task's two curves mirror each other: draw the positive class only.
                if (n_classes > 2 or k == 1) and len(curves) < MAX_ROC_CURVES:
                    if len(fpr) > 500:  # enough points for the eye, a small SVG
                        keep = np.unique(np.linspace(0, len(fpr) - 1, 500).astype(int))
                        fpr, tpr = fpr[keep], tpr[keep]
                    curves.append((str(names[k]), fpr, tpr, area))
    split = _primary_split(ctx.final_metrics) or "evaluated split"
    return {"names": names, "counts": counts, "per_class": (precision, recall, f1, support),
            "macro": macro, "weighted": weighted, "aucs": aucs, "curves": curves,
            "accuracy": float(np.trace(counts) / total),
            "split_label": split, "n": int(len(true))}


def _bar_cell(value: float) -> str:
    # A faint bar behind the number: weak classes stand out when scanning the column.
    pct = max(0.0, min(1.0, float(value))) * 100
    style = (f' style="background:linear-gradient(90deg,var(--bar) {pct:.1f}%,'
             f'transparent {pct:.1f}%)"')
    return _num_td(value, style)


def _classification_section(a: dict, plots) -> str:
    names, counts = a["names"], a["counts"]
    precision, recall, f1, support = a["per_class"]
    has_auc = a["aucs"] is not None
    head = ["class", "precision", "recall", "F1", "support"] + (["ROC AUC"] if has_auc else [])
    rows = []
    for k, name in enumerate(names):
        row = [f"<th>{_e(name)}</th>", _bar_cell(precision[k]), _bar_cell(recall[k]),
               _bar_cell(f1[k]), _num_td(int(support[k]))]
        if has_auc:
            row.append(_num_td(a["aucs"][k]))
        rows.append(row)
    total = int(support.sum())
    macro_auc = float(np.nanmean(a["aucs"])) if has_auc and np.isfinite(a["aucs"]).any() else None
    foot = []
    for label, (p, r, f, _) in (("macro avg", a["macro"]), ("weighted avg", a["weighted"])):
        row = [f"<th>{label}</th>", _num_td(p), _num_td(r), _num_td(f), _num_td(total)]
        if has_auc:
            row.append(_num_td(macro_auc if label == "macro avg" else None))
        foot.append(row)
    foot.append(["<th>accuracy</th>", "<td></td>", "<td></td>", _num_td(a["accuracy"]),
                 _num_td(total)] + (["<td></td>"] if has_auc else []))
    per_class = _table(head, rows, "per-class-table", foot=foot)

    cm_rows = [[f"<th>{_e(names[i])}</th>"] + [_num_td(int(c)) for c in counts[i]]
               for i in range(len(names))]
    cm_table = _table(["true \\ predicted"] + [str(n) for n in names], cm_rows, "confusion-table")
    if plots is None:
        cm_plot, roc = _no_plots(), ""
    else:
        cm_plot = _figure(plots.confusion_matrix_svg(counts, names),
                          "Rows: true class; columns: predicted class. Colour: share of the "
                          "true class; numbers: counts.")
        roc = _figure(plots.roc_curves_svg(a["curves"])) if a["curves"] else ""
    caption = (f'<p class="muted">{a["n"]:,} examples of the {_e(a["split_label"])} split, '
               f"{len(names)} classes.</p>")
    return (f"{caption}<h3>Confusion matrix</h3>{cm_plot}"
            f"<details><summary>Confusion matrix as a table</summary>{cm_table}</details>"
            f"<h3>Per-class metrics</h3>{per_class}"
            + (f"<h3>ROC curves</h3>{roc}" if roc else ""))


# ----------------------------------------------------------------------------- regression

def _regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    residual = true - pred
    total = float(np.sum((true - true.mean()) ** 2))
    return {
        "MAE": float(np.mean(np.abs(residual))),
        "RMSE": float(np.sqrt(np.mean(residual ** 2))),
        # R² is undefined for a constant target: shown as "—" rather than a made-up number.
        "R²": 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else float("nan"),
        "median AE": float(np.median(np.abs(residual))),
        "max error": float(np.max(np.abs(residual))),
        "mean residual": float(np.mean(residual)),
    }


def _as_float_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    return array.reshape(len(array), -1)  # (rows, outputs)


def _regression_analysis(ctx: ReportContext) -> dict:
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
        rows = [(f"output {k}", _regression_metrics(true[:, k], pred[:, k]))
                for k in range(true.shape[1])]
    rows.append(("all outputs" if rows else "all", _regression_metrics(true.ravel(), pred.ravel())))
    return {"true": true.ravel(), "pred": pred.ravel(), "rows": rows,
            "outputs": true.shape[1], "n": len(true), "dropped": dropped,
            "split_label": _primary_split(ctx.final_metrics) or "evaluated split"}


def _regression_section(a: dict, plots) -> str:
    names = list(a["rows"][0][1])
    rows = [[f"<th>{_e(label)}</th>"] + [_num_td(m[k]) for k in names] for label, m in a["rows"]]
    table = _table([""] + names, rows, "regression-table")
    if plots is None:
        figures = _no_plots()
    else:
        residual = a["true"] - a["pred"]
        figures = (f'<div class="grid3">'
                   f'{_figure(plots.predicted_vs_true_svg(a["true"], a["pred"]))}'
                   f'{_figure(plots.residuals_svg(a["pred"], residual))}'
                   f'{_figure(plots.residual_histogram_svg(residual))}</div>')
    pooled = " (outputs pooled in the plots)" if a["outputs"] > 1 else ""
    dropped = (f' <strong>{a["dropped"]:,} rows with NaN or infinite values left out.</strong>'
               if a["dropped"] else "")
    caption = (f'<p class="muted">{a["n"]:,} examples of the {_e(a["split_label"])} split'
               f"{pooled}. Residual = true − predicted.{dropped}</p>")
    return f"{caption}{table}{figures}"


# ----------------------------------------------------------------------------- model, data, config

def _model_section(summary: str) -> str:
    if not summary:
        return '<p class="muted">No model summary recorded.</p>'
    return f'<pre class="mono terminal" id="model-summary">{_e(summary)}</pre>'


def _data_section(data: Mapping) -> str:
    if not data:
        return '<p class="muted">No data summary recorded.</p>'
    parts = []
    rows = data.get("rows")
    if isinstance(rows, Mapping) and rows:
        total = sum(v for v in rows.values() if _is_number(v))
        cells = [[f"<th>{_e(split)}</th>", _num_td(n),
                  _num_td(f"{100 * n / total:.1f}%" if total and _is_number(n) else "—")]
                 for split, n in rows.items()]
        foot = [["<th>total</th>", _num_td(total), _num_td("100%")]]
        parts.append("<h3>Rows per split</h3>"
                     + _table(["split", "rows", "share"], cells, "rows-table", foot=foot))
    features = data.get("features")
    if (isinstance(features, Sequence) and features
            and all(isinstance(f, Mapping) for f in features)):
        keys = ["feature", "type"]
        for f in features:
            keys += [k for k in f if k not in keys]
        cells = [[f"<th>{_e(f.get('feature', ''))}</th>", f"<td>{_e(f.get('type', ''))}</td>"]
                 + [_num_td(f.get(k)) if _is_number(f.get(k)) or f.get(k) is None
                    else f"<td>{_e(f.get(k))}</td>" for k in keys[2:]]
                 for f in features]
        parts.append("<h3>Features</h3>" + _table(keys, cells, "features-table", numeric_from=2))
    balance = data.get("class_balance")
    if isinstance(balance, Mapping) and balance:
        parts.append("<h3>Class balance</h3>" + _class_balance(balance))
    rest = {k: v for k, v in data.items() if k not in ("rows", "features", "class_balance")}
    if rest:
        parts.append("<h3>Other</h3>" + _kv_table(rest, "data-other-table"))
    return "".join(parts)


def _class_balance(balance: Mapping) -> str:
    """A table of horizontal bars: one row per class, one column per split (share of split)."""
    splits = list(balance)
    classes: list = []
    for split in splits:
        classes += [c for c in balance[split] if c not in classes]
    totals = {s: sum(balance[s].values()) or 1 for s in splits}
    # Bars are scaled so the largest share in the table fills its bar: with 10 classes every
    # share is ~10%, and bars of 10% width would all look alike.
    widest = max((100 * n / totals[s] for s in splits for n in balance[s].values()), default=1)
    widest = widest or 1
    rows = []
    for c in classes:
        row = [f"<th>{_e(c)}</th>"]
        for s in splits:
            n = balance[s].get(c, 0)
            pct = 100 * n / totals[s]
            row.append(f'<td class="bar-cell" title="{_e(c)} in {_e(s)}: {_e(n)} of {totals[s]}">'
                       f'<div class="hbar"><span style="width:{100 * pct / widest:.1f}%"></span>'
                       f'</div><span class="num">{_e(_fmt(n))}</span>'
                       f'<span class="muted"> · {pct:.1f}%</span></td>')
        rows.append(row)
    return _table(["class"] + splits, rows, "class-balance-table", numeric_from=len(splits) + 1)


def _config_section(config_yaml: str) -> str:
    if not config_yaml:
        return '<p class="muted">No config recorded.</p>'
    lines = len(config_yaml.splitlines())
    return (f"<details><summary>Resolved config ({lines} lines of YAML)</summary>"
            f'<pre class="mono" id="config-yaml">{_e(config_yaml)}</pre></details>')


# ----------------------------------------------------------------------------- style

_CSS = """
:root {
  --fg: #1f2937; --muted: #6b7280; --bg: #f3f4f6; --card: #ffffff; --line: #e5e7eb;
  --zebra: #f9fafb; --accent: #2563eb; --bar: rgba(37, 99, 235, 0.14);
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
        "Noto Sans", "Liberation Sans", "DejaVu Sans", sans-serif;
}
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0 0 14px; }
h3 { font-size: 15px; margin: 22px 0 10px; color: #374151; }
code, .mono {
  font-family: ui-monospace, "SFMono-Regular", "Cascadia Mono", Menlo, Consolas,
               "DejaVu Sans Mono", "Liberation Mono", monospace;
}
.hero {
  background: linear-gradient(135deg, #1e3a8a 0%, #2563eb 70%, #3b82f6 100%);
  color: #fff; border-radius: 14px; padding: 26px 28px 22px;
  box-shadow: 0 4px 14px rgba(30, 58, 138, 0.25);
}
.hero .meta { display: flex; flex-wrap: wrap; gap: 10px; align-items: center;
              color: #dbeafe; font-size: 13px; }
.hero .meta code { background: rgba(255,255,255,0.14); padding: 1px 8px; border-radius: 6px; }
.pill { background: #fff; color: #1e3a8a; font-weight: 600; border-radius: 999px;
        padding: 1px 10px; font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
         gap: 12px; margin-top: 18px; }
.card { background: var(--card); color: var(--fg); border-radius: 10px; padding: 10px 14px;
        box-shadow: 0 1px 3px rgba(0,0,0,0.12); }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
               letter-spacing: 0.04em; overflow: hidden; text-overflow: ellipsis;
               white-space: nowrap; }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums;
               overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.card .sub { font-size: 12px; color: var(--muted); }
nav { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 16px 4px 0; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.notes { background: #fffbeb; border: 1px solid #fde68a; border-radius: 10px;
         padding: 10px 16px; margin-top: 16px; }
.notes ul { margin: 4px 0 0; padding-left: 20px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 14px;
          padding: 20px 24px; margin-top: 18px; }
.muted { color: var(--muted); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px;
        min-width: 40%; }
th, td { padding: 6px 12px; text-align: left; border-bottom: 1px solid var(--line);
         white-space: nowrap; }
thead th { background: #f3f4f6; color: #374151; font-weight: 600;
           border-bottom: 2px solid #d1d5db; }
tbody th { font-weight: 500; }
tbody tr:nth-child(even) { background: var(--zebra); }
tbody tr:hover { background: #eef2ff; }
tfoot th, tfoot td { font-weight: 600; border-top: 2px solid #d1d5db; }
.num { text-align: right; }
table.kv th { color: var(--muted); font-weight: 500; width: 1%; }
table.kv td { white-space: normal; word-break: break-word; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
.grid3 { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr));
         gap: 12px; margin-top: 16px; }
figure.plot { margin: 0; text-align: center; }
figure.plot figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
svg.plot { display: inline-block; overflow: visible; }
details { margin-top: 12px; }
details > summary { cursor: pointer; color: var(--accent); font-size: 13px;
                    margin-bottom: 8px; }
pre.mono { font-size: 12.5px; line-height: 1.3; padding: 14px 16px; border-radius: 10px;
           overflow-x: auto; margin: 0; background: #f8fafc; border: 1px solid var(--line); }
/* Box-drawing glyphs are ~1.16 em tall: a line height below that joins the table's
   vertical lines into one unbroken stroke. */
pre.terminal { background: #0f172a; color: #e2e8f0; border: none; line-height: 1.15; }
.bar-cell { min-width: 180px; }
.hbar { display: inline-block; width: 110px; height: 10px; background: #e5e7eb;
        border-radius: 5px; overflow: hidden; vertical-align: middle; margin-right: 8px; }
.hbar span { display: block; height: 100%; background: var(--accent); border-radius: 5px; }
footer { text-align: center; color: var(--muted); font-size: 12px; margin-top: 28px; }
@media print {
  body { background: #fff; }
  section, .hero { break-inside: avoid; box-shadow: none; }
  details { display: block; }
}
"""
