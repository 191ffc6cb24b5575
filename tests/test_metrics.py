"""kiln.metrics updated over uneven batches must equal scikit-learn on the full data."""

import json

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from kiln import losses, metrics
from kiln.errors import KilnTypeError, KilnValueError, ShapeError

rng = np.random.default_rng(1)
N = 203
BATCH_EDGES = [0, 7, 64, 65, 150, N]  # uneven batches, one of size 1


def _batches(*arrays):
    for start, stop in zip(BATCH_EDGES[:-1], BATCH_EDGES[1:]):
        yield tuple(None if a is None else torch.as_tensor(a[start:stop]) for a in arrays)


def _run(metric, y_true, y_pred, sample_weight=None):
    for yt, yp, w in _batches(y_true, y_pred, sample_weight):
        metric.update_state(yt, yp, sample_weight=w)
    return metric.result()


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


WEIGHTS = [None, rng.uniform(0.1, 2.0, size=N)]


# ----------------------------------------------------------------------------- regression


@pytest.mark.parametrize("w", WEIGHTS)
@pytest.mark.parametrize("outputs", [None, 1, 3])
def test_regression_metrics_equal_sklearn(outputs, w):
    shape = (N,) if outputs is None else (N, outputs)
    y = rng.normal(size=shape).astype(np.float32)
    p = (y + rng.normal(scale=0.5, size=shape)).astype(np.float32)
    y64, p64 = y.astype(np.float64), p.astype(np.float64)
    mse = skm.mean_squared_error(y64, p64, sample_weight=w)
    cases = [
        (metrics.MeanAbsoluteError(), skm.mean_absolute_error(y64, p64, sample_weight=w)),
        (metrics.MeanSquaredError(), mse),
        (metrics.RootMeanSquaredError(), np.sqrt(mse)),
        (metrics.R2Score(), skm.r2_score(y64, p64, sample_weight=w)),
    ]
    for metric, expected in cases:
        assert _run(metric, y, p, w) == pytest.approx(expected, rel=1e-5), type(metric).__name__


def test_r2_per_output_variance_weighted_and_adjusted():
    y = rng.normal(size=(N, 3)) * np.array([1.0, 5.0, 0.2])
    p = y + rng.normal(scale=0.7, size=(N, 3))
    per_output = _run(metrics.R2Score(class_aggregation=None), y, p)
    np.testing.assert_allclose(per_output, skm.r2_score(y, p, multioutput="raw_values"), rtol=1e-9)
    vw = _run(metrics.R2Score(class_aggregation="variance_weighted_average"), y, p)
    assert vw == pytest.approx(skm.r2_score(y, p, multioutput="variance_weighted"), rel=1e-9)
    r2 = skm.r2_score(y[:, 0], p[:, 0])
    adjusted = 1 - (1 - r2) * (N - 1) / (N - 4 - 1)
    assert _run(metrics.R2Score(num_regressors=4), y[:, 0], p[:, 0]) == pytest.approx(adjusted, rel=1e-9)


def test_r2_constant_target_like_sklearn():
    y = np.ones(10)
    assert _run(metrics.R2Score(), y, y) == skm.r2_score(y, y) == 1.0
    assert _run(metrics.R2Score(), y, y + 0.5) == skm.r2_score(y, y + 0.5) == 0.0


def test_mean_tracks_weighted_loss():
    m = metrics.Mean("loss")
    m.update_state(torch.tensor(2.0), sample_weight=3)
    m.update_state(torch.tensor(4.0), sample_weight=1)
    m.update_state(torch.tensor([1.0, 3.0]))
    assert m.result() == pytest.approx((6 + 4 + 4) / 6)
    m.reset_state()
    assert m.result() == 0.0


def test_update_state_leaves_no_graph_and_keeps_state_on_device():
    pred = torch.rand(8, 1, requires_grad=True)
    m = metrics.MeanSquaredError()
    m.update_state(torch.rand(8), pred)
    state = m._state["total"]
    assert not state.requires_grad and state.device == pred.device and state.dtype == torch.float64


# ----------------------------------------------------------------------------- accuracy family


@pytest.mark.parametrize("w", WEIGHTS)
def test_binary_accuracy(w):
    y = rng.integers(0, 2, size=N)
    p = rng.uniform(size=(N, 1)).astype(np.float32)
    expected = skm.accuracy_score(y, p[:, 0] > 0.5, sample_weight=w)
    assert _run(metrics.BinaryAccuracy(), y, p, w) == pytest.approx(expected, rel=1e-9)
    assert _run(metrics.BinaryAccuracy(threshold=0.7), y, p, w) == pytest.approx(
        skm.accuracy_score(y, p[:, 0] > 0.7, sample_weight=w), rel=1e-9
    )


