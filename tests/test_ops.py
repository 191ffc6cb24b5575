"""kiln.ops against NumPy (and torch's own functions), plus dtype rules, gradients and a
Keras-3-style custom layer written only with ops."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln import layers, losses
from kiln.errors import KilnTypeError, KilnValueError, ShapeError

try:
    from kiln import ops
except ImportError:  # until kiln/__init__.py re-exports it
    import kiln.ops as ops

G = np.random.default_rng(0)
X = G.standard_normal((3, 4)).astype(np.float32)
Y = G.standard_normal((3, 4)).astype(np.float32)
X3 = G.standard_normal((2, 3, 4)).astype(np.float32)
POS = G.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
UNIT = G.uniform(-0.9, 0.9, (3, 4)).astype(np.float32)
INTS = G.integers(-5, 6, (3, 4))
M1 = G.standard_normal((2, 3, 4)).astype(np.float32)
M2 = G.standard_normal((4, 5)).astype(np.float32)
IDX = np.array([[2, 0], [1, 3], [0, 0]])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


# (ops name, positional args, keyword args, NumPy reference or None for np.<same name>)
CASES = [
    # elementwise
    ("add", (X, Y), {}, None), ("subtract", (X, Y), {}, None), ("multiply", (X, 2.5), {}, None),
    ("divide", (X, POS), {}, None), ("true_divide", (X, POS), {}, None), ("floor_divide", (X, POS), {}, None),
    ("mod", (X, POS), {}, None), ("power", (POS, Y), {}, None), ("negative", (X,), {}, None),
    ("abs", (X,), {}, None), ("absolute", (X,), {}, None), ("sign", (X,), {}, None), ("sqrt", (POS,), {}, None),
    ("rsqrt", (POS,), {}, lambda x: 1 / np.sqrt(x)), ("square", (X,), {}, None), ("reciprocal", (POS,), {}, None),
    ("exp", (X,), {}, None), ("log", (POS,), {}, None), ("log1p", (POS,), {}, None), ("log2", (POS,), {}, None),
    ("log10", (POS,), {}, None), ("expm1", (X,), {}, None), ("sin", (X,), {}, None), ("cos", (X,), {}, None),
    ("tan", (UNIT,), {}, None), ("arcsin", (UNIT,), {}, None), ("arccos", (UNIT,), {}, None),
    ("arctan", (X,), {}, None), ("arctan2", (X, Y), {}, None), ("sinh", (X,), {}, None), ("cosh", (X,), {}, None),
    ("tanh", (X,), {}, None), ("erf", (X,), {}, np.vectorize(math.erf)), ("floor", (X * 3,), {}, None),
    ("ceil", (X * 3,), {}, None), ("trunc", (X * 3,), {}, None), ("round", (X * 3,), {}, None),
    ("round", (X * 3,), {"decimals": 1}, None), ("clip", (X, -0.5, 0.5), {}, None),
    ("maximum", (X, Y), {}, None), ("minimum", (X, 0.0), {}, None), ("where", (X > 0, X, Y), {}, None),
    ("where", (X > 0, X, 0.0), {}, None),
    # comparison and logic
    ("equal", (INTS, 0), {}, None), ("not_equal", (INTS, 0), {}, None), ("greater", (X, Y), {}, None),
    ("greater_equal", (X, Y), {}, None), ("less", (X, Y), {}, None), ("less_equal", (X, 0.1), {}, None),
    ("logical_and", (X > 0, Y > 0), {}, None), ("logical_or", (X > 0, Y > 0), {}, None),
    ("logical_xor", (X > 0, Y > 0), {}, None), ("logical_not", (X > 0,), {}, None),
    ("isnan", (np.array([1.0, np.nan, np.inf]),), {}, None), ("isfinite", (np.array([1.0, np.nan, np.inf]),), {}, None),
    ("isinf", (np.array([1.0, np.nan, -np.inf]),), {}, None), ("isclose", (X, X + 1e-7), {}, None),
    # linear algebra
    ("matmul", (M1, M2), {}, None), ("dot", (X, Y.T), {}, None), ("dot", (M1, M1.transpose(0, 2, 1)), {}, None),
    ("dot", (X[0], Y[0]), {}, None), ("dot", (X, 2.0), {}, None),
    ("tensordot", (M1, M2), {"axes": 1}, None), ("tensordot", (M1, X3), {"axes": ([1, 2], [1, 2])}, None),
    ("einsum", ("bij,jk->bik", M1, M2), {}, None), ("outer", (X[0], Y[1]), {}, None),
    ("trace", (X,), {}, None), ("diag", (X[0],), {}, None), ("diag", (X,), {"k": 1}, None),
    ("diagonal", (X3,), {"axis1": 1, "axis2": 2}, None), ("triu", (X,), {"k": 1}, None), ("tril", (X,), {}, None),
    # shapes
    ("transpose", (X3,), {}, None), ("transpose", (X3, (1, 0, 2)), {}, None),
    ("reshape", (X3, (4, -1)), {}, lambda x, s: np.reshape(x, s)), ("expand_dims", (X, 1), {}, None),
    ("expand_dims", (X, (0, -1)), {}, None), ("squeeze", (X[:, None, :1],), {}, None),
    ("squeeze", (X[:, None],), {"axis": 1}, None), ("concatenate", ([X, Y],), {"axis": 1}, None),
    ("concatenate", ([X, Y],), {}, None), ("stack", ([X, Y],), {"axis": -1}, None),
    ("split", (X3, 2), {"axis": 0}, None), ("split", (X, [1, 3]), {"axis": 1}, None),
    ("tile", (X, (2, 1)), {}, None), ("tile", (X[0], 3), {}, None), ("repeat", (X, 2), {"axis": 1}, None),
    ("repeat", (X, 2), {}, None), ("repeat", (X, [1, 2, 0]), {"axis": 0}, None), ("flip", (X3,), {}, None),
    ("flip", (X3,), {"axis": (0, 2)}, None), ("roll", (X, 2), {}, None), ("roll", (X, -1), {"axis": 1}, None),
    ("broadcast_to", (X[0], (2, 3, 4)), {}, None), ("swapaxes", (X3, 0, 2), {}, None),
    ("unstack", (X3,), {"axis": 1}, lambda x, axis: list(np.moveaxis(x, axis, 0))),
    ("hstack", ([X, Y],), {}, None), ("vstack", ([X[0], Y[1]],), {}, None),
    ("nan_to_num", (np.array([1.0, np.nan, np.inf, -np.inf], np.float32),), {}, None),
    ("moveaxis", (X3, 0, -1), {}, None), ("ravel", (X,), {}, None), ("meshgrid", (X[0], Y[0, :3]), {}, None),
    ("meshgrid", (X[0], Y[0, :3]), {"indexing": "ij"}, None),
    # indexing
    ("take", (X, IDX), {"axis": 1}, None), ("take", (X, [0, -1]), {"axis": 0}, None), ("take", (X, IDX), {}, None),
    ("take_along_axis", (X, IDX), {"axis": 1}, None),
    ("take_along_axis", (X, np.argsort(X, axis=0)), {"axis": 0}, None),
    ("nonzero", (INTS,), {}, None), ("where", (INTS,), {}, lambda c: np.nonzero(c)),
    ("pad", (X, ((1, 2), (0, 3))), {}, None), ("pad", (X, 1), {"constant_values": 9.0}, None),
    ("pad", (X, ((1, 2), (3, 1))), {"mode": "reflect"}, None),
    ("pad", (X, ((2, 2), (3, 6))), {"mode": "reflect"}, None),
    ("pad", (X, ((1, 2), (3, 1))), {"mode": "symmetric"}, None),
    ("pad", (X, ((4, 2), (5, 9))), {"mode": "symmetric"}, None),
    ("pad", (X, ((1, 2), (3, 1))), {"mode": "edge"}, None), ("pad", (X, ((1, 5), (3, 6))), {"mode": "wrap"}, None),
    # reductions and sorting
    ("sum", (X3,), {}, None), ("sum", (X3,), {"axis": 1}, None),
    ("sum", (X3,), {"axis": (0, 2), "keepdims": True}, None),
    ("mean", (X3,), {}, None), ("mean", (X3,), {"axis": -1, "keepdims": True}, None),
    ("mean", (INTS,), {"axis": 0}, None),
    ("max", (X3,), {}, None), ("max", (X3,), {"axis": (1, 2)}, None), ("max", (X3,), {"axis": 0, "initial": 0.5}, None),
    ("min", (X3,), {"axis": 1, "keepdims": True}, None), ("prod", (X3,), {"axis": (0, 2)}, None),
    ("prod", (X3,), {"axis": (0, 2), "keepdims": True}, None), ("prod", (X,), {}, None),
    ("std", (X3,), {}, None), ("std", (X3,), {"axis": (0, 1)}, None),
    ("var", (X3,), {"axis": -1, "keepdims": True}, None),
    ("argmax", (X3,), {}, None), ("argmax", (X3,), {"axis": 1}, None),
    ("argmax", (X3,), {"axis": -1, "keepdims": True}, None),
    ("argmin", (X3,), {"axis": 0}, None), ("argmin", (X3,), {"keepdims": True}, None),
    ("cumsum", (X3,), {}, None), ("cumsum", (X3,), {"axis": 1}, None), ("cumprod", (X,), {"axis": -1}, None),
    ("all", (X3 > -1,), {}, None), ("all", (X3 > -1,), {"axis": 1, "keepdims": True}, None),
    ("any", (X3 > 1,), {"axis": (0, 2)}, None), ("any", (INTS,), {}, None),
    ("count_nonzero", (INTS,), {"axis": 0}, None),
    ("average", (X3,), {"axis": 1, "weights": np.array([1.0, 2.0, 3.0], np.float32)}, None),
    ("average", (X3,), {}, None),
    ("logsumexp", (X3,), {"axis": -1}, lambda x, axis: np.log(np.exp(x).sum(axis=axis))),
    ("logsumexp", (X3,), {}, lambda x: np.log(np.exp(x).sum())),
    ("norm", (X3,), {}, np.linalg.norm), ("norm", (X3,), {"axis": -1, "keepdims": True}, np.linalg.norm),
    ("norm", (X3,), {"ord": 1, "axis": 1}, np.linalg.norm), ("norm", (X,), {"ord": "fro"}, np.linalg.norm),
    ("norm", (X3,), {"ord": np.inf, "axis": -1}, np.linalg.norm),
    ("sort", (X3,), {}, None), ("sort", (X3,), {"axis": 0}, None), ("sort", (X3,), {"axis": None}, None),
    ("argsort", (X3,), {"axis": 1}, None),
    # neural-network ops
    ("relu", (X,), {}, lambda x: np.maximum(x, 0)), ("relu6", (X * 5,), {}, lambda x: np.clip(x, 0, 6)),
    ("sigmoid", (X,), {}, _sigmoid), ("log_sigmoid", (X,), {}, lambda x: np.log(_sigmoid(x))),
    ("softmax", (X,), {}, _softmax), ("softmax", (X,), {"axis": 0}, _softmax),
    ("log_softmax", (X,), {}, lambda x: np.log(_softmax(x))),
    ("softplus", (X,), {}, lambda x: np.log1p(np.exp(x))), ("softsign", (X,), {}, lambda x: x / (1 + np.abs(x))),
    ("silu", (X,), {}, lambda x: x * _sigmoid(x)), ("swish", (X,), {}, lambda x: x * _sigmoid(x)),
    ("gelu", (X,), {}, _gelu_tanh),
    ("gelu", (X,), {"approximate": False},
     lambda x, approximate: 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))),
    ("elu", (X,), {}, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    ("elu", (X,), {"alpha": 0.5}, lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1))),
    ("selu", (X,), {}, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    ("leaky_relu", (X,), {}, lambda x: np.where(x > 0, x, 0.2 * x)),
    ("leaky_relu", (X,), {"negative_slope": 0.1}, lambda x, negative_slope: np.where(x > 0, x, 0.1 * x)),
    ("hard_sigmoid", (X * 4,), {}, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    ("hard_silu", (X * 4,), {}, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    ("hard_tanh", (X * 2,), {}, lambda x: np.clip(x, -1, 1)),
    ("mish", (X,), {}, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    ("normalize", (X,), {}, lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)),
    ("normalize", (X,), {"axis": 0, "order": 1},
     lambda x, axis, order: x / np.abs(x).sum(axis=0, keepdims=True)),
    ("moments", (X3,), {"axes": (0, 1)}, lambda x, axes: (x.mean(axis=axes), x.var(axis=axes))),
    ("moments", (X3,), {"axes": -1, "keepdims": True},
     lambda x, axes, keepdims: (x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True))),
    ("one_hot", (np.array([0, 2, -1, 1]), 3), {}, lambda x, n: np.where(x[:, None] >= 0, np.eye(n)[x], 0)),
    ("one_hot", (np.array([[0, 2], [1, 1]]), 3), {"axis": 0},
     lambda x, n, axis: np.moveaxis(np.eye(n)[x], -1, 0)),
]


def _case_id(case):
    name, args, kwargs, _ = case
    return name + ("-" + "-".join(f"{k}" for k in kwargs) if kwargs else "")


def _compare(got, want):
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want)
        for g, w in zip(got, want):
            _compare(g, w)
        return
    assert isinstance(got, torch.Tensor), type(got)
    want = np.asarray(want)
    assert tuple(got.shape) == want.shape
    kind = {"b": torch.bool}.get(want.dtype.kind)
    assert got.dtype == kind if kind else got.is_floating_point() == (want.dtype.kind == "f"), (got.dtype, want.dtype)
    np.testing.assert_allclose(ops.convert_to_numpy(got), want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_op_matches_numpy(case):
    name, args, kwargs, reference = case
    reference = reference or getattr(np, name)
    _compare(getattr(ops, name)(*args, **kwargs), reference(*args, **kwargs))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "std", "var", "prod", "all", "any"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), [1, 2]])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_axis_and_keepdims(name, axis, keepdims):
    x = X3 > 0 if name in ("all", "any") else X3
    got = getattr(ops, name)(torch.as_tensor(x), axis=axis, keepdims=keepdims)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    _compare(got, getattr(np, name)(x, axis=np_axis, keepdims=keepdims))


def test_ops_accept_tensors_numpy_and_numbers_alike():
    t = torch.as_tensor(X)
    for a, b in [(t, Y), (X, torch.as_tensor(Y)), (X, Y), (t, torch.as_tensor(Y))]:
        out = ops.add(a, b)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), X + Y, rtol=1e-6)
    assert ops.add(1, 2).item() == 3
    assert ops.maximum(2.0, t).dtype == torch.float32
    for name in ["subtract", "divide", "floor_divide", "mod", "power", "less", "greater_equal", "maximum"]:
        # A Python number first, a tensor second.
        np.testing.assert_allclose(getattr(ops, name)(2.0, torch.as_tensor(POS)).numpy(), getattr(np, name)(2.0, POS),
                                   rtol=1e-6)
    assert ops.minimum(torch.tensor([1, 5]), 2.5).dtype == torch.float32  # int with a float: float, as Keras


# ----------------------------------------------------------------------------- dtypes
def test_float64_numpy_becomes_float32_and_int_stays_int():
    f64 = np.ones((2, 2))
    assert ops.convert_to_tensor(f64).dtype == torch.float32
    assert ops.convert_to_tensor(f64, dtype="float64").dtype == torch.float64
    assert ops.convert_to_tensor([1.5, 2.0]).dtype == torch.float32
    assert ops.convert_to_tensor(1.5).dtype == torch.float32
    assert ops.add(f64, f64).dtype == torch.float32
    assert ops.exp(f64).dtype == torch.float32
    assert ops.sum(np.arange(4)).dtype == torch.int64
    assert ops.add(np.arange(4), 1).dtype == torch.int64
    assert ops.multiply(torch.arange(4, dtype=torch.int32), 2).dtype == torch.int32
    assert ops.convert_to_tensor(np.arange(3, dtype=np.int32)).dtype == torch.int32
    assert ops.convert_to_tensor(torch.ones(2, dtype=torch.float64)).dtype == torch.float64  # tensors untouched


def test_python_numbers_are_weakly_typed():
    assert ops.add(torch.arange(3), 0.5).dtype == torch.float32
    assert ops.multiply(torch.ones(3, dtype=torch.float16), 2.0).dtype == torch.float16
    assert ops.maximum(torch.ones(3, dtype=torch.bfloat16), 0).dtype == torch.bfloat16
    assert ops.divide(torch.arange(3), 2).dtype == torch.float32
    assert ops.mean(torch.arange(4)).dtype == torch.float32
    assert ops.sqrt(torch.arange(4)).dtype == torch.float32
    assert ops.greater(torch.arange(3), 1).dtype == torch.bool


def test_creation_ops():
    assert ops.zeros((2, 3)).dtype == torch.float32 and ops.zeros(4).shape == (4,)
    assert ops.ones((2,), dtype="int32").dtype == torch.int32
    assert ops.full((2, 2), 7).dtype == torch.int64 and ops.full((2,), 0.5).dtype == torch.float32
    np.testing.assert_array_equal(ops.full((2, 3), np.array([1.0, 2.0, 3.0])).numpy(), np.tile([1, 2, 3], (2, 1)))
    t = torch.ones(2, 3, dtype=torch.float16)
    assert ops.zeros_like(t).dtype == torch.float16 and ops.ones_like(t, dtype="float32").dtype == torch.float32
    assert ops.full_like(t, 3.0).sum().item() == 18.0
    np.testing.assert_array_equal(ops.arange(5).numpy(), np.arange(5))
    assert ops.arange(5).dtype == torch.int64 and ops.arange(0, 1, 0.25).dtype == torch.float32
    np.testing.assert_allclose(ops.arange(2, 10, 3).numpy(), np.arange(2, 10, 3))
    np.testing.assert_allclose(ops.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5), rtol=1e-6)
    np.testing.assert_allclose(ops.linspace(0, 1, 4, endpoint=False).numpy(), np.linspace(0, 1, 4, endpoint=False))
    values, step = ops.linspace(0, 2, 5, retstep=True)
    assert step == 0.5 and values.dtype == torch.float32
    start, stop = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    np.testing.assert_allclose(ops.linspace(start, stop, 3, axis=1).numpy(), np.linspace(start, stop, 3, axis=1))
    np.testing.assert_array_equal(ops.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(ops.eye(3, 4, k=1).numpy(), np.eye(3, 4, k=1))
    np.testing.assert_array_equal(ops.eye(4, 3, k=-2).numpy(), np.eye(4, 3, k=-2))
    np.testing.assert_array_equal(ops.identity(2).numpy(), np.identity(2))


def test_conversion_and_shape_helpers():
    t = ops.convert_to_tensor(X3)
    assert ops.shape(t) == (2, 3, 4) and all(type(d) is int for d in ops.shape(t))
    assert ops.ndim(t) == 3 and ops.size(t) == 24 and ops.dtype(t) == "float32"
    assert ops.is_tensor(t) and not ops.is_tensor(X3)
    assert ops.cast(t, "int32").dtype == torch.int32 and ops.cast(t, np.float16).dtype == torch.float16
    assert ops.cast(t, torch.bfloat16).dtype == torch.bfloat16
    back = ops.convert_to_numpy(ops.cast(t, "bfloat16"))
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    w = torch.ones(2, requires_grad=True)
    assert isinstance(ops.convert_to_numpy(w * 2), np.ndarray)
    stacked = ops.convert_to_tensor([torch.ones(2), torch.zeros(2)])
    assert stacked.shape == (2, 2)


# ----------------------------------------------------------------------------- gradients
def test_gradients_flow_through_a_loss_written_with_ops():
    x = torch.as_tensor(X).clone().requires_grad_(True)
    loss = ops.mean(ops.square(ops.subtract(x, Y)))
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (X - Y) / X.size, rtol=1e-5)


@pytest.mark.parametrize("fn", [
    lambda x: ops.pad(x, ((1, 2), (2, 1)), mode="reflect"),
    lambda x: ops.pad(x, ((1, 0), (0, 3)), mode="symmetric"),
    lambda x: ops.take(x, np.array([[0, 2], [3, 3]]), axis=1),
    lambda x: ops.take_along_axis(x, np.array([[0], [2], [1]]), axis=1),
    lambda x: ops.logsumexp(x, axis=0),
    lambda x: ops.normalize(x),
    lambda x: ops.prod(x, axis=(0, 1)),
    lambda x: ops.scatter(np.array([[0, 1], [2, 3], [0, 1]]), ops.sum(x, axis=0)[:3], (3, 4)),
    lambda x: ops.slice_update(ops.zeros((4, 5), dtype="float64"), (1, 1), x),
    lambda x: ops.conv(ops.reshape(x, (1, 3, 4, 1)), ops.reshape(x[:2, :2], (2, 2, 1, 1)), padding="same"),
    lambda x: ops.average_pool(ops.reshape(x, (1, 3, 4, 1)), 2, padding="same"),
    lambda x: ops.softmax(x, axis=0) * ops.log_softmax(x),
], ids=["pad_reflect", "pad_symmetric", "take", "take_along_axis", "logsumexp", "normalize", "prod", "scatter",
        "slice_update", "conv_same", "average_pool_same", "softmax"])
def test_gradcheck(fn):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,))


def test_stop_gradient_and_control_flow():
    x = torch.ones(3, requires_grad=True)
    y = ops.sum(x * ops.stop_gradient(x * 3))
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0, 3.0])
    assert ops.cond(torch.tensor(True), lambda: 1, lambda: 2) == 1
    assert ops.fori_loop(0, 4, lambda i, v: v + i, 0) == 6
    assert ops.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, s * 2), (0, 1)) == (3, 8)
    assert ops.while_loop(lambda i: i < 10, lambda i: i + 1, 0, maximum_iterations=4) == 4


# ----------------------------------------------------------------------------- indexing helpers
def test_slice_scatter_and_top_k():
    x = torch.as_tensor(X3)
    np.testing.assert_array_equal(ops.slice(x, (0, 1, 1), (2, 2, 3)).numpy(), X3[0:2, 1:3, 1:4])
    updated = ops.slice_update(x, (1, 0, 2), np.zeros((1, 3, 2), np.float32))
    expected = X3.copy()
    expected[1:2, 0:3, 2:4] = 0
    np.testing.assert_array_equal(updated.numpy(), expected)
    assert np.array_equal(x.numpy(), X3)  # the input is left alone
    scattered = ops.scatter(np.array([[0, 1], [2, 0], [0, 1]]), np.array([1.0, 2.0, 3.0], np.float32), (3, 2))
    np.testing.assert_array_equal(scattered.numpy(), [[0, 4], [0, 0], [2, 0]])
    replaced = ops.scatter_update(torch.zeros(2, 3), np.array([[0, 2], [1, 0]]), np.array([5.0, 6.0]))
    np.testing.assert_array_equal(replaced.numpy(), [[0, 0, 5], [6, 0, 0]])

    values, indices = ops.top_k(X3, 2)
    np.testing.assert_allclose(values.numpy(), -np.sort(-X3, axis=-1)[..., :2])
    np.testing.assert_array_equal(np.take_along_axis(X3, indices.numpy(), axis=-1), values.numpy())
    assert indices.dtype == torch.int64
    unsorted_values, _ = ops.top_k(X3, 3, sorted=False)
    np.testing.assert_allclose(np.sort(unsorted_values.numpy(), -1), np.sort(-np.sort(-X3, -1)[..., :3], -1))


def test_one_hot():
    ids = np.array([[0, 3], [2, -1]])
    out = ops.one_hot(ids, 4)
    assert out.shape == (2, 2, 4) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy()[1, 1], np.zeros(4))  # negative ids: all zeros
    np.testing.assert_array_equal(out.numpy()[0, 1], [0, 0, 0, 1])
    assert ops.one_hot(ids, 4, axis=1).shape == (2, 4, 2)
    np.testing.assert_array_equal(ops.one_hot(ids, 4, axis=1).numpy(), np.moveaxis(out.numpy(), -1, 1))
    assert ops.one_hot(torch.tensor([1, 0]), 2, dtype="int32").dtype == torch.int32


# ----------------------------------------------------------------------------- crossentropies
def test_crossentropies_match_kiln_losses():
    t = torch.as_tensor(G.integers(0, 2, (8, 5)).astype(np.float32))
    logits = torch.as_tensor(G.standard_normal((8, 5)).astype(np.float32))
    p = torch.sigmoid(logits)
    elementwise = ops.binary_crossentropy(t, p)
    assert elementwise.shape == (8, 5)
    torch.testing.assert_close(ops.mean(elementwise, axis=-1), losses.binary_crossentropy(t, p))
    torch.testing.assert_close(ops.mean(ops.binary_crossentropy(t, logits, from_logits=True), axis=-1),
                               losses.binary_crossentropy(t, logits, from_logits=True))

    ids = torch.as_tensor(G.integers(0, 5, (8,)))
    onehot = ops.one_hot(ids, 5)
    probs = ops.softmax(logits)
    torch.testing.assert_close(ops.categorical_crossentropy(onehot, probs),
                               losses.categorical_crossentropy(onehot, probs))
    torch.testing.assert_close(ops.categorical_crossentropy(onehot, logits, from_logits=True),
                               losses.categorical_crossentropy(onehot, logits, from_logits=True))
    torch.testing.assert_close(ops.sparse_categorical_crossentropy(ids, probs),
                               losses.sparse_categorical_crossentropy(ids, probs))
    torch.testing.assert_close(ops.sparse_categorical_crossentropy(ids[:, None], logits, from_logits=True),
                               losses.sparse_categorical_crossentropy(ids, logits, from_logits=True))
    # The class axis can be elsewhere: (batch, classes, positions).
    seq_logits = torch.randn(4, 5, 6)
    seq_ids = torch.randint(0, 5, (4, 6))
    torch.testing.assert_close(
        ops.sparse_categorical_crossentropy(seq_ids, seq_logits, from_logits=True, axis=1),
        F.cross_entropy(seq_logits, seq_ids, reduction="none"))


def test_crossentropy_shape_errors():
    with pytest.raises(ShapeError, match="target.shape"):
        ops.binary_crossentropy(np.zeros((4, 2)), np.full((4, 3), 0.5))
    with pytest.raises(ShapeError, match="target.shape"):
        ops.categorical_crossentropy(np.zeros((4, 2)), np.full((4, 3), 0.5))
    with pytest.raises(ShapeError, match="class axis"):
        ops.sparse_categorical_crossentropy(np.zeros((4, 3)), np.full((4, 3), 0.5))


# ----------------------------------------------------------------------------- nn helpers
def test_batch_normalization_and_attention():
    x = torch.as_tensor(X3)
    mean, variance = np.array([0.1, -0.2, 0.3], np.float32), np.array([1.0, 2.0, 0.5], np.float32)
    out = ops.batch_normalization(x, mean, variance, axis=1, offset=np.ones(3, np.float32),
                                  scale=np.full(3, 2.0, np.float32), epsilon=1e-3)
    expected = (X3 - mean[:, None]) / np.sqrt(variance[:, None] + 1e-3) * 2.0 + 1.0
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)

    b, t, s, n, k, h = 2, 3, 4, 4, 2, 5
    q, key, value = torch.randn(b, t, n, h), torch.randn(b, s, k, h), torch.randn(b, s, k, h)
    bias = torch.randn(1, n, t, s)
    mask = torch.rand(b, 1, t, s) > 0.3
    kr, vr = key.repeat_interleave(n // k, dim=2), value.repeat_interleave(n // k, dim=2)
    logits = torch.einsum("btnh,bsnh->bnts", q, kr) / math.sqrt(h)

    def reference(logit):
        return torch.einsum("bnts,bsnh->btnh", torch.softmax(logit, dim=-1), vr)
    torch.testing.assert_close(ops.dot_product_attention(q, key, value), reference(logits))
    keep = mask & torch.ones(t, s, dtype=torch.bool).tril()
    torch.testing.assert_close(
        ops.dot_product_attention(q, key, value, bias=bias, mask=mask, is_causal=True),
        reference((logits + bias).masked_fill(~keep, -1e9)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ops.dot_product_attention(q, key, value, is_causal=True, scale=0.3),
                               reference((logits * math.sqrt(h) * 0.3).masked_fill(
                                   ~torch.ones(t, s, dtype=torch.bool).tril(), -1e9)), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- conv and pooling
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's own reference call
@pytest.mark.parametrize("strides,dilation,padding", [(1, 1, "valid"), (2, 1, "valid"), (1, 2, "valid"),
                                                      (1, 1, "same"), (1, 2, "same")])
def test_conv2d_against_torch(strides, dilation, padding):
    x = torch.randn(2, 9, 8, 3)  # (B, H, W, C)
    kernel = torch.randn(3, 2, 3, 5)  # (kh, kw, in, out): Keras's layout
    out = ops.conv(x, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    ref = F.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), stride=strides, dilation=dilation,
                   padding=padding).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, ref)
    first = ops.conv(x.permute(0, 3, 1, 2), kernel, strides=strides, padding=padding, dilation_rate=dilation,
                     data_format="channels_first")
    torch.testing.assert_close(first, ref.permute(0, 3, 1, 2))


def test_conv_same_with_strides_follows_tensorflow():
    x = torch.randn(2, 8, 7, 4)
    kernel = torch.randn(3, 4, 4, 6)
    out = ops.conv(x, kernel, strides=2, padding="same")
    assert out.shape == (2, 4, 4, 6)  # ceil(8 / 2), ceil(7 / 2)
    layer = layers.Conv2D(6, (3, 4), strides=2, padding="same", use_bias=False)
    layer(x)
    with torch.no_grad():
        layer.kernel.copy_(kernel.permute(3, 2, 0, 1))
    torch.testing.assert_close(out, layer(x))


def test_conv1d_conv3d_groups_and_depthwise():
    x1 = torch.randn(2, 10, 3)
    k1 = torch.randn(3, 3, 4)
    torch.testing.assert_close(ops.conv(x1, k1, strides=2),
                               F.conv1d(x1.transpose(1, 2), k1.permute(2, 1, 0), stride=2).transpose(1, 2))
    x3 = torch.randn(1, 5, 6, 4, 2)
    k3 = torch.randn(2, 3, 2, 2, 3)
    torch.testing.assert_close(ops.conv(x3, k3), F.conv3d(x3.permute(0, 4, 1, 2, 3), k3.permute(4, 3, 0, 1, 2))
                               .permute(0, 2, 3, 4, 1))
    xg = torch.randn(2, 6, 6, 4)
    kg = torch.randn(3, 3, 2, 6)  # 4 input channels / 2 per group = 2 groups
    torch.testing.assert_close(ops.conv(xg, kg), F.conv2d(xg.permute(0, 3, 1, 2), kg.permute(3, 2, 0, 1), groups=2)
                               .permute(0, 2, 3, 1))
    kd = torch.randn(3, 3, 4, 2)  # (kh, kw, channels, multiplier)
    out = ops.depthwise_conv(xg, kd, padding="same")
    assert out.shape == (2, 6, 6, 8)
    per_channel = [ops.conv(xg[..., c:c + 1], kd[:, :, c:c + 1, :], padding="same") for c in range(4)]
    torch.testing.assert_close(out, torch.cat(per_channel, dim=-1))


@pytest.mark.parametrize("pool_size,strides", [(2, None), ((3, 2), (1, 2)), (3, 2)])
def test_pooling_valid_against_torch(pool_size, strides):
    x = torch.randn(2, 7, 8, 3)
    first = x.permute(0, 3, 1, 2)
    torch_strides = pool_size if strides is None else strides
    torch.testing.assert_close(ops.max_pool(x, pool_size, strides),
                               F.max_pool2d(first, pool_size, torch_strides).permute(0, 2, 3, 1))
    torch.testing.assert_close(ops.average_pool(x, pool_size, strides),
                               F.avg_pool2d(first, pool_size, torch_strides).permute(0, 2, 3, 1))
    torch.testing.assert_close(ops.max_pool(first, pool_size, strides, data_format="channels_first"),
                               F.max_pool2d(first, pool_size, torch_strides))


def test_pooling_same_excludes_padding():
    x = torch.arange(1.0, 6.0).reshape(1, 5, 1)  # (B, steps, C): [1, 2, 3, 4, 5]
    # ceil(5 / 2) = 3 windows: [1, 2], [3, 4], [5, pad]; the pad is neither a max nor counted.
    np.testing.assert_allclose(ops.max_pool(x, 2, padding="same").reshape(-1).numpy(), [2, 4, 5])
    np.testing.assert_allclose(ops.average_pool(x, 2, padding="same").reshape(-1).numpy(), [1.5, 3.5, 5])
    x2 = torch.randn(2, 7, 6, 3)
    for op, layer in [(ops.max_pool, layers.MaxPooling2D), (ops.average_pool, layers.AveragePooling2D)]:
        for pool, strides in [(2, None), (3, 1), (3, 2)]:
            torch.testing.assert_close(op(x2, pool, strides, padding="same"),
                                       layer(pool, strides, padding="same")(x2))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call,error,arg", [
    (lambda: ops.conv(torch.ones(1, 4, 4, 1), torch.ones(2, 2, 1, 1), padding="full"), KilnValueError, "padding"),
    (lambda: ops.conv(torch.ones(1, 4, 4, 1), torch.ones(2, 2, 1, 1), strides=0), KilnValueError, "strides"),
    (lambda: ops.conv(torch.ones(1, 4, 4, 1), torch.ones(2, 2, 1, 1), data_format="NHWC"), KilnValueError,
     "data_format"),
    (lambda: ops.conv(torch.ones(1, 4, 4, 3), torch.ones(2, 2, 2, 1)), ShapeError, "kernel.shape"),
    (lambda: ops.max_pool(torch.ones(1, 4, 4, 1), 2, padding="causal"), KilnValueError, "padding"),
    (lambda: ops.average_pool(torch.ones(1, 4, 4, 1), (2, 2, 2)), KilnValueError, "pool_size"),
    (lambda: ops.max_pool(torch.ones(4, 4), 2), ShapeError, "inputs.shape"),
    (lambda: ops.pad(X, 1, mode="mirror"), KilnValueError, "mode"),
    (lambda: ops.pad(X, ((1, 2, 3),)), KilnValueError, "pad_width"),
    (lambda: ops.pad(X, -1), KilnValueError, "pad_width"),
    (lambda: ops.pad(X, 1, mode="edge", constant_values=2), KilnValueError, "constant_values"),
    (lambda: ops.one_hot([1, 2], 0), KilnValueError, "num_classes"),
    (lambda: ops.squeeze(X, axis=0), KilnValueError, "axis"),
    (lambda: ops.where(X > 0, X), KilnValueError, "x2"),
    (lambda: ops.top_k(X, 5), KilnValueError, "k"),
    (lambda: ops.normalize(X, order=0), KilnValueError, "order"),
    (lambda: ops.split(X, 3, axis=1), KilnValueError, "indices_or_sections"),
    (lambda: ops.cast(X, "float31"), KilnValueError, "dtype"),
    (lambda: ops.zeros((2,), dtype="complex33"), KilnValueError, "dtype"),
    (lambda: ops.sum(X, axis="0"), KilnTypeError, "axis"),
    (lambda: ops.reshape(X, "12"), KilnTypeError, "newshape"),
    (lambda: ops.convert_to_tensor(["a", "b"]), KilnTypeError, "strings"),
    (lambda: ops.concatenate([]), KilnTypeError, "xs"),
])
def test_bad_arguments_name_the_argument(call, error, arg):
    with pytest.raises(error, match=arg):
        call()


# ----------------------------------------------------------------------------- Keras 3 programs
class OpsDense(layers.Layer):
    """A Keras-3-style custom layer written only with ops."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        y = ops.matmul(inputs, self.w) + self.b
        return ops.relu(y) if self.activation == "relu" else y


def ops_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def test_custom_ops_layer_and_loss_train_with_fit(regression_data):
    x, y = regression_data
    model = kiln.Sequential([OpsDense(16, activation="relu"), OpsDense(1)])
    model.compile(optimizer="adam", loss=ops_mse)
    history = model.fit(x, y, epochs=25, batch_size=16, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < 0.5 * loss[0]


def test_ops_on_functional_inputs_become_graph_nodes():
    inputs = kiln.Input(shape=(4,))
    hidden = ops.relu(layers.Dense(8)(inputs))
    joined = ops.concatenate([hidden, ops.square(inputs)], axis=-1)
    assert ops.shape(joined) == (None, 12)
    outputs = layers.Dense(1)(joined)
    model = kiln.Model(inputs, outputs)
    data = torch.randn(5, 4)
    dense1, dense2 = [m for m in model.modules() if isinstance(m, layers.Dense)]
    expected = dense2(torch.cat([torch.relu(dense1(data)), data ** 2], dim=-1))
    torch.testing.assert_close(model(data), expected)
    model.compile(optimizer="adam", loss="mse")
    model.fit(data.numpy(), np.zeros((5, 1), np.float32), epochs=1, verbose=0)
