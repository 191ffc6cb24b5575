"""kiln_edge's errors: kiln's own errors, so ``except kiln.errors.KilnError`` catches them too.

Why importing ``kiln.errors`` is safe here: it imports only the standard library, and ``import
kiln`` itself is lazy (PEP 562), so the torch-free path stays torch-free (tests/test_architecture.py
checks that ``kiln.errors`` imports nothing of kiln's and that kiln_edge imports no other part of kiln).
"""

from __future__ import annotations

from kiln.errors import DataError, KilnValueError

__all__ = ["EdgeError", "EdgeDataError", "UnsupportedFeatureError"]


class EdgeError(KilnValueError):
    """Any error of the torch-free inference path (a ``ValueError`` and a ``KilnError``)."""


class EdgeDataError(EdgeError, DataError):
    """The data (a column, a value) cannot be encoded: names the column/row and the fix."""


class UnsupportedFeatureError(EdgeError):
    """A feature type the torch-free path cannot preprocess (every kiln feature type is covered
    today; a run saved by a newer kiln may hold one this version does not know)."""
