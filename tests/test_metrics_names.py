"""kiln.metrics became a package of family modules: every public name must still be reachable from
``kiln.metrics`` in the same ``__all__`` order, and saved metric configs (which name a class, not a
module) must rebuild the same metric."""

import importlib

import pytest
import torch

import kiln.metrics as metrics

# ``kiln/metrics.py``'s ``__all__`` at e4563e3, the last commit before the split (order kept).
FROZEN_ALL = [
    "Metric", "Mean", "MeanMetricWrapper", "MeanAbsoluteError", "MeanSquaredError", "RootMeanSquaredError",
    "R2Score", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall", "FBetaScore",
    "F1Score", "AUC", "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "get", "serialize", "deserialize",
]
FAMILIES = ("base", "accuracy_metrics", "regression_metrics", "confusion_metrics", "auc_metric", "lookup")


def test_all_is_unchanged():
    assert metrics.__all__ == FROZEN_ALL


def test_each_name_comes_from_exactly_one_family():
    owners = {}
    for family in FAMILIES:
        module = importlib.import_module(f"kiln.metrics.{family}")
        for name in getattr(module, "__all__", ()):
            owners.setdefault(name, []).append(family)
            assert getattr(metrics, name) is getattr(module, name)
    assert sorted(owners) == sorted(FROZEN_ALL)
    assert all(len(families) == 1 for families in owners.values())
    # a family module named like a public function would shadow it: ``metrics.accuracy`` is the function
    assert callable(metrics.accuracy) and metrics.accuracy.__name__ == "accuracy"


# Configs exactly as kiln.metrics.serialize wrote them at e4563e3, before the split (the JSON a saved model keeps).
SAVED = [
    {"class_name": "AUC", "config": {"name": "auc", "dtype": None, "curve": "ROC", "multi_label": False,
                                     "from_logits": False}},
    {"class_name": "BinaryAccuracy", "config": {"name": "accuracy", "dtype": None, "threshold": 0.0}},
    {"class_name": "MeanAbsoluteError", "config": {"name": "mae", "dtype": None}},
    {"class_name": "MeanMetricWrapper", "config": {"name": "acc", "dtype": None, "fn": "sparse_categorical_accuracy"}},
    {"class_name": "R2Score", "config": {"name": "r2", "dtype": None, "class_aggregation": "uniform_average",
                                         "num_regressors": 0}},
    {"class_name": "auto", "config": {"name": "accuracy"}},
    {"class_name": "F1Score", "config": {"name": "f1_score", "dtype": None, "average": None, "threshold": 0.5}},
]


@pytest.mark.parametrize("config", SAVED, ids=lambda c: c["class_name"])
def test_saved_metric_configs_still_load(config):
    metric = metrics.deserialize(config)
    assert metric.name == config["config"]["name"]
    assert metrics.serialize(metric) == config  # the round trip gives back what was saved


def test_deserialized_metric_computes():
    metric = metrics.deserialize({"class_name": "BinaryAccuracy", "config": {"name": "accuracy", "threshold": 0.0}})
    metric.update_state(torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([2.0, -1.0, -3.0, 0.5]))
    assert metric.result() == 0.5
