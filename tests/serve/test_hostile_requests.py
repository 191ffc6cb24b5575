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


# ---- slow, idle and oversized connections (raw sockets; uvicorn's h11 and httptools protocols) ------
QUICK = dict(header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=0.5)


@pytest.fixture(scope="module", params=["h11", "httptools"])
def guarded_server(request, tabular_run, port, wait_until_up):
    """The onnx backend served with short connection limits, on uvicorn's h11 or httptools protocol."""
    import threading

    import uvicorn

    from kiln_edge import OnnxRun
    from kiln_edge.server import create_app
    from kiln_edge.server.connections import guarded_protocol
    if request.param == "httptools":
        pytest.importorskip("httptools")
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    settings = ServeSettings(**QUICK, max_header_bytes=4096)
    app = create_app(OnnxRun(tabular_run, threads=1), settings)
    free = port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free, log_level="warning",
                                           http=guarded_protocol(base, settings.header_timeout_s, 4096),
                                           timeout_keep_alive=settings.keep_alive_s))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{free}"
    wait_until_up(None, url, seconds=20)
    yield free, url
    server.should_exit = True
    thread.join(timeout=10)


def _until_closed(sock) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout of 5 s fails the test)."""
    data = b""
    for _ in range(1000):
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server kept sending")


def test_an_idle_connection_is_closed(guarded_server):
    free, url = guarded_server
    with _raw(free, b"") as sock:
        assert _until_closed(sock) == b""  # nothing ever sent: closed silently


def test_slow_headers_get_408_and_the_connection_is_closed(guarded_server):
    free, url = guarded_server
    with _raw(free, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n") as sock:  # ...and the rest never comes
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"--header-timeout-s" in answer
    assert httpx.get(url + "/health").status_code == 200


def test_a_body_that_stops_half_way_gets_408_naming_the_body(guarded_server):
    free, url = guarded_server
    with _raw(free, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n" + b'{"records": [') as sock:
        answer = _until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(body) == {"field": "body", "error": "The request body did not arrive within 0.5 s "
                                                          "(--body-timeout-s): 13 bytes came of the 100 declared."}
    assert _metric(url, "kiln_requests_total")['{endpoint="/predict",status="408"}'] >= 1


def test_oversized_headers_get_431(guarded_server):
    free, url = guarded_server
    with _raw(free, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * 8000) as sock:
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"limit of 4096 bytes" in answer, answer


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(guarded_server):
    free, url = guarded_server
    with _raw(free, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") as sock:
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1


# ---- cross-site requests, API keys, Host names ---------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_predict_refuses_bodies_not_declared_json_with_415(server, content_type):
    """text/plain, form and multipart posts are what a page on another site can make a browser send
    without a CORS preflight: /predict takes only application/json."""
    body = json.dumps({"records": [RECORD]}).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(server.url + "/predict", content=body, headers=headers)
    assert response.status_code == 415 and response.json()["field"] == "content-type", response.text
    assert f"(received {content_type or 'none'!r})" in response.json()["error"]
    assert _post(server.url, body, "application/json; charset=utf-8").status_code == 200


KEY = "k3y-0123456789abcdef"


def test_an_api_key_is_required_everywhere_but_health(backend, serve):
    from kiln.serve import Client, ServeError
    kind, model = backend
    with serve(make_app(kind, model, ServeSettings(api_key=KEY))) as server:
        body = json.dumps({"records": [RECORD]}).encode()
        for headers in ({}, {"authorization": "Bearer wrong-key-0123456789"}, {"x-api-key": KEY[:-1]},
                        {"authorization": KEY}):
            response = _post(server.url, body, **headers)
            assert response.status_code == 401 and response.json()["field"] == "authorization", headers
            assert response.headers["www-authenticate"] == "Bearer"
        assert _post(server.url, body, authorization=f"Bearer {KEY}").status_code == 200
        assert _post(server.url, body, **{"x-api-key": KEY}).status_code == 200
        assert httpx.get(server.url + "/metadata").status_code == 401
        assert httpx.get(server.url + "/health").status_code == 200  # load balancers probe without a key
        assert Client(server.url, api_key=KEY).metadata()["backend"] == kind
        with pytest.raises(ServeError) as err:
            Client(server.url, retries=0).predict([RECORD])
        assert err.value.status == 401


def test_the_host_header_must_be_an_allowed_name(backend, serve):
    kind, model = backend
    with serve(make_app(kind, model, ServeSettings(allowed_hosts=["model.example"]))) as server:
        body = json.dumps({"records": [RECORD]}).encode()
        refused = _post(server.url, body)  # Host: 127.0.0.1:PORT
        assert refused.status_code == 421 and refused.json()["field"] == "host"
        assert "'127.0.0.1'" in refused.json()["error"]
        assert _post(server.url, body, host="model.example:8000").status_code == 200
        assert _post(server.url, body, host="MODEL.example").status_code == 200


def test_a_bind_beyond_loopback_needs_allowed_hosts_and_a_readable_key_file(tabular_run, tmp_path, capsys):
    from kiln.cli import main
    assert main(["serve", str(tabular_run), "--host", "0.0.0.0"]) == 2
    assert "--allowed-host" in capsys.readouterr().err
    assert main(["serve", str(tabular_run), "--api-key-file", str(tmp_path / "absent")]) == 2
    assert "--api-key-file" in capsys.readouterr().err
    (tmp_path / "short").write_text("abc\n")
    assert main(["serve", str(tabular_run), "--api-key-file", str(tmp_path / "short")]) == 2
    assert "at least 16 characters" in capsys.readouterr().err


def test_settings_from_flags_read_the_key_file_and_never_show_the_key(tmp_path):
    import argparse

    from kiln_edge.serve import add_server_flags, command_line, settings_from_args
    parser = argparse.ArgumentParser()
    add_server_flags(parser)
    (tmp_path / "key").write_text(KEY + "\n")
    args = parser.parse_args(["--host", "10.0.0.5", "--allowed-host", "a.example", "--allowed-host", "b.example",
                              "--api-key-file", str(tmp_path / "key")])
    settings = settings_from_args(args)
    assert settings.api_key == KEY and settings.allowed_hosts == ["a.example", "b.example"]
    assert KEY not in repr(settings)
    command = command_line("RUN", args.host, 8000, settings, args.api_key_file)
    assert KEY not in " ".join(command) and command[-2:] == ["--api-key-file", str(tmp_path / "key")]
    assert settings_from_args(parser.parse_args(command[4:])).allowed_hosts == ["a.example", "b.example"]
