"""Reports: a run as one self-contained ``report.html``.

Example:
    >>> from kiln.reports import ReportContext, write_report
    >>> ctx = ReportContext(title="Iris", run_name="iris-1", task="classification",
    ...                     history=history, y_true=y, y_pred=p, class_names=names)  # doctest: +SKIP
    >>> write_report("runs/iris-1/report.html", ctx)  # doctest: +SKIP

matplotlib (plots) is imported only when a report is rendered.
"""

from kiln.reports.report import ReportContext, render_report, write_report

__all__ = ["ReportContext", "write_report", "render_report"]
