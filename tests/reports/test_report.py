"""report.html: sections present, numbers equal to scikit-learn's, user text escaped, the file
self-contained, and the page rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from kiln.errors import KilnError, KilnValueError
from kiln.reports import ReportContext, render_report, write_report

sklearn_metrics = pytest.importorskip("sklearn.metrics")

REPO = Path(__file__).resolve().parents[2]
SUMMARY = """Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)       Output Shape  Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ dense (Dense)      (None, 64)        896 │
├──────────────────────────────────────────┤
│ dense_1 (Dense)    (None, 3)         195 │
└──────────────────────────────────────────┘
 Total params: 1,091 (4.26 KB)
 Trainable params: 1,091 (4.26 KB)
 Non-trainable params: 0 (0.00 B)"""
ENVIRONMENT = {"kiln": "0.1.0", "torch": "2.5.1", "device": "cpu", "seed": 1234,
               "wall_time": 83.2, "python": "3.11", "platform": "Linux", "started_at": "2025-01-01"}


def _history(epochs=30, metric="accuracy"):
    e = np.arange(1, epochs + 1)
    return [{"epoch": int(i), "loss": 2 * np.exp(-i / 8) + 0.1, metric: 1 - 0.9 * np.exp(-i / 6),
             "val_loss": 2 * np.exp(-i / 9) + 0.2, f"val_{metric}": 1 - 0.9 * np.exp(-i / 7) - 0.03}
            for i in e]


def _classification(n_classes=10, n=1000, seed=0, **overrides):
    g = np.random.default_rng(seed)
    names = [f"class_{i}" for i in range(n_classes)]
    y_true = g.integers(0, n_classes, n)
    y_pred = np.where(g.random(n) < 0.7, y_true, g.integers(0, n_classes, n))
    score = g.random((n, n_classes))
    score[np.arange(n), y_pred] += 1.5
    score /= score.sum(axis=1, keepdims=True)
    fields = dict(
        title="Digits", run_name="digits-1", task="classification", history=_history(),
        final_metrics={"train": {"loss": 0.12, "accuracy": 0.97},
                       "test": {"loss": 0.21, "accuracy": 0.925}},
        y_true=y_true, y_pred=y_pred, class_names=names, y_score=score, model_summary=SUMMARY,
        data_summary={"rows": {"train": 700, "validation": 150, "test": 150},
                      "features": [{"feature": "f0", "type": "numeric", "mean": 0.5, "std": 0.1},
                                   {"feature": "colour", "type": "category", "unique": 3}],
                      "class_balance": {"train": {c: 70 for c in names},
                                        "test": {c: 15 for c in names}}},
        environment=ENVIRONMENT, config_yaml="model:\n  name: mlp\n", notes=["stopped early"])
    fields.update(overrides)
    return ReportContext(**fields)


def _regression(n=500, seed=0, **overrides):
    g = np.random.default_rng(seed)
    y_true = g.normal(size=n) * 10
    y_pred = y_true + g.normal(size=n) * 2 + 0.3
    fields = dict(title="Diabetes", run_name="diabetes-1", task="regression",
                  history=_history(metric="mae"),
                  final_metrics={"test": {"loss": 4.0, "mae": 1.6}},
                  y_true=y_true, y_pred=y_pred, model_summary=SUMMARY,
                  environment=ENVIRONMENT, config_yaml="task: regression\n")
    fields.update(overrides)
    return ReportContext(**fields)


class _Tables(HTMLParser):
    """Collect every table with an id: rows of (cell text, cell title attribute)."""

    def __init__(self):
        super().__init__()
        self.tables, self._table, self._cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "id" in attrs:
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = ["", attrs.get("title")]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append((self._cell[0].strip(), self._cell[1]))
            self._cell = None
        elif tag == "table":
            self._table = None


def _tables(page: str) -> dict:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _column(rows, header_row, name):
    """Full-precision floats of one column (from the cells' title attribute)."""
    k = [text for text, _ in header_row].index(name)
    return np.array([float(row[k][1]) for row in rows])


# ----------------------------------------------------------------------------- sections


def test_classification_report_has_every_section(tmp_path):
    path = write_report(tmp_path / "report.html", _classification())
    page = path.read_text(encoding="utf-8")
    for section in ("curves", "metrics", "classification", "model", "data", "environment",
                    "config"):
        assert f'<section id="{section}">' in page
    assert 'id="regression"' not in page
    tables = _tables(page)
    for table in ("history-table", "metrics-table", "confusion-table", "per-class-table",
                  "rows-table", "features-table", "class-balance-table", "environment-table"):
        assert tables.get(table), table
    # One learning curve per metric (loss, accuracy), the confusion matrix and the ROC curves.
    labels = re.findall(r'<svg class="plot" role="img" aria-label="([^"]*)"', page)
    assert labels == ["learning curve: loss", "learning curve: accuracy", "confusion matrix",
                      "roc curves"]
    assert "<details><summary>Resolved config" in page
    assert "┏━━" in page and "│ dense (Dense)" in page  # box drawing kept verbatim
    assert 'id="headline"' in page and "0.9250" in page  # the test accuracy as a card
    assert "stopped early" in page


def test_regression_report_has_every_section(tmp_path):
    page = write_report(tmp_path / "r.html", _regression()).read_text(encoding="utf-8")
    assert '<section id="regression">' in page and 'id="classification"' not in page
    labels = re.findall(r'aria-label="([^"]*)"', page)
    assert {"predicted vs true", "residuals vs predicted", "residual histogram",
            "learning curve: mae"} <= set(labels)
    assert _tables(page)["regression-table"]


def test_multi_task_and_empty_context_render():
    page = render_report(ReportContext("m", "m-1", "multi", history=_history(5)))
    assert '<section id="curves">' in page and 'id="classification"' not in page
    page = render_report(ReportContext("", "bare", "classification"))
    assert "No training history recorded." in page and "<h1>bare</h1>" in page


# ----------------------------------------------------------------------------- numbers


def test_confusion_matrix_counts_equal_sklearn():
    ctx = _classification(n_classes=7, n=800, seed=3)
    rows = _tables(render_report(ctx))["confusion-table"]
    assert [t for t, _ in rows[0][1:]] == ctx.class_names
    counts = np.array([[int(t) for t, _ in row[1:]] for row in rows[1:]])
    expected = sklearn_metrics.confusion_matrix(ctx.y_true, ctx.y_pred, labels=range(7))
    np.testing.assert_array_equal(counts, expected)


def test_per_class_metrics_equal_sklearn():
    # Class 4 is never predicted and class 5 never occurs: the zero-division cases.
    g = np.random.default_rng(1)
    y_true = g.choice([0, 1, 2, 3, 4], 400)
    y_pred = np.where(g.random(400) < 0.6, y_true, g.choice([0, 1, 2, 3, 5], 400))
    y_pred[y_pred == 4] = 0
    names = ["a", "b", "c", "d", "e", "f"]
    score = g.random((400, 6))
    ctx = _classification(y_true=y_true, y_pred=y_pred, class_names=names, y_score=score)
    rows = _tables(render_report(ctx))["per-class-table"]
    head, body, foot = rows[0], rows[1:7], rows[7:]
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=range(6), zero_division=0)
    np.testing.assert_allclose(_column(body, head, "precision"), p, rtol=1e-12)
    np.testing.assert_allclose(_column(body, head, "recall"), r, rtol=1e-12)
    np.testing.assert_allclose(_column(body, head, "F1"), f, rtol=1e-12)
    assert [int(row[4][0]) for row in body] == s.tolist()
    for row, average in zip(foot[:2], ("macro", "weighted")):
        expected = sklearn_metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=range(6), average=average, zero_division=0)[:3]
        np.testing.assert_allclose([float(c[1]) for c in row[1:4]], expected, rtol=1e-12)
    assert float(foot[2][3][1]) == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred))
    aucs = [row[5][1] for row in body]
    for k in range(5):
        expected = sklearn_metrics.roc_auc_score(y_true == k, score[:, k])
        assert float(aucs[k]) == pytest.approx(expected, abs=1e-12)
    assert body[5][5][0] == "—"  # class f never occurs: AUC undefined, not a number


