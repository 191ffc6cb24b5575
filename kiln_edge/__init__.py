"""Torch-free inference for kiln runs: NumPy preprocessing + onnxruntime.

    from kiln_edge import OnnxRun
    run = OnnxRun("runs/iris-20261129-101500")      # needs RUN/export/model.onnx
    run.predict_frame(frame)                        # same columns/values as kiln's Run.predict_frame

Why a separate top-level package (not ``kiln.edge``): it must run where torch is not installed,
so nothing here imports ``kiln`` or ``torch`` (``import kiln`` is lazy too, but a package of its
own keeps the boundary checkable). The fitted features are read from the same ``features.json``
+ ``features.safetensors`` (through ``safetensors.numpy``); ``kiln_edge.server`` is the HTTP
server both backends share. Installing on a machine without torch: docs/edge.md (``pip install
--no-deps kiln`` then the ``edge`` extra's packages; ``kiln[edge]`` alone would pull torch).
"""

from kiln_edge.errors import EdgeDataError, EdgeError, UnsupportedFeatureError
from kiln_edge.features import load_features
from kiln_edge.run import OnnxRun, as_probabilities

__all__ = ["OnnxRun", "load_features", "as_probabilities", "EdgeError", "EdgeDataError",
           "UnsupportedFeatureError"]
