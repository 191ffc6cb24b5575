"""The prediction service: a FastAPI app around a backend that predicts raw rows.

    kiln serve runs/iris-20261129-101500 --port 8000
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'

Endpoints: ``POST /predict`` (JSON records), ``POST /predict/file`` (one image/WAV upload, for a
run with a single image or audio input), ``GET /health``, ``GET /metadata``, ``GET /metrics``
(Prometheus text), ``GET /openapi.json`` and ``/docs`` (FastAPI's).

The backend is injected: any object with ``inputs``/``outputs`` (fitted features) and
``predict_frame(frame) -> DataFrame``. The torch backend is a ``kiln.workflows.run.Run``, so the
server answers exactly what ``kiln predict`` writes. Bad requests get a 4xx naming the field
(``{"error": ..., "field": "records[3].age"}``), never a 500, and the server stays up.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request,
# UploadFile, imported inside create_app) as real objects.
import asyncio
import json
import tempfile
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiln.serve.batching import MicroBatcher
from kiln.serve.metrics import ServeMetrics
from kiln.serve.records import RequestError, json_type, needs_folder, records_to_rows

try:  # a faster JSON codec when installed (kiln[serve] brings it); the stdlib's otherwise
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

__all__ = ["ServeSettings", "create_app"]


@dataclass
class ServeSettings:
    """How the server batches, waits and what it accepts.

    Args:
        max_batch_size: most records per forward pass (default 32); 1 turns batching off.
        max_latency_ms: longest a request waits for others to join its batch (default 5 ms: well
            under a forward pass of a small model, so batching costs little latency).
        timeout_ms: a request not answered within this gets 504 (default 10 s).
        max_body_bytes: larger request bodies get 413 (default 10 MB: a few base64 images).
        max_records: more records in one request get 413 (default 1000).
        torch_threads: torch's intra-op threads while the server runs (default 1: one model
            thread next to the event loop beats two threads fighting over 2 cores for the small
            batches a server sees); None leaves torch's setting alone. Restored on shutdown.
    """
    max_batch_size: int = 32
    max_latency_ms: float = 5.0
    timeout_ms: float = 10_000.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_records: int = 1000
    torch_threads: int | None = 1

    def __post_init__(self):
        problems = [f"`{name}` must be positive, received {getattr(self, name)!r}"
                    for name in ("max_batch_size", "timeout_ms", "max_body_bytes", "max_records")
                    if not getattr(self, name) > 0]
        if self.max_latency_ms < 0:
            problems.append(f"`max_latency_ms` must be >= 0, received {self.max_latency_ms!r}")
        if problems:
            from kiln.errors import KilnValueError
            raise KilnValueError("Invalid server settings: " + "; ".join(problems) + ".")


def _plain(value):
    """numpy scalars/arrays and tuples -> JSON-able Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _predictions(frame) -> list[dict]:
    """A prediction DataFrame -> one JSON-ready dict per row (column by column, not cell by cell)."""
    columns = [str(c) for c in frame.columns]
    lists = []
    for column in frame.columns:
        values = frame[column].to_numpy()
        if values.dtype.kind in "biuf":
            plain = values.tolist()
            if values.dtype.kind == "f" and np.isnan(values).any():
                plain = [None if v != v else v for v in plain]
        else:
            plain = [_plain(v) for v in values]
        lists.append(plain)
    return [dict(zip(columns, row)) for row in zip(*lists)] if lists else [{} for _ in range(len(frame))]


def _json_bytes(payload) -> bytes:
    if orjson is not None:
        return orjson.dumps(payload)
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()


def _parse_json(data: bytes):
    if orjson is not None:
        try:
            return orjson.loads(data)
        except ValueError:
            pass  # NaN/Infinity literals, which the stdlib reads: let it decide (and word the error)
    return json.loads(data)


def _feature_schema(feature) -> dict:
    try:
        spec = _plain(feature.spec())
    except Exception:  # an unfitted feature: describe what we can
        spec = {}
    if isinstance(spec.get("classes"), list) and len(spec["classes"]) > 1000:
        spec["classes"] = spec["classes"][:1000] + ["..."]
    return {"name": feature.name, "column": feature.column, "type": feature.type, "spec": spec,
            "json": json_type(feature)}


