"""The training loop for any ``nn.Module`` (used by ``Model.fit``)."""

from kiln.training.trainer import Trainer

__all__ = ["Trainer"]
