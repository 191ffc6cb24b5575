"""report.html's page: ``render_report(ctx)`` -> one self-contained HTML text.

The page has, top to bottom: a header with the headline metrics as cards, notes, learning
curves (one plot per metric, train vs validation), the final metrics per split, the task's
prediction analysis (``kiln.reports.analysis``: confusion matrix, per-class metrics and ROC
curves; or predicted vs true, residuals and MAE / RMSE / R²), the model summary, the data
summary, the environment and the resolved config. Metrics on a standardised target
(``ReportContext.standardised_curves`` / ``standardised_metrics``) are labelled so.

Self-contained means: inline CSS, plots as inline SVG, no scripts, no fonts, no links to
anything outside the file. Every piece of user text (names, labels, config) is HTML-escaped.
Plots need matplotlib; without it the page has tables only and a note saying what to install.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np

from kiln.reports.analysis import analyse, curve_series, is_number, primary_split
from kiln.reports.context import ReportContext
from kiln_edge.regression import REPORT_LABELS

__all__ = ["render_report"]

STANDARDISED = " (standardised)"  # appended to the name of a metric on a standardised target


def render_report(context: ReportContext) -> str:
    """Return the report's HTML text (what ``write_report`` writes)."""
    try:
        from kiln.reports import plots
    except ImportError as error:  # matplotlib missing: tables only
        if not (error.name or "").startswith("matplotlib"):
            raise
        plots = None
    ctx = context
    analysis = analyse(ctx)

    sections = [
        ("curves", "Learning curves", _curves_section(ctx.history, plots, ctx.standardised_curves)),
        ("metrics", "Final metrics", _metrics_section(ctx.final_metrics, ctx.standardised_metrics)),
    ]
    if analysis is not None and ctx.task == "classification":
        sections.append(("classification", "Classification",
                         _classification_section(analysis, plots)))
    elif analysis is not None:
        sections.append(("regression", "Regression", _regression_section(analysis, plots)))
    if ctx.compression is not None:
        sections.append(("compression", "Compression", _compression_section(ctx.compression)))
    sections += [
        ("model", "Model", _model_section(ctx.model_summary)),
        ("data", "Data", _data_section(ctx.data_summary)),
        ("environment", "Environment", _kv_table(ctx.environment, "environment-table")),
        ("config", "Config", _config_section(ctx.config_yaml)),
    ]
    if ctx.explanations is not None:  # the explain hook: its HTML lives with the explanations (kiln/explain)
        from kiln.explain.render import report_section
        sections.insert(-4, ("explanations", "Explanations",
                             report_section(ctx.explanations, ctx.explanations_folder)))
    if ctx.model_card is not None:  # the card hook: MODEL_CARD.md sits beside the report (reports/card.py)
        sections.insert(-4, ("card", "Model card", f'<p><a href="{_e(ctx.model_card)}">{_e(ctx.model_card)}</a>: '
                             f"model details, intended use, metrics with 95% intervals, data, caveats.</p>"))
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

def _header(ctx: ReportContext, analysis: dict | None) -> str:
    cards = []
    split = primary_split(ctx.final_metrics)
    if split is not None:
        metrics = dict(ctx.final_metrics[split])
        # Quality metrics first, the loss last: "accuracy 0.93" says more at a glance.
        ordered = [k for k in metrics if "loss" not in k] + [k for k in metrics if "loss" in k]
        for key in ordered[:6]:
            cards.append((key, metrics[key], split))
    shown = {c[0] for c in cards}
    cards = [(_label(key, ctx.standardised_metrics), value, sub) for key, value, sub in cards]
    if analysis is not None and ctx.task == "classification":
        if "accuracy" not in shown:
            cards.append(("accuracy", analysis["accuracy"], analysis["split_label"]))
        cards.append(("macro F1", analysis["macro"][2], analysis["split_label"]))
    elif analysis is not None:
        overall = analysis["rows"][-1][1]
        for key in ("r2", "rmse", "mae"):
            if key not in {s.lower() for s in shown}:
                cards.append((REPORT_LABELS[key], overall[key], analysis["split_label"]))
    if ctx.history:
        cards.append(("epochs", len(ctx.history), "trained"))
    wall = next((ctx.environment[k] for k in ("wall_time", "wall time", "wall_time_s")
                 if k in ctx.environment), None)
    if wall is not None:
        cards.append(("wall time", _duration(wall) if is_number(wall) else wall, "total"))
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


def _label(name: str, standardised: Sequence[str]) -> str:
    """A metric's name as shown: marked when its value is on a standardised target."""
    base = name[4:] if name.startswith("val_") else name
    return name + STANDARDISED if base in standardised else name


