"""The prediction service: one FastAPI app for every backend that predicts raw rows.

    python -m kiln_edge.serve runs/iris-20261129-101500 --port 8000     # onnx backend, no torch
    kiln serve runs/iris-20261129-101500 --port 8000                    # torch backend (kiln.serve)
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'

Endpoints: ``POST /predict`` (JSON records), ``POST /predict/file`` (one image/WAV upload, for a
run with a single image or audio input), ``GET /health``, ``GET /metadata``, ``GET /metrics``
(Prometheus text), ``GET /openapi.json`` and ``/docs`` (FastAPI's).

The backend is injected: any object with ``inputs``/``outputs`` (fitted features) and
``predict_frame(frame) -> DataFrame`` — kiln's ``Run`` (torch, through ``kiln.serve``) or
``kiln_edge.OnnxRun``. Why this lives in kiln_edge: the onnx server must never import torch, and
every ``kiln.*`` module does; ``kiln.serve`` only adds the torch backend's errors and threads.
Bad requests get a 4xx naming the field (``{"error": ..., "field": "records[3].age"}``), never
a 500, and the server stays up.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request,
# UploadFile, imported inside create_app) as real objects.
import asyncio
import gc
import json
import logging
import sys
import tempfile
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

import numpy as np

from kiln_edge.errors import EdgeError
from kiln_edge.server.batching import MicroBatcher
from kiln_edge.server.metrics import ServeMetrics
from kiln_edge.server.middleware import BodyLimit, CountRequests, Gate
from kiln_edge.server.records import RequestError, check_image_pixels, json_type, needs_folder, records_to_rows
from kiln_edge.server.settings import ServeSettings

try:  # a faster JSON codec when installed (kiln[serve] brings it); the stdlib's otherwise
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

__all__ = ["create_app"]

_PATHS = {"/predict", "/predict/file", "/health", "/metadata", "/metrics", "/openapi.json", "/docs"}


def create_app(backend, settings: ServeSettings | None = None, *, data_errors: tuple = (),
               while_serving=None, backend_name: str | None = None):
    """A FastAPI app serving ``backend``.

    Args:
        backend: what predicts: ``inputs``, ``outputs`` (fitted features) and
            ``predict_frame(frame) -> DataFrame`` (``kiln_edge.OnnxRun``, or kiln's ``Run``).
        settings: batching, timeout, size limits (default ``ServeSettings()``).
        data_errors: exception types that mean "the features refused a value" (an unreadable
            image, an unseen label), answered 422 with the message; ``EdgeError`` always is.
            ``kiln.serve`` adds ``KilnError`` (kiln_edge cannot import it: kiln imports torch).
        while_serving: optional ``() -> context manager`` held for the server's life (the torch
            backend sets torch's intra-op threads there).
        backend_name: ``/metadata``'s ``backend`` (default ``backend.backend_name``, else "custom").

    Example:
        >>> import uvicorn
        >>> uvicorn.run(create_app(OnnxRun("runs/iris-20261129-101500", threads=1)), port=8000)
    """
    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.responses import JSONResponse, PlainTextResponse, Response

    settings = settings or ServeSettings()
    refused = (EdgeError, *data_errors)
    metrics = ServeMetrics()
    # JSON records skip the DataFrame where the backend can (LoadedRun.predict_columns: the same answers)
    fast = getattr(backend, "predict_columns", None)
    batcher = MicroBatcher(backend.predict_frame, settings.max_batch_size, settings.max_latency_ms,
                           on_batch=metrics.observe_batch, convert=_predictions,
                           predict_rows=(lambda rows: fast(rows.arrays())) if fast is not None else None)
    inputs = list(backend.inputs)
    model_name, version = _model_name(backend), _kiln_version()
    metadata = _metadata(backend, settings, model_name, version,
                         backend_name or getattr(backend, "backend_name", None) or "custom")
    media = needs_folder(inputs)

    @asynccontextmanager
    async def lifespan(app):
        with while_serving() if while_serving is not None else nullcontext():
            # Everything loaded so far (torch, the model, the app) lives as long as the server: keep
            # it out of the cyclic GC's scans, or every full collection walks torch's ~10^6 objects
            # in the middle of a request (the torch backend's p99 at 8 connections: 79 ms -> see RESULTS).
            gc.collect()
            gc.freeze()
            batcher.start()
            try:
                yield
            finally:
                await batcher.stop()
                gc.unfreeze()

    app = FastAPI(title=f"kiln: {model_name}", version=version, lifespan=lifespan,
                  description="Predictions from a kiln run; the same labels/probabilities/values as `kiln predict`.")
    app.state.metrics, app.state.batcher, app.state.settings = metrics, batcher, settings
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(Gate, api_key=settings.api_key, allowed_hosts=settings.allowed_hosts)  # before any body is read  # inside `CountRequests`, so a 413 is counted
    app.add_middleware(CountRequests, metrics=metrics, paths=_PATHS)

    def refuse(error: RequestError):
        return JSONResponse(error.body(), error.status)

    async def answer(frame):
        """Queue ``frame``; predictions as JSON, or the 4xx/5xx/504 that fits what went wrong."""
        # No shield: on timeout the caller's future is cancelled, so the worker skips its rows.
        try:
            result = await asyncio.wait_for(batcher.submit(frame), settings.timeout_ms / 1000)
        except asyncio.TimeoutError:
            return refuse(RequestError(504, f"The prediction took longer than the server's timeout of "
                                            f"{settings.timeout_ms:g} ms (--timeout-ms)."))
        except refused as err:  # the features refused a value (an unreadable image, an unseen label)
            return refuse(RequestError(422, str(err)))
        except Exception:  # a bug or a broken backend: logged here, never echoed to the client
            logging.getLogger("kiln.serve").exception("the backend failed on a /predict batch")
            return JSONResponse({"error": "internal error (see the server log)", "field": None}, 500)
        return Response(_json_bytes({"predictions": result}), media_type="application/json")

    @app.post("/predict", openapi_extra={"requestBody": _predict_body(inputs, settings.max_records)},
              responses=_ERROR_RESPONSES, summary="Predict for JSON records (one object of raw feature values per row)")
    async def predict(request: Request):
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            # Why strict: text/plain and form bodies are "simple" requests a page on any site can make a
            # browser send without asking (no CORS preflight); JSON cannot be sent that way.
            return refuse(RequestError(415, f"POST /predict takes JSON: send `Content-Type: application/json` "
                                            f"(received {kind or 'none'!r}). Upload files to /predict/file.",
                                       "content-type"))
        try:
            body = _parse_json(await request.body())
        except RequestError as err:  # nested too deeply
            return refuse(err)
        except (ValueError, UnicodeDecodeError) as err:
            return refuse(RequestError(400, f"The body is not valid JSON ({err}). Send "
                                            f'{{"records": [{{...}}, ...]}}.', "body"))
        if not isinstance(body, dict) or "records" not in body:
            return refuse(RequestError(422, 'The body needs a `records` list: {"records": [{...}, ...]}.', "records"))
        if not media:  # tabular/text runs: no temporary folder per request
            try:
                rows = records_to_rows(body["records"], inputs, None, settings.max_records, settings.max_image_pixels)
            except RequestError as err:
                return refuse(err)
            return await answer(rows)
        with tempfile.TemporaryDirectory(prefix="kiln-serve-") as folder:  # base64 media live here
            try:
                rows = records_to_rows(body["records"], inputs, Path(folder), settings.max_records,
                                       settings.max_image_pixels)
            except RequestError as err:
                return refuse(err)
            return await answer(rows)

    # Listed in the OpenAPI document only where it can answer: runs with one image or audio input.
    @app.post("/predict/file", responses=_ERROR_RESPONSES, include_in_schema=len(inputs) == 1 and media,
              summary="Predict for one uploaded image or WAV file (single-input runs)")
    async def predict_file(file: UploadFile = File(...)):
        if len(inputs) != 1 or inputs[0].type not in ("image", "audio"):
            kinds = ", ".join(f"{f.name} ({f.type})" for f in inputs)
            return refuse(RequestError(422, f"/predict/file serves runs with one image or audio input; this run's "
                                            f"inputs are {kinds}. Use POST /predict.", "file"))
        import pandas as pd
        with tempfile.TemporaryDirectory(prefix="kiln-serve-") as folder:
            path = Path(folder) / ("upload" + Path(file.filename or "").suffix.lower()[:8])
            data = await file.read()
            if inputs[0].type == "image":
                try:
                    check_image_pixels(data, "file", settings.max_image_pixels)
                except RequestError as err:
                    return refuse(err)
            path.write_bytes(data)
            column = np.empty(1, dtype=object)
            column[0] = str(path)  # a path, read by the feature as `kiln predict` reads files
            return await answer(pd.DataFrame({inputs[0].column: column}))

    @app.get("/health", summary="Liveness: 200 while the server can answer")
    async def health():
        return {"status": "ok", "model": model_name}

    @app.get("/metadata", summary="The model's name, kiln version, backend, and input/output schema")
    async def get_metadata():
        # Read live: proves an onnx server never loaded torch (not even through a feature).
        return {**metadata, "torch_loaded": "torch" in sys.modules}

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text-format metrics")
    async def get_metrics():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


# ---- the backend described ---------------------------------------------------------------------
def _metadata(backend, settings: ServeSettings, model_name: str, version: str, backend_name: str) -> dict:
    return {"model": model_name, "kiln_version": version, "backend": backend_name,
            "inputs": [_feature_schema(f) for f in backend.inputs],
            "outputs": [_feature_schema(f) for f in backend.outputs],
            "limits": {"max_records": settings.max_records, "max_body_bytes": settings.max_body_bytes,
                       "max_batch_size": settings.max_batch_size, "max_latency_ms": settings.max_latency_ms,
                       "timeout_ms": settings.timeout_ms, "max_image_pixels": settings.max_image_pixels}}


_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["error", "field"],
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}}}}}}
# What a request can get besides 200: each names the field at fault (docs/serving.md, "Errors").
_ERROR_RESPONSES = {
    400: {"description": "The body is not valid JSON (or not UTF-8).", **_ERROR},
    401: {"description": "An API key is needed (--api-key-file) and was missing or wrong.", **_ERROR},
    408: {"description": "The body did not arrive within --body-timeout-s.", **_ERROR},
    413: {"description": "The body, the number of records or an image's pixels are over the server's limits.",
          **_ERROR},
    415: {"description": "POST /predict got a body that is not declared `application/json`.", **_ERROR},
    421: {"description": "The Host header is not among --allowed-host.", **_ERROR},
    422: {"description": "A missing field, a wrong type, or a value the features refuse.", **_ERROR},
    504: {"description": "The prediction took longer than --timeout-ms.", **_ERROR},
}


def _predict_body(inputs, max_records: int) -> dict:
    """The OpenAPI request body of /predict, from the run's input features."""
    record = {"type": "object", "required": [f.column for f in inputs],
              "properties": {f.column: json_type(f) for f in inputs}}
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["records"],
        "properties": {"records": {"type": "array", "items": record, "minItems": 1, "maxItems": max_records}}}}}}


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