def test_binary_scores_as_one_column_give_sklearns_auc():
    g = np.random.default_rng(2)
    y_true = g.integers(0, 2, 300)
    p1 = np.clip(y_true * 0.3 + g.random(300) * 0.7, 0, 1).round(2)  # ties on purpose
    ctx = _classification(y_true=y_true, y_pred=(p1 > 0.5).astype(int), class_names=["no", "yes"],
                          y_score=p1)
    page = render_report(ctx)
    rows = _tables(page)["per-class-table"]
    assert float(rows[2][5][1]) == pytest.approx(sklearn_metrics.roc_auc_score(y_true, p1))
    assert 'aria-label="roc curves"' in page


@pytest.mark.parametrize("form", ["names", "indices", "one_hot", "one_hot_lists", "torch",
                                  "inferred"])
def test_labels_in_every_form_give_the_same_matrix(form):
    g = np.random.default_rng(4)
    names = ["cat", "dog", "eel"]
    t, p = g.integers(0, 3, 60), g.integers(0, 3, 60)
    y_true, y_pred, class_names = {
        "names": ([names[i] for i in t], [names[i] for i in p], names),
        "indices": (t, p, names),
        "one_hot": (np.eye(3)[t], np.eye(3)[p] * 0.9, names),
        "one_hot_lists": (np.eye(3)[t].tolist(), np.eye(3)[p].tolist(), names),
        "torch": (torch.as_tensor(t), torch.as_tensor(p)[:, None], names),
        "inferred": ([names[i] for i in t], [names[i] for i in p], None),
    }[form]
    ctx = _classification(y_true=y_true, y_pred=y_pred, class_names=class_names, y_score=None)
    rows = _tables(render_report(ctx))["confusion-table"]
    assert [t for t, _ in rows[0][1:]] == names
    counts = np.array([[int(c) for c, _ in row[1:]] for row in rows[1:]])
    np.testing.assert_array_equal(counts, sklearn_metrics.confusion_matrix(t, p))


