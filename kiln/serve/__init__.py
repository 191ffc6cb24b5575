"""Serving a finished run over HTTP: ``kiln serve RUN [--backend torch|onnx]``.

    from kiln.serve import create_app, load_backend, ServeSettings, Client
    app = create_app(load_backend("runs/iris-20261129-101500"), ServeSettings(max_batch_size=32))

One server for both backends: the app, micro-batching, request checks and metrics are in
``kiln_edge.server`` (torch-free, so ``--backend onnx`` runs without torch); this package
re-exports them and adds the torch backend (``app``: ``load_backend``, kiln's errors as 422,
torch's threads) and ``client`` (an httpx client). FastAPI/uvicorn/httpx are imported only when
these names are used (``pip install kiln[serve]``).
"""

from __future__ import annotations

__all__ = ["create_app", "load_backend", "ServeSettings", "Client", "ServeError", "MicroBatcher", "ServeMetrics",
           "RequestError"]


def __getattr__(name):
    if name in ("create_app", "load_backend", "ServeSettings"):
        from kiln.serve import app
        return getattr(app, name)
    if name in ("Client", "ServeError"):
        from kiln.serve import client
        return getattr(client, name)
    if name in ("MicroBatcher", "ServeMetrics", "RequestError"):
        import kiln_edge.server
        return getattr(kiln_edge.server, name)
    raise AttributeError(f"module 'kiln.serve' has no attribute {name!r}")
