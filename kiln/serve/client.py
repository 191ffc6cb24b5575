"""A small Python client for ``kiln serve``.

    from kiln.serve.client import Client
    client = Client("http://127.0.0.1:8000")
    client.health()                          # {"status": "ok", "model": "iris"}
    client.predict([{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}])
    # [{"species": "setosa", "species_probability_setosa": 0.97, ...}]

The same request with curl::

    curl -s http://127.0.0.1:8000/predict -H 'content-type: application/json' \\
         -d '{"records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'
"""

from __future__ import annotations

from kiln.errors import KilnError

__all__ = ["Client", "ServeError"]


class ServeError(KilnError, RuntimeError):
    """The server answered with an error: ``status`` (HTTP code), ``field`` (or None) and its message."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.field = status, field


class Client:
    """Talk to a running ``kiln serve``.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8000"``.
        timeout: seconds per request (default 30).
    """

    def __init__(self, url: str, timeout: float = 30.0):
        import httpx
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def _json(self, response):
        if response.status_code >= 400:
            try:
                body = response.json()
                raise ServeError(response.status_code, body.get("error", response.text), body.get("field"))
            except ValueError:
                raise ServeError(response.status_code, response.text) from None
        return response.json()

    def predict(self, rows) -> list[dict]:
        """Predictions for ``rows`` (a list of dicts of raw feature values, or a DataFrame)."""
        if hasattr(rows, "to_dict"):
            import json
            rows = json.loads(rows.to_json(orient="records"))
        return self._json(self._http.post("/predict", json={"records": list(rows)}))["predictions"]

    def predict_file(self, path) -> list[dict]:
        """Predictions for one image or WAV file (runs with a single image/audio input)."""
        from pathlib import Path
        path = Path(path)
        with open(path, "rb") as handle:
            response = self._http.post("/predict/file", files={"file": (path.name, handle)})
        return self._json(response)["predictions"]

    def health(self) -> dict:
        return self._json(self._http.get("/health"))

    def metadata(self) -> dict:
        return self._json(self._http.get("/metadata"))

    def metrics(self) -> str:
        response = self._http.get("/metrics")
        response.raise_for_status()
        return response.text

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
