"""Pictures and HTML of explanations: heat maps, highlighted tokens, the report section."""

from kiln.explain.render import heatmap_png, importance_png, report_section, tokens_html


def test_heatmap_and_bars_are_png():
    import numpy as np
    assert heatmap_png(np.random.rand(8, 8, 1), np.random.randn(8, 8, 1), "row 0")[:4] == b"\x89PNG"
    assert importance_png({"a": 2.0, "b": 1.0}, "importance", {"a": 0.1, "b": 0.2})[:4] == b"\x89PNG"


def test_tokens_are_escaped_and_coloured_by_sign():
    html = tokens_html(["good", "<bad>"], [0.5, -1.0], "row 3")
    assert "&lt;bad&gt;" in html and "<bad>" not in html
    assert "rgba(220,40,40,0.50)" in html and "rgba(40,90,220,1.00)" in html  # red up (half), blue down (full)


def test_report_section_shows_importance_and_the_checks_verdicts():
    section = report_section({
        "method": "ig", "rows": 3, "mean_abs_attribution": {"age": 0.5},
        "global_importance": {"metric": "accuracy", "baseline": 0.9, "split": "test", "n_repeats": 5,
                              "importances": {"age": {"mean": 0.2, "std": 0.01}}},
        "checks": {"completeness": {"max_relative_error": 0.002, "n_steps": 64, "passed": True, "tolerance": 0.01},
                   "randomisation": {"spearman": 0.95, "threshold": 0.8, "passed": False}}})
    assert "Global permutation importance (test split)" in section and "<td>age</td><td>0.2000</td>" in section
    assert "within 1%" in section and "FAILED: the explanation hardly depends on the weights" in section
