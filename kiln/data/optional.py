"""Optional packages of the data path (pandas, Pillow, soundfile, ...): imported when first needed.

Why a module of its own: every reader (sources.py, bundled.py, split.py) needs ``require``, and
sources.py dispatches to bundled.py, so ``require`` sits below them all.
"""

from __future__ import annotations

import importlib
from typing import Any

from kiln.errors import DataError

__all__ = ["require"]

_INSTALL_HINT = 'Install kiln\'s data extras: pip install "kiln[data]".'


def require(module: str) -> Any:
    """Import an optional package, or raise a DataError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataError(f"Reading data needs the package {module.split('.')[0]!r}, which is not installed "
                        f"({exc}). {_INSTALL_HINT}") from exc