def test_labels_missing_from_class_names_are_an_error():
    ctx = _classification(y_true=["a", "b", "zebra"], y_pred=["a", "a", "b"],
                          class_names=["a", "b"], y_score=None)
    with pytest.raises(KilnValueError, match="zebra"):
        render_report(ctx)


def test_regression_metrics_equal_sklearn():
    ctx = _regression(n=400, seed=5)
    rows = _tables(render_report(ctx))["regression-table"]
    head, (row,) = rows[0], rows[1:]
    values = {h: float(c[1]) for (h, _), c in zip(head[1:], row[1:])}
    assert values["MAE"] == pytest.approx(
        sklearn_metrics.mean_absolute_error(ctx.y_true, ctx.y_pred))
    assert values["RMSE"] == pytest.approx(
        np.sqrt(sklearn_metrics.mean_squared_error(ctx.y_true, ctx.y_pred)))
    assert values["R²"] == pytest.approx(sklearn_metrics.r2_score(ctx.y_true, ctx.y_pred))
    assert values["max error"] == pytest.approx(sklearn_metrics.max_error(ctx.y_true, ctx.y_pred))


def test_regression_constant_target_has_no_r2():
    # R² of a constant target is undefined: shown as "—", never a division error or a made-up 0.
    y_true, y_pred = np.full(6, 3.0), np.array([3.0, 3.5, 2.5, 3.0, 4.0, 2.0])
    (row,) = _tables(render_report(_regression(y_true=y_true, y_pred=y_pred)))["regression-table"][1:]
    assert row[3][0] == "—" and float(row[1][1]) == pytest.approx(0.5)  # MAE: mean of 0, .5, .5, 0, 1, 1


def test_standardised_metrics_are_labelled_in_curves_table_and_cards():
    # The per-epoch mae of a numeric target is on the standardised target: its curve, its columns and
    # the final loss say so; the final mae (in data units) does not.
    page = render_report(_regression(standardised_curves=["loss", "mae"], standardised_metrics=["loss"]))
    tables = _tables(page)
    assert [t for t, _ in tables["history-table"][0]][:5] == [
        "epoch", "loss (standardised)", "val_loss (standardised)", "mae (standardised)", "val_mae (standardised)"]
    assert [row[0][0] for row in tables["metrics-table"][1:]] == ["loss (standardised)", "mae"]
    assert 'aria-label="learning curve: mae (standardised)"' in page
    assert 'id="standardised-note">loss, mae: on the standardised target' in page
    assert '<div class="label">loss (standardised)</div>' in page and '<div class="label">mae</div>' in page


