"""Server metrics in the Prometheus text format, written by hand (no client library needed).

    metrics = ServeMetrics()
    metrics.observe_request("/predict", 200, 0.012)
    metrics.observe_batch(7)
    metrics.observe_disconnect("/predict")   # a client that went away mid-body
    text = metrics.render()       # served at GET /metrics
"""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["ServeMetrics", "LATENCY_BUCKETS", "BATCH_BUCKETS"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)  # records per forward pass


class _Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)  # per bucket, not cumulative; render() sums them
        self.total, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out, running = [], 0
        for bound, n in zip(self.buckets, self.counts):
            running += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{suffix} {self.total:.9g}")
        out.append(f"{name}_count{suffix} {self.count}")
        return out


class ServeMetrics:
    """Request counts by endpoint and status, errors, client disconnects, request latency and batch sizes."""

    def __init__(self):
        self._lock = threading.Lock()  # the batch worker's executor thread and the event loop both write
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = {}
        self.batch_size = _Histogram(BATCH_BUCKETS)
        self.disconnects: dict[str, int] = defaultdict(int)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            if status >= 400:
                self.errors[endpoint] += 1
            self.latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_disconnect(self, endpoint: str) -> None:
        """A client that went away before its answer (not a request the server failed)."""
        with self._lock:
            self.disconnects[endpoint] += 1

    def observe_batch(self, records: int) -> None:
        with self._lock:
            self.batch_size.observe(records)

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP kiln_requests_total HTTP requests by endpoint and status code.",
                     "# TYPE kiln_requests_total counter"]
            lines += [f'kiln_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP kiln_errors_total HTTP requests answered with a 4xx or 5xx status, by endpoint.",
                      "# TYPE kiln_errors_total counter"]
            lines += [f'kiln_errors_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.errors.items())]
            lines += ["# HELP kiln_client_disconnected_total Requests whose client disconnected before the answer, "
                      "by endpoint (not counted in kiln_requests_total).",
                      "# TYPE kiln_client_disconnected_total counter"]
            lines += [f'kiln_client_disconnected_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.disconnects.items())]
            lines += ["# HELP kiln_request_latency_seconds Time from request to response, by endpoint.",
                      "# TYPE kiln_request_latency_seconds histogram"]
            for endpoint, histogram in sorted(self.latency.items()):
                lines += histogram.lines("kiln_request_latency_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP kiln_batch_size Records per model forward pass (micro-batching joins requests).",
                      "# TYPE kiln_batch_size histogram"]
            lines += self.batch_size.lines("kiln_batch_size", "")
        return "\n".join(lines) + "\n"