def _model_name(backend) -> str:
    name = getattr(backend, "name", None)
    if name:
        return str(name)
    text = getattr(backend, "config_text", "") or ""
    for line in text.splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    path = getattr(backend, "path", None)
    return Path(path).name if path is not None else "model"


class _BodyLimit:
    """ASGI middleware: a POST body over ``limit`` bytes gets 413 before any handler reads it.

    Why buffer here: the declared Content-Length can be absent (chunked uploads), so the bytes
    are counted as they arrive; an oversized body is drained (up to a hard cap) so the client can
    read the 413 instead of a reset connection.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            more = message.get("more_body", False)
            if size > self.limit:
                too_big = True
            if too_big:
                if size > 20 * self.limit:
                    break  # stop reading an absurd body; the connection will close
                continue
            chunks.append(body)
        if too_big:
            error = RequestError(413, f"The request body is over the server's limit of {self.limit} bytes "
                                      f"(--max-body-bytes). Send fewer records per request.", "body")
            payload = json.dumps(error.body()).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        data, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _Count:
    """ASGI middleware: every request's endpoint, status and latency into ``metrics``; an
    exception below becomes a JSON 500 (when no response has started) and the server stays up.
    Plain ASGI rather than ``@app.middleware("http")``, which costs a task and a stream per request."""

    def __init__(self, app, metrics, paths):
        self.app, self.metrics, self.paths = app, metrics, paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = None

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:  # a bug below: still a JSON answer, and the server stays up
            if status is None:
                payload = json.dumps({"error": "internal error (see the server log)", "field": None}).encode()
                await sending({"type": "http.response.start", "status": 500,
                               "headers": [(b"content-type", b"application/json"),
                                           (b"content-length", str(len(payload)).encode())]})
                await send({"type": "http.response.body", "body": payload})
        route = scope.get("route")
        path = scope.get("path", "")
        endpoint = getattr(route, "path", None) or (path if path in self.paths else "unmatched")
        self.metrics.observe_request(endpoint, status or 500, time.perf_counter() - started)


def create_app(backend, settings: ServeSettings | None = None):
    """A FastAPI app serving ``backend`` (a ``Run``, or any object with ``inputs``, ``outputs`` and
    ``predict_frame(frame) -> DataFrame``).

    Args:
        backend: what predicts; the torch backend is ``kiln.workflows.run.load_run(path)``.
        settings: batching, timeout and size limits (default ``ServeSettings()``).

    Example:
        >>> import uvicorn
        >>> uvicorn.run(create_app(load_run("runs/iris-20261129-101500")), host="127.0.0.1", port=8000)
    """
    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.responses import JSONResponse, PlainTextResponse, Response

    import kiln
    from kiln.errors import KilnError

    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    batcher = MicroBatcher(backend.predict_frame, settings.max_batch_size, settings.max_latency_ms,
                           on_batch=metrics.observe_batch, convert=_predictions)
    inputs, outputs = list(backend.inputs), list(backend.outputs)
    model_name = _model_name(backend)
    media = needs_folder(inputs)
    metadata = {"model": model_name, "kiln_version": kiln.__version__,
                "backend": getattr(backend, "backend_name", "torch"),
                "inputs": [_feature_schema(f) for f in inputs], "outputs": [_feature_schema(f) for f in outputs],
                "limits": {"max_records": settings.max_records, "max_body_bytes": settings.max_body_bytes,
                           "max_batch_size": settings.max_batch_size, "timeout_ms": settings.timeout_ms}}

    @asynccontextmanager
    async def lifespan(app):
        previous = None
        if settings.torch_threads:
            import torch
            previous = torch.get_num_threads()
            torch.set_num_threads(settings.torch_threads)
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            if previous is not None:
                import torch
                torch.set_num_threads(previous)

    app = FastAPI(title=f"kiln: {model_name}", version=kiln.__version__, lifespan=lifespan,
                  description="Predictions from a kiln run; the same labels/probabilities/values as `kiln predict`.")
    app.state.metrics, app.state.batcher, app.state.settings = metrics, batcher, settings
    paths = {"/predict", "/predict/file", "/health", "/metadata", "/metrics", "/openapi.json", "/docs"}
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)  # inside `_Count`, so a 413 is counted
    app.add_middleware(_Count, metrics=metrics, paths=paths)

    async def answer(frame):
        """Queue ``frame``; predictions as JSON, or the 4xx/5xx/504 that fits what went wrong."""
        # No shield: on timeout the caller's future is cancelled, so the worker skips its rows.
        try:
            result = await asyncio.wait_for(batcher.submit(frame), settings.timeout_ms / 1000)
        except asyncio.TimeoutError:
            return JSONResponse(RequestError(504, f"The prediction took longer than the server's timeout of "
                                                  f"{settings.timeout_ms:g} ms (--timeout-ms).").body(), 504)
        except KilnError as err:  # the features refused a value (an unreadable image, an unseen label)
            return JSONResponse(RequestError(422, str(err)).body(), 422)
        except Exception as err:
            return JSONResponse({"error": f"internal error: {type(err).__name__}: {err}", "field": None}, 500)
        if not isinstance(result, list):  # a DataFrame (no converter in the batcher)
            result = _predictions(result)
        return Response(_json_bytes({"predictions": result}), media_type="application/json")

    record_schema = {"type": "object", "required": [f.column for f in inputs],
                     "properties": {f.column: json_type(f) for f in inputs}}
    predict_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["records"],
        "properties": {"records": {"type": "array", "items": record_schema, "maxItems": settings.max_records}}}}}}

    @app.post("/predict", openapi_extra={"requestBody": predict_body},
              summary="Predict for JSON records (one object of raw feature values per row)")
    async def predict(request: Request):
        try:
            body = _parse_json(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            return JSONResponse(RequestError(400, f"The body is not valid JSON ({err}). Send "
                                                  f'{{"records": [{{...}}, ...]}}.', "body").body(), 400)
        if not isinstance(body, dict) or "records" not in body:
            return JSONResponse(RequestError(422, 'The body needs a `records` list: {"records": [{...}, ...]}.',
                                             "records").body(), 422)
        if not media:  # tabular/text runs: no temporary folder per request
            try:
                rows = records_to_rows(body["records"], inputs, None, settings.max_records)
            except RequestError as err:
                return JSONResponse(err.body(), err.status)
            return await answer(rows)
        with tempfile.TemporaryDirectory(prefix="kiln-serve-") as folder:  # base64 media live here
            try:
                rows = records_to_rows(body["records"], inputs, Path(folder), settings.max_records)
            except RequestError as err:
                return JSONResponse(err.body(), err.status)
            return await answer(rows)

    @app.post("/predict/file", summary="Predict for one uploaded image or WAV file (single-input runs)")
    async def predict_file(file: UploadFile = File(...)):
        if len(inputs) != 1 or inputs[0].type not in ("image", "audio"):
            kinds = ", ".join(f"{f.name} ({f.type})" for f in inputs)
            return JSONResponse(RequestError(422, f"/predict/file serves runs with one image or audio input; this "
                                                  f"run's inputs are {kinds}. Use POST /predict.", "file").body(),
                                422)
        feature = inputs[0]
        import pandas as pd
        with tempfile.TemporaryDirectory(prefix="kiln-serve-") as folder:
            path = Path(folder) / ("upload" + Path(file.filename or "").suffix.lower()[:8])
            path.write_bytes(await file.read())
            column = np.empty(1, dtype=object)
            column[0] = str(path)
            return await answer(pd.DataFrame({feature.column: column}))

    @app.get("/health", summary="Liveness: 200 while the server can answer")
    async def health():
        return {"status": "ok", "model": model_name}

    @app.get("/metadata", summary="The model's name, kiln version, backend, and input/output schema")
    async def get_metadata():
        return metadata

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text-format metrics")
    async def get_metrics():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app
