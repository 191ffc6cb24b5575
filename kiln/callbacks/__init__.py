"""Callbacks with Keras's names and hooks."""

from kiln.callbacks.backup_and_restore import BackupAndRestore
from kiln.callbacks.callback import Callback, CallbackList
from kiln.callbacks.csv_logger import CSVLogger
from kiln.callbacks.early_stopping import EarlyStopping
from kiln.callbacks.history import History
from kiln.callbacks.jsonl_logger import JSONLLogger
from kiln.callbacks.lambda_callback import LambdaCallback
from kiln.callbacks.learning_rate_scheduler import LearningRateScheduler
from kiln.callbacks.model_checkpoint import ModelCheckpoint
from kiln.callbacks.progbar_logger import ProgbarLogger
from kiln.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from kiln.callbacks.tensorboard import TensorBoard
from kiln.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["BackupAndRestore", "Callback", "CallbackList", "CSVLogger", "EarlyStopping", "History", "JSONLLogger", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "ProgbarLogger", "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]
