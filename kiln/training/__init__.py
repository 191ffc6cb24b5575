"""The training loop for any ``nn.Module`` (used by ``Model.fit``) and its public state."""

from kiln.training.fit_state import FitState
from kiln.training.trainer import Trainer

__all__ = ["FitState", "Trainer"]
