"""The torch side of ``kiln serve``: the shared server (``kiln_edge.server``) on a kiln ``Run``.

    kiln serve runs/iris-20261129-101500 --port 8000
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'

The app, micro-batcher, request checks and metrics live in ``kiln_edge.server`` (torch-free, so
the onnx backend shares them without loading torch). What this layer adds is all the torch
backend needs: kiln's errors (``KilnError``, e.g. ``DataError`` for an unreadable image) answered
422, and torch's intra-op threads set to ``settings.model_threads`` while the server runs.
"""

from __future__ import annotations

from contextlib import contextmanager

from kiln_edge.server import ServeSettings
from kiln_edge.server import create_app as _create_app

__all__ = ["ServeSettings", "create_app", "load_backend"]


def load_backend(path):
    """The torch backend for a run folder: ``kiln.workflows.run.load_run(path)`` (what ``kiln predict`` uses)."""
    from kiln.workflows.run import load_run
    return load_run(path)


def create_app(backend, settings: ServeSettings | None = None):
    """A FastAPI app serving ``backend`` (a kiln ``Run``, or any object with ``inputs``, ``outputs``
    and ``predict_frame(frame) -> DataFrame``) with kiln's errors as 422 and torch's threads set.

    Args:
        backend: what predicts; the torch backend is ``load_backend(path)`` (``load_run``).
        settings: batching, timeout, size limits and model threads (default ``ServeSettings()``).

    Example:
        >>> import uvicorn
        >>> uvicorn.run(create_app(load_backend("runs/iris-20261129-101500")), host="127.0.0.1", port=8000)
    """
    from kiln.errors import KilnError
    settings = settings or ServeSettings()
    return _create_app(backend, settings, data_errors=(KilnError,),
                       while_serving=lambda: _torch_threads(settings.model_threads),
                       backend_name=getattr(backend, "backend_name", None) or "torch")


@contextmanager
def _torch_threads(threads: int | None):
    """torch on ``threads`` intra-op threads while the server runs, restored after (None: left alone)."""
    if not threads:
        yield
        return
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
