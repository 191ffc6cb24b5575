"""CSVLogger: one CSV row per epoch — ``epoch`` then every log key in sorted order.

The file is flushed after every row, so the rows of finished epochs survive a crash. As in
Keras, the columns are fixed by the first epoch's logs; when those hold no ``val_`` keys
(validation_freq > 1, or no validation) the ``val_`` columns are added anyway and filled
with ``NA`` until validation values appear.
"""

from __future__ import annotations

import collections.abc
import csv
import os

import numpy as np
import torch

from kiln.callbacks.callback import Callback
from kiln.errors import KilnTypeError

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Stream each epoch's logs to a CSV file.

    Args:
        filename: the CSV file (str or ``os.PathLike``), e.g. ``"run/log.csv"``; its folder is
            created if needed.
        separator: the field separator (default ``","``).
        append: True appends to an existing file (no second header), e.g. when resuming
            training; False (default) overwrites it.

    Example::

        model.fit(x, y, epochs=10, callbacks=[CSVLogger("training.csv")])
        # epoch,loss,mae,val_loss,val_mae
        # 0,0.52,0.61,0.49,0.58
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)):
            raise KilnTypeError(f"`filename` must be a str or os.PathLike; received {type(filename).__name__}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise KilnTypeError(f"`separator` must be a single character; received separator={separator!r}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self.append_header = True
        self.writer = None
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, newline="") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            self.append_header = True
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        # newline="": the csv module writes its own line endings.
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend(["val_" + key for key in self.keys])
        if self.writer is None:
            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _handle_value(value):
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        return value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value
