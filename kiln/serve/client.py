"""A small Python client for ``kiln serve``.

    from kiln.serve.client import Client
    client = Client("http://127.0.0.1:8000")
    client.health()                          # {"status": "ok", "model": "iris"}
    client.predict([{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}])
    # [{"species": "setosa", "species_probability_setosa": 0.97, ...}]

The same request with curl::

    curl -s http://127.0.0.1:8000/predict -H 'content-type: application/json' \\
         -d '{"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'

Every failure is a ``ServeError`` (a kiln error): an HTTP error answer, or a server that cannot be
reached (then ``status`` is None). Calls that may safely be repeated are retried with exponential
backoff: the GETs on a connection failure, a timeout, 502, 503 or 504; ``predict`` (which changes
nothing on the server, but may be slow) only when the server was not reached or answered 503
(not accepting work yet), never after a timeout, so a slow prediction is not run twice.
"""

from __future__ import annotations

import time

from kiln.errors import KilnError

__all__ = ["Client", "ServeError"]


class ServeError(KilnError, RuntimeError):
    """The server answered with an error, or could not be reached: ``status`` (the HTTP code, None
    when no answer came), ``field`` (or None) and its message."""

    def __init__(self, status: int | None, message: str, field: str | None = None):
        super().__init__(f"HTTP {status}: {message}" if status is not None else message)
        self.status, self.field = status, field


_RETRY_GET = frozenset({502, 503, 504})
_RETRY_POST = frozenset({503})


class Client:
    """Talk to a running ``kiln serve``.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8000"``.
        timeout: seconds per request (default 30).
        api_key: sent as ``Authorization: Bearer KEY`` (the server's ``--api-key-file``; default None).
        retries: how many times a failed call that may be repeated is tried again (default 3; 0: never).
        backoff: seconds before the first retry, doubled before each next one (default 0.2 s: 0.2,
            0.4, 0.8 — a server still loading its model gets a few seconds).

    Example:
        >>> with Client("http://127.0.0.1:8000", retries=5) as client:
        ...     client.health()
        {'status': 'ok', 'model': 'iris'}
    """

    def __init__(self, url: str, timeout: float = 30.0, api_key: str | None = None, retries: int = 3,
                 backoff: float = 0.2):
        import httpx
        from kiln.errors import KilnValueError
        if not (isinstance(retries, int) and retries >= 0):
            raise KilnValueError(f"Received an invalid value for `retries`, expected an integer >= 0. "
                                 f"Received: retries={retries!r}")
        if not backoff >= 0:
            raise KilnValueError(f"Received an invalid value for `backoff`, expected seconds >= 0. "
                                 f"Received: backoff={backoff!r}")
        self.url, self.retries, self.backoff = url.rstrip("/"), retries, float(backoff)
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def _call(self, method: str, path: str, retry_on: frozenset, after_timeout: bool, **kwargs):
        """One request, retried (with backoff) on what ``retry_on``/``after_timeout`` allow; a
        ServeError for an error answer or an unreachable server."""
        import httpx
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:  # nothing reached the server
                if last:
                    raise ServeError(None, f"Cannot reach the server at {self.url} ({type(err).__name__}: {err}); "
                                           f"is `kiln serve` running there?") from None
            except httpx.TimeoutException as err:
                if last or not after_timeout:
                    raise ServeError(None, f"{method} {self.url}{path} got no answer in time "
                                           f"({type(err).__name__}); raise Client(timeout=...).") from None
            except httpx.HTTPError as err:  # the connection broke: a transport error, not an answer
                if last or not after_timeout:
                    raise ServeError(None, f"{method} {self.url}{path} failed: {type(err).__name__}: {err}") from None
            else:
                if response.status_code < 400 or response.status_code not in retry_on or last:
                    return response
            time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @staticmethod
    def _json(response):
        if response.status_code >= 400:
            try:
                body = response.json()
                message, field = body.get("error", response.text), body.get("field")
            except (ValueError, AttributeError):
                message, field = response.text, None
            raise ServeError(response.status_code, message, field)
        return response.json()

    def _get(self, path: str):
        return self._call("GET", path, _RETRY_GET, after_timeout=True)

    def predict(self, rows) -> list[dict]:
        """Predictions for ``rows`` (a list of dicts of raw feature values, or a DataFrame)."""
        if hasattr(rows, "to_dict"):
            import json
            rows = json.loads(rows.to_json(orient="records"))
        response = self._call("POST", "/predict", _RETRY_POST, after_timeout=False, json={"records": list(rows)})
        return self._json(response)["predictions"]

    def predict_file(self, path) -> list[dict]:
        """Predictions for one image or WAV file (runs with a single image/audio input)."""
        from pathlib import Path
        path = Path(path)
        data = path.read_bytes()
        response = self._call("POST", "/predict/file", _RETRY_POST, after_timeout=False,
                              files={"file": (path.name, data)})
        return self._json(response)["predictions"]

    def health(self) -> dict:
        return self._json(self._get("/health"))

    def metadata(self) -> dict:
        return self._json(self._get("/metadata"))

    def metrics(self) -> str:
        response = self._get("/metrics")
        if response.status_code >= 400:
            self._json(response)  # raises the ServeError
        return response.text

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
