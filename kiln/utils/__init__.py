"""Small utilities with Keras's names: seeding, labels, padding, batch-serving datasets."""

from kiln.utils.categorical import normalize, to_categorical
from kiln.utils.py_dataset import PyDataset, Sequence
from kiln.utils.random import set_random_seed
from kiln.utils.sequences import pad_sequences

__all__ = ["set_random_seed", "to_categorical", "normalize", "pad_sequences", "PyDataset", "Sequence"]
