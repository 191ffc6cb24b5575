"""`kiln serve` against a plain FastAPI server on the same model, under the same load (issue 10, item 18).

    python bench/serve_load.py RUN [--backends torch,onnx] [--clients 1,8,32,128] [--records 1,32]
                                   [--requests 400] [--threads 1]

For each backend two servers run side by side, each in its own process on 127.0.0.1:

- kiln: `python -m kiln serve RUN --backend torch|onnx --threads 1` (micro-batching on, its defaults);
- plain: this file's `plain_app` — what one would write by hand with FastAPI: read the JSON,
  encode the records with the run's fitted statistics in a few lines of NumPy, call the same model
  once per request (torch under `inference_mode`, or one `session.run`) in the handler, answer
  labels and probabilities with orjson. No batching, no checks beyond what Python raises.

One load generator drives both: `clients` httpx.AsyncClient tasks, each sending its next request
as soon as the last answered (a closed loop), `--requests` requests in all (at least 4 per client),
after a warm-up. Each (clients, records) cell runs kiln, then plain, then kiln and plain again, and
keeps each server's better run (the machine is shared; the better run is the less disturbed one).
Prints predictions/s and p50/p99 per server and the ratios kiln/plain (throughput; p99).
"""

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


# ---- the plain server -------------------------------------------------------------------------
def plain_app(run: str, backend: str, threads: int):
    """A hand-written FastAPI server: the run's model called once per request, nothing else."""
    import orjson
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from kiln_edge.features import load_features

    model_dir = Path(run) / "model"
    roles = json.loads((model_dir / "roles.json").read_text())["roles"]
    features = load_features(model_dir)
    inputs = [features[n] for n, r in roles.items() if r == "input"]
    output = next(features[n] for n, r in roles.items() if r == "output")
    encoders = []  # (column, name, encode(list of values) -> np.ndarray)
    for f in inputs:
        if f.type == "numeric":
            encoders.append((f.column, f.name, lambda v, f=f: ((np.array(
                [f.fill_value if x is None else x for x in v], dtype=np.float64) - f.shift) / f.divisor
            ).astype(np.float32).reshape(-1, 1)))
        elif f.type == "category":
            ids = {c: i for i, c in enumerate(f.classes)}
            encoders.append((f.column, f.name, lambda v, ids=ids: np.array([ids.get(x, 0) for x in v], np.int64)))
        else:
            raise SystemExit(f"the plain server encodes numeric and category inputs only, not {f.type}")
    classes = list(output.classes)
    if backend == "torch":
        import torch
        import kiln
        torch.set_num_threads(threads)
        model = kiln.load_model(model_dir).eval()

        def forward(x):
            with torch.inference_mode():
                logits = model({k: torch.from_numpy(v) for k, v in x.items()})
            return (torch.sigmoid(logits) if output.type == "binary" else torch.softmax(logits, -1)).numpy()
    else:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(Path(run) / "export" / "model.onnx"), options)

        def forward(x):
            logits = session.run(None, x)[0].astype(np.float64)
            if output.type == "binary":
                return (1 / (1 + np.exp(-logits))).astype(np.float32)
            e = np.exp(logits - logits.max(-1, keepdims=True))
            return (e / e.sum(-1, keepdims=True)).astype(np.float32)

    app = FastAPI()

    @app.get("/metadata")
    async def metadata():
        return {"inputs": [{"column": f.column, "type": f.type, "spec": f.spec()} for f in inputs]}

    @app.post("/predict")
    async def predict(request: Request):
        records = orjson.loads(await request.body())["records"]
        x = {name: encode([r[column] for r in records]) for column, name, encode in encoders}
        p = forward(x)
        if output.type == "binary":
            p = p.reshape(-1)
            rows = [{output.name: classes[1] if q >= 0.5 else classes[0], f"{output.name}_probability": q}
                    for q in p.tolist()]
        else:
            rows = [{output.name: classes[int(np.argmax(q))],
                     **{f"{output.name}_probability_{c}": v for c, v in zip(classes, q.tolist())}} for q in p]
        return Response(orjson.dumps({"predictions": rows}), media_type="application/json")

    return app


