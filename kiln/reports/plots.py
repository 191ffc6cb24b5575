"""The report's plots: matplotlib figures rendered to inline SVG strings.

Why SVG: it stays crisp at any zoom, its text is searchable and copyable, and it inlines into
one HTML file with no external requests. Text is kept as ``<text>`` (``svg.fonttype="none"``)
so the browser draws it with its own fonts; scatter plots with many points rasterize just the
points (an embedded PNG) so the file stays small.

Why ``matplotlib.figure.Figure`` and never ``pyplot``: a bare ``Figure`` needs no GUI backend
and registers nowhere, so rendering a report changes no global state (no backend switch, no
open-figure registry for anyone to close).

Every function returns one ``<svg>...</svg>`` string ready to paste into HTML.
"""

from __future__ import annotations

import functools
import html
import io
import re
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "learning_curve_svg",
    "confusion_matrix_svg",
    "roc_curves_svg",
    "predicted_vs_true_svg",
    "residuals_svg",
    "residual_histogram_svg",
]

TRAIN_COLOR = "#2563eb"
VALIDATION_COLOR = "#ea580c"
GRID_COLOR = "#e5e7eb"
TEXT_COLOR = "#374151"
# Above this many points a scatter is drawn as one embedded bitmap: 100k SVG circles would
# make a report of tens of megabytes that a browser takes seconds to lay out.
RASTERIZE_ABOVE = 500

_RC = {
    "svg.fonttype": "none",  # keep text as <text>, not glyph paths
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": TEXT_COLOR,
    "xtick.color": TEXT_COLOR,
    "ytick.color": TEXT_COLOR,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "savefig.dpi": 150,  # only used by rasterized scatter points (sharp on 1.5x screens)
}


