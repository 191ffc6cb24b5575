"""``ServeSettings``: how the server batches, waits, what it accepts and how many model threads it uses.

    settings = ServeSettings(max_batch_size=32, max_latency_ms=5, timeout_ms=10_000)

The same settings drive both backends (``kiln serve RUN`` and ``kiln serve RUN --backend onnx``);
they are the command's flags, checked once here with every problem reported together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln_edge.errors import EdgeError

__all__ = ["ServeSettings", "ServeSettingsError"]


class ServeSettingsError(EdgeError):
    """A server setting out of range (a ``ValueError``; ``kiln serve`` reports it as a usage error)."""


@dataclass
class ServeSettings:
    """How the server batches, waits, what it accepts and how many model threads it runs.

    Args:
        max_batch_size: most records per forward pass (default 32); 1 turns batching off.
        max_latency_ms: longest a request waits for others to join its batch (default 5 ms: well
            under a forward pass of a small model, so batching costs little latency).
        timeout_ms: a request not answered within this gets 504 (default 10 s).
        max_body_bytes: larger request bodies get 413 (default 10 MB: a few base64 images).
        max_records: more records in one request get 413 (default 1000).
        max_image_pixels: an image with more pixels (width x height, read from its header before
            decoding) gets 413 (default 4096 x 4096: a decoded RGB image of 50 MB, 200 MB as float32).
        header_timeout_s: a connection whose request headers are not complete this long after it
            opened (or after the previous answer) is closed, with 408 when part of them came
            (default 10 s: slow or idle clients cannot hold connections).
        body_timeout_s: a request body not complete this long after its headers gets 408 (default 30 s).
        keep_alive_s: an idle keep-alive connection is closed after this long (default 5 s).
        max_header_bytes: larger request headers get 431 (default 16 KiB, h11's own default).
        api_key: when set, every request but ``GET /health`` must carry it (``Authorization: Bearer
            KEY`` or ``X-API-Key: KEY``), else 401 (default None: no key; ``--api-key-file``).
        allowed_hosts: the Host header names the server answers to, others get 421 (default None:
            any; ``kiln serve`` requires ``--allowed-host`` when it binds beyond loopback).
        model_threads: the model's intra-op threads while the server runs (default 1: one model
            thread next to the event loop beats two threads fighting over 2 cores for the small
            batches a server sees). The torch backend sets ``torch.set_num_threads`` for the
            server's life (and restores it); the onnx backend builds its onnxruntime session
            with this many intra-op threads. None leaves the library's own default.

    Example:
        >>> ServeSettings(max_batch_size=0)
        Traceback (most recent call last):
        ServeSettingsError: Invalid server settings: `max_batch_size` must be positive, received 0 (--max-batch-size).
    """
    max_batch_size: int = 32
    max_latency_ms: float = 5.0
    timeout_ms: float = 10_000.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_records: int = 1000
    max_image_pixels: int = 4096 * 4096
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_header_bytes: int = 16 * 1024
    api_key: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    allowed_hosts: list[str] | None = None
    model_threads: int | None = 1

    def __post_init__(self):
        positive = ("max_batch_size", "timeout_ms", "max_body_bytes", "max_records", "max_image_pixels",
                    "header_timeout_s", "body_timeout_s", "keep_alive_s", "max_header_bytes")
        problems = [f"`{name}` must be positive, received {getattr(self, name)!r} ({_flag(name)})"
                    for name in positive if not getattr(self, name) > 0]
        if not self.max_latency_ms >= 0:
            problems.append(f"`max_latency_ms` must be >= 0, received {self.max_latency_ms!r} (--max-latency-ms)")
        if self.model_threads is not None and not (isinstance(self.model_threads, int) and self.model_threads > 0):
            problems.append(f"`model_threads` must be a positive integer or None, received {self.model_threads!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or len(self.api_key.strip()) < 16
                                         or self.api_key != self.api_key.strip()):
            problems.append("`api_key` must be a string of at least 16 characters without surrounding whitespace "
                            "(--api-key-file holds it on its first line)")
        if problems:
            raise ServeSettingsError("Invalid server settings: " + "; ".join(problems) + ".")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
