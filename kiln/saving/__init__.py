"""Saving and loading without pickle: JSON for architecture, safetensors for weights.

This package sits below kiln.layers and kiln.models and imports neither: a saved config names
each class by ``"module:qualname"`` (serialization.py), and a model hands over its extra files
through ``save_assets``/``load_assets``, so layers and models can use saving without a circle.
"""

from kiln.saving.model_io import load_model, save_model
from kiln.saving.serialization import get_registered_object, register_serializable
from kiln.saving.saved_model import load_weights
from kiln.saving.weights_io import save_weights

# Keras spells the decorator register_keras_serializable; ported code keeps working.
register_keras_serializable = register_serializable

__all__ = ["load_model", "save_model", "register_serializable", "register_keras_serializable",
           "get_registered_object", "save_weights", "load_weights"]
