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
