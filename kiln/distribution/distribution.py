"""``DataParallel`` and Keras 3's ``set_distribution`` / ``distribution()``.

Global state, and why: Keras 3's API is a process-wide setting (``set_distribution`` once,
then every ``fit`` in the process uses it), and a torch process group is process-wide too. So
this module holds one value, ``_current`` (None until ``set_distribution`` runs); nothing
else reads the environment or keeps state. ``set_distribution(None)`` clears it.

What ``DataParallel`` does inside ``fit`` (the trainer asks it, kiln/training/trainer.py):
- joins the process group ``torchrun`` describes (``RANK``/``WORLD_SIZE``/``MASTER_ADDR``... in
  the environment, read once here at the edge), gloo on the CPU, nccl on CUDA;
- draws the data order on rank 0 and gives it to every rank, then cuts each global batch into
  per-rank slices (sharding.py) and wraps the module in ``DistributedDataParallel`` for the
  fit (unwrapped again when it ends);
- sums the epoch's loss and metric states over ranks (reduce.py), so logs are the
  one-process ones on every rank;
- keeps callbacks that write files or print (ModelCheckpoint, CSV/JSONL loggers, TensorBoard,
  the progress bar, BackupAndRestore's backups) on rank 0 only.

Example (``torchrun --nproc-per-node 2 script.py``)::

    import kiln
    kiln.distribution.set_distribution(kiln.distribution.DataParallel())
    model.fit(x, y, batch_size=64, epochs=3)

Raises:
    KilnValueError: outside ``torchrun`` (no ``WORLD_SIZE``), an unknown backend, more
        processes than training rows, ``jit_compile=True`` (not supported with DDP yet).
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os

import torch
import torch.distributed as dist

from kiln.callbacks.callback import Callback
from kiln.distribution.reduce import reduce_epoch
from kiln.distribution.sharding import Shard, shard_batch
from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["DataParallel", "set_distribution", "distribution"]

_BACKENDS = ("gloo", "nccl")
_current: "DataParallel | None" = None


def set_distribution(value: "DataParallel | None") -> None:
    """Make ``value`` the distribution every later ``fit`` in this process uses (Keras 3's
    ``keras.distribution.set_distribution``); None goes back to one process."""
    global _current
    if value is not None and not isinstance(value, DataParallel):
        raise KilnTypeError(f"set_distribution expects a kiln.distribution.DataParallel or None; received "
                            f"{type(value).__name__}. Example: set_distribution(DataParallel()).")
    if value is not None:
        value.setup()
    _current = value


def distribution() -> "DataParallel | None":
    """The distribution set by ``set_distribution`` (None: one process)."""
    return _current


class DataParallel:
    """Data-parallel training over the processes ``torchrun`` started (DDP underneath).

    The same seed gives the same model as one process with the same global ``batch_size``,
    up to float reduction order (tests/distribution check 1e-6 relative on float32 weights).

    Args:
        backend: "gloo" or "nccl" (default None: nccl when CUDA is available, else gloo).
        timeout_s: how long a collective waits for a missing rank before failing (default 300).
    """

    def __init__(self, backend: str | None = None, timeout_s: float = 300.0):
        if backend is not None and backend not in _BACKENDS:
            raise KilnValueError(f"Received an invalid value for `backend`, expected one of {list(_BACKENDS)} "
                                 f"or None (automatic). Received: backend={backend!r}")
        self.backend = backend
        self.timeout_s = float(timeout_s)
        self.rank = 0
        self.world_size = 1

    # ---------------------------------------------------------------- process group
    def setup(self) -> None:
        """Join torchrun's process group (once per process; a group already there is used)."""
        if not dist.is_initialized():
            if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
                raise KilnValueError("DataParallel runs under torchrun, which starts one process per rank and sets "
                                     "RANK/WORLD_SIZE; none are set here. Run `torchrun --nproc-per-node 2 "
                                     "script.py`, or `kiln train cfg.yaml --nproc 2`.")
            backend = self.backend or ("nccl" if torch.cuda.is_available() else "gloo")
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=self.timeout_s))
            atexit.register(_shutdown)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    @property
    def is_writer(self) -> bool:
        """True on rank 0, the one process that writes files and prints."""
        return self.rank == 0

    # ---------------------------------------------------------------- what fit asks
    def check_fit(self, trainer, data) -> None:
        """Refuse what this increment cannot do exactly, before anything runs."""
        if trainer.jit_compile:
            raise KilnValueError("compile(jit_compile=True) is not supported with DataParallel yet; compile with "
                                 "jit_compile=False for distributed training.")
        size = getattr(data, "size", None)
        if size is not None and size < self.world_size:
            raise KilnValueError(f"The training data has {size} rows for {self.world_size} processes; each process "
                                 f"needs at least one. Use at most {size} processes (--nproc {size}).")

    def sync_generator(self, generator: torch.Generator) -> None:
        """Give every rank rank 0's shuffle generator, so all draw one global order."""
        state = [generator.get_state()]
        dist.broadcast_object_list(state, src=0)
        generator.set_state(state[0])

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module under DDP (which also copies rank 0's weights to every rank)."""
        from torch.nn.parallel import DistributedDataParallel
        ids = [device.index or 0] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def shard(self, x, y, sample_weight) -> Shard:
        return shard_batch(x, y, sample_weight, self.rank, self.world_size)

    def reduce(self, loss_sum, count, objectives, device):
        return reduce_epoch(loss_sum, count, objectives, device)

    def callbacks(self, callbacks: list) -> list:
        """The callbacks this rank runs: all on rank 0; elsewhere, none that write or print."""
        if self.is_writer:
            return callbacks
        from kiln.callbacks import (BackupAndRestore, CSVLogger, JSONLLogger, ModelCheckpoint, ProgbarLogger,
                                    TensorBoard)
        kept = []
        for cb in callbacks:
            if isinstance(cb, BackupAndRestore):
                kept.append(_RestoreOnly(cb))  # every rank restores; rank 0 alone writes
            elif not isinstance(cb, (CSVLogger, JSONLLogger, ModelCheckpoint, ProgbarLogger, TensorBoard)):
                kept.append(cb)
        return kept

    def __repr__(self) -> str:
        return f"DataParallel(backend={self.backend!r}, rank={self.rank}, world_size={self.world_size})"


class _RestoreOnly(Callback):
    """BackupAndRestore on a rank that must read the checkpoint but never write it."""

    def __init__(self, backup):
        super().__init__()
        self.backup = backup

    def on_train_begin(self, logs=None):
        from kiln.training.checkpoint import load_checkpoint
        if self.backup.path.exists():
            self.model.restore_training_state(load_checkpoint(self.backup.path))


def _shutdown() -> None:
    """Leave the process group at exit. Collecting garbage first lets DDP's reducer go before
    the group: without it gloo aborted ~1 run in 4 (docs: /work/shared/ENVIRONMENT.md)."""
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()