def _kiln_version() -> str:
    """The installed kiln's version, read without importing kiln (which imports torch)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("kiln")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


# ---- JSON in and out ---------------------------------------------------------------------------
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


MAX_JSON_DEPTH = 32  # a request needs 5 levels ({"records": [{"image": [[[r, g, b]]]}]}); 32 leaves room


def _parse_json(data: bytes):
    """The body's JSON, or a ``RequestError`` (400) when arrays/objects nest deeper than
    ``MAX_JSON_DEPTH``; a ``ValueError`` when it is not JSON.

    Why a depth limit: the stdlib decoder (the fallback, and the one NaN literals take) and every
    ``repr`` of the value recurse, so 1,000 nested arrays or 50,000 nested objects used to end in
    a ``RecursionError`` (a 500). orjson stops at 1,024 levels itself; the check below bounds the
    rest at a depth no request needs.
    """
    value = None
    try:
        if orjson is not None:
            try:
                value = orjson.loads(data)
            except ValueError as err:
                if "recursion" in str(err).lower():
                    raise RecursionError from err
                value = json.loads(data)  # NaN/Infinity literals, which the stdlib reads (and words the error)
        else:
            value = json.loads(data)
    except RecursionError:
        value = _TOO_DEEP
    if value is _TOO_DEEP or _deeper_than(value, MAX_JSON_DEPTH):
        raise RequestError(400, f"The body nests arrays/objects more than {MAX_JSON_DEPTH} levels deep; a request "
                                f'needs a handful ({{"records": [{{...}}, ...]}}, images as nested lists of pixels).',
                           "body")
    return value


_TOO_DEEP = object()


def _deeper_than(value, limit: int) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` levels deep (level by level, no recursion)."""
    level = [value] if isinstance(value, (list, dict)) else []
    for _ in range(limit):
        below = []
        for item in level:
            below.extend(v for v in (item.values() if isinstance(item, dict) else item) if isinstance(v, (list, dict)))
        if not below:
            return False
        level = below
    return bool(level)