@pytest.mark.parametrize("w", WEIGHTS)
def test_categorical_and_sparse_accuracy(w):
    labels = rng.integers(0, 6, size=N)
    probs = _softmax(rng.normal(size=(N, 6))).astype(np.float32)
    expected = skm.accuracy_score(labels, probs.argmax(-1), sample_weight=w)
    assert _run(metrics.CategoricalAccuracy(), np.eye(6)[labels], probs, w) == pytest.approx(expected, rel=1e-9)
    assert _run(metrics.SparseCategoricalAccuracy(), labels, probs, w) == pytest.approx(expected, rel=1e-9)
    assert _run(metrics.SparseCategoricalAccuracy(), labels[:, None].astype(np.float32), probs, w) == pytest.approx(expected, rel=1e-9)


def test_accuracy_exact_equality():
    y = rng.integers(0, 4, size=N)
    p = np.where(rng.uniform(size=N) < 0.7, y, rng.integers(0, 4, size=N))
    assert _run(metrics.Accuracy(), y, p) == pytest.approx(skm.accuracy_score(y, p), rel=1e-9)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_accuracy(k):
    labels = rng.integers(0, 8, size=N)
    scores = _softmax(rng.normal(size=(N, 8)))
    expected = skm.top_k_accuracy_score(labels, scores, k=k, labels=range(8))
    assert _run(metrics.SparseTopKCategoricalAccuracy(k=k), labels, scores) == pytest.approx(expected, rel=1e-9)
    assert _run(metrics.TopKCategoricalAccuracy(k=k), np.eye(8)[labels], scores) == pytest.approx(expected, rel=1e-9)


def test_sequence_accuracy():
    labels = rng.integers(0, 5, size=(12, 9))
    logits = rng.normal(size=(12, 9, 5))
    expected = (logits.argmax(-1) == labels).mean()
    assert _run(metrics.SparseCategoricalAccuracy(), labels, logits) == pytest.approx(expected)


# ----------------------------------------------------------------------------- precision / recall / F1


@pytest.mark.parametrize("w", WEIGHTS)
def test_precision_recall_binary(w):
    y = rng.integers(0, 2, size=N)
    p = rng.uniform(size=(N, 1))
    hard = p[:, 0] > 0.5
    assert _run(metrics.Precision(), y, p, w) == pytest.approx(skm.precision_score(y, hard, sample_weight=w), rel=1e-9)
    assert _run(metrics.Recall(), y, p, w) == pytest.approx(skm.recall_score(y, hard, sample_weight=w), rel=1e-9)


def test_precision_recall_thresholds_list_and_class_id():
    y = rng.integers(0, 2, size=(N, 3))
    p = rng.uniform(size=(N, 3))
    result = _run(metrics.Precision(thresholds=[0.3, 0.6]), y, p)
    expected = [skm.precision_score(y.ravel(), p.ravel() > t) for t in (0.3, 0.6)]
    np.testing.assert_allclose(result, expected, rtol=1e-9)
    recall = _run(metrics.Recall(class_id=2), y, p)
    assert recall == pytest.approx(skm.recall_score(y[:, 2], p[:, 2] > 0.5), rel=1e-9)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("w", WEIGHTS)
def test_f1_multiclass(average, w):
    labels = rng.integers(0, 5, size=N)
    probs = _softmax(rng.normal(size=(N, 5)))
    expected = skm.f1_score(labels, probs.argmax(-1), average=average, labels=range(5), sample_weight=w)
    result = _run(metrics.F1Score(average=average), np.eye(5)[labels], probs, w)
    np.testing.assert_allclose(result, expected, rtol=1e-9)
    # Integer labels give the same value.
    np.testing.assert_allclose(_run(metrics.F1Score(average=average), labels, probs, w), expected, rtol=1e-9)


def test_f1_binary_single_sigmoid_output():
    y = rng.integers(0, 2, size=N)
    p = rng.uniform(size=(N, 1))
    expected = skm.f1_score(y, p[:, 0] > 0.5)
    assert _run(metrics.F1Score(), y, p) == pytest.approx(expected, rel=1e-9)
    assert _run(metrics.F1Score(average="macro"), y, p) == pytest.approx(expected, rel=1e-9)


def test_fbeta_multilabel_threshold():
    y = rng.integers(0, 2, size=(N, 4))
    p = rng.uniform(size=(N, 4))
    expected = skm.fbeta_score(y, p > 0.4, beta=2.0, average="macro")
    assert _run(metrics.FBetaScore(average="macro", beta=2.0, threshold=0.4), y, p) == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------- AUC