def test_nothing_is_labelled_standardised_by_default():
    page = render_report(_regression())
    assert "standardised" not in page


def test_standardised_names_must_be_a_list():
    with pytest.raises(KilnError, match="`standardised_curves` must be a list of metric names"):
        _regression(standardised_curves="mae")


def test_regression_leaves_out_non_finite_rows():
    y_true, y_pred = np.arange(10.0), np.arange(10.0) + 0.5
    y_pred[3] = np.nan
    page = render_report(_regression(y_true=y_true, y_pred=y_pred))
    assert "1 rows with NaN or infinite values left out" in page
    (row,) = _tables(page)["regression-table"][1:]
    assert float(row[1][1]) == pytest.approx(0.5)  # MAE of the 9 finite rows


def test_mixed_type_labels_keep_their_identity():
    ctx = _classification(y_true=[1, "1", 1, "1"], y_pred=[1, 1, "1", "1"], class_names=None,
                          y_score=None)
    rows = _tables(render_report(ctx))["confusion-table"]
    assert len(rows) == 3  # header + the int 1 + the string "1": two classes, not one


def test_regression_with_two_outputs_reports_each():
    g = np.random.default_rng(6)
    y_true = g.normal(size=(200, 2))
    y_pred = y_true + g.normal(size=(200, 2)) * [0.1, 1.0]
    rows = _tables(render_report(_regression(y_true=y_true, y_pred=y_pred)))["regression-table"]
    assert [r[0][0] for r in rows[1:]] == ["output 0", "output 1", "all outputs"]
    r2 = sklearn_metrics.r2_score(y_true, y_pred, multioutput="raw_values")
    assert [float(r[3][1]) for r in rows[1:3]] == pytest.approx(r2.tolist())


def test_final_metrics_and_history_tables_hold_the_inputs():
    ctx = _classification()
    tables = _tables(render_report(ctx))
    metrics = tables["metrics-table"]
    assert [t for t, _ in metrics[0]] == ["metric", "train", "test"]
    assert {r[0][0]: (float(r[1][1]), float(r[2][1])) for r in metrics[1:]} == {
        "loss": (0.12, 0.21), "accuracy": (0.97, 0.925)}
    history = tables["history-table"]
    assert len(history) == 1 + 30
    head = history[0]
    np.testing.assert_allclose(_column(history[1:], head, "val_loss"),
                               [r["val_loss"] for r in ctx.history])


# ----------------------------------------------------------------------------- safety


def test_user_text_is_escaped():
    evil = "<script>alert(1)</script>"
    ctx = _classification(
        title=f"T {evil}", run_name=f"run-{evil}", class_names=[f"c{i}{evil}" for i in range(10)],
        notes=[evil], config_yaml=f"name: {evil}", model_summary=evil,
        environment={"device": evil}, history=[{"epoch": 1, "<b>loss</b>": 1.0}],
        final_metrics={"te<st": {"acc<": 1.0}},
        data_summary={"features": [{"feature": evil, "type": evil, "x": evil}],
                      "class_balance": {evil: {evil: 3}}, evil: evil})
    page = render_report(ctx)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>loss</b>" not in page


def test_report_is_self_contained(tmp_path):
    for ctx in (_classification(), _regression(n=3000)):  # 3000 rows: rasterized scatter
        page = write_report(tmp_path / "r.html", ctx).read_text(encoding="utf-8")
        assert 'src="http' not in page and "<link" not in page and "@import" not in page
        assert "<script" not in page and "@font-face" not in page
        # Every reference stays inside the file: anchors and data: URIs only.
        for target in re.findall(r'(?:href|src)="([^"]*)"', page):
            assert target.startswith(("#", "data:")), target
        for target in re.findall(r"url\(([^)]*)\)", page):
            assert target.startswith("#"), target
        assert "<metadata>" not in page and '<?xml' not in page


