"""Explanations as pictures and HTML: heat maps over images and spectrograms, highlighted
tokens, importance bars, and the "Explanations" section of report.html.

Matplotlib is used through ``Figure`` objects (no pyplot, no global figure state) and imported
only when a picture is drawn. Colours: red pushes the explained output up, blue pushes it down
(saliency and SmoothGrad are magnitudes: red only).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

__all__ = ["heatmap_png", "tokens_html", "importance_png", "report_section"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def heatmap_png(image, attributions, title: str = "") -> bytes:
    """An image (or spectrogram) beside its attributions as a heat map over it.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` values (an image in [0, 1], or a spectrogram).
        attributions: the same shape; summed over channels.
        title: shown above the pair.

    Returns:
        PNG bytes.
    """
    image = np.asarray(image, dtype=float)
    heat = np.asarray(attributions, dtype=float)
    heat = heat.sum(axis=-1) if heat.ndim == 3 else heat  # (H, W)
    shown = image if image.ndim == 2 or image.shape[-1] in (3, 4) else image[..., 0]
    limit = float(np.abs(heat).max()) or 1.0
    fig = _figure(6, 3)
    left, right = fig.subplots(1, 2)
    for axis in (left, right):
        axis.imshow(shown, cmap="gray" if shown.ndim == 2 else None, aspect="auto")
        axis.set_xticks([])
        axis.set_yticks([])
    right.imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.6, aspect="auto")
    left.set_title("input")
    right.set_title("attributions")
    if title:
        fig.suptitle(title)
    return _png(fig)


def tokens_html(tokens: list, values, title: str = "") -> str:
    """Tokens highlighted by their attributions: one ``<span>`` each, red up, blue down."""
    values = np.asarray(values, dtype=float)
    limit = float(np.abs(values).max()) if len(values) else 0.0
    spans = []
    for token, value in zip(tokens, values):
        strength = abs(value) / limit if limit else 0.0
        colour = "220,40,40" if value >= 0 else "40,90,220"
        spans.append(f'<span title="{value:+.4f}" style="background: rgba({colour},{strength:.2f}); '
                     f'padding: 0 2px; border-radius: 3px">{html.escape(str(token))}</span>')
    head = f"<b>{html.escape(title)}</b> " if title else ""
    return f'<p class="tokens">{head}{" ".join(spans)}</p>'


def importance_png(scores: dict, title: str, errors: dict | None = None) -> bytes:
    """Horizontal bars, the largest on top: feature -> score (with ± ``errors`` when given)."""
    names = list(scores)[::-1]
    fig = _figure(6, max(1.5, 0.35 * len(names) + 0.8))
    axis = fig.subplots()
    axis.barh(names, [scores[n] for n in names], xerr=[errors[n] for n in names] if errors else None,
              color="#c0504d")
    axis.set_title(title)
    axis.axvline(0, color="black", linewidth=0.5)
    return _png(fig)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def report_section(explanations: dict, folder: str | Path | None = None) -> str:
    """The "Explanations" section of report.html, from explanations.json (self-contained: pictures inlined).

    Args:
        explanations: the parsed explanations.json.
        folder: the run folder (where the pictures named in it lie); None: no pictures.
    """
    parts = []
    importance = explanations.get("global_importance")
    if importance:
        metric = importance["metric"]
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v['mean']:.4f}</td><td>±{v['std']:.4f}</td></tr>"
                       for n, v in importance["importances"].items())
        parts.append(f"<h3>Global permutation importance ({html.escape(importance.get('split', ''))} split)</h3>"
                     f"<p>The drop in {html.escape(metric)} (baseline {importance['baseline']:.4f}) when one "
                     f"feature's rows are shuffled, mean ± std over {importance.get('n_repeats', '')} shuffles."
                     f"</p><table><tr><th>feature</th><th>importance</th><th>spread</th></tr>{rows}</table>")
    mean_abs = explanations.get("mean_abs_attribution")
    if mean_abs:
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v:.4f}</td></tr>" for n, v in mean_abs.items())
        parts.append(f"<h3>Mean |attribution| ({html.escape(explanations.get('method', ''))}, "
                     f"{explanations.get('rows', '')} rows)</h3><table><tr><th>feature</th><th>mean |attribution|"
                     f"</th></tr>{rows}</table>")
    checks = explanations.get("checks") or {}
    if checks:
        lines = []
        completeness = checks.get("completeness")
        if completeness:
            lines.append(f"<li>IG completeness: largest miss {completeness['max_relative_error']:.2e} of "
                         f"f(x) - f(baseline) at {completeness['n_steps']} steps — "
                         f"{'within' if completeness['passed'] else 'NOT within'} {completeness['tolerance']:.0%}"
                         + "".join(f"; {html.escape(n)}" for n in completeness.get("notes", [])) + "</li>")
        randomisation = checks.get("randomisation")
        if randomisation:
            verdict = ("passed" if randomisation["passed"]
                       else "FAILED: the explanation hardly depends on the weights")
            lines.append(f"<li>Model randomisation (Adebayo et al. 2018): rank correlation with a re-initialised "
                         f"model {randomisation['spearman']:.3f} (threshold {randomisation['threshold']}) — "
                         f"{verdict}</li>")
        parts.append(f"<h3>Checks</h3><ul>{''.join(lines)}</ul>")
    for snippet in explanations.get("tokens_html", []):
        parts.append(snippet)
    if folder is not None:
        for name in explanations.get("pictures", []):
            path = Path(folder) / name
            if path.exists():
                parts.append(_img(path.read_bytes(), name))
    if not parts:
        return "<p>No explanations were computed.</p>"
    return "\n".join(parts)
