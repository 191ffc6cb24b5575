"""Load-test `kiln serve` over loopback: predictions/s, requests/s and p50/p99 latency.

    python bench/serve_load.py RUN [--records-per-request 1|N|mixed] [--concurrency 32]
                                   [--requests 400] [--seconds 20] [--backend torch|onnx]
                                   [--threads 1]

The server runs in its own process (`python -m kiln serve RUN --backend torch|onnx`; onnx needs
`kiln export RUN --format onnx` first and serves without torch); this process drives it with
`concurrency` threads over keep-alive connections (the stdlib's http.client: a light client, so
the load generator takes as little of the shared CPU as it can). Each request sends
`--records-per-request` records built from the run's input schema; `mixed` draws 1-32 records
per request (uniform, seeded). A run stops after `--requests` requests or `--seconds` seconds,
whichever comes first; only 127.0.0.1 is used. `--threads` is the server's `--threads` (the
model's intra-op threads).
Batching is measured off (max-batch-size 1) and on (max-batch-size 32), unless `--batching`.
"""

import argparse
import http.client
import json
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def example_record(metadata, rng):
    """One record of plausible raw values for the run's inputs (from /metadata)."""
    record = {}
    for feature in metadata["inputs"]:
        classes = feature["spec"].get("classes")
        if feature["type"] in ("category", "binary") and classes:
            record[feature["column"]] = classes[int(rng.integers(len(classes)))]
        elif feature["type"] == "text":
            record[feature["column"]] = " ".join(rng.choice(["good", "bad", "film", "plot", "a"], size=6))
        else:
            record[feature["column"]] = round(float(rng.normal()), 4)
    return record


def _get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_server(run, backend, max_batch_size, threads=1):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "kiln", "serve", run, "--backend", backend, "--host", "127.0.0.1",
               "--port", str(port), "--max-batch-size", str(max_batch_size), "--threads", str(threads)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            status, body = _get(port, "/metadata")
            if status == 200:
                return server, port, json.loads(body)
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"the server did not start: {' '.join(command)}")
        time.sleep(0.1)


def load(run, backend, max_batch_size, records_per_request, requests, seconds, concurrency, seed=0, threads=1):
    server, port, metadata = start_server(run, backend, max_batch_size, threads)
    try:
        rng = np.random.default_rng(seed)
        pool_records = [example_record(metadata, rng) for _ in range(64)]
        if records_per_request == "mixed":
            sizes = rng.integers(1, 33, size=max(requests, 1) + concurrency * 4)
        else:
            sizes = np.full(max(requests, 1) + concurrency * 4, int(records_per_request))
        bodies = [json.dumps({"records": [pool_records[(i + j) % 64] for j in range(int(n))]}).encode()
                  for i, n in enumerate(sizes)]
        local = threading.local()
        headers = {"content-type": "application/json"}

        def one(i):
            connection = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            connection.request("POST", "/predict", body=bodies[i], headers=headers)
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
            assert response.status == 200, payload[:200]
            return elapsed, int(sizes[i])

        stop_at = [float("inf")]

        def bounded(i):
            if time.perf_counter() > stop_at[0]:
                return None
            return one(i)

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests, requests + concurrency * 4)))  # warm up (connections, model)
            started = time.perf_counter()
            stop_at[0] = started + seconds
            done = [r for r in pool.map(bounded, range(requests)) if r is not None]
            elapsed = time.perf_counter() - started
        latencies = np.array([r[0] for r in done])
        predictions = sum(r[1] for r in done)
        return {"requests": len(done), "predictions": predictions, "seconds": elapsed,
                "req_s": len(done) / elapsed, "pred_s": predictions / elapsed,
                "p50": np.percentile(latencies, 50) * 1e3, "p99": np.percentile(latencies, 99) * 1e3}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    parser.add_argument("--records-per-request", default="1", help="a number, or `mixed` (1-32 per request)")
    parser.add_argument("--requests", type=int, default=400, help="most requests per measurement")
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batching", choices=("both", "on", "off"), default="both")
    parser.add_argument("--threads", type=int, default=1, help="the model's intra-op threads (kiln serve --threads)")
    args = parser.parse_args()
    if args.records_per_request != "mixed" and not args.records_per_request.isdigit():
        parser.error("--records-per-request takes a positive number or `mixed`")
    print(f"# {platform.node()} ({platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} cores), {time.strftime('%Y-%m-%d')}, backend {args.backend}, "
          f"records/request {args.records_per_request}, concurrency {args.concurrency}, threads {args.threads}")
    print("| batching | predictions/s | requests/s | p50 ms | p99 ms | requests |\n|---|---:|---:|---:|---:|---:|")
    settings = {"off": [("off (max-batch-size 1)", 1)], "on": [("on (max-batch-size 32)", 32)]}
    chosen = settings["off"] + settings["on"] if args.batching == "both" else settings[args.batching]
    for label, size in chosen:
        r = load(args.run, args.backend, size, args.records_per_request, args.requests, args.seconds,
                 args.concurrency, threads=args.threads)
        print(f"| {label} | {r['pred_s']:.0f} | {r['req_s']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['requests']} |", flush=True)


if __name__ == "__main__":
    main()
