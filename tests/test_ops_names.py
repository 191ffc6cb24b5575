"""kiln.ops became a package of family modules: every name a program reaches through ``kiln.ops``
must still be there, in the same ``__all__`` order, and be the op the family module defines."""

import importlib

import pytest

import kiln.ops as ops

# ``kiln/ops.py``'s ``__all__`` at e4563e3, the last commit before the split (order kept).
FROZEN_ALL = [
    "convert_to_tensor", "convert_to_numpy", "cast", "shape", "ndim", "size", "dtype", "is_tensor", "zeros",
    "ones", "zeros_like", "ones_like", "full", "full_like", "arange", "linspace", "eye", "identity", "add",
    "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "negative", "abs",
    "absolute", "sign", "sqrt", "rsqrt", "square", "reciprocal", "exp", "log", "log1p", "log2", "log10",
    "expm1", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "erf",
    "floor", "ceil", "round", "trunc", "clip", "maximum", "minimum", "where", "nan_to_num", "equal",
    "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or", "logical_xor",
    "logical_not", "isnan", "isfinite", "isinf", "isclose", "matmul", "dot", "tensordot", "einsum", "outer",
    "trace", "diag", "diagonal", "triu", "tril", "transpose", "reshape", "expand_dims", "squeeze",
    "concatenate", "stack", "split", "tile", "repeat", "unstack", "hstack", "vstack", "flip", "roll",
    "broadcast_to", "swapaxes", "moveaxis", "ravel", "meshgrid", "take", "take_along_axis", "slice",
    "slice_update", "scatter", "scatter_update", "nonzero", "pad", "sum", "mean", "max", "min", "prod", "std",
    "var", "argmax", "argmin", "cumsum", "cumprod", "all", "any", "count_nonzero", "average", "logsumexp",
    "norm", "sort", "argsort", "top_k", "relu", "relu6", "sigmoid", "log_sigmoid", "softmax", "log_softmax",
    "softplus", "softsign", "silu", "swish", "gelu", "elu", "selu", "leaky_relu", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "mish", "one_hot", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "moments", "normalize", "batch_normalization", "conv",
    "depthwise_conv", "max_pool", "average_pool", "dot_product_attention", "stop_gradient", "cond",
    "fori_loop", "while_loop",
]
FAMILIES = ("core", "creation", "elementwise", "logic", "linalg", "shapes", "indexing", "reductions", "nn",
            "convolution")


def test_all_is_unchanged():
    assert ops.__all__ == FROZEN_ALL


def test_every_public_name_is_importable_and_callable():
    namespace = {}
    exec("from kiln.ops import *", namespace)  # noqa: S102 - what ``from kiln.ops import *`` gives a user
    assert set(FROZEN_ALL) <= set(namespace)
    assert all(callable(getattr(ops, name)) for name in FROZEN_ALL)
    assert ops.EPSILON == 1e-7


def test_each_name_comes_from_exactly_one_family():
    owners = {}
    for family in FAMILIES:
        module = importlib.import_module(f"kiln.ops.{family}")
        for name in getattr(module, "__all__", ()):
            owners.setdefault(name, []).append(family)
            assert getattr(ops, name) is getattr(module, name)
    assert sorted(owners) == sorted(FROZEN_ALL)
    assert all(len(families) == 1 for families in owners.values())


@pytest.mark.parametrize("name", ["sum", "max", "min", "abs", "round", "all", "any", "slice"])
def test_builtin_shadowing_names_are_the_ops(name):
    """These ops share a name with a Python builtin; the package must export the op, not the builtin."""
    import builtins

    assert getattr(ops, name) is not getattr(builtins, name)
