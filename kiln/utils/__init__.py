"""Small utilities with Keras's names: ``set_random_seed``, ``to_categorical``."""

from kiln.utils.random import set_random_seed
from kiln.utils.categorical import to_categorical, normalize

__all__ = ["set_random_seed", "to_categorical", "normalize"]
