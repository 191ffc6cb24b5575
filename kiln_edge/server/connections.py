"""Connection limits below the app: how long a client may take to send its headers and body, how
long an idle connection is kept, and how large the headers may grow.

    config = uvicorn_config(app, settings, host="127.0.0.1", port=8000)
    uvicorn.Server(config).run()

Why: uvicorn closes an idle connection only after a response (``timeout_keep_alive``); a client
that connects and sends nothing, or its headers a byte at a time (slowloris), held a connection,
and with httptools its headers' memory, forever. The protocol below (uvicorn's own, h11 or
httptools, subclassed) closes a connection whose request headers are not complete within
``header_timeout_s`` of its opening or of the previous answer (a 408 when some bytes came), and
answers 431 to headers over ``max_header_bytes``. The body's deadline (``body_timeout_s``, 408)
is enforced by the ``BodyLimit`` middleware, which reads every body. Limits in docs/serving.md.
"""

from __future__ import annotations

__all__ = ["uvicorn_config", "guarded_protocol", "serve_until_stopped"]

_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: "
_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n" \
       b"content-length: "


def _raw_answer(head: bytes, message: str) -> bytes:
    import json
    body = json.dumps({"error": message, "field": "headers"}).encode()
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


def guarded_protocol(base: type, header_timeout_s: float, max_header_bytes: int) -> type:
    """``base`` (a uvicorn HTTP protocol class) with a header deadline and a header size cap."""

    class Guarded(base):
        def connection_made(self, transport) -> None:
            self._kiln_timer = None
            super().connection_made(transport)
            self._kiln_arm()

        def _kiln_arm(self) -> None:
            """Wait for the next request's headers: the cycle now current is the one before it."""
            if self._kiln_timer is not None:
                self._kiln_timer.cancel()
            self._kiln_before, self._kiln_bytes = self.cycle, 0
            self._kiln_timer = self.loop.call_later(header_timeout_s, self._kiln_expire)

        def _kiln_reading_headers(self) -> bool:
            return self.cycle is self._kiln_before and not self.transport.is_closing()

        def data_received(self, data: bytes) -> None:
            waiting = self._kiln_reading_headers()
            if waiting:
                self._kiln_bytes += len(data)
            super().data_received(data)
            # Checked after parsing, so headers and body arriving in one read are not counted as headers.
            if waiting and self._kiln_reading_headers() and self._kiln_bytes > max_header_bytes:
                self.transport.write(_raw_answer(_431, f"The request headers are over the server's limit of "
                                                       f"{max_header_bytes} bytes."))
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._kiln_arm()

        def connection_lost(self, exc) -> None:
            if self._kiln_timer is not None:
                self._kiln_timer.cancel()
            super().connection_lost(exc)

        def _kiln_expire(self) -> None:
            if not self._kiln_reading_headers():
                return  # a request is being answered: the body deadline and --timeout-ms govern it
            if self._kiln_bytes:  # a request started and stalled: say why before closing
                self.transport.write(_raw_answer(_408, f"The request headers did not arrive within "
                                                       f"{header_timeout_s:g} s (--header-timeout-s)."))
            self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def uvicorn_config(app, settings, host: str = "127.0.0.1", port: int = 8000, **options):
    """The ``uvicorn.Config`` serving ``app`` with ``settings``' connection limits (``ServeSettings``)."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol  # httptools when installed, else h11
    options.setdefault("log_level", "warning")
    return uvicorn.Config(app, host=host, port=port,
                          http=guarded_protocol(AutoHTTPProtocol, settings.header_timeout_s, settings.max_header_bytes),
                          timeout_keep_alive=settings.keep_alive_s,
                          h11_max_incomplete_event_size=settings.max_header_bytes, **options)


def serve_until_stopped(app, settings, host: str, port: int) -> bool:
    """Serve ``app`` until interrupted; False when the server never started listening (the port
    was taken after ``port_problem`` looked), so the command can say so in one line and exit 1
    instead of uvicorn's exit status 3."""
    import uvicorn
    server = uvicorn.Server(uvicorn_config(app, settings, host, port))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; it has logged why
        return False
    return bool(server.started)
