"""``keras.ops`` on torch tensors: the ops Keras 3 programs write custom layers and losses with.

A Keras 3 program ported with ``import kiln as keras`` keeps calling ``keras.ops.matmul``,
``keras.ops.mean`` or ``keras.ops.softmax``; here each is a thin wrapper over the torch function
of the same meaning, with Keras's (mostly NumPy's) names, argument names and semantics. Results
are plain ``torch.Tensor``s, so gradients flow through them.

Inputs: tensors pass through untouched (no copy, no device move). Python numbers, lists and
NumPy arrays are converted with ``torch.as_tensor``; float64 NumPy data and Python floats become
float32 (Keras's floatx), other dtypes are kept. A non-tensor next to a tensor is put on that
tensor's device; a lone non-tensor, like the result of a creation op (``zeros``, ``arange``, ...),
lands on torch's default device (the CPU unless ``torch.set_default_device`` says otherwise).
Python numbers next to a tensor are "weak" as in Keras: ``ops.multiply(half_tensor, 2.0)`` stays
float16, ``ops.add(int_tensor, 0.5)`` becomes float32.

Where kiln differs from Keras: Python ints and ``arange`` give int64 (torch's index dtype) where
Keras gives int32, and ``argmax``/``argsort``/``top_k`` indices are int64. Keras puts new tensors
on the GPU when there is one; kiln on torch's default device, so in a layer running on a GPU a
constant such as ``ops.arange(n)`` needs ``.to(x.device)`` (or is made from the input:
``ops.ones_like(x)``).

Symbolic inputs: called on a functional-API ``Input`` (a ``KerasTensor``), an op is recorded
as a node of the graph, as in Keras: ``x = ops.relu(layers.Dense(8)(inputs))`` works.

Conventions: reductions take ``axis=None`` (all axes), an int or a tuple, and ``keepdims``;
image ops are channels_last by default, and convolution kernels use Keras's layout
``(*kernel_size, in_channels, out_channels)``.

Example:
    >>> from kiln import ops
    >>> x = ops.convert_to_tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> ops.mean(ops.square(x), axis=-1)
    tensor([ 2.5000, 12.5000])

Layout: one module per family, each importable on its own but meant to be reached through
``kiln.ops``: ``core`` (conversion, dtypes, gradients and control flow), ``creation``,
``elementwise`` (math), ``logic`` (comparisons), ``linalg``, ``shapes``, ``indexing``,
``reductions`` (and sorting), ``nn`` (activations, losses, normalization, attention) and
``convolution`` (and pooling); ``_base`` holds the private helpers they share.
"""

from kiln.ops.core import (  # noqa: F401 - re-exported
    cast, cond, convert_to_numpy, convert_to_tensor, dtype, fori_loop, is_tensor, ndim, shape, size,
    stop_gradient, while_loop,
)
from kiln.ops.creation import (  # noqa: F401 - re-exported
    arange, eye, full, full_like, identity, linspace, ones, ones_like, zeros, zeros_like,
)
from kiln.ops.elementwise import (  # noqa: F401 - re-exported
    abs, absolute, add, arccos, arcsin, arctan, arctan2, ceil, clip, cos, cosh, divide, erf, exp, expm1,
    floor, floor_divide, isfinite, isinf, isnan, log, log10, log1p, log2, logical_not, maximum, minimum,
    mod, multiply, nan_to_num, negative, power, reciprocal, round, rsqrt, sign, sin, sinh, sqrt, square,
    subtract, tan, tanh, true_divide, trunc, where,
)
from kiln.ops.logic import (  # noqa: F401 - re-exported
    equal, greater, greater_equal, isclose, less, less_equal, logical_and, logical_or, logical_xor,
    not_equal,
)
from kiln.ops.linalg import (  # noqa: F401 - re-exported
    diag, diagonal, dot, einsum, matmul, outer, tensordot, trace, tril, triu,
)
from kiln.ops.shapes import (  # noqa: F401 - re-exported
    broadcast_to, concatenate, expand_dims, flip, hstack, meshgrid, moveaxis, ravel, repeat, reshape,
    roll, split, squeeze, stack, swapaxes, tile, transpose, unstack, vstack,
)
from kiln.ops.indexing import (  # noqa: F401 - re-exported
    nonzero, pad, scatter, scatter_update, slice, slice_update, take, take_along_axis,
)
from kiln.ops.reductions import (  # noqa: F401 - re-exported
    all, any, argmax, argmin, argsort, average, count_nonzero, cumprod, cumsum, logsumexp, max, mean, min,
    norm, prod, sort, std, sum, top_k, var,
)
from kiln.ops.nn import (  # noqa: F401 - re-exported
    batch_normalization, binary_crossentropy, categorical_crossentropy, dot_product_attention, elu,
    EPSILON, gelu, hard_sigmoid, hard_silu, hard_swish, hard_tanh, leaky_relu, log_sigmoid, log_softmax,
    mish, moments, normalize, one_hot, relu, relu6, selu, sigmoid, silu, softmax, softplus, softsign,
    sparse_categorical_crossentropy, swish,
)
from kiln.ops.convolution import (  # noqa: F401 - re-exported
    average_pool, conv, depthwise_conv, max_pool,
)

__all__ = [
    # conversion and dtypes
    "convert_to_tensor", "convert_to_numpy", "cast", "shape", "ndim", "size", "dtype", "is_tensor",
    # creation
    "zeros", "ones", "zeros_like", "ones_like", "full", "full_like", "arange", "linspace", "eye", "identity",
    # elementwise math
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "negative",
    "abs", "absolute", "sign", "sqrt", "rsqrt", "square", "reciprocal", "exp", "log", "log1p", "log2", "log10",
    "expm1", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "erf",
    "floor", "ceil", "round", "trunc", "clip", "maximum", "minimum", "where", "nan_to_num",
    # comparison and logic
    "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or",
    "logical_xor", "logical_not", "isnan", "isfinite", "isinf", "isclose",
    # linear algebra and shapes
    "matmul", "dot", "tensordot", "einsum", "outer", "trace", "diag", "diagonal", "triu", "tril",
    "transpose", "reshape", "expand_dims", "squeeze", "concatenate", "stack", "split", "tile", "repeat",
    "unstack", "hstack", "vstack", "flip", "roll", "broadcast_to", "swapaxes", "moveaxis", "ravel", "meshgrid",
    # indexing
    "take", "take_along_axis", "slice", "slice_update", "scatter", "scatter_update", "nonzero", "pad",
    # reductions and sorting
    "sum", "mean", "max", "min", "prod", "std", "var", "argmax", "argmin", "cumsum", "cumprod", "all", "any",
    "count_nonzero", "average", "logsumexp", "norm", "sort", "argsort", "top_k",
    # neural-network ops
    "relu", "relu6", "sigmoid", "log_sigmoid", "softmax", "log_softmax", "softplus", "softsign", "silu",
    "swish", "gelu", "elu", "selu", "leaky_relu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "mish", "one_hot", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "moments", "normalize", "batch_normalization", "conv", "depthwise_conv", "max_pool", "average_pool",
    "dot_product_attention",
    # gradients and control flow
    "stop_gradient", "cond", "fori_loop", "while_loop",
]