@pytest.mark.parametrize("w", WEIGHTS)
def test_auc_exact(w):
    y = rng.integers(0, 2, size=N)
    p = np.round(rng.uniform(size=(N, 1)) * 0.5 + y[:, None] * 0.3, 2)  # rounding makes ties
    assert _run(metrics.AUC(), y, p, w) == pytest.approx(skm.roc_auc_score(y, p[:, 0], sample_weight=w), rel=1e-9)
    assert _run(metrics.AUC(curve="PR"), y, p, w) == pytest.approx(
        skm.average_precision_score(y, p[:, 0], sample_weight=w), rel=1e-9
    )


def test_auc_multilabel():
    y = rng.integers(0, 2, size=(N, 3))
    p = rng.uniform(size=(N, 3)) + 0.4 * y
    assert _run(metrics.AUC(), y, p) == pytest.approx(skm.roc_auc_score(y, p, average="micro"), rel=1e-9)
    assert _run(metrics.AUC(multi_label=True), y, p) == pytest.approx(skm.roc_auc_score(y, p, average="macro"), rel=1e-9)
    assert _run(metrics.AUC(curve="PR", multi_label=True), y, p) == pytest.approx(
        skm.average_precision_score(y, p, average="macro"), rel=1e-9
    )


def test_auc_undefined_and_empty_give_zero():
    m = metrics.AUC()
    assert m.result() == 0.0
    m.update_state(np.ones(4), np.random.rand(4))
    assert m.result() == 0.0


# ----------------------------------------------------------------------------- state, names, lookup


def test_reset_state_forgets_everything():
    y, p = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))
    for metric in [metrics.MeanAbsoluteError(), metrics.R2Score(), metrics.AUC(), metrics.F1Score(average="macro"), metrics.Precision()]:
        yy, pp = (rng.integers(0, 2, size=(N, 2)), rng.uniform(size=(N, 2))) if not isinstance(metric, (metrics.MeanAbsoluteError, metrics.R2Score)) else (y, p)
        first = _run(metric, yy, pp)
        _run(metric, yy[:10] * 0 + 1 - yy[:10], pp[:10])  # pollute
        metric.reset_state()
        assert _run(metric, yy, pp) == pytest.approx(first), type(metric).__name__


@pytest.mark.parametrize(
    "identifier,cls,name",
    [
        ("mae", metrics.MeanAbsoluteError, "mae"),
        ("mean_squared_error", metrics.MeanSquaredError, "mean_squared_error"),
        ("rmse", metrics.RootMeanSquaredError, "rmse"),
        ("r2_score", metrics.R2Score, "r2_score"),
        ("precision", metrics.Precision, "precision"),
        ("recall", metrics.Recall, "recall"),
        ("f1_score", metrics.F1Score, "f1_score"),
        ("auc", metrics.AUC, "auc"),
        ("AUC", metrics.AUC, "auc"),
        ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy, "top_k_categorical_accuracy"),
        ("MeanAbsoluteError", metrics.MeanAbsoluteError, "mean_absolute_error"),
    ],
)
def test_get_names(identifier, cls, name):
    metric = metrics.get(identifier)
    assert isinstance(metric, cls) and metric.name == name


def test_accuracy_resolution():
    x_bin, x_multi = torch.rand(8, 1), torch.rand(8, 4)
    sparse, onehot = torch.randint(0, 4, (8,)), torch.eye(4)[torch.randint(0, 4, (8,))]
    assert isinstance(metrics.get("accuracy", y_true=torch.rand(8), y_pred=x_bin), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("accuracy", y_true=sparse, y_pred=x_multi), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("acc", y_true=sparse[:, None], y_pred=x_multi), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", y_true=onehot, y_pred=x_multi), metrics.CategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", loss="binary_crossentropy"), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("accuracy", loss=losses.SparseCategoricalCrossentropy()), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", loss=losses.categorical_crossentropy), metrics.CategoricalAccuracy)
    assert metrics.get("accuracy", y_true=sparse, y_pred=x_multi).name == "accuracy"
    assert metrics.get("acc", loss="binary_crossentropy").name == "acc"
    ce = metrics.get("crossentropy", y_true=sparse, y_pred=x_multi)
    assert ce.name == "crossentropy" and ce(sparse, x_multi) == pytest.approx(float(losses.sparse_categorical_crossentropy(sparse, x_multi).mean()))


def test_accuracy_resolved_on_first_batch_when_nothing_known():
    metric = metrics.get("accuracy")
    assert metric.name == "accuracy"
    labels = rng.integers(0, 3, size=N)
    probs = _softmax(rng.normal(size=(N, 3)))
    assert _run(metric, labels, probs) == pytest.approx(skm.accuracy_score(labels, probs.argmax(-1)))
    assert isinstance(metric.metric, metrics.SparseCategoricalAccuracy)


