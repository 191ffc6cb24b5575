"""A torch-free prediction server: ``python -m kiln_edge.serve RUN [--host H] [--port P]``.

What ``kiln serve RUN --backend onnx`` starts (as a child process, so torch, which the ``kiln``
command imports, is never loaded where the model runs). Endpoints: ``POST /predict``
(``{"records": [{column: raw value, ...}, ...]}`` -> ``{"predictions": [...]}``, the rows
``OnnxRun.predict_frame`` gives), ``GET /health`` and ``GET /metadata``. A value the features
refuse is a 422 ``{"error": ..., "field": ...}``. Dynamic micro-batching and /metrics are only in
the torch-side server (``kiln.serve``) for now.
"""

import argparse
import asyncio
import json
import sys

import numpy as np

from kiln_edge.errors import EdgeError
from kiln_edge.run import OnnxRun

__all__ = ["create_edge_app", "main"]


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def create_edge_app(backend: OnnxRun, max_records: int = 1000):
    """A FastAPI app serving ``backend`` (an ``OnnxRun``)."""
    import pandas as pd
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    inputs = list(backend.inputs)
    metadata = {"model": backend.name, "backend": backend.backend_name,
                "inputs": [{"name": f.name, "column": f.column, "type": f.type} for f in inputs],
                "outputs": [{"name": f.name, "column": f.column, "type": f.type} for f in backend.outputs]}
    app = FastAPI(title=f"kiln (onnx): {backend.name}")
    lock = asyncio.Lock()  # one onnxruntime call at a time (it uses every core itself)

    def error(status, message, field=None):
        return JSONResponse({"error": message, "field": field}, status)

    @app.post("/predict")
    async def predict(request: Request):
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            return error(400, f"The body is not valid JSON ({err}).", "body")
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return error(422, 'The body needs a non-empty `records` list: {"records": [{...}, ...]}.', "records")
        if len(records) > max_records:
            return error(413, f"{len(records)} records; the server takes at most {max_records}.", "records")
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                return error(422, f"records[{i}] is not an object of column: value.", f"records[{i}]")
            for feature in inputs:
                if feature.column not in record:
                    return error(422, f"records[{i}] has no {feature.column!r} (feature {feature.name!r}).",
                                 f"records[{i}].{feature.column}")
        columns = {}
        for feature in inputs:
            column = np.empty(len(records), dtype=object)
            for i, record in enumerate(records):
                value = record[feature.column]
                column[i] = np.nan if value is None else value
            columns[feature.column] = pd.Series(column).infer_objects() if feature.type == "numeric" \
                else pd.Series(column)
        frame = pd.DataFrame(columns)
        try:
            async with lock:
                result = await asyncio.to_thread(backend.predict_frame, frame)
        except EdgeError as err:
            return error(422, str(err))
        names = list(result.columns)
        return {"predictions": [{c: _plain(v) for c, v in zip(names, row)}
                                for row in result.itertuples(index=False, name=None)]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": backend.name}

    @app.get("/metadata")
    async def get_metadata():
        return metadata

    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiln_edge.serve", description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-records", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("error: serving needs FastAPI and uvicorn: pip install 'kiln[serve,edge]'.", file=sys.stderr)
        return 2
    try:
        backend = OnnxRun(args.run)
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"serving {args.run} (onnx, no torch) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_edge_app(backend, args.max_records), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