# ---- servers ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(kind: str, run: str, backend: str, threads: int):
    port = free_port()
    if kind == "kiln":
        command = [sys.executable, "-m", "kiln", "serve", run, "--backend", backend, "--host", "127.0.0.1",
                   "--port", str(port), "--threads", str(threads)]
    else:
        command = [sys.executable, __file__, run, "--serve-plain", str(port), "--backends", backend,
                   "--threads", str(threads)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx
    deadline = time.monotonic() + 90
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=5)
            if response.status_code == 200:
                return server, port, response.json()
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"the server did not start: {' '.join(command)}")
        time.sleep(0.2)


def stop(server) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


# ---- the load ---------------------------------------------------------------------------------
def example_record(metadata, rng) -> dict:
    """One record of plausible raw values for the run's inputs (from /metadata)."""
    record = {}
    for feature in metadata["inputs"]:
        classes = feature["spec"].get("classes")
        if feature["type"] in ("category", "binary") and classes:
            record[feature["column"]] = classes[int(rng.integers(len(classes)))]
        else:
            record[feature["column"]] = round(float(rng.normal()), 4)
    return record


async def drive(port: int, bodies: list[bytes], clients: int, requests: int, records: int) -> dict:
    """``requests`` POSTs from ``clients`` closed-loop clients; predictions/s and latency percentiles."""
    import httpx
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as http:
        failed = []

        async def client(turns: int, first: int, latencies: list):
            for i in range(turns):
                started = time.perf_counter()
                try:
                    response = await http.post("/predict", content=bodies[(first + i) % len(bodies)], headers=headers)
                except httpx.TransportError as err:  # counted and shown, not timed: a closed connection
                    failed.append(type(err).__name__)
                    continue
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:200]

        warm: list = []
        await asyncio.gather(*(client(2, c, warm) for c in range(clients)))
        turns = max(4, requests // clients)
        latencies: list = []
        started = time.perf_counter()
        await asyncio.gather(*(client(turns, c * 7, latencies) for c in range(clients)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1e3
    return {"pred_s": len(lat) * records / elapsed, "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "requests": len(lat), "failed": len(failed)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--records", default="1,32", help="records per request, comma-separated")
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (>= 4 per client)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per server; the best is kept")
    parser.add_argument("--threads", type=int, default=1, help="the model's intra-op threads, both servers")
    parser.add_argument("--serve-plain", type=int, default=None, help=argparse.SUPPRESS)  # the plain server's port
    args = parser.parse_args()
    if args.serve_plain is not None:
        import uvicorn
        uvicorn.run(plain_app(args.run, args.backends, args.threads), host="127.0.0.1", port=args.serve_plain,
                    log_level="warning")
        return
    print(f"# {platform.node()} ({platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}), {time.strftime('%Y-%m-%d %H:%M')}, {args.run}, threads {args.threads}")
    print("| backend | records | clients | kiln pred/s | plain pred/s | ratio | kiln p50 | plain p50 | kiln p99 | "
          "plain p99 | p99 ratio | failed (kiln/plain) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for backend in args.backends.split(","):
        servers = {kind: start(kind, args.run, backend, args.threads) for kind in ("kiln", "plain")}
        try:
            rng = np.random.default_rng(0)
            pool = [example_record(servers["kiln"][2], rng) for _ in range(64)]
            for records in map(int, args.records.split(",")):
                bodies = [json.dumps({"records": [pool[(i + j) % 64] for j in range(records)]}).encode()
                          for i in range(64)]
                for clients in map(int, args.clients.split(",")):
                    best = {}
                    for _ in range(args.repeats):
                        for kind in ("kiln", "plain"):
                            r = asyncio.run(drive(servers[kind][1], bodies, clients, args.requests, records))
                            if kind not in best or r["pred_s"] > best[kind]["pred_s"]:
                                best[kind] = r
                    k, p = best["kiln"], best["plain"]
                    print(f"| {backend} | {records} | {clients} | {k['pred_s']:,.0f} | {p['pred_s']:,.0f} | "
                          f"**{k['pred_s'] / p['pred_s']:.2f}** | {k['p50']:.1f} | {p['p50']:.1f} | {k['p99']:.1f} | "
                          f"{p['p99']:.1f} | {k['p99'] / p['p99']:.2f} | {k['failed']}/{p['failed']} |", flush=True)
        finally:
            for server, _, _ in servers.values():
                stop(server)


if __name__ == "__main__":
    main()
