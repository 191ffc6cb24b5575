"""``OnnxRun``: a kiln run folder predicted with onnxruntime and NumPy features, never torch.

    run = OnnxRun("runs/tiny-20261129-101500")   # reads model/features.*, model/roles.json, export/model.onnx
    run.predict_frame(frame)                     # labels/values + probabilities, as Run.predict_frame

The ONNX file is the one ``kiln export RUN --format onnx`` writes (checked against torch at
export); its inputs are named by input feature. Outputs are taken in the graph's order, which is
the model's output order (the order of the output features in ``roles.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.features import load_features

__all__ = ["OnnxRun", "as_probabilities"]


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def as_probabilities(feature, outputs, kind: str) -> np.ndarray:
    """NumPy twin of ``kiln.workflows.run.as_probabilities``: softmax/sigmoid of class logits."""
    out = np.asarray(outputs, dtype=np.float32)
    if kind == "logits" and feature.type in ("category", "binary"):
        out = _softmax(out) if feature.type == "category" else _sigmoid(out)
    return out


class OnnxRun:
    """A run folder served by onnxruntime: ``inputs``, ``outputs`` (features), ``predict_frame``."""

    backend_name = "onnx"

    def __init__(self, path, onnx_path=None, providers=None, threads: int | None = None):
        """Args: ``threads``: onnxruntime's intra-op threads (default None: its own default, every
        core); the server passes 1, so the model thread and the event loop each keep a core."""
        path = Path(path)
        self.path = path
        model_dir = path / "model" if (path / "model").is_dir() else path
        run_dir = path if model_dir != path else path.parent
        if not (model_dir / "roles.json").exists():
            raise EdgeError(f"{path} is not a kiln run folder (no model/roles.json). Pass the folder `kiln train` "
                            f"printed, e.g. runs/my-model-20261129-101500.")
        onnx_file = Path(onnx_path) if onnx_path is not None else run_dir / "export" / "model.onnx"
        if not onnx_file.exists():
            raise EdgeError(f"No ONNX model at {onnx_file}: export it first with `kiln export {run_dir} --format "
                            f"onnx` (needs kiln[export], on a machine with torch).")
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise EdgeError(f"The torch-free backend needs onnxruntime: pip install onnxruntime (the `edge` extra's packages: docs/edge.md) ({err}).") from err
        features = load_features(model_dir)
        described = json.loads((model_dir / "roles.json").read_text())
        roles = described["roles"]
        self.inputs = [features[n] for n, r in roles.items() if r == "input"]
        self.outputs = [features[n] for n, r in roles.items() if r == "output"]
        self.output_kinds = described.get("outputs", {})
        config_file = run_dir / "config.yaml"
        self.config_text = config_file.read_text() if config_file.exists() else ""
        self.name = next((line.split(":", 1)[1].strip().strip("'\"") for line in self.config_text.splitlines()
                          if line.startswith("name:")), run_dir.name)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_file), options, providers=providers or ["CPUExecutionProvider"])
        self._input_names = [i.name for i in self.session.get_inputs()]
        missing = [f.name for f in self.inputs if f.name not in self._input_names]
        if missing:
            raise EdgeError(f"{onnx_file} has no input named {missing[0]!r} (its inputs: "
                            f"{', '.join(self._input_names)}); export it again with `kiln export {run_dir} "
                            f"--format onnx`.")

    def encode_inputs(self, frame) -> dict:
        for feature in self.inputs:
            if feature.column not in frame.columns:
                raise EdgeDataError(f"The data has no column {feature.column!r} (feature {feature.name!r}). "
                                    f"Columns: {list(frame.columns)}")
        return {f.name: f.transform(frame[f.column]) for f in self.inputs}

    def predict_raw(self, frame, batch_size: int = 256) -> dict:
        """Raw model outputs ``{output name: np.ndarray}`` (logits or probabilities, per roles.json)."""
        encoded = self.encode_inputs(frame)
        rows = len(frame)
        chunks = []
        for start in range(0, rows, batch_size) if rows else []:
            feeds = {name: encoded[name][start:start + batch_size] for name in self._input_names}
            chunks.append(self.session.run(None, feeds))
        if not chunks:
            raise EdgeDataError("No rows to predict.")
        merged = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
        return {f.name: out for f, out in zip(self.outputs, merged)}

    def predict_frame(self, frame, batch_size: int = 256):
        """Raw rows -> a DataFrame of predictions, the columns ``Run.predict_frame`` gives."""
        import pandas as pd
        raw = self.predict_raw(frame, batch_size)
        result = pd.DataFrame(index=frame.index)
        for feature in self.outputs:
            out = as_probabilities(feature, raw[feature.name], self.output_kinds.get(feature.name, "logits"))
            result[feature.name] = list(feature.decode(out))
            if feature.type == "category":
                for i, cls in enumerate(feature.classes):
                    result[f"{feature.name}_probability_{cls}"] = out[:, i]
            elif feature.type == "binary":
                result[f"{feature.name}_probability"] = out.reshape(-1)
        return result
