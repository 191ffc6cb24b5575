"""kiln.losses against hand computations in numpy (Keras 3 formulas)."""

import json

import numpy as np
import pytest
import torch

from kiln import losses
from kiln.errors import KilnTypeError, KilnValueError, SerializationError, ShapeError

EPS = 1e-7
rng = np.random.default_rng(0)


def _np(t):
    return t.detach().cpu().numpy()


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _bce(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _reduce(per_sample, w=None):
    """Keras's sum_over_batch_size: sum of weighted losses / batch size."""
    return (per_sample * (1 if w is None else w)).sum() / len(per_sample)


# ----------------------------------------------------------------------------- regression losses


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_losses_match_numpy(name):
    y = rng.normal(size=(16, 3)).astype(np.float32)
    p = rng.normal(size=(16, 3)).astype(np.float32) * 2
    w = rng.uniform(size=16).astype(np.float32)
    err = p - y
    expected = {
        "mse": (err**2).mean(-1),
        "mae": np.abs(err).mean(-1),
        "huber": np.where(np.abs(err) <= 1.0, 0.5 * err**2, np.abs(err) - 0.5).mean(-1),
    }[name]
    loss = losses.get(name)
    np.testing.assert_allclose(_np(getattr(losses, name)(y, p)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(loss(y, p)), _reduce(expected), rtol=1e-5)
    np.testing.assert_allclose(float(loss(y, p, sample_weight=w)), _reduce(expected, w), rtol=1e-5)


def test_huber_delta():
    y, p = rng.normal(size=(8, 2)), rng.normal(size=(8, 2)) * 3
    err = np.abs(p - y)
    expected = np.where(err <= 2.0, 0.5 * err**2, 2.0 * err - 0.5 * 4.0).mean(-1)
    np.testing.assert_allclose(float(losses.Huber(delta=2.0)(torch.tensor(y), torch.tensor(p))), expected.mean(), rtol=1e-6)


def test_targets_of_shape_batch_match_single_output():
    y = rng.normal(size=32).astype(np.float32)
    p = rng.normal(size=(32, 1)).astype(np.float32)
    np.testing.assert_allclose(float(losses.MeanSquaredError()(y, p)), ((p[:, 0] - y) ** 2).mean(), rtol=1e-6)
    assert losses.mse(y, p).shape == (32,)


def test_reductions():
    y, p = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
    w = rng.uniform(size=10)
    per = ((p - y) ** 2).mean(-1)
    yt, pt = torch.tensor(y), torch.tensor(p)
    np.testing.assert_allclose(_np(losses.MeanSquaredError(reduction="none")(yt, pt, w)), per * w)
    np.testing.assert_allclose(_np(losses.MeanSquaredError(reduction=None)(yt, pt)), per)
    np.testing.assert_allclose(float(losses.MeanSquaredError(reduction="sum")(yt, pt, w)), (per * w).sum())
    np.testing.assert_allclose(float(losses.MeanSquaredError(reduction="mean_with_sample_weight")(yt, pt, w)), (per * w).sum() / w.sum())
    with pytest.raises(KilnValueError, match="reduction"):
        losses.MeanSquaredError(reduction="avg")


# ----------------------------------------------------------------------------- crossentropies


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_binary_crossentropy(from_logits, label_smoothing):
    y = rng.integers(0, 2, size=(20, 3)).astype(np.float32)
    logits = rng.normal(size=(20, 3)).astype(np.float32) * 3
    p = logits if from_logits else _sigmoid(logits)
    w = rng.uniform(size=20).astype(np.float32)
    ys = y * (1 - label_smoothing) + 0.5 * label_smoothing
    expected = _bce(ys, _sigmoid(logits)).mean(-1)
    loss = losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    np.testing.assert_allclose(float(loss(y, p)), _reduce(expected), rtol=1e-5)
    np.testing.assert_allclose(float(loss(y, p, sample_weight=w)), _reduce(expected, w), rtol=1e-5)


def test_binary_crossentropy_clips_probabilities():
    y = torch.tensor([[1.0], [0.0]])
    p = torch.tensor([[0.0], [1.0]])  # confidently wrong: log(0) without the clip
    value = losses.binary_crossentropy(y, p)
    # float32 rounds 1 - 1e-7 to 1 - 1.19e-7, as it does in Keras.
    expected = _bce(np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32))
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)
    assert np.isfinite(_np(value)).all()


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_categorical_crossentropy(from_logits, label_smoothing):
    labels = rng.integers(0, 5, size=24)
    y = np.eye(5, dtype=np.float32)[labels]
    logits = rng.normal(size=(24, 5)).astype(np.float32) * 2
    probs = _softmax(logits)
    # Keras renormalises probabilities; unnormalised input must give the same value.
    p = logits if from_logits else probs * 3.0
    w = rng.uniform(size=24).astype(np.float32)
    ys = y * (1 - label_smoothing) + label_smoothing / 5
    expected = -(ys * np.log(np.clip(probs, EPS, 1 - EPS))).sum(-1)
    loss = losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    np.testing.assert_allclose(float(loss(y, p)), _reduce(expected), rtol=1e-5)
    np.testing.assert_allclose(float(loss(y, p, sample_weight=w)), _reduce(expected, w), rtol=1e-5)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_shape", ["flat", "column", "float"])
