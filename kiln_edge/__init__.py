"""Torch-free inference for kiln runs: NumPy preprocessing + onnxruntime.

    from kiln_edge import OnnxRun
    run = OnnxRun("runs/iris-20261129-101500")      # needs RUN/export/model.onnx
    run.predict_frame(frame)                        # same columns/values as kiln's load_run(...).predict_frame
    run.evaluate_frame(frame)                       # MAE/RMSE/R² of numeric outputs, in data units

``LoadedRun`` is the one run object of both backends (kiln's torch one comes from
``kiln.workflows.run.load_run``); ``OnnxRun`` builds it on onnxruntime.

Why a separate top-level package (not ``kiln.edge``): it must run where torch is not installed,
so nothing here imports ``torch``, nor any of ``kiln`` but ``kiln.errors`` (standard library only:
kiln_edge's errors are kiln's errors; ``import kiln`` is lazy, and a package of its own keeps the
boundary checkable, tests/test_architecture.py). The fitted features are read from the same ``features.json``
+ ``features.safetensors`` (through ``safetensors.numpy``); ``kiln_edge.server`` is the HTTP
server both backends share. Installing on a machine without torch: docs/edge.md (``pip install
--no-deps kiln`` then the ``edge`` extra's packages; ``kiln[edge]`` alone would pull torch).
"""

import importlib

from kiln_edge.errors import EdgeDataError, EdgeError, UnsupportedFeatureError

__all__ = ["LoadedRun", "OnnxRun", "load_features", "as_probabilities", "EdgeError", "EdgeDataError",
           "UnsupportedFeatureError"]

# Imported on first use: `kiln serve --help` reads the server's flags from kiln_edge.serve, and
# that must not load pandas/onnxruntime (or fail where they are not installed).
_LAZY = {"LoadedRun": "kiln_edge.run", "OnnxRun": "kiln_edge.run", "as_probabilities": "kiln_edge.run", "load_features": "kiln_edge.features"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kiln_edge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