def _styled(plot):
    """Run ``plot`` with the report's matplotlib style: artists read rcParams when they are
    created, so the style must be active while the figure is built, not only when saved."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return plot(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    # A little more margin than matplotlib's default: the browser, not matplotlib, draws the
    # text (svg.fonttype="none"), and its metrics differ by a pixel or two at the edges.
    fig.get_layout_engine().set(w_pad=0.08, h_pad=0.06)
    return fig


def _style(ax) -> None:
    ax.grid(True, color=GRID_COLOR, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _to_svg(fig: Figure, salt: str) -> str:
    """Render ``fig`` to an SVG string without the XML prolog, sized by CSS."""
    buf = io.StringIO()
    # The salt makes the ids of clip paths and markers deterministic (diffable reports) and
    # distinct between the plots of one page, where all SVGs share one id namespace.
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", facecolor="white")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # The RDF metadata (creator, a timestamp) adds bytes and makes reports differ run to run.
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    # Replace the fixed size by CSS: natural size (1 pt = 4/3 CSS px, so 9 pt text reads as
    # 12 px) but never wider than its column; the viewBox keeps the aspect ratio.
    match = re.match(r'<svg([^>]*?) width="([\d.]+)pt" height="[\d.]+pt"', svg)
    if match:
        max_px = round(float(match.group(2)) * 4 / 3)
        svg = (f'<svg{match.group(1)} style="width:100%;max-width:{max_px}px;height:auto"'
               + svg[match.end():])
    label = html.escape(salt, quote=True)  # the salt carries user text (a metric's name)
    return svg.replace("<svg", f'<svg class="plot" role="img" aria-label="{label}"', 1)


@_styled
def learning_curve_svg(name: str, epochs: Sequence[float], train: Sequence[float] | None,
                       validation: Sequence[float] | None, log_scale: bool = False) -> str:
    """One metric over epochs: training and validation lines, the best validation epoch marked.

    Args:
        name: the metric's name (the title).
        epochs: x values, one per epoch.
        train, validation: values per epoch (NaN where missing), or None when absent.
        log_scale: a log y axis (for learning rates). Default False.
    """
    fig = _figure(4.6, 2.9)
    ax = fig.add_subplot()
    x = np.asarray(epochs, dtype=float)
    # A few epochs get markers so single points are visible; many epochs just lines.
    marker = "o" if len(x) <= 20 else None
    for values, label, color in ((train, "train", TRAIN_COLOR),
                                 (validation, "validation", VALIDATION_COLOR)):
        if values is None:
            continue
        y = np.asarray(values, dtype=float)
        ax.plot(x, y, label=label, color=color, linewidth=1.8, marker=marker, markersize=3.5)
    if validation is not None and np.isfinite(np.asarray(validation, dtype=float)).any():
        y = np.asarray(validation, dtype=float)
        higher_is_better = _higher_is_better(name)
        best = int(np.nanargmax(y) if higher_is_better else np.nanargmin(y))
        ax.scatter([x[best]], [y[best]], s=60, facecolors="none", edgecolors=VALIDATION_COLOR,
                   linewidths=1.6, zorder=5, label=f"best: {y[best]:.4g} @ {x[best]:g}")
    if log_scale:
        ax.set_yscale("log")
    _style(ax)
    ax.set_title(name)
    ax.set_xlabel("epoch")
    if len(x) and np.all(x == np.round(x)) and len(x) <= 12:
        ax.set_xticks(x)
    if validation is not None:  # one line needs no legend
        ax.legend(frameon=False, fontsize=8)
    return _to_svg(fig, f"learning curve: {name}")


def _higher_is_better(name: str) -> bool:
    lowered = name.lower()
    return not any(word in lowered for word in ("loss", "error", "mse", "mae", "rmse",
                                                "mape", "msle", "hinge", "crossentropy",
                                                "divergence", "perplexity"))


def _short(label: object, limit: int = 16) -> str:
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@_styled
def confusion_matrix_svg(counts: np.ndarray, class_names: Sequence[object]) -> str:
    """A confusion matrix: colour is the row-normalised rate, each cell shows its count.

    Args:
        counts: (classes, classes) integer counts, rows true classes, columns predictions.
        class_names: one label per row/column.

    The figure grows with the number of classes and the cell text shrinks, so that up to ~30
    classes every count stays readable; beyond ~40 classes only the colours are drawn.
    """
    counts = np.asarray(counts)
    n = len(class_names)
    row_sums = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, row_sums, out=np.zeros(counts.shape, dtype=float),
                      where=row_sums > 0)
    # Sized so that at natural size (the report's column is ~1000 px) a 30-class matrix still
    # has cells wide enough for a 4-digit count in a readable font.
    side = float(np.clip(2.2 + 0.27 * n, 3.4, 10.2))
    fig = _figure(side + 0.9, side)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    # An inset colorbar is exactly as tall as the (square) matrix; fig.colorbar(ax=ax) would
    # size it to the axes' box before the equal aspect shrinks it.
    bar = fig.colorbar(image, cax=ax.inset_axes([1.03, 0.0, 0.035, 1.0]))
    bar.set_label("fraction of the true class")
    bar.outline.set_visible(False)
    labels = [_short(c) for c in class_names]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0,
                  ha="right" if n > 4 else "center", rotation_mode="anchor")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if n <= 40:
        size = 9 if n <= 10 else 8.5 if n <= 16 else 8 if n <= 24 else 7.5
        for i in range(n):
            for j in range(n):
                if counts[i, j] == 0 and n > 10:
                    continue  # an empty big matrix reads better with blanks than with zeros
                color = "white" if rates[i, j] > 0.55 else TEXT_COLOR
                # in_layout=False: the cells lie inside the axes anyway, and measuring 900
                # texts for the layout would double the rendering time.
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center",
                        fontsize=size, color=color, in_layout=False)
    return _to_svg(fig, "confusion matrix")


@_styled
def roc_curves_svg(curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]]) -> str:
    """ROC curves, one line per (label, fpr, tpr, auc), with the chance diagonal."""
    fig = _figure(4.6, 3.6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#9ca3af", linestyle="--", linewidth=1)
    colors = matplotlib.colormaps["tab10"].colors
    for k, (label, fpr, tpr, auc) in enumerate(curves):
        ax.plot(fpr, tpr, linewidth=1.6, color=colors[k % len(colors)],
                label=f"{_short(label, 20)} (AUC {auc:.3f})")
    _style(ax)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (one class vs the rest)" if len(curves) > 1 else "ROC")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return _to_svg(fig, "roc curves")


@_styled
def predicted_vs_true_svg(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """Predicted against true values, with the identity line y = x (a perfect model)."""
    fig = _figure(3.4, 3.2)
    ax = fig.add_subplot()
    low = float(min(np.min(y_true), np.min(y_pred)))
    high = float(max(np.max(y_true), np.max(y_pred)))
    pad = 0.03 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="#6b7280", linestyle="--",
            linewidth=1.2, label="y = x")
    ax.scatter(y_true, y_pred, s=12, alpha=_alpha(len(y_true)), color=TRAIN_COLOR,
               edgecolors="none", rasterized=len(y_true) > RASTERIZE_ABOVE)
    _style(ax)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true")
    ax.legend(frameon=False, loc="upper left")
    return _to_svg(fig, "predicted vs true")


@_styled
def residuals_svg(y_pred: np.ndarray, residuals: np.ndarray) -> str:
    """Residuals (true - predicted) against the prediction, with the zero line."""
    fig = _figure(3.4, 3.2)
    ax = fig.add_subplot()
    ax.axhline(0.0, color="#6b7280", linestyle="--", linewidth=1.2)
    ax.scatter(y_pred, residuals, s=12, alpha=_alpha(len(y_pred)), color=VALIDATION_COLOR,
               edgecolors="none", rasterized=len(y_pred) > RASTERIZE_ABOVE)
    _style(ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true − predicted)")
    ax.set_title("Residuals vs predicted")
    return _to_svg(fig, "residuals vs predicted")


@_styled
def residual_histogram_svg(residuals: np.ndarray) -> str:
    """The distribution of residuals (true - predicted): zero dashed grey, the mean orange."""
    fig = _figure(3.4, 3.2)
    ax = fig.add_subplot()
    bins = int(np.clip(np.sqrt(len(residuals)), 10, 60))
    ax.hist(residuals, bins=bins, color=TRAIN_COLOR, alpha=0.8, edgecolor="white", linewidth=0.5)
    ax.axvline(0.0, color="#6b7280", linestyle="--", linewidth=1.2)
    mean = float(np.mean(residuals))
    ax.axvline(mean, color=VALIDATION_COLOR, linewidth=1.6)
    _style(ax)
    ax.set_xlabel("residual (true − predicted)")
    ax.set_ylabel("count")
    # The mean goes in the title, not a legend: a histogram has no empty corner to spare.
    ax.set_title(f"Residual histogram (mean {mean:.3g})")
    return _to_svg(fig, "residual histogram")


def _alpha(n: int) -> float:
    # Dense clouds need transparency to show where points pile up.
    return float(np.clip(30.0 / np.sqrt(max(n, 1)), 0.15, 0.8))
