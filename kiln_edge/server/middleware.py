"""The server's two ASGI middlewares: a body-size limit (413) and deadline (408), and request counting
(metrics, no 500 leaks).

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)   # inner: a 413 is still counted
    app.add_middleware(CountRequests, metrics=metrics, paths=paths)

Plain ASGI rather than ``@app.middleware("http")``, which costs a task and a stream per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from kiln_edge.server.records import RequestError

__all__ = ["BodyLimit", "CountRequests"]


async def _send_json(send, status: int, payload: dict, close: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
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
