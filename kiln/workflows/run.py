"""A finished run folder loaded back with the torch backend: ``load_run(path)``.

Used by `kiln evaluate`, `kiln predict`, `kiln export` and the server. The run object itself is
``kiln_edge.run.LoadedRun``, shared with the ONNX path (roles, encoding, probabilities,
``predict_frame``, ``evaluate_frame``, metrics in data units); this module adds only what needs
torch: ``TorchBackend`` (kiln's model predicts and evaluates; probabilities by torch's softmax,
so predictions stay bit for bit what they were) and the loader of kiln's features and model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kiln.errors import DataError
from kiln_edge.run import LoadedRun, read_roles

__all__ = ["Run", "TorchBackend", "load_run", "as_probabilities"]

Run = LoadedRun  # the loaded-run object (one class for both backends); kept under its old name


def as_probabilities(feature, outputs, kind: str) -> torch.Tensor:
    """Model outputs of a class feature as probabilities (softmax/sigmoid of logits);
    values of a numeric feature unchanged. Features' ``decode`` takes these."""
    out = torch.as_tensor(outputs).float()
    if kind == "logits" and feature.type in ("category", "binary"):
        out = torch.softmax(out, dim=-1) if feature.type == "category" else torch.sigmoid(out)
    return out


class TorchBackend:
    """A kiln model as a ``LoadedRun`` backend (see ``kiln_edge.run``)."""

    name = "torch"

    def __init__(self, model):
        self.model = model
        self._float_dtype = None  # the model's float dtype, read on the first predict_batch

    def predict(self, encoded: dict, batch_size: int):
        return self.model.predict(encoded, batch_size=batch_size, verbose=0)

    def predict_batch(self, encoded: dict):
        """One forward pass over all rows, for the server's micro-batches: what ``predict`` returns
        (the same arrays, bit for bit), without its per-call work (data adapter, callbacks, batch
        loop, thread choice, train/eval switching): eval mode is set once, under inference_mode."""
        from kiln.training.trainer import _concat_outputs, _float_dtype
        if self._float_dtype is None:
            self._float_dtype = _float_dtype(self.model)
            self.model.eval()  # a loaded run only predicts/evaluates, both in eval mode
        x = {}
        for name, value in encoded.items():  # as predict's data adapter: floats in the model's dtype
            tensor = torch.as_tensor(value)
            floats = tensor.is_floating_point() and tensor.dtype != self._float_dtype
            x[name] = tensor.to(self._float_dtype) if floats else tensor
        with torch.inference_mode():
            return _concat_outputs([self.model(x)])

    def probabilities(self, feature, raw, kind: str) -> np.ndarray:
        return as_probabilities(feature, raw, kind).numpy()

    def evaluate(self, x, y, batch_size: int) -> dict:
        return self.model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)


def load_run(path) -> LoadedRun:
    """Load ``runs/<name>-<stamp>`` (or its ``model`` folder) written by `kiln train`."""
    import kiln
    from kiln.data.features import load_features
    path = Path(path)
    model_dir = path / "model" if (path / "model").is_dir() else path
    if not (model_dir / "config.json").exists():
        raise DataError(f"{path} is not a kiln run folder (no model/config.json). Pass the folder `kiln train` "
                        f"printed, e.g. runs/my-model-20261129-101500.")
    model = kiln.load_model(model_dir)
    inputs, outputs, kinds = read_roles(model_dir, load_features(model_dir))
    config_file = path / "config.yaml"
    return LoadedRun(path, inputs, outputs, TorchBackend(model), kinds,
                     config_file.read_text() if config_file.exists() else "", data_error=DataError)