def test_get_callable_instance_class_and_errors():
    def abs_err(y_true, y_pred):
        return (y_true - y_pred).abs()

    wrapped = metrics.get(abs_err)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "abs_err"
    y, p = rng.normal(size=N), rng.normal(size=N)
    assert _run(wrapped, y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    auc = metrics.AUC(curve="PR")
    assert metrics.get(auc) is auc
    assert isinstance(metrics.get(metrics.Recall), metrics.Recall)
    with pytest.raises(KilnValueError, match="'mae'"):
        metrics.get("mae2")
    with pytest.raises(KilnTypeError, match="float"):
        metrics.get(1.5)


def test_shape_errors():
    with pytest.raises(ShapeError, match=r"\(8,\).*\(8, 4\).*sparse"):
        metrics.CategoricalAccuracy().update_state(torch.randint(0, 4, (8,)), torch.rand(8, 4))
    with pytest.raises(ShapeError, match=r"\(8, 3\).*\(8, 1\)"):
        metrics.MeanSquaredError().update_state(torch.rand(8, 3), torch.rand(8, 1))


@pytest.mark.parametrize(
    "metric",
    [
        metrics.BinaryAccuracy(threshold=0.3),
        metrics.TopKCategoricalAccuracy(k=2, name="top2"),
        metrics.R2Score(class_aggregation=None),
        metrics.Precision(thresholds=[0.2, 0.8], class_id=1),
        metrics.F1Score(average="macro", threshold=0.4),
        metrics.AUC(curve="PR", dtype="float32"),
        metrics.get("mae"),
        metrics.get("crossentropy", loss="binary_crossentropy"),
        metrics.get("accuracy"),
    ],
)
def test_serialize_round_trip(metric):
    config = json.loads(json.dumps(metrics.serialize(metric)))
    restored = metrics.deserialize(config)
    assert type(restored) is type(metric) and restored.get_config() == metric.get_config()


def test_class_default_names_are_keras():
    expected = {
        metrics.MeanAbsoluteError: "mean_absolute_error",
        metrics.MeanSquaredError: "mean_squared_error",
        metrics.RootMeanSquaredError: "root_mean_squared_error",
        metrics.R2Score: "r2_score",
        metrics.Accuracy: "accuracy",
        metrics.BinaryAccuracy: "binary_accuracy",
        metrics.CategoricalAccuracy: "categorical_accuracy",
        metrics.SparseCategoricalAccuracy: "sparse_categorical_accuracy",
        metrics.TopKCategoricalAccuracy: "top_k_categorical_accuracy",
        metrics.SparseTopKCategoricalAccuracy: "sparse_top_k_categorical_accuracy",
        metrics.Precision: "precision",
        metrics.Recall: "recall",
        metrics.F1Score: "f1_score",
        metrics.AUC: "auc",
        metrics.Mean: "mean",
    }
    for cls, name in expected.items():
        assert cls().name == name
    assert metrics.get("MEANABSOLUTEERROR").name == "mean_absolute_error"


@pytest.fixture
def no_host_sync(monkeypatch):
    """Make every Python-level read of a tensor value fail, as a GPU sync would cost a stall."""

    def refuse(*args, **kwargs):
        raise AssertionError("host sync in update_state")

    for method in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, method, refuse)


def test_update_state_never_reads_values_back(no_host_sync):
    labels = torch.randint(0, 4, (16,))
    probs = torch.softmax(torch.randn(16, 4), -1)
    binary_p, binary_y = torch.rand(16, 1), torch.randint(0, 2, (16,))
    w = torch.rand(16)
    cases = [
        (metrics.MeanAbsoluteError(), torch.randn(16, 2), torch.randn(16, 2)),
        (metrics.RootMeanSquaredError(), torch.randn(16, 2), torch.randn(16, 2)),
        (metrics.R2Score(), torch.randn(16, 2), torch.randn(16, 2)),
        (metrics.BinaryAccuracy(), binary_y, binary_p),
        (metrics.CategoricalAccuracy(), torch.eye(4)[labels], probs),
        (metrics.SparseCategoricalAccuracy(), labels, probs),
        (metrics.SparseTopKCategoricalAccuracy(k=2), labels, probs),
        (metrics.Precision(), binary_y, binary_p),
        (metrics.Recall(thresholds=[0.3, 0.7]), binary_y, binary_p),
        (metrics.F1Score(average="weighted"), labels, probs),
        (metrics.AUC(), binary_y, binary_p),
    ]
    for metric, y, p in cases:
        metric.update_state(y, p)
        metric.update_state(y, p, sample_weight=w)
    mean = metrics.Mean()
    mean.update_state(torch.tensor(1.5), sample_weight=16)