def test_invalid_context_lists_every_problem():
    with pytest.raises(KilnValueError) as info:
        ReportContext("t", "r", "clasification", y_true=[1, 2, 3], y_pred=[1, 2])
    message = str(info.value)
    assert "task=" in message and "'clasification'" in message
    assert "len(y_true)=3, len(y_pred)=2" in message
    with pytest.raises(KilnError, match="y_true` and `y_pred` go together"):
        ReportContext("t", "r", "regression", y_true=[1.0])
    with pytest.raises(KilnError, match="one column per class"):
        ReportContext("t", "r", "classification", y_true=[0, 1], y_pred=[0, 1],
                      class_names=["a", "b"], y_score=np.ones((2, 3)))
    with pytest.raises(TypeError, match="ReportContext"):
        write_report("x.html", {"title": "t"})


def test_write_report_into_a_folder_creates_report_html(tmp_path):
    path = write_report(tmp_path, _regression(n=50))
    assert path == tmp_path / "report.html" and path.is_file()
    nested = write_report(tmp_path / "a" / "b" / "out.html", _regression(n=50))
    assert nested.is_file() and not list(nested.parent.glob(".*.tmp"))


def test_without_matplotlib_the_report_has_tables_and_says_what_to_install(monkeypatch):
    import sys

    import kiln.reports

    monkeypatch.delitem(sys.modules, "kiln.reports.plots", raising=False)
    monkeypatch.delattr(kiln.reports, "plots", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    page = render_report(_classification(n_classes=3, n=60))
    assert "pip install matplotlib" in page and "<svg" not in page
    assert _tables(page)["per-class-table"]


def test_renders_30_epochs_10_classes_completely_and_the_same_twice():
    """The size a real run reaches: every epoch and every class is in the page, and rendering is
    deterministic (no wall-clock bound: that measured the machine, not the report)."""
    ctx = _classification(n_classes=10, n=2000)
    page = render_report(ctx)
    tables = _tables(page)
    assert len(tables["history-table"]) == 1 + 30
    assert [row[0][0] for row in tables["per-class-table"][1:11]] == [f"class_{i}" for i in range(10)]
    assert render_report(ctx) == page


def test_a_30_class_matrix_keeps_every_count_as_text():
    ctx = _classification(n_classes=30, n=3000, y_score=None)
    page = render_report(ctx)
    svg = page[page.index('aria-label="confusion matrix"'):]
    svg = svg[: svg.index("</svg>")]
    # Each non-zero cell's count is a <text> element (searchable, crisp at any zoom); zeros
    # are left blank. Other texts are class names and colour-bar ticks like "0.2".
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    counts = sklearn_metrics.confusion_matrix(ctx.y_true, ctx.y_pred)
    assert sorted(int(t) for t in texts if t.isdigit()) == sorted(counts[counts > 0].tolist())
    assert {f"class_{i}" for i in range(30)} <= set(texts)


# ----------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _chromium_args(binary: str, profile: Path) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars"]


def test_browser_renders_the_report(tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium not found on PATH; install it with `bash .ci/install_system.sh` "
                    "(Debian's chromium package) to run the browser test")
    path = write_report(tmp_path / "report.html", _classification())
    shot = tmp_path / "shot.png"
    # One browser start does both: the screenshot goes to a file, the DOM to stdout.
    run = subprocess.run(
        _chromium_args(binary, tmp_path / "profile")
        + [f"--screenshot={shot}", "--dump-dom", "--window-size=1280,4000", path.as_uri()],
        capture_output=True, text=True, timeout=90)
    assert shot.is_file(), run.stderr[-2000:]
    dom = run.stdout

    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        pixels = np.asarray(image.convert("RGB"))
    packed = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    assert len(np.unique(packed)) > 500  # text antialiasing, the gradient header, plots: not blank
    # The header's blue gradient is at the top, the page's grey background at the sides.
    assert pixels[60, 640, 2] > pixels[60, 640, 0] + 60
    assert tuple(pixels[2000, 5]) == (243, 244, 246)

    assert dom.count('<svg class="plot"') == 4
    assert 'aria-label="confusion matrix"' in dom and "<text" in dom
    assert 'id="per-class-table"' in dom
