"""Child processes that die with their parent (Linux), so a killed launcher leaves no orphans."""

from __future__ import annotations

import os
import sys

__all__ = ["die_with_parent"]


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (even by SIGKILL); elsewhere a no-op.

    Why: ``kiln tune``'s trial workers and torchrun's workers (which torchrun starts in sessions of
    their own, out of reach of a signal to the launcher's process group) would otherwise run on as
    orphans after their launcher is killed, beside the run that ``--resume`` starts.
    """
    if sys.platform != "linux":
        return
    import ctypes
    import signal
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
