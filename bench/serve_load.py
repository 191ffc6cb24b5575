"""Load-test `kiln serve` over loopback: throughput and p50/p99 latency, micro-batching on vs off.

    python bench/serve_load.py RUN [--requests 400] [--concurrency 32]

The server runs in its own process (`python -m kiln serve`); this process drives it with
`concurrency` threads, each sending one-record requests built from the run's input schema.
"""

import argparse
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np


def example_record(metadata):
    record = {}
    for feature in metadata["inputs"]:
        classes = feature["spec"].get("classes")
        record[feature["column"]] = classes[-1] if feature["type"] == "category" and classes else 0.5
    return record


def load(run, max_batch_size, requests, concurrency):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "kiln", "serve", run, "--port", str(port),
                               "--max-batch-size", str(max_batch_size)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                metadata = httpx.get(url + "/metadata").json()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {"records": [example_record(metadata)]}
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(concurrency)]

        def one(i):
            started = time.perf_counter()
            assert clients[i % concurrency].post("/predict", json=body).status_code == 200
            return time.perf_counter() - started

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(concurrency * 2)))  # warm up
            started = time.perf_counter()
            latencies = np.array(list(pool.map(one, range(requests))))
            elapsed = time.perf_counter() - started
        return requests / elapsed, np.percentile(latencies, 50) * 1e3, np.percentile(latencies, 99) * 1e3
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print("| batching | requests/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for label, size in (("off (max-batch-size 1)", 1), ("on (max-batch-size 32)", 32)):
        rate, p50, p99 = load(args.run, size, args.requests, args.concurrency)
        print(f"| {label} | {rate:.0f} | {p50:.1f} | {p99:.1f} |", flush=True)


if __name__ == "__main__":
    main()
