"""A finished run folder, loaded back: the model, its fitted features, and its config.

Used by `kiln evaluate`, `kiln predict`, `kiln export` and the server: raw rows go in,
the same preprocessing as in training is applied, and labels or values come out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kiln.errors import DataError, closest_match

__all__ = ["Run", "load_run", "as_probabilities"]


def as_probabilities(feature, outputs, kind: str) -> torch.Tensor:
    """Model outputs of a class feature as probabilities (softmax/sigmoid of logits);
    values of a numeric feature unchanged. Features' ``decode`` takes these."""
    out = torch.as_tensor(outputs).float()
    if kind == "logits" and feature.type in ("category", "binary"):
        out = torch.softmax(out, dim=-1) if feature.type == "category" else torch.sigmoid(out)
    return out


@dataclass
class Run:
    path: Path
    model: Any = field(repr=False)
    inputs: list = field(repr=False)
    outputs: list = field(repr=False)
    config_text: str = ""
    output_kinds: dict = field(default_factory=dict)  # output name -> "logits" | "probabilities"

    # -- encoding raw rows (a pandas DataFrame) the way training did
    def _check_columns(self, frame, features) -> None:
        columns = list(frame.columns)
        for feature in features:
            if feature.column not in columns:
                hint = closest_match(feature.column, columns)
                raise DataError(f"The data has no column {feature.column!r} (feature {feature.name!r})"
                                + (f"; did you mean {hint!r}?" if hint else "") + f". Columns: {columns}")

    def encode_inputs(self, frame) -> dict:
        self._check_columns(frame, self.inputs)
        return {f.name: f.transform(frame[f.column]) for f in self.inputs}

    def encode_targets(self, frame):
        self._check_columns(frame, self.outputs)
        y = {f.name: f.transform(frame[f.column]) for f in self.outputs}
        return next(iter(y.values())) if len(y) == 1 else y

    def predict_frame(self, frame, batch_size: int = 256):
        """Raw rows -> a DataFrame of predictions (labels/values, and class probabilities)."""
        import pandas as pd
        raw = self.model.predict(self.encode_inputs(frame), batch_size=batch_size, verbose=0)
        raw = raw if isinstance(raw, dict) else {self.outputs[0].name: raw}
        result = pd.DataFrame(index=frame.index)
        for feature in self.outputs:
            out = as_probabilities(feature, raw[feature.name], self.output_kinds.get(feature.name, "logits"))
            result[feature.name] = list(feature.decode(out))  # decode takes probabilities
            if feature.type == "category":
                for i, cls in enumerate(feature.spec()["classes"]):
                    result[f"{feature.name}_probability_{cls}"] = out[:, i].numpy()
            elif feature.type == "binary":
                result[f"{feature.name}_probability"] = out.numpy().reshape(-1)
        return result

    def evaluate_frame(self, frame, batch_size: int = 256) -> dict:
        return self.model.evaluate(self.encode_inputs(frame), self.encode_targets(frame), batch_size=batch_size,
                                   verbose=0, return_dict=True)


def load_run(path) -> Run:
    """Load ``runs/<name>-<stamp>`` (or its ``model`` folder) written by `kiln train`."""
    import kiln
    from kiln.data.features import load_features
    path = Path(path)
    model_dir = path / "model" if (path / "model").is_dir() else path
    if not (model_dir / "config.json").exists():
        raise DataError(f"{path} is not a kiln run folder (no model/config.json). Pass the folder `kiln train` "
                        f"printed, e.g. runs/my-model-20261129-101500.")
    model = kiln.load_model(model_dir)
    features = load_features(model_dir)
    described = json.loads((model_dir / "roles.json").read_text())
    roles = described["roles"]
    inputs = [features[n] for n, r in roles.items() if r == "input"]
    outputs = [features[n] for n, r in roles.items() if r == "output"]
    config_file = path / "config.yaml"
    return Run(path, model, inputs, outputs, config_file.read_text() if config_file.exists() else "",
               output_kinds=described.get("outputs", {}))
