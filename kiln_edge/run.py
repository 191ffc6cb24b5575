"""A finished run folder, loaded back: ``LoadedRun``, one object for both backends.

    run = OnnxRun("runs/tiny-20261129-101500")      # onnxruntime + NumPy features, never torch
    run = kiln.workflows.run.load_run("runs/...")   # the torch backend: kiln's model + features
    run.predict_frame(frame)                        # labels/values + probabilities
    run.evaluate_frame(frame)                       # metrics; MAE/RMSE/R² of numeric outputs in data units

Raw rows go in, the training's preprocessing is applied (the fitted features' ``transform``), a
backend predicts, and labels or values come out (the features' ``decode``). Everything but the
prediction itself is here, once: roles, column checks, encoding, probabilities, the prediction
frame's columns and the metrics in data units. A backend supplies only what depends on the
engine (``OnnxBackend`` below; kiln's ``TorchBackend`` in ``kiln.workflows.run``):

    name                                   "torch" | "onnx" (``/metadata``'s ``backend``)
    model                                  what predicts (a kiln Model, an InferenceSession)
    predict(encoded, batch_size) -> dict   {output name: raw outputs (logits or probabilities)}
    probabilities(feature, raw, kind)      np.ndarray: softmax/sigmoid of class logits, values as is
    evaluate(x, y, batch_size) -> dict     the model's own metrics (loss ...); {} where it has none

Why here, in kiln_edge: the ONNX path must never import torch, and every ``kiln.*`` module does.

Units: numeric outputs are trained standardised, so the model's own metrics (``loss``, and the
compiled ``mae``/``rmse``/``r2``) are on the standardised target. ``evaluate_frame`` replaces MAE,
RMSE and R² with those of the decoded predictions in the data's units (``regression_metrics``,
the function evaluation.json uses); ``loss`` stays the training loss, on the standardised target
(``LoadedRun.standardised`` names it, so callers can say so).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.preprocessing.common import row_list, row_name
from kiln_edge.regression import regression_metrics

__all__ = ["LoadedRun", "OnnxRun", "OnnxBackend", "as_probabilities", "metrics_in_data_units", "data_unit_names",
           "standardised_metrics", "read_roles"]

# The metrics of a numeric output that ``metrics_in_data_units`` reports (evaluation.json's keys).
DATA_UNIT_METRICS = ("mae", "rmse", "r2")


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def as_probabilities(feature, outputs, kind: str) -> np.ndarray:
    """Model outputs of a class feature as probabilities (softmax/sigmoid of logits, in NumPy);
    values of a numeric feature unchanged. The ONNX backend's ``probabilities``."""
    out = np.asarray(outputs, dtype=np.float32)
    if kind == "logits" and feature.type in ("category", "binary"):
        out = _softmax(out) if feature.type == "category" else _sigmoid(out)
    return out


def metrics_in_data_units(outputs, frame, predictions: dict) -> dict:
    """MAE, RMSE and R² of each numeric output's decoded predictions against its column.

    Args:
        outputs: the output features (any with ``type``, ``name``, ``column`` and ``decode``).
        frame: the rows, with the output columns (a pandas DataFrame).
        predictions: ``{output name: what ``decode`` takes}`` (numeric outputs: raw model outputs).

    Returns ``{"mae", "rmse", "r2"}`` for one output, ``{"<name>_mae", ...}`` for several; ``{}``
    without numeric outputs. ``r2`` is None for a constant target (``regression_metrics``).
    """
    result = {}
    for feature in (f for f in outputs if f.type == "numeric"):
        pred = np.asarray(feature.decode(predictions[feature.name]), dtype=float).reshape(-1)
        true = frame[feature.column].to_numpy(dtype=float)
        prefix = "" if len(outputs) == 1 else f"{feature.name}_"
        scores = regression_metrics(true, pred)
        result.update({f"{prefix}{key}": scores[key] for key in DATA_UNIT_METRICS})
    return result