def _curves_section(history: Sequence[Mapping], plots, standardised: Sequence[str] = ()) -> str:
    if not history:
        return '<p class="muted">No training history recorded.</p>'
    epochs, series = curve_series(history)
    if plots is None:
        figures = _no_plots()
    else:
        figures = "".join(
            _figure(plots.learning_curve_svg(_label(base, standardised), epochs, train, val,
                                             log_scale=base in ("lr", "learning_rate")))
            for base, (train, val) in series.items())
    keys = ["epoch"] + [k for b in series for k in (b, "val_" + b)
                        if any(k in r for r in history)]
    rows = [[_num_td(r.get(k)) for k in keys] for r in history]
    table = _table([_label(k, standardised) for k in keys], rows, "history-table", numeric_from=0)
    marked = [b for b in series if b in standardised]
    note = (f'<p class="muted" id="standardised-note">{_e(", ".join(marked))}: on the standardised '
            "target ((value − mean) ÷ std of the training split), the scale the model trains on; "
            "multiply an error by that std for the data's units.</p>" if marked else "")
    return (f'{note}<div class="grid2">{figures}</div>'
            f"<details><summary>Per-epoch values ({len(history)} epochs)</summary>{table}"
            "</details>")


def _metrics_section(final_metrics: Mapping, standardised: Sequence[str] = ()) -> str:
    splits = [s for s, m in final_metrics.items() if m]
    if not splits:
        return '<p class="muted">No final metrics recorded.</p>'
    names: list[str] = []
    for split in splits:
        names += [k for k in final_metrics[split] if k not in names]
    rows = [[f"<th>{_e(_label(name, standardised))}</th>"]
            + [_num_td(final_metrics[s].get(name)) for s in splits] for name in names]
    return _table(["metric"] + splits, rows, "metrics-table")


# ----------------------------------------------------------------------------- classification

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

def _regression_section(a: dict, plots) -> str:
    names = list(a["rows"][0][1])
    rows = [[f"<th>{_e(label)}</th>"] + [_num_td(m[k]) for k in names] for label, m in a["rows"]]
    table = _table([""] + [REPORT_LABELS[k] for k in names], rows, "regression-table")
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

def _compression_section(record: Mapping) -> str:
    """What ``kiln compress`` did: lineage, recipe, the chosen variant, the measured table and
    which layers stayed fp32 (and why), read from the run's compression.json."""
    quantization = record.get("quantization") or {}
    lineage = {"source run": record.get("source_run"), "source model sha256": record.get("source_model_sha256"),
               "created": record.get("created"), "chosen": record.get("chosen"),
               "metric": record.get("metric"), "budget": record.get("budget"), "test rows": record.get("test_rows")}
    recipe = {k: v for k, v in (record.get("recipe") or {}).items() if v not in (None, False)}
    if quantization:
        recipe["scheme"] = quantization.get("scheme")
    parts = [_kv_table({k: v for k, v in lineage.items() if v is not None}, "compression-lineage"),
             "<h3>Recipe</h3>", _kv_table(recipe, "compression-recipe")]
    table = record.get("table") or []
    if table:
        columns = list(dict.fromkeys(k for row in table for k in row if k != "variant"))
        rows = [[f"<td>{_e(row.get('variant'))}{' (chosen)' if row.get('variant') == record.get('chosen') else ''}"
                 f"</td>"] + [_num_td(row.get(c)) for c in columns] for row in table]
        machine = record.get("machine") or {}
        parts += ["<h3>Measured</h3>", _table(["variant", *columns], rows, "compression-table"),
                  f'<p class="muted">Measured in one process on {_e(machine.get("processor") or "this machine")} '
                  f'with {_e(machine.get("threads", "?"))} threads; latency depends on the machine and its load.</p>']
    if quantization:
        layers = ", ".join(quantization.get("layers") or []) or "none"
        parts += ["<h3>Quantized layers</h3>", f"<p>{_e(layers)}</p>", "<h3>Layers kept fp32</h3>",
                  _kv_table(quantization["fp32_layers"], "compression-fp32") if quantization.get("fp32_layers")
                  else "<p>none: every layer int8 covers was quantized</p>"]
    if record.get("rejected"):
        parts += ["<h3>Not chosen</h3>", _kv_table(record["rejected"], "compression-rejected")]
    return "\n".join(parts)


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
        total = sum(v for v in rows.values() if is_number(v))
        cells = [[f"<th>{_e(split)}</th>", _num_td(n),
                  _num_td(f"{100 * n / total:.1f}%" if total and is_number(n) else "—")]
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
                 + [_num_td(f.get(k)) if is_number(f.get(k)) or f.get(k) is None
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
