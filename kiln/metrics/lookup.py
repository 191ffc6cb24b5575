"""Metric identifiers to ``Metric`` instances (``get``), and the JSON form saved models keep
(``serialize``/``deserialize``); resolves "accuracy"/"crossentropy" to the kind the labels need.

Part of ``kiln.metrics``; import the metrics from there (``from kiln import metrics``).
"""

from __future__ import annotations

from typing import Any

import torch

from kiln import losses
from kiln.errors import KilnTypeError, KilnValueError, SerializationError, unknown_name_error
from kiln.metrics.accuracy_metrics import (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, accuracy, binary_accuracy,
    categorical_accuracy, sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from kiln.metrics.auc_metric import AUC
from kiln.metrics.base import Mean, MeanMetricWrapper, Metric
from kiln.metrics.confusion_metrics import F1Score, FBetaScore, Precision, Recall
from kiln.metrics.regression_metrics import MeanAbsoluteError, MeanSquaredError, R2Score, RootMeanSquaredError

__all__ = [
    "get", "serialize", "deserialize",
]


# ============================================================================ lookup and serialization
_CLASSES = {
    cls.__name__: cls
    for cls in (
        Mean, MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError, R2Score, Accuracy, BinaryAccuracy,
        CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
        Precision, Recall, FBetaScore, F1Score, AUC,
    )
}


# Names that build a class; the metric is then named after the string the user passed.
_NAMES = {
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "r2": R2Score, "r2_score": R2Score,
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision, "recall": Recall, "f1_score": F1Score, "f1": F1Score, "fbeta_score": FBetaScore,
    "auc": AUC,
}


# Per-sample functions, for MeanMetricWrapper names and the crossentropy metrics.
_FUNCTIONS = {
    "binary_crossentropy": losses.binary_crossentropy,
    "categorical_crossentropy": losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": losses.sparse_categorical_crossentropy,
    "accuracy": accuracy, "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "mean_absolute_error": losses.mean_absolute_error, "mean_squared_error": losses.mean_squared_error,
}


_AUTO = ("accuracy", "acc", "crossentropy", "ce")


def _loss_kind(loss: Any) -> str | None:
    """"binary", "sparse" or "categorical" when the loss tells the label format, else None."""
    if isinstance(loss, str):
        try:
            loss = losses.get(loss)
        except KilnValueError:
            return None
    if isinstance(loss, losses.LossFunctionWrapper):
        loss = loss.fn
    kinds = {
        "binary": (losses.BinaryCrossentropy, losses.binary_crossentropy),
        "sparse": (losses.SparseCategoricalCrossentropy, losses.sparse_categorical_crossentropy),
        "categorical": (losses.CategoricalCrossentropy, losses.categorical_crossentropy),
    }
    for kind, (cls, fn) in kinds.items():
        if isinstance(loss, cls) or loss is fn:
            return kind
    return None


def _shape_of(x: Any) -> tuple | None:
    """The shape of a sample batch, or a shape given as a tuple/torch.Size."""
    if x is None:
        return None
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return tuple(x) if isinstance(x, (tuple, torch.Size)) else tuple(torch.as_tensor(x).shape)


def _label_kind(y_true: Any, y_pred: Any, loss: Any) -> str | None:
    """Keras 3's compile_utils rule: binary, sparse or categorical labels; None if unknowable yet."""
    kind = _loss_kind(loss)
    if kind is not None:
        return kind
    pred_shape, true_shape = _shape_of(y_pred), _shape_of(y_true)
    if pred_shape is None:
        return None
    if len(pred_shape) < 2 or pred_shape[-1] == 1:
        return "binary"
    if true_shape is None:
        return None
    if len(true_shape) < len(pred_shape) or true_shape[-1] == 1:
        return "sparse"
    return "categorical"


def _auto_metric(identifier: str, kind: str) -> Metric:
    """The accuracy/crossentropy metric for `kind` of labels, named as the user wrote it."""
    if identifier.lower() in ("accuracy", "acc"):
        classes = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy, "categorical": CategoricalAccuracy}
        return classes[kind](name=identifier)
    functions = {
        "binary": losses.binary_crossentropy,
        "sparse": losses.sparse_categorical_crossentropy,
        "categorical": losses.categorical_crossentropy,
    }
    return MeanMetricWrapper(functions[kind], name=identifier)