def test_sparse_categorical_crossentropy(from_logits, label_shape):
    labels = rng.integers(0, 4, size=30)
    logits = rng.normal(size=(30, 4)).astype(np.float32)
    probs = _softmax(logits)
    expected = -np.log(np.clip(probs[np.arange(30), labels], EPS, 1 - EPS))
    y = {"flat": labels, "column": labels[:, None], "float": labels.astype(np.float32)}[label_shape]
    w = rng.uniform(size=30).astype(np.float32)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    p = logits if from_logits else probs
    np.testing.assert_allclose(float(loss(y, p)), _reduce(expected), rtol=1e-5)
    np.testing.assert_allclose(float(loss(y, p, sample_weight=w)), _reduce(expected, w), rtol=1e-5)
    # Sparse and one-hot categorical agree.
    np.testing.assert_allclose(
        _np(losses.sparse_categorical_crossentropy(labels, p, from_logits=from_logits)),
        _np(losses.categorical_crossentropy(np.eye(4)[labels], p, from_logits=from_logits)),
        rtol=1e-5,
    )


def test_sparse_crossentropy_on_sequences_and_ignore_class():
    labels = rng.integers(0, 6, size=(4, 7))
    logits = rng.normal(size=(4, 7, 6)).astype(np.float32)
    logp = np.log(_softmax(logits))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]  # (4, 7)
    per_sample = losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    assert per_sample.shape == (4,)
    np.testing.assert_allclose(_np(per_sample), nll.mean(-1), rtol=1e-5)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(float(loss(labels, logits)), nll.mean(), rtol=1e-5)

    labels[:, -2:] = -1  # padding
    valid = labels != -1
    nll = -np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    np.testing.assert_allclose(float(loss(labels, logits)), nll[valid].mean(), rtol=1e-5)
    np.testing.assert_allclose(_np(loss.call(labels, logits)), (nll * valid).sum(-1) / valid.sum(-1), rtol=1e-5)


def test_temporal_sample_weights():
    y = rng.normal(size=(3, 5, 2))
    p = rng.normal(size=(3, 5, 2))
    w = rng.uniform(size=(3, 5))
    per_position = ((p - y) ** 2).mean(-1)
    value = losses.MeanSquaredError()(torch.tensor(y), torch.tensor(p), sample_weight=torch.tensor(w))
    np.testing.assert_allclose(float(value), (per_position * w).sum() / per_position.size, rtol=1e-6)


# ----------------------------------------------------------------------------- gradients, speed-related contracts


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_gradient_flows(name):
    pred = torch.rand(8, 3, requires_grad=True)
    y = {
        "binary_crossentropy": torch.randint(0, 2, (8, 3)).float(),
        "categorical_crossentropy": torch.eye(3)[torch.randint(0, 3, (8,))],
        "sparse_categorical_crossentropy": torch.randint(0, 3, (8,)),
    }.get(name, torch.rand(8, 3))
    value = losses.get(name)(y, pred)
    assert value.dim() == 0
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_half_precision_prediction_is_computed_in_float32():
    p = torch.rand(6, 1).half()
    value = losses.binary_crossentropy(torch.ones(6), p)
    assert value.dtype == torch.float32 and torch.isfinite(value).all()


# ----------------------------------------------------------------------------- errors


