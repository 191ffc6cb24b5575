"""The server's two ASGI middlewares: a body-size limit (413) and deadline (408), and request counting
(metrics, no 500 leaks).

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)   # inner: a 413 is still counted
    app.add_middleware(CountRequests, metrics=metrics, paths=paths)

Plain ASGI rather than ``@app.middleware("http")``, which costs a task and a stream per request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time

from kiln_edge.server.records import RequestError

__all__ = ["BodyLimit", "CountRequests", "Gate"]


async def _send_json(send, status: int, payload: dict, close: bool = False, headers=()) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    if close:  # the rest of the request will not be read: the connection cannot carry another
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """A POST body over ``limit`` bytes gets 413 before any handler reads it; one not complete
    ``timeout_s`` after its headers gets 408 (and the connection is closed).

    Why buffer here: the declared Content-Length can be absent (chunked uploads), so the bytes
    are counted as they arrive; an oversized body is drained (up to a hard cap) so the client can
    read the 413 instead of a reset connection.
    """

    def __init__(self, app, limit: int, timeout_s: float | None = None):
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        chunks, size, more = [], 0, True
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while more:
            try:  # a body trickling in (or stopping half way) must not hold the connection forever
                message = await (receive() if deadline is None else
                                 asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0)))
            except asyncio.TimeoutError:
                error = RequestError(408, f"The request body did not arrive within {self.timeout_s:g} s "
                                          f"(--body-timeout-s): {size} bytes came"
                                          f"{f' of the {int(declared)} declared' if declared and declared.isdigit() else ''}.",
                                     "body")
                return await _send_json(send, 408, error.body(), close=True)
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            more = message.get("more_body", False)
            if size > self.limit:
                too_big = True
            if too_big:
                if size > 20 * self.limit:
                    break  # stop reading an absurd body; the connection will close
                continue
            chunks.append(body)
        if too_big:
            error = RequestError(413, f"The request body is over the server's limit of {self.limit} bytes "
                                      f"(--max-body-bytes). Send fewer records per request.", "body")
            return await _send_json(send, 413, error.body())
        data, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Gate:
    """Who may talk to the server: the Host header among ``allowed_hosts`` (None: any), and the API
    key, when one is set, in ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (401 otherwise).

    Why a Host check: a server bound beyond loopback can be reached under any name, and a page on
    another site can make a browser send requests to it (DNS rebinding). ``/health`` (which tells
    only the model's name) is open to both: load balancers probe it by address, without a key. The key is
    compared in constant time (``hmac.compare_digest``), so timing does not reveal its prefix.
    """

    def __init__(self, app, api_key: str | None = None, allowed_hosts=None, open_paths=("/health",)):
        self.app, self.open_paths = app, frozenset(open_paths)
        self.key = api_key.encode() if api_key else None
        self.hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") in self.open_paths:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or {})
        if self.hosts is not None:
            host = _host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                error = RequestError(421, f"The Host header {host!r} is not one this server answers to "
                                          f"(--allowed-host: {', '.join(sorted(self.hosts))}).", "host")
                return await _send_json(send, 421, error.body())
        if self.key is not None:
            sent = headers.get(b"x-api-key") or _bearer(headers.get(b"authorization", b""))
            if not sent or not hmac.compare_digest(sent, self.key):
                error = RequestError(401, "This server needs an API key: send `Authorization: Bearer KEY` (or "
                                          "`X-API-Key: KEY`) with the key in the server's --api-key-file.",
                                     "authorization")
                return await _send_json(send, 401, error.body(), headers=[(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)


def _bearer(value: bytes) -> bytes:
    scheme, _, token = value.partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


def _host_name(host: str) -> str:
    """``example.com:8000`` -> ``example.com``; ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class CountRequests:
    """Every request's endpoint, status and latency into ``metrics``; an exception below becomes a
    JSON 500 (when no response has started) and the server stays up."""

    def __init__(self, app, metrics, paths):
        self.app, self.metrics, self.paths = app, metrics, paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status, gone, received = None, False, 0

        async def receiving():
            nonlocal gone, received
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
            else:
                received += len(message.get("body", b""))
            return message

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except Exception:  # a bug below: logged, still a JSON answer, and the server stays up
            logging.getLogger("kiln.serve").exception("internal error on %s", scope.get("path"))
            if status is None and not gone:
                await _send_json(sending, 500, {"error": "internal error (see the server log)", "field": None})
        route = scope.get("route")
        path = scope.get("path", "")
        endpoint = getattr(route, "path", None) or (path if path in self.paths else "unmatched")
        if status is None and gone:
            # The client went away before its answer (mid-body, or while waiting): its fault, not a
            # server error, so it is counted apart from the status codes and logged.
            logging.getLogger("kiln.serve").warning(
                "client %s disconnected from %s %s before the answer (%d body bytes received)",
                _client(scope), scope.get("method"), path, received)
            self.metrics.observe_disconnect(endpoint)
            return
        self.metrics.observe_request(endpoint, status or 500, time.perf_counter() - started)


def _client(scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
