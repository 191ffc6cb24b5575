"""Stateful metrics with Keras 3 names, exact over the whole epoch.

Why it looks this way: `update_state` runs every training step, so it only does in-place
tensor ops on state that lives on the inputs' device, under `torch.no_grad()`, and never
reads a value back to the host. The one host sync happens in `result()`, once per log.
State is kept in float64 (float32 on Apple's MPS, which has no float64) so sums over an
epoch stay exact, and results equal scikit-learn's on the concatenated data: AUC keeps
every prediction of the epoch instead of Keras's 200-threshold approximation.

Example:
    >>> m = metrics.get("accuracy", y_true=labels, y_pred=probabilities)
    >>> for y, p in batches: m.update_state(y, p)
    >>> m.result()          # a Python float
    >>> m.reset_state()     # at the start of the next epoch

Layout: one module per family, each importable on its own but meant to be reached through
``kiln.metrics``: ``base`` (``Metric``, ``Mean``, ``MeanMetricWrapper``), ``accuracy_metrics``,
``regression_metrics`` (errors and R2), ``confusion_metrics`` (precision, recall, F-scores),
``auc_metric`` and ``lookup`` (``get``, ``serialize``, ``deserialize``); ``_base`` holds the
private helpers they share. (Module names end in ``_metrics`` so none shadows the ``accuracy``
function.) Saved models name metrics by class name only, so they load whatever module a class is in.
"""

from kiln.metrics.base import (  # noqa: F401 - re-exported
    Metric, Mean, MeanMetricWrapper,
)
from kiln.metrics.accuracy_metrics import (  # noqa: F401 - re-exported
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, accuracy, binary_accuracy, categorical_accuracy,
    sparse_categorical_accuracy, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy,
)
from kiln.metrics.regression_metrics import (  # noqa: F401 - re-exported
    MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError, R2Score,
)
from kiln.metrics.confusion_metrics import (  # noqa: F401 - re-exported
    Precision, Recall, FBetaScore, F1Score,
)
from kiln.metrics.auc_metric import (  # noqa: F401 - re-exported
    AUC,
)
from kiln.metrics.lookup import (  # noqa: F401 - re-exported
    get, serialize, deserialize,
)

__all__ = [
    "Metric",
    "Mean",
    "MeanMetricWrapper",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "R2Score",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "FBetaScore",
    "F1Score",
    "AUC",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "get",
    "serialize",
    "deserialize",
]
