"""kiln_edge's errors: plain ``ValueError`` subclasses (``kiln.errors`` would import torch)."""

from __future__ import annotations

__all__ = ["EdgeError", "EdgeDataError", "UnsupportedFeatureError"]


class EdgeError(ValueError):
    """Any error of the torch-free inference path."""


class EdgeDataError(EdgeError):
    """The data (a column, a value) cannot be encoded: names the column/row and the fix."""


class UnsupportedFeatureError(EdgeError):
    """A feature type the torch-free path cannot preprocess (every kiln feature type is covered
    today; a run saved by a newer kiln may hold one this version does not know)."""
