"""Models: ``Model`` (subclassing and functional), ``Sequential``, and loading."""

from kiln.models.functional import Functional
from kiln.models.model import Model
from kiln.models.sequential import Sequential
from kiln.saving.model_io import load_model

__all__ = ["Model", "Sequential", "Functional", "load_model"]