def data_unit_names(outputs) -> list[str]:
    """The metric names ``metrics_in_data_units`` writes for these outputs (evaluation.json's keys)."""
    numeric = [f for f in outputs if f.type == "numeric"]
    return [("" if len(outputs) == 1 else f"{f.name}_") + key for f in numeric for key in DATA_UNIT_METRICS]


# Words in the name of a metric with units (an error, a loss); R² and class metrics have none.
_UNIT_WORDS = ("loss", "mae", "mse", "error", "absolute", "squared", "huber", "cosh")


def _is_scaled(feature) -> bool:
    """Whether a numeric feature trains on a rescaled target (normalization "standard", the
    default, or "minmax"); kiln's features hold ``normalization``, kiln_edge's ``options``."""
    options = getattr(feature, "options", None) or {}
    return getattr(feature, "normalization", options.get("normalization", "standard")) is not None


def standardised_metrics(outputs, names) -> list[str]:
    """Which of ``names`` (a model's own metrics, as history and ``evaluate`` name them, without
    ``val_``) are on a standardised target: numeric outputs train as (value - mean) / std (or
    scaled to the training range, normalization "minmax"), so their loss and error metrics come
    in units of the std (range), not the data's. R² is unit-free; class metrics have
    no units. For evaluate's result, leave out ``data_unit_names(outputs)`` first (replaced).

    Example: one numeric output, ``["loss", "mae", "r2"]`` -> ``["loss", "mae"]``.
    """
    numeric = [f.name for f in outputs if f.type == "numeric" and _is_scaled(f)]
    if not numeric:
        return []

    def owned(name):  # several outputs name theirs "<output>_<metric>"; "loss" is their sum
        return len(outputs) == 1 or any(name.startswith(f"{n}_") for n in numeric)
    return [n for n in names if n == "loss" or (owned(n) and any(w in n.lower() for w in _UNIT_WORDS))]


def read_roles(model_dir: Path, features: dict) -> tuple[list, list, dict]:
    """``(inputs, outputs, output_kinds)`` from ``model_dir/roles.json`` and the loaded features."""
    described = json.loads((Path(model_dir) / "roles.json").read_text())
    roles = described["roles"]
    inputs = [features[n] for n, r in roles.items() if r == "input"]
    outputs = [features[n] for n, r in roles.items() if r == "output"]
    return inputs, outputs, described.get("outputs", {})


