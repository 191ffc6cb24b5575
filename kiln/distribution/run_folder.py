"""One run folder for a distributed ``kiln train``: rank 0 writes it; the others only read.

Every rank runs the whole train workflow (so the collectives inside fit and evaluate line up),
but only rank 0 may write the run folder. Rank 0 creates it and tells the others its path;
each other rank gets a scratch folder of its own for what the workflow writes (deleted at
exit), whose ``checkpoints`` entry points at the real run's checkpoints, so that a resumed
run restores the same checkpoint on every rank (they never write it: kiln/distribution/
distribution.py keeps BackupAndRestore's backups on rank 0).

Example (inside the train workflow)::

    run_dir = shared_run_folder(lambda: _run_dir(config, output_dir, resume))
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist

from kiln.distribution.distribution import distribution

__all__ = ["shared_run_folder"]


def shared_run_folder(make: Callable[[], Path]) -> Path:
    """``make()`` on rank 0 (and in a single process); a scratch folder on every other rank."""
    current = distribution()
    if current is None:
        return make()
    made = [None]
    if current.is_writer:
        try:
            made[0] = str(make())
        except Exception as err:  # the other ranks wait for the path: send them the error instead
            made[0] = err
    dist.broadcast_object_list(made, src=0)
    if isinstance(made[0], Exception):
        raise made[0]
    if current.is_writer:
        return Path(made[0])
    scratch = Path(tempfile.mkdtemp(prefix=f"kiln-rank{current.rank}-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    (scratch / "checkpoints").symlink_to(Path(made[0]).resolve() / "checkpoints", target_is_directory=True)
    return scratch
