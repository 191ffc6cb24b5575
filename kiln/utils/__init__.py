"""Small utilities with Keras's names: ``set_random_seed``, ``to_categorical``, ``pad_sequences``."""

from kiln.utils.random import set_random_seed
from kiln.utils.categorical import to_categorical, normalize
from kiln.utils.sequences import pad_sequences

__all__ = ["set_random_seed", "to_categorical", "normalize", "pad_sequences"]
