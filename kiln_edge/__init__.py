"""Torch-free inference for kiln runs: NumPy preprocessing + onnxruntime.

    from kiln_edge import OnnxRun
    run = OnnxRun("runs/iris-20261129-101500")      # needs RUN/export/model.onnx
    run.predict_frame(frame)                        # same columns/values as kiln's Run.predict_frame

Why a separate top-level package (not ``kiln.edge``): importing any ``kiln.*`` module runs
``kiln/__init__.py``, which imports torch. Nothing here imports ``kiln`` or ``torch``; the
fitted features are read from the same ``features.json`` + ``features.safetensors`` (through
``safetensors.numpy``). Install with ``pip install "kiln[edge]"`` (numpy, pandas, onnxruntime;
``tokenizers`` for BPE text features, ``fastapi``/``uvicorn`` for ``python -m kiln_edge.serve``).
"""

from kiln_edge.errors import EdgeDataError, EdgeError, UnsupportedFeatureError
from kiln_edge.features import load_features
from kiln_edge.run import OnnxRun, as_probabilities

__all__ = ["OnnxRun", "load_features", "as_probabilities", "EdgeError", "EdgeDataError",
           "UnsupportedFeatureError"]
