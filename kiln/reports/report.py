"""report.html: one self-contained page that shows how a run went.

``write_report(path, ReportContext(...))`` writes the page; ``render_report`` returns the HTML
text. Three parts, one file each: ``context`` (``ReportContext``: what a report shows, checked
once), ``analysis`` (the numbers: confusion matrix, per-class scores, ROC, regression metrics;
no HTML) and ``html`` (the page: inline CSS, inline SVG plots, no scripts, no links, so it opens
offline, attaches to an email and archives as is). This file writes it to disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from kiln.errors import KilnTypeError
from kiln.reports.context import ReportContext
from kiln.reports.html import render_report

__all__ = ["ReportContext", "write_report", "render_report"]


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


