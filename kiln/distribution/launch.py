"""The ``torchrun`` command behind ``kiln train cfg.yaml --nproc N``, and what a worker reads.

No home-made launcher: ``kiln train --nproc N ...`` replaces itself (``os.execv``) with
``python -m torch.distributed.run`` running ``python -m kiln train ...`` with the same
arguments minus the distributed flags; torchrun starts, watches and restarts the workers,
and each worker sees it runs under torchrun from the ``RANK``/``WORLD_SIZE`` torchrun sets
(read here, at the CLI's edge, and nowhere deeper).

One machine: ``--standalone`` (torchrun picks a free port). Several: ``--nnodes``,
``--node-rank`` and ``--rdzv-endpoint host:port`` (c10d rendezvous, the same on every node).

Example::

    kiln train cfg.yaml --nproc 2
    -> python -m torch.distributed.run --standalone --nnodes 1 --nproc-per-node 2
       --max-restarts 0 -m kiln train cfg.yaml
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence

from kiln.errors import KilnValueError

__all__ = ["torchrun_command", "worker_rank", "check_port_free", "exec_torchrun"]


def torchrun_command(train_args: Sequence[str], *, nproc: int, nnodes: int = 1, node_rank: int = 0,
                     rdzv_endpoint: str | None = None, max_restarts: int = 0,
                     python: str | None = None) -> list[str]:
    """The argv that runs ``kiln train *train_args`` on ``nproc`` processes per node.

    Args:
        train_args: the train command's own arguments (config, --output, --set, ...).
        nproc: processes on this node (one per GPU, or a few on a CPU).
        nnodes: machines in the job (default 1).
        node_rank: this machine's index, 0..nnodes-1 (default 0).
        rdzv_endpoint: ``host:port`` every node meets at; needed when ``nnodes > 1``.
        max_restarts: how often torchrun restarts the workers after one fails (default 0).
        python: the interpreter (default: this one).
    """
    _check_positive("--nproc", nproc, "the number of processes per machine, e.g. --nproc 2")
    _check_positive("--nnodes", nnodes, "the number of machines, e.g. --nnodes 2")
    if not isinstance(node_rank, int) or not 0 <= node_rank < nnodes:
        raise KilnValueError(f"Received an invalid value for --node-rank, expected 0..{nnodes - 1} (this machine's "
                             f"index among --nnodes {nnodes}). Received: --node-rank {node_rank}")
    if not isinstance(max_restarts, int) or max_restarts < 0:
        raise KilnValueError(f"Received an invalid value for --max-restarts, expected a non-negative integer. "
                             f"Received: --max-restarts {max_restarts}")
    command = [python or sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and rdzv_endpoint is None:
        command += ["--standalone", "--nnodes", "1"]
    else:
        if rdzv_endpoint is None:
            raise KilnValueError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT, the address every machine meets "
                                 f"at (the same on all of them), e.g. --rdzv-endpoint node0:29400.")
        _split_endpoint(rdzv_endpoint)
        command += ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--rdzv-backend", "c10d",
                    "--rdzv-endpoint", rdzv_endpoint]
    command += ["--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts), "-m", "kiln", "train",
                *train_args]
    return command


def worker_rank(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """``(rank, world_size)`` when ``environ`` is a torchrun worker's, else None."""
    if "RANK" in environ and "WORLD_SIZE" in environ and "TORCHELASTIC_RUN_ID" in environ:
        return int(environ["RANK"]), int(environ["WORLD_SIZE"])
    return None


def check_port_free(endpoint: str) -> None:
    """Fail early, with the fix, when this machine should host the rendezvous at a busy port."""
    host, port = _split_endpoint(endpoint)
    if host not in ("localhost", "127.0.0.1", socket.gethostname()):
        return  # another machine hosts it
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError:
            raise KilnValueError(f"--rdzv-endpoint {endpoint}: port {port} is already in use on this machine. Pick "
                                 f"a free port (e.g. --rdzv-endpoint {host}:{port + 1}) or stop the process "
                                 f"holding it.") from None


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KilnValueError(f"Received an invalid value for --rdzv-endpoint, expected HOST:PORT (e.g. "
                             f"node0:29400). Received: --rdzv-endpoint {endpoint}")
    return host, int(port)


def _check_positive(flag: str, value, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise KilnValueError(f"Received an invalid value for {flag}, expected a positive integer ({what}). "
                             f"Received: {flag} {value}")


def exec_torchrun(command: list[str]) -> None:  # pragma: no cover - replaces the process
    """Become torchrun: no kiln process stays around to orphan or to forward signals."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
