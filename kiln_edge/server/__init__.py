"""The prediction server both backends share, with no torch in it.

    from kiln_edge import OnnxRun
    from kiln_edge.server import ServeSettings, create_app
    app = create_app(OnnxRun("runs/iris-20261129-101500", threads=1), ServeSettings(max_batch_size=32))

``app`` (the FastAPI app), ``settings`` (``ServeSettings``: the ``kiln serve`` flags),
``batching`` (dynamic micro-batching), ``records`` (JSON rows -> features' raw values, or a 4xx),
``metrics`` (Prometheus text), ``middleware`` (body limit, request counting). ``kiln.serve``
re-exports these names and adds the torch backend; ``python -m kiln_edge.serve RUN`` serves the
onnx one. FastAPI/uvicorn are imported only when an app is built (``pip install kiln[serve]``).
"""

from kiln_edge.server.app import create_app
from kiln_edge.server.batching import MicroBatcher
from kiln_edge.server.metrics import ServeMetrics
from kiln_edge.server.records import RequestError
from kiln_edge.server.settings import ServeSettings, ServeSettingsError

__all__ = ["create_app", "ServeSettings", "ServeSettingsError", "MicroBatcher", "ServeMetrics", "RequestError"]