class LoadedRun:
    """A run folder's fitted features, roles and config with a backend that predicts.

    Args:
        path: the run folder (or its ``model`` folder).
        inputs, outputs: the fitted input and output features, in ``roles.json``'s order.
        backend: what predicts (see the module docstring): kiln's ``TorchBackend`` or ``OnnxBackend``.
        output_kinds: output name -> "logits" | "probabilities" (``roles.json``'s ``outputs``).
        config_text: the run's config.yaml ("" when there is none).
        data_error: the error class for data that does not fit (kiln passes its ``DataError``, so
            kiln's callers catch kiln errors; default ``EdgeDataError``).

    Example:
        >>> run = OnnxRun("runs/iris-20261129-101500")  # doctest: +SKIP
        >>> run.predict_frame(frame).columns  # doctest: +SKIP
        Index(['species', 'species_probability_setosa', ...])
    """

    def __init__(self, path, inputs, outputs, backend, output_kinds=None, config_text: str = "",
                 data_error: type = EdgeDataError):
        self.path = Path(path)
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.backend = backend
        self.output_kinds = dict(output_kinds or {})
        self.config_text = config_text
        self.data_error = data_error
        run_dir = self.path.parent if self.path.name == "model" else self.path
        self.name = next((line.split(":", 1)[1].strip().strip("'\"") for line in config_text.splitlines()
                          if line.startswith("name:")), run_dir.name)

    def __repr__(self) -> str:
        return f"LoadedRun(path={str(self.path)!r}, backend={self.backend_name!r})"

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def model(self):
        """The backend's model (a kiln Model for torch, an onnxruntime session for onnx)."""
        return self.backend.model

    @property
    def roles(self) -> dict:
        """Feature name -> "input" | "output"."""
        return {**{f.name: "input" for f in self.inputs}, **{f.name: "output" for f in self.outputs}}

    # -- encoding raw rows (a pandas DataFrame) the way training did
    def _check_columns(self, frame, features) -> None:
        columns = list(frame.columns)
        for feature in features:
            if feature.column not in columns:
                found = difflib.get_close_matches(str(feature.column).lower(), [str(c) for c in columns], n=1,
                                                  cutoff=0.5)
                raise self.data_error(f"The data has no column {feature.column!r} (feature {feature.name!r})"
                                      + (f"; did you mean {found[0]!r}?" if found else ".")
                                      + f" Columns: {columns}. Add it, or rename the column that holds it.")

    def encode_inputs(self, frame) -> dict:
        """Raw rows -> ``{input name: encoded batch}`` (the features' ``transform``).

        A finite value can still encode to infinity (1e308, standardised, overflows float32): the
        model would answer NaN (ONNX: a label with no probability) or a training-time error (torch).
        Both backends refuse it here, the same way, naming the feature, its rows and the fix.
        """
        self._check_columns(frame, self.inputs)
        encoded = {f.name: f.transform(frame[f.column]) for f in self.inputs}
        for feature in self.inputs:
            self._check_finite(feature, frame, encoded[feature.name])
        return encoded

    def _check_finite(self, feature, frame, batch) -> None:
        if not hasattr(batch, "dtype"):
            return  # a structure (a dict of arrays): its feature checks its own values
        values = np.asarray(batch.detach().cpu() if hasattr(batch, "detach") else batch)  # a torch tensor or NumPy
        if values.dtype.kind != "f" or values.ndim == 0:
            return  # token ids, class indices: integers cannot overflow here
        bad = ~np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)  # (rows,)
        if not bad.any():
            return
        rows = frame.index[bad]
        first = frame[feature.column].loc[rows[0]]
        first = first.item() if isinstance(first, np.generic) else first  # 1e+308, not np.float64(1e+308)
        raise self.data_error(
            f"Input {feature.name!r} (column {feature.column!r}): {row_list(rows)} "
            f"{'hold values that are' if len(rows) > 1 else 'holds a value that is'} too large for the model "
            f"({row_name(rows, rows[0])}: {first!r}): once normalised with the training data's statistics it "
            f"overflows float32 to infinity. Send values within the range the model was trained on, or leave "
            f"them empty (a missing value is filled as in training).")

    def filled_counts(self, frame) -> dict:
        """``{input name: {"missing": n, "unseen": m}}`` for the inputs with values the encoding fills.

        Prediction keeps training's rules (a missing value gets the feature's fill, an unseen
        category ``<unk>``) but should not hide how often it did so; callers report these counts.
        Inputs with nothing filled are left out.
        """
        from kiln_edge.preprocessing.category import label_text
        counts = {}
        for feature in self.inputs:
            if feature.column not in frame.columns or feature.type not in ("numeric", "category", "binary", "text"):
                continue
            series = frame[feature.column]
            blank = series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
            missing = series.isna().to_numpy() | blank
            unseen = 0
            if feature.type == "category":
                known = {label_text(c) for c in feature.classes[1:]}  # [0] is "<unk>"
                unseen = int(sum(label_text(v) not in known for v in series[~missing].tolist()))
            if missing.any() or unseen:
                counts[feature.name] = {"missing": int(missing.sum()), "unseen": unseen}
        return counts

    def encode_targets(self, frame):
        """Raw rows -> the encoded targets (one output: its batch; several: a dict by name)."""
        self._check_columns(frame, self.outputs)
        y = {f.name: f.transform(frame[f.column]) for f in self.outputs}
        return next(iter(y.values())) if len(y) == 1 else y

    # -- predicting
    def predict_raw(self, frame, batch_size: int = 256) -> dict:
        """Raw model outputs ``{output name: outputs}`` (logits or probabilities, per roles.json)."""
        return self._predict_encoded(self.encode_inputs(frame), batch_size)

    def _predict_encoded(self, encoded: dict, batch_size: int) -> dict:
        raw = self.backend.predict(encoded, batch_size)
        return raw if isinstance(raw, dict) else {self.outputs[0].name: raw}  # a one-output model's batch

    def probabilities(self, raw: dict) -> dict:
        """``{output name: np.ndarray}``: class outputs as probabilities, numeric ones as they are."""
        return {f.name: self.backend.probabilities(f, raw[f.name], self.output_kinds.get(f.name, "logits"))
                for f in self.outputs}

    def predict_frame(self, frame, batch_size: int = 256):
        """Raw rows -> a DataFrame of predictions (labels/values, and class probabilities)."""
        import pandas as pd
        result = pd.DataFrame(index=frame.index)
        for name, values in self._output_columns(self.probabilities(self.predict_raw(frame, batch_size))):
            result[name] = values
        return result

    def _output_columns(self, scores: dict) -> list[tuple[str, object]]:
        """The prediction columns, in order: each output's labels/values (``decode`` takes
        probabilities), then a class output's probability per class (binary: of the positive one)."""
        columns = []
        for feature in self.outputs:
            out = scores[feature.name]
            columns.append((feature.name, list(feature.decode(out))))
            if feature.type == "category":
                columns += [(f"{feature.name}_probability_{cls}", out[:, i])
                            for i, cls in enumerate(feature.spec()["classes"])]
            elif feature.type == "binary":
                columns.append((f"{feature.name}_probability", out.reshape(-1)))
        return columns

    # -- the serving fast path: checked columns in, JSON-ready rows out, no DataFrame
    def predict_columns(self, columns: dict) -> list[dict]:
        """``{column: 1-D array}`` (float64 for numeric columns, object otherwise: what a DataFrame of
        the same rows holds) -> one dict per row, equal to ``predict_frame``'s rows.

        Why a second entry: a DataFrame, its Series and the backend's ``predict`` loop cost ~7 ms
        per call, whatever the rows (the raw forward of a small model ~0.5 ms). Here each column
        goes straight to its feature's ``transform_values`` (the array path ``transform`` shares),
        the backend's ``predict_batch`` runs one forward pass (no batching loop, no per-call
        checks), and the outputs are decoded column by column. Errors are ``transform``'s.
        """
        for feature in self.inputs:
            if feature.column not in columns:
                raise self.data_error(f"The data has no column {feature.column!r} (feature {feature.name!r}). "
                                      f"Columns: {list(columns)}. Add it, or rename the column that holds it.")
        encoded = self._encode_numeric_together(columns)
        encoded = {f.name: encoded[f.name] if f.name in encoded else f.transform_values(columns[f.column])
                   for f in self.inputs}
        finite = all(_finite(batch) for batch in encoded.values())
        if not finite:
            # A finite value can encode to infinity (1e308, standardised): the DataFrame path's
            # checks and errors (encoding, then the backend's own predict), so both paths answer
            # such a request the same way.
            import pandas as pd
            encoded = self.encode_inputs(pd.DataFrame(columns))
        fast = getattr(self.backend, "predict_batch", None) if finite else None
        rows = len(next(iter(columns.values()))) if columns else 0
        raw = fast(encoded) if fast is not None else self.backend.predict(encoded, max(rows, 1))
        scores = self.probabilities(raw if isinstance(raw, dict) else {self.outputs[0].name: raw})
        columns = self._output_columns(scores)  # predict_frame's columns, in its order
        names, lists = [name for name, _ in columns], [_json_column(values) for _, values in columns]
        return [dict(zip(names, row)) for row in zip(*lists)] if lists else [{} for _ in range(rows)]

    def _encode_numeric_together(self, columns: dict) -> dict:
        """Numeric inputs of float columns encoded in one (rows, k) pass of ``numeric.transform_values``
        (20 columns: ~0.1 ms instead of ~1 ms one by one); the same float32 bits per column. Any
        infinity (which the server refuses earlier): {} — each feature then raises its own error."""
        group = [f for f in self.inputs if f.type == "numeric" and not f.output and hasattr(f, "scaling")
                 and columns[f.column].dtype.kind == "f"]
        if len(group) < 2:
            return {}
        from kiln_edge.preprocessing import numeric
        matrix = np.stack([columns[f.column] for f in group], axis=1)  # (rows, k) float64
        if np.isinf(matrix).any():
            return {}
        fill, shift, divisor = (np.array(v, dtype=np.float64) for v in zip(*(f.scaling() for f in group)))
        out = numeric.transform_values(matrix, "", fill_value=fill, shift=shift, divisor=divisor)  # (rows, k)
        return {f.name: np.ascontiguousarray(out[:, j:j + 1]) for j, f in enumerate(group)}  # each (rows, 1)

    # -- evaluating
    def evaluate_frame(self, frame, batch_size: int = 256) -> dict:
        """Metrics on rows that hold the output columns, as evaluation.json reports them.

        The backend's own metrics first (torch: the compiled loss and metrics; onnx: none), then
        MAE/RMSE/R² of numeric outputs in the data's units (replacing the standardised ones of
        the same names). ``standardised(metrics)`` names what stays standardised (the loss).
        """
        encoded = self.encode_inputs(frame)
        metrics = dict(self.backend.evaluate(encoded, self.encode_targets(frame), batch_size))
        if any(f.type == "numeric" for f in self.outputs):
            raw = self._predict_encoded(encoded, batch_size)
            metrics.update(metrics_in_data_units(self.outputs, frame, self.probabilities(raw)))
        return metrics

    def standardised(self, metrics) -> list[str]:
        """The names in ``evaluate_frame``'s result that are on a standardised target."""
        replaced = set(data_unit_names(self.outputs))
        return standardised_metrics(self.outputs, [name for name in metrics if name not in replaced])


