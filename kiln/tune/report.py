"""The study report: one self-contained HTML page for a tune folder (``report.html``).

Top to bottom: headline cards (best value, trials by state, epochs), the optimisation history
(every trial's value and the best so far), parallel coordinates (each completed trial a line
across its parameters, coloured by value), parameter importances (Optuna's default evaluator), and a table of
every trial with its state, value, values, epochs and run folder (a relative link).

Self-contained like the run report (``kiln.reports``): inline CSS, plots as inline SVG, no
scripts, no links outside the tune folder; user text is HTML-escaped. Without matplotlib the
tables are written and a note says what to install.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from pathlib import Path

__all__ = ["write_study_report", "render_study_report"]

_CSS = """
body{margin:0;background:#f3f4f6;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827}
main{max-width:1100px;margin:0 auto;padding:0 16px 40px}
header{background:linear-gradient(135deg,#1e3a8a,#2563eb);color:#fff;padding:22px 24px;border-radius:0 0 12px 12px}
header h1{margin:0 0 10px;font-size:22px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:rgba(255,255,255,.14);border-radius:8px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:19px}
section{background:#fff;border-radius:10px;margin-top:18px;padding:16px 20px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
h2{font-size:17px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#ecfdf5}
.state-complete{color:#047857}.state-pruned{color:#b45309}.state-fail{color:#b91c1c}.state-interrupted{color:#6b7280}
.note{background:#fffbeb;border:1px solid #fcd34d;border-radius:8px;padding:8px 12px;margin-top:12px}
footer{color:#6b7280;font-size:12px;margin-top:18px;text-align:center}
"""


def write_study_report(path, summary, direction: str) -> Path:
    """Write the report of ``summary`` (a ``kiln.tune.TuneSummary``) to ``path``; returns the path."""
    path = Path(path)
    text = render_study_report(summary, direction, base=path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_study_report(summary, direction: str, base: Path | None = None) -> str:
    """The report's HTML text; ``base`` is the folder run links are made relative to."""
    trials = summary.trials
    notes = []
    try:
        import matplotlib  # noqa: F401
        plots = True
    except ImportError:
        plots = False
        notes.append("Plots need matplotlib, which is not installed: pip install matplotlib")
    complete = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    sections = []
    if plots and complete:
        sections.append(("history", "Optimisation history", _history_svg(trials, summary.metric, direction)))
        params = list(complete[0]["params"])
        if params:
            sections.append(("parallel", "Parallel coordinates", _parallel_svg(complete, params, summary.metric)))
    elif not complete:
        notes.append("No trial has completed yet: the plots appear once one has.")
    if summary.importances:
        body = _importance_svg(summary.importances) if plots else ""
        body += _table(["parameter", "importance"], [[_e(k), _num(v)] for k, v in summary.importances.items()],
                       "importance-table")
        sections.append(("importance", "Parameter importances (Optuna's default evaluator)", body))
    else:
        notes.append("Parameter importances need at least two completed trials with differing values.")
    sections.append(("trials", "Trials", _trials_table(trials, summary.best_trial, base)))

    cards = [("best " + summary.metric, _fmt(summary.best_value)),
             ("best trial", "—" if summary.best_trial is None else str(summary.best_trial))]
    cards += [(state, str(n)) for state, n in summary.states.items() if n]
    cards.append(("epochs trained", str(summary.epochs)))
    best = ""
    if summary.best_params:
        best = "<p>Best values: " + ", ".join(f"<code>{_e(k)}</code> = {_e(_fmt(v))}"
                                              for k, v in summary.best_params.items()) + "</p>"
    body = "\n".join(f'<section id="{sid}"><h2>{_e(name)}</h2>\n{content}</section>' for sid, name, content in sections)
    note_html = "".join(f'<div class="note">{_e(n)}</div>' for n in notes)
    from kiln import __version__
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(summary.study_name)} — kiln study report</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header><h1>kiln study {_e(summary.study_name)}</h1>
<div class="cards">{''.join(f'<div class="card">{_e(k)}<b>{_e(v)}</b></div>' for k, v in cards)}</div></header>
{note_html}
<section id="summary"><h2>Summary</h2>
<p>{_e(summary.metric)} ({_e(direction)}), {len(trials)} trials.</p>{best}</section>
{body}
<footer>Written by kiln {_e(__version__)} · one self-contained file, works offline</footer>
</main>
</body>
</html>
"""


# ----------------------------------------------------------------------------- tables
def _trials_table(trials, best_trial, base) -> str:
    names = list(dict.fromkeys(k for t in trials for k in t["params"]))
    rows = []
    for t in trials:
        run = t.get("run_dir")
        link = ""
        if run:
            target = os.path.relpath(run, base) if base is not None else run
            link = f'<a href="{_e(Path(target).as_posix())}/report.html">{_e(Path(run).name)}</a>'
        state = t["state"] + (f" (epoch {t['pruned_at']})" if t.get("pruned_at") else "")
        cells = [_num(t["number"]), f'<span class="state-{_e(t["state"])}">{_e(state)}</span>', _num(t["value"])]
        for n in names:
            value = t["params"].get(n, "")
            cells.append(_num(value) if isinstance(value, (int, float)) else _e(value))
        cells += [_num(t.get("epochs")), _num(t.get("seconds")), link, _e(t.get("error") or "")]
        rows.append((cells, t["number"] == best_trial))
    head = ["trial", "state", "value", *names, "epochs", "seconds", "run", "error"]
    out = ['<table id="trials-table"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for cells, best in rows:
        cls = ' class="best"' if best else ""
        out.append(f"<tr{cls}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


def _table(head, rows, table_id) -> str:
    out = [f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for cells in rows:
        out.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _num(value) -> str:
    return f'<td class="num">{_e(_fmt(value))}</td>'


# ----------------------------------------------------------------------------- plots
def _figure(width, height):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def _to_svg(fig, label: str) -> str:
    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": label, "svg.fonttype": "none", "font.size": 9}):
        fig.savefig(buf, format="svg", facecolor="white")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    svg = re.sub(r'<svg([^>]*?) width="[\d.]+pt" height="[\d.]+pt"', r'<svg\1 style="width:100%;height:auto"', svg,
                 count=1)
    return svg.replace("<svg", f'<svg class="plot" role="img" aria-label="{_e(label)}"', 1)


def _history_svg(trials, metric, direction) -> str:
    fig = _figure(9, 3.4)
    ax = fig.add_subplot()
    done = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    ax.scatter([t["number"] for t in done], [t["value"] for t in done], s=18, color="#2563eb", label="trial")
    best, xs, ys = None, [], []
    for t in sorted(done, key=lambda t: t["number"]):
        if best is None or (t["value"] > best if direction == "maximize" else t["value"] < best):
            best = t["value"]
        xs.append(t["number"])
        ys.append(best)
    ax.step(xs, ys, where="post", color="#dc2626", label="best so far")
    pruned = [t for t in trials if t["state"] == "pruned" and t["intermediate"]]
    if pruned:
        ax.scatter([t["number"] for t in pruned], [t["intermediate"][max(t["intermediate"])] for t in pruned],
                   s=14, marker="x", color="#b45309", label="pruned (last reported)")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.grid(True, color="#e5e7eb")
    ax.legend(loc="best", frameon=False)
    return _to_svg(fig, "optimisation history")


def _parallel_svg(done, params, metric) -> str:
    import matplotlib
    fig = _figure(9, 3.8)
    ax = fig.add_subplot()
    values = [t["value"] for t in done]
    low, high = min(values), max(values)
    cmap = matplotlib.colormaps["viridis"]
    axes = params + [metric]
    scaled_columns, ticks = [], []
    for name in params:
        column = [t["params"][name] for t in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in column):
            lo, hi = min(column), max(column)
            positive = lo > 0 and hi / lo > 20  # wide positive ranges (learning rates) read better in log
            f = (lambda v: math.log(v)) if positive else (lambda v: v)
            span = (f(hi) - f(lo)) or 1.0
            scaled_columns.append([(f(v) - f(lo)) / span for v in column])
            ticks.append((f"{lo:.3g}", f"{hi:.3g}"))
        else:
            labels = list(dict.fromkeys(map(str, column)))
            scaled_columns.append([labels.index(str(v)) / max(len(labels) - 1, 1) for v in column])
            ticks.append((labels[0], labels[-1]))
    span = (high - low) or 1.0
    scaled_columns.append([(v - low) / span for v in values])
    ticks.append((f"{low:.4g}", f"{high:.4g}"))
    for i, t in enumerate(done):
        ax.plot(range(len(axes)), [c[i] for c in scaled_columns], color=cmap((t["value"] - low) / span),
                alpha=0.7, linewidth=1.2)
    for x, (lo, hi) in enumerate(ticks):
        ax.axvline(x, color="#9ca3af", linewidth=0.8)
        ax.text(x, -0.06, lo, ha="center", va="top", fontsize=8)
        ax.text(x, 1.06, hi, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(axes)), [a if len(a) < 28 else "…" + a[-27:] for a in axes])
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _to_svg(fig, "parallel coordinates")


def _importance_svg(importances) -> str:
    fig = _figure(9, 0.5 + 0.35 * len(importances))
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="#2563eb")
    ax.set_xlabel("importance (share of the value's variance)")
    ax.grid(True, axis="x", color="#e5e7eb")
    return _to_svg(fig, "parameter importances")
