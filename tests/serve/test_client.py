"""kiln.serve.Client against real servers on 127.0.0.1: every failure is a ServeError (a kiln
error, never a raw httpx one), and calls that may be repeated are retried with backoff — a server
that starts late, or answers 503 while it loads — while a prediction that timed out is not re-sent."""

import asyncio
import json
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from kiln.errors import KilnError  # noqa: E402
from kiln.serve import Client, ServeError  # noqa: E402


class Scripted:
    """A tiny ASGI app answering each path with the next status of its script (then 200), counting calls."""

    def __init__(self, statuses=(), delay=0.0):
        self.statuses, self.delay, self.calls = list(statuses), delay, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.calls.append((scope["method"], scope["path"]))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        body = json.dumps({"status": "ok", "model": "m", "predictions": [{"y": 1}]} if status == 200 else
                          {"error": f"scripted {status}", "field": None}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class Running:
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread, optionally after ``delay`` seconds."""

    def __init__(self, app, port, delay=0.0):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.delay = delay
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        time.sleep(self.delay)
        self.server.run()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_a_server_that_starts_late_is_waited_for(port):
    free = port()
    app = Scripted()
    with Running(app, free, delay=0.5):
        assert Client(f"http://127.0.0.1:{free}", retries=8, backoff=0.1).health() == {"status": "ok", "model": "m",
                                                                                       "predictions": [{"y": 1}]}
    assert app.calls == [("GET", "/health")]


def test_503_is_retried_with_backoff_and_500_is_not(port):
    free = port()
    app = Scripted()
    with Running(app, free):
        client = Client(f"http://127.0.0.1:{free}", retries=3, backoff=0.01)
        for _ in range(100):  # bounded wait for the server to listen
            try:
                httpx.get(f"http://127.0.0.1:{free}/ping", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        app.calls.clear()
        app.statuses = [503, 503]
        assert client.predict([{"x": 1}]) == [{"y": 1}]
        assert app.calls == [("POST", "/predict")] * 3
        app.calls.clear()
        app.statuses = [500]
        with pytest.raises(ServeError) as err:
            client.predict([{"x": 1}])
        assert err.value.status == 500 and str(err.value) == "HTTP 500: scripted 500"
        assert app.calls == [("POST", "/predict")]
        app.calls.clear()
        app.statuses = [503] * 5
        with pytest.raises(ServeError) as err:
            client.metadata()
        assert err.value.status == 503 and len(app.calls) == 4  # 1 try + 3 retries


def test_a_prediction_that_timed_out_is_not_sent_again(port):
    free = port()
    app = Scripted(delay=1.0)
    with Running(app, free):
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{free}/ping", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        app.calls.clear()
        with pytest.raises(ServeError, match="got no answer in time") as err:
            Client(f"http://127.0.0.1:{free}", timeout=0.2, retries=3, backoff=0.01).predict([{"x": 1}])
        assert err.value.status is None
        time.sleep(0.1)
        assert app.calls == [("POST", "/predict")]


def test_an_unreachable_server_is_a_kiln_error_not_an_httpx_one(port):
    free = port()  # nothing listens there
    with pytest.raises(ServeError, match=f"Cannot reach the server at http://127.0.0.1:{free}") as err:
        Client(f"http://127.0.0.1:{free}", retries=1, backoff=0.01).health()
    assert isinstance(err.value, KilnError) and err.value.status is None
    assert not isinstance(err.value, httpx.HTTPError)


@pytest.mark.parametrize("kwargs, name", [({"retries": -1}, "retries"), ({"backoff": -0.5}, "backoff")])
def test_bad_retry_settings_are_refused_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        Client("http://127.0.0.1:1", **kwargs)
