"""Keras's ``PyDataset`` (formerly ``Sequence``): a Python object that serves whole batches.

A Keras program subclasses it with ``__len__`` (batches per epoch) and ``__getitem__(i)``
(batch ``i`` as ``x``, ``(x, y)`` or ``(x, y, sample_weight)``, NumPy or tensors) and passes
it to ``fit``; kiln iterates it once per epoch (in shuffled batch order when
``fit(shuffle=True)``) and calls ``on_epoch_end()`` after each pass, as Keras does.
"""

from __future__ import annotations

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class for batch-serving datasets.

    Args:
        workers, use_multiprocessing, max_queue_size: accepted for Keras compatibility;
            kiln reads batches in the training process (wrap the data in a torch
            ``DataLoader`` with ``num_workers`` for parallel loading).

    Example::

        class Batches(kiln.utils.PyDataset):
            def __init__(self, x, y, batch_size):
                super().__init__()
                self.x, self.y, self.batch_size = x, y, batch_size
            def __len__(self):
                return -(-len(self.x) // self.batch_size)
            def __getitem__(self, i):
                s = slice(i * self.batch_size, (i + 1) * self.batch_size)
                return self.x[s], self.y[s]
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (the number of batches).")

    def __getitem__(self, index: int):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__ (batch number `index`).")

    def on_epoch_end(self) -> None:
        """Called after each pass over the batches (e.g. to reshuffle)."""


Sequence = PyDataset  # Keras 2's name
