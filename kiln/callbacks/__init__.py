"""Callbacks with Keras's names and hooks."""

from kiln.callbacks.callback import Callback, CallbackList
from kiln.callbacks.history import History
from kiln.callbacks.progbar_logger import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