def test_shape_errors_name_both_shapes_and_the_fix():
    with pytest.raises(ShapeError, match=r"\(32, 3\).*\(32, 1\)"):
        losses.MeanSquaredError()(torch.rand(32, 3), torch.rand(32, 1))
    with pytest.raises(ShapeError, match="sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy()(torch.randint(0, 3, (32,)), torch.rand(32, 3))
    with pytest.raises(ShapeError, match=r"\(32,\)"):
        losses.SparseCategoricalCrossentropy()(torch.randint(0, 3, (32,)), torch.rand(32))
    with pytest.raises(ShapeError, match="categorical_crossentropy"):
        losses.SparseCategoricalCrossentropy()(torch.eye(3)[torch.randint(0, 3, (8,))], torch.rand(8, 3))
    with pytest.raises(ShapeError, match="to_categorical"):
        losses.BinaryCrossentropy()(torch.randint(0, 3, (8,)), torch.rand(8, 3))
    with pytest.raises(ShapeError, match="sample_weight"):
        losses.MeanSquaredError()(torch.rand(8, 2), torch.rand(8, 2), sample_weight=torch.rand(5))


def test_get_resolves_names_instances_callables():
    assert isinstance(losses.get("MSE"), losses.MeanSquaredError)
    assert isinstance(losses.get("MeanSquaredError"), losses.MeanSquaredError)
    assert isinstance(losses.get("sparse_categorical_crossentropy"), losses.SparseCategoricalCrossentropy)
    bce = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(bce) is bce
    assert isinstance(losses.get(losses.Huber), losses.Huber)

    def cubed(y_true, y_pred):
        return ((y_pred - y_true).abs() ** 3).mean(-1)

    wrapped = losses.get(cubed)
    assert isinstance(wrapped, losses.LossFunctionWrapper) and wrapped.name == "cubed"
    y, p = torch.rand(8, 2), torch.rand(8, 2)
    w = torch.rand(8)
    torch.testing.assert_close(wrapped(y, p, sample_weight=w), (cubed(y, p) * w).sum() / 8)


def test_unknown_name_suggests_nearest():
    with pytest.raises(KilnValueError, match="'mse'"):
        losses.get("mse2")
    with pytest.raises(KilnTypeError, match="int"):
        losses.get(3)


def test_custom_subclass_overriding_call():
    class Doubled(losses.Loss):
        def call(self, y_true, y_pred):
            return 2 * (y_pred - y_true).abs().mean(-1)

    y, p = torch.rand(4, 3), torch.rand(4, 3)
    torch.testing.assert_close(Doubled()(y, p), 2 * (p - y).abs().mean())


@pytest.mark.parametrize(
    "loss",
    [
        losses.MeanSquaredError(),
        losses.Huber(delta=0.5, reduction="sum"),
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
        losses.CategoricalCrossentropy(label_smoothing=0.2, axis=-1),
        losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0, name="scce"),
        losses.get("mae"),
    ],
)
def test_serialize_round_trip(loss):
    config = json.loads(json.dumps(losses.serialize(loss)))
    restored = losses.deserialize(config)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    assert isinstance(losses.get(config), type(loss))


def test_serialize_function_wrapper_and_errors():
    wrapped = losses.LossFunctionWrapper(losses.huber, delta=2.0)
    restored = losses.deserialize(json.loads(json.dumps(losses.serialize(wrapped))))
    assert restored.fn is losses.huber and restored.fn_kwargs == {"delta": 2.0}
    with pytest.raises(SerializationError, match="lambda"):
        losses.serialize(lambda y, p: (y - p).abs())
    with pytest.raises(SerializationError, match="custom_objects"):
        losses.deserialize({"class_name": "MyLoss", "config": {}})


def test_out_of_range_class_id_is_a_clear_error_on_cpu():
    with pytest.raises(KilnValueError, match=r"class id 5.*5 classes"):
        losses.sparse_categorical_crossentropy(torch.tensor([0, 5]), torch.rand(2, 5))


def test_loss_call_never_reads_values_back(monkeypatch):
    """A loss runs every step: reading a value back to the host would stall a GPU."""

    def refuse(*args, **kwargs):
        raise AssertionError("host sync in a loss")

    y, p, w = torch.rand(8, 3), torch.rand(8, 3, requires_grad=True), torch.rand(8)
    onehot = torch.eye(3)[torch.randint(0, 3, (8,))]
    for method in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, method, refuse)
    for loss, target in [
        (losses.MeanSquaredError(), y),
        (losses.Huber(), y),
        (losses.BinaryCrossentropy(label_smoothing=0.1), y.round()),
        (losses.CategoricalCrossentropy(from_logits=True), onehot),
        (losses.MeanAbsoluteError(reduction="mean_with_sample_weight"), y),
    ]:
        loss(target, p, sample_weight=w).backward()
