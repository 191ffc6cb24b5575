"""Hostile and broken clients against a real server on 127.0.0.1: deeply nested JSON, bodies that
stop half way, requests that time out, wrong content types, missing API keys, slow sockets.
Each answer is a named 4xx (never a 500 that echoes internals) and the server keeps serving."""

import json
import logging
import socket
import time

import pytest

httpx = pytest.importorskip("httpx")

from kiln.serve import ServeSettings  # noqa: E402

RECORD = {"size": 1, "weight": 1, "colour": "red"}


@pytest.fixture(scope="module", params=["torch", "onnx"])
def backend(request, tabular_run):
    """(kind, backend object) for the tiny run."""
    if request.param == "torch":
        from kiln.workflows.run import load_run
        return "torch", load_run(tabular_run)
    from kiln_edge import OnnxRun
    return "onnx", OnnxRun(tabular_run, threads=1)


def make_app(kind, backend, settings=None, **options):
    if kind == "torch":
        from kiln.serve import create_app
    else:
        from kiln_edge.server import create_app
    return create_app(backend, settings or ServeSettings(), **options)


@pytest.fixture(scope="module")
def server(backend, serve):
    kind, model = backend
    with serve(make_app(kind, model)) as s:
        yield s


def _post(url, body: bytes, content_type="application/json", **headers):
    return httpx.post(url + "/predict", content=body, headers={"content-type": content_type, **headers}, timeout=30)


@pytest.mark.parametrize("body", [
    b"[" * 1000 + b"]" * 1000,                                     # arrays 1,000 deep
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,                     # objects 50,000 deep
    b'{"records": [{"size": ' + b"[" * 900 + b"]" * 900 + b"}]}",  # deep inside a record (its repr recursed)
    b'{"records": [{"size": NaN, "x": ' + b"[" * 2000 + b"]" * 2000 + b"}]}",  # NaN: the stdlib decoder's path
])
def test_deeply_nested_json_is_a_named_400(server, body):
    response = _post(server.url, body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "body" and "more than 32 levels deep" in response.json()["error"]
    assert _post(server.url, json.dumps({"records": [RECORD]}).encode()).status_code == 200


def test_deeply_nested_json_is_a_named_400_with_the_stdlib_codec(backend, serve, monkeypatch):
    """Without orjson (an install without the serve extra's speed-ups) the stdlib decoder recursed."""
    import kiln_edge.server.app as app_module
    monkeypatch.setattr(app_module, "orjson", None)
    kind, model = backend
    with serve(make_app(kind, model)) as server:
        for body in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
            response = _post(server.url, body)
            assert response.status_code == 400 and response.json()["field"] == "body", response.text
        assert _post(server.url, b'{"records": [{"size": 2, "weight": 1, "colour": "red", '
                                 b'"extra": [[[[[[1]]]]]]}]}').status_code == 200


def _metric(url, name):
    """The samples of ``name`` in /metrics, as {labels: value}."""
    text = httpx.get(url + "/metrics").text
    return {line.split(" ")[0][len(name):]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith(name + "{")}


def _raw(port, data: bytes, timeout=5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(data)
    return sock


def test_a_client_that_disconnects_mid_body_is_counted_apart_and_logged(server, caplog):
    port = int(server.url.rsplit(":", 1)[1])
    before = _metric(server.url, "kiln_client_disconnected_total").get('{endpoint="/predict"}', 0)
    with caplog.at_level(logging.WARNING, logger="kiln.serve"):
        sock = _raw(port, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 1000\r\n\r\n" + b'{"records": [')
        sock.close()
        for _ in range(100):  # the server notices the closed socket within a few event-loop turns
            after = _metric(server.url, "kiln_client_disconnected_total").get('{endpoint="/predict"}', 0)
            if after > before:
                break
            time.sleep(0.05)
    assert after == before + 1
    assert '{endpoint="/predict",status="500"}' not in _metric(server.url, "kiln_requests_total")
    assert any("disconnected from POST /predict" in r.getMessage() and "13 body bytes" in r.getMessage()
               for r in caplog.records)