def _finite(batch) -> bool:
    """Whether an encoded batch (NumPy, or a CPU torch tensor) holds no inf/NaN; integers always do."""
    values = np.asarray(batch) if hasattr(batch, "dtype") else None
    return values is None or values.dtype.kind != "f" or bool(np.isfinite(values).all())


def _json_column(values) -> list:
    """A prediction column as the JSON values the server sends: what a DataFrame column of these
    values gives (``kiln_edge.server.app._predictions``): numbers and bools as Python scalars,
    NaN as None, labels as they are. Plain strings (most labels) skip pandas."""
    if isinstance(values, list) and all(type(v) is str for v in values):
        return values
    if isinstance(values, list):
        import pandas as pd
        values = pd.Series(values).to_numpy()  # the dtype a DataFrame column would infer
    if values.dtype.kind in "biuf":
        plain = values.tolist()
        return [None if v != v else v for v in plain] if values.dtype.kind == "f" and np.isnan(values).any() else plain
    return [None if isinstance(v, float) and v != v else (v.item() if isinstance(v, np.generic) else v)
            for v in values]


class OnnxBackend:
    """onnxruntime on an exported run: ``predict`` feeds the encoded inputs by name in batches."""

    name = "onnx"

    def __init__(self, onnx_file: Path, run_dir: Path, input_names, output_names, providers=None,
                 threads: int | None = None):
        """Args: ``threads``: onnxruntime's intra-op threads (default None: its own default, every
        core); the server passes 1, so the model thread and the event loop each keep a core."""
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise EdgeError(f"The torch-free backend needs onnxruntime: pip install onnxruntime (the `edge` extra's packages: docs/edge.md) ({err}).") from err
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self.model = ort.InferenceSession(str(onnx_file), options, providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own types for a truncated or foreign file: one line, named
            raise EdgeError(f"{onnx_file} cannot be loaded by onnxruntime ({type(err).__name__}: "
                            f"{str(err).strip().splitlines()[0][:200] if str(err).strip() else 'no message'}); "
                            f"export it again with `kiln export {run_dir} --format onnx`.") from None
        self.input_names = [i.name for i in self.model.get_inputs()]
        self.output_names = list(output_names)  # the graph's outputs come in this order
        missing = [name for name in input_names if name not in self.input_names]
        if missing:
            raise EdgeError(f"{onnx_file} has no input named {missing[0]!r} (its inputs: "
                            f"{', '.join(self.input_names)}); export it again with `kiln export {run_dir} "
                            f"--format onnx`.")

    def predict(self, encoded: dict, batch_size: int) -> dict:
        """``{output name: np.ndarray}``; the graph's outputs come in the model's output order."""
        rows = len(next(iter(encoded.values()))) if encoded else 0
        chunks = []
        for start in range(0, rows, batch_size) if rows else []:
            feeds = {name: encoded[name][start:start + batch_size] for name in self.input_names}
            chunks.append(self.model.run(None, feeds))
        if not chunks:
            raise EdgeDataError("No rows to predict.")
        merged = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
        return dict(zip(self.output_names, merged))

    def predict_batch(self, encoded: dict) -> dict:
        """All rows in one ``session.run`` (the server's micro-batches are already sized)."""
        outputs = self.model.run(None, {name: encoded[name] for name in self.input_names})
        return dict(zip(self.output_names, outputs))

    def probabilities(self, feature, raw, kind: str) -> np.ndarray:
        return as_probabilities(feature, raw, kind)

    def evaluate(self, x, y, batch_size: int) -> dict:
        return {}  # an inference graph has no loss: only the metrics in data units


class OnnxRun(LoadedRun):
    """A run folder predicted with onnxruntime and NumPy features (never torch): ``LoadedRun``
    on an ``OnnxBackend``.

    Reads ``model/features.*`` and ``model/roles.json``, and ``export/model.onnx`` (the file
    ``kiln export RUN --format onnx`` writes, checked against torch at export; its inputs are
    named by input feature, its outputs come in the model's output order).

    Args:
        path: the run folder (or its ``model`` folder).
        onnx_path: the ONNX file (default ``RUN/export/model.onnx``).
        providers: onnxruntime's execution providers (default the CPU's).
        threads: onnxruntime's intra-op threads (default None: its own default, every core).
    """

    def __init__(self, path, onnx_path=None, providers=None, threads: int | None = None):
        from kiln_edge.features import load_features
        path = Path(path)
        model_dir = path / "model" if (path / "model").is_dir() else path
        run_dir = path if model_dir != path else path.parent
        if not (model_dir / "roles.json").exists():
            raise EdgeError(f"{path} is not a kiln run folder (no model/roles.json). Pass the folder `kiln train` "
                            f"printed, e.g. runs/my-model-20261129-101500.")
        onnx_file = Path(onnx_path) if onnx_path is not None else run_dir / "export" / "model.onnx"
        if not onnx_file.exists():
            raise EdgeError(f"No ONNX model at {onnx_file}: export it first with `kiln export {run_dir} --format "
                            f"onnx` (needs kiln[export], on a machine with torch).")
        inputs, outputs, kinds = read_roles(model_dir, load_features(model_dir))
        backend = OnnxBackend(onnx_file, run_dir, [f.name for f in inputs], [f.name for f in outputs],
                              providers=providers, threads=threads)
        config_file = run_dir / "config.yaml"
        super().__init__(path, inputs, outputs, backend, kinds,
                         config_file.read_text() if config_file.exists() else "")

    @property
    def session(self):
        """The onnxruntime ``InferenceSession``."""
        return self.backend.model
