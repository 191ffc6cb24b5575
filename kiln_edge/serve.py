"""The torch-free prediction server: ``python -m kiln_edge.serve RUN [--host H] [--port P] ...``.

    python -m kiln_edge.serve runs/iris-20261129-101500 --port 8000 --max-batch-size 32

What ``kiln serve RUN --backend onnx`` becomes (the ``kiln`` command replaces itself with this
process, so torch, which it imports, is never loaded where the model runs). It serves
``RUN/export/model.onnx`` through onnxruntime and the saved preprocessors in NumPy
(``kiln_edge.OnnxRun``) with the server the torch backend uses (``kiln_edge.server``): the same
endpoints, micro-batching, limits, timeout and /metrics. Flags are ``kiln serve``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiln_edge.errors import EdgeError

__all__ = ["main", "command_line", "add_server_flags", "settings_from_args", "port_problem"]


def command_line(run, host: str, port: int, settings, api_key_file=None) -> list[str]:
    """The ``python -m kiln_edge.serve`` command serving ``run`` with ``settings`` (``ServeSettings``);
    the API key travels as its file's path (``api_key_file``), never on the command line itself.

    Why here: the flags are written next to ``add_server_flags``, which declares them for both
    commands, so ``kiln serve --backend onnx`` forwards every one of them.
    """
    return [sys.executable, "-m", "kiln_edge.serve", str(run), "--host", str(host), "--port", str(port),
            "--max-batch-size", str(settings.max_batch_size), "--max-latency-ms", repr(settings.max_latency_ms),
            "--timeout-ms", repr(settings.timeout_ms), "--max-body-bytes", str(settings.max_body_bytes),
            "--max-records", str(settings.max_records), "--max-image-pixels", str(settings.max_image_pixels),
            "--header-timeout-s", repr(settings.header_timeout_s), "--body-timeout-s", repr(settings.body_timeout_s),
            "--keep-alive-s", repr(settings.keep_alive_s), "--max-header-bytes", str(settings.max_header_bytes),
            "--threads", "0" if settings.model_threads is None else str(settings.model_threads),
            *[flag for name in (settings.allowed_hosts or ["*"]) for flag in ("--allowed-host", name)],
            *(["--api-key-file", str(api_key_file)] if api_key_file else [])]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kiln_edge.serve", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder with export/model.onnx (kiln export RUN --format onnx)")
    add_server_flags(parser)
    return parser


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """The server's flags, shared by ``kiln serve`` (both backends) and ``python -m kiln_edge.serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch-size", type=int, default=32, help="most records per forward pass (1: no batching)")
    parser.add_argument("--max-latency-ms", type=float, default=5.0, help="longest wait for a batch to fill")
    parser.add_argument("--timeout-ms", type=float, default=10_000.0, help="answer 504 after this long")
    parser.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024, help="larger bodies get 413")
    parser.add_argument("--max-records", type=int, default=1000, help="more records per request get 413")
    parser.add_argument("--max-image-pixels", type=int, default=4096 * 4096,
                        help="images with more pixels (read from the header, before decoding) get 413")
    parser.add_argument("--header-timeout-s", type=float, default=10.0,
                        help="close a connection whose request headers take longer (408 if some came)")
    parser.add_argument("--body-timeout-s", type=float, default=30.0, help="answer 408 to a body that takes longer")
    parser.add_argument("--keep-alive-s", type=float, default=5.0, help="close idle keep-alive connections after this")
    parser.add_argument("--max-header-bytes", type=int, default=16 * 1024, help="larger request headers get 431")
    parser.add_argument("--api-key-file", metavar="PATH",
                        help="require the key on this file's first line: Authorization: Bearer KEY (401 otherwise)")
    parser.add_argument("--allowed-host", action="append", metavar="NAME",
                        help="a Host header name the server answers to (repeat it; '*': any); required when "
                             "--host is not a loopback address")
    parser.add_argument("--threads", type=int, default=1,
                        help="the model's intra-op threads, torch's or onnxruntime's (default 1: the model thread "
                             "and the event loop each get a core; 0: the library's default, every core)")


def settings_from_args(args):
    """``ServeSettings`` from the parsed server flags (``add_server_flags``): one place for both commands.

    Raises:
        ServeSettingsError: a flag out of range (every problem at once).
    """
    from kiln_edge.server import ServeSettings, ServeSettingsError
    api_key = None
    if args.api_key_file:
        try:
            api_key = Path(args.api_key_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError) as err:
            raise ServeSettingsError(f"--api-key-file {args.api_key_file!r} cannot be read as a key: "
                                     f"{type(err).__name__}: {err}. Put the key on its first line.") from None
    hosts = args.allowed_host
    if not hosts and not _loopback(args.host):
        raise ServeSettingsError(f"--host {args.host} makes the server reachable beyond this machine: name the "
                                 f"Host header names clients use with --allowed-host NAME (repeatable), or "
                                 f"--allowed-host '*' to answer any (docs/serving.md, \"Security\").")
    return ServeSettings(api_key=api_key, allowed_hosts=None if not hosts or "*" in hosts else list(hosts),
                         max_batch_size=args.max_batch_size, max_latency_ms=args.max_latency_ms,
                         timeout_ms=args.timeout_ms, max_body_bytes=args.max_body_bytes,
                         max_records=args.max_records, max_image_pixels=args.max_image_pixels,
                         header_timeout_s=args.header_timeout_s, body_timeout_s=args.body_timeout_s,
                         keep_alive_s=args.keep_alive_s, max_header_bytes=args.max_header_bytes,
                         model_threads=args.threads or None)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host``:``port`` (in use, not an address here), or None.

    Why before loading: uvicorn finds out only when it starts listening, after the model has
    loaded, and then exits with a traceback-like log and status 3. A bind test (with
    SO_REUSEADDR, as uvicorn binds) answers at once; a port taken in between still fails in uvicorn.
    """
    import socket
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        return f"--host {host} is not an address of this machine ({err.strerror})."
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                return f"port {port} on {host} is already in use; stop what listens there or pick another --port."
            return f"cannot listen on {host}:{port} ({err.strerror or err})."
    return None


def _loopback(host: str) -> bool:
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


def main(argv=None) -> int:
    """Parse the flags, load the run with onnxruntime and serve it until interrupted (exit 0);
    2 for a usage error (a bad flag, FastAPI/uvicorn missing), 1 when the port is taken or the run
    cannot be loaded (one line on stderr naming the port or the file)."""
    args = _parser().parse_args(argv)
    try:
        import uvicorn  # noqa: F401 - only: is it installed?
    except ImportError:
        print("error: serving needs FastAPI and uvicorn: pip install fastapi uvicorn python-multipart "
              "(the `serve` extra's packages; docs/edge.md lists them for a machine without torch).", file=sys.stderr)
        return 2
    from kiln_edge.run import OnnxRun
    from kiln_edge.server import create_app
    from kiln_edge.server.connections import serve_until_stopped
    try:
        settings = settings_from_args(args)
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problem = port_problem(args.host, args.port)
    if problem:  # before the model loads (seconds) rather than after
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        backend = OnnxRun(args.run, threads=settings.model_threads)
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"serving {args.run} (onnx, no torch) on http://{args.host}:{args.port} (docs: /docs)", flush=True)
    if not serve_until_stopped(create_app(backend, settings), settings, args.host, args.port):
        print(f"error: the server could not listen on {args.host}:{args.port} (see the line above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