class _ResolveOnFirstBatch(Metric):
    """"accuracy" or "crossentropy" asked for before any data or loss says which kind: decided
    from the shapes of the first batch, then every call goes to that metric."""

    def __init__(self, identifier: str):
        super().__init__(name=identifier)
        self.identifier = identifier
        self.metric: Metric | None = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.metric is None:
            kind = _label_kind(y_true, y_pred, None) or "categorical"
            self.metric = _auto_metric(self.identifier, kind)
        self.metric.update_state(y_true, y_pred, sample_weight)

    def result(self):
        return 0.0 if self.metric is None else self.metric.result()

    def reset_state(self):
        if self.metric is not None:
            self.metric.reset_state()

    def get_config(self):
        return {"name": self.name}


def get(identifier: Any, *, y_true: Any = None, y_pred: Any = None, loss: Any = None) -> Metric:
    """Resolve a metric identifier to a `Metric` instance.

    Args:
        identifier: a name ("mae", "accuracy", "AUC", ...; any case), a Metric instance
            (returned as is) or class, a dict {"class_name", "config"}, or a callable
            `f(y_true, y_pred)` returning per-sample values (becomes a MeanMetricWrapper).
        y_true, y_pred: (None) a sample batch or its shape; with `loss`, they pick the kind of
            "accuracy"/"acc"/"crossentropy"/"ce" as Keras's compile does (binary when y_pred
            has one column, sparse for integer labels, else categorical). Without them the
            choice is made on the first update.
        loss: (None) the compiled loss; a crossentropy loss decides the kind directly.

    Raises:
        KilnValueError: unknown name (the nearest valid one is suggested).
        KilnTypeError: any other type.

    Example:
        >>> get("accuracy", loss="sparse_categorical_crossentropy")   # SparseCategoricalAccuracy
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _AUTO:
            kind = _label_kind(y_true, y_pred, loss)
            return _ResolveOnFirstBatch(identifier) if kind is None else _auto_metric(identifier, kind)
        if key in _NAMES:
            # Keras logs the string the user wrote ("mae"); a class name ("AUC") keeps the default.
            return _NAMES[key](name=identifier if identifier in _NAMES else None)
        if key in _FUNCTIONS:
            return MeanMetricWrapper(_FUNCTIONS[key], name=identifier)
        cls = next((c for name, c in _CLASSES.items() if name.lower() == key), None)
        if cls is None:
            raise unknown_name_error("metric", identifier, [*_AUTO, *_NAMES, *_FUNCTIONS, *_CLASSES])
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise KilnTypeError(
        "Could not interpret a metric identifier: expected a name, a Metric, a dict or a callable. "
        f"Received: {identifier!r} of type {type(identifier).__name__}"
    )


def serialize(metric: Metric) -> dict:
    """{"class_name", "config"} for a metric, ready for JSON."""
    if isinstance(metric, _ResolveOnFirstBatch):
        return {"class_name": "auto", "config": {"name": metric.identifier}}
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> Metric:
    """Rebuild a metric from `serialize`'s output.

    Args:
        config: {"class_name": ..., "config": {...}}.
        custom_objects: (None) {name: class or function} for metrics defined outside kiln.

    Raises:
        SerializationError: malformed dict, or a name that cannot be found.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise SerializationError(
            f'A serialized metric is a dict {{"class_name": ..., "config": ...}}. Received: {config!r}'
        )
    custom_objects = custom_objects or {}
    class_name, kwargs = config["class_name"], dict(config.get("config") or {})
    if class_name == "auto":
        return _ResolveOnFirstBatch(kwargs["name"])
    if class_name == "MeanMetricWrapper":
        fn_name = kwargs.pop("fn", None)
        fn = custom_objects.get(fn_name) or _FUNCTIONS.get(fn_name)
        if fn is None:
            raise SerializationError(
                f"Unknown metric function {fn_name!r}: pass it with custom_objects={{{fn_name!r}: fn}}."
            )
        return MeanMetricWrapper(fn, **kwargs)
    cls = custom_objects.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise SerializationError(
            f"Unknown metric class {class_name!r}: pass it with custom_objects={{{class_name!r}: cls}}."
        )
    return cls.from_config(kwargs)
