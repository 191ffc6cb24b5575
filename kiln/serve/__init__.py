"""Serving a finished run over HTTP: ``kiln serve RUN``.

    from kiln.serve import create_app, ServeSettings, Client

``app`` (the FastAPI app), ``batching`` (dynamic micro-batching), ``records`` (JSON rows ->
features' raw values, or a 4xx), ``metrics`` (Prometheus text) and ``client`` (an httpx client).
FastAPI/uvicorn/httpx are imported only when these names are used (``pip install kiln[serve]``).
"""

from __future__ import annotations

__all__ = ["create_app", "ServeSettings", "Client", "MicroBatcher"]


def __getattr__(name):
    if name in ("create_app", "ServeSettings"):
        from kiln.serve import app
        return getattr(app, name)
    if name == "Client":
        from kiln.serve.client import Client
        return Client
    if name == "MicroBatcher":
        from kiln.serve.batching import MicroBatcher
        return MicroBatcher
    raise AttributeError(f"module 'kiln.serve' has no attribute {name!r}")
