"""Neural-network ops (``keras.ops.nn``): activations, one-hot, crossentropies, normalization and
scaled dot-product attention.

Part of ``kiln.ops``; import the ops from there (``from kiln import ops``).
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError
from kiln.ops._base import _dims, _float, _op, _pair, _t, _torch_dtype, _unary

__all__ = [
    "relu", "relu6", "sigmoid", "log_sigmoid", "softplus", "softsign", "silu", "swish", "selu",
    "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "mish", "softmax", "log_softmax", "gelu", "elu",
    "leaky_relu", "one_hot", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "moments", "normalize", "batch_normalization", "dot_product_attention",
]


# Keras's backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON] before a log.
EPSILON = 1e-7


# ============================================================================ neural-network ops
relu = _unary(F.relu, "relu", "``max(x, 0)``.")
relu6 = _unary(F.relu6, "relu6", "``min(max(x, 0), 6)``.")
sigmoid = _unary(torch.sigmoid, "sigmoid", "``1 / (1 + exp(-x))``.")
log_sigmoid = _unary(F.logsigmoid, "log_sigmoid", "``log(sigmoid(x))``, computed stably.")
softplus = _unary(F.softplus, "softplus", "``log(1 + exp(x))``.")
softsign = _unary(F.softsign, "softsign", "``x / (1 + |x|)``.")
silu = _unary(F.silu, "silu", "``x * sigmoid(x)`` (also called swish).")
swish = silu
selu = _unary(F.selu, "selu", "Scaled ELU with the self-normalising constants.")
hard_sigmoid = _unary(F.hardsigmoid, "hard_sigmoid", "``relu6(x + 3) / 6`` (Keras 3's definition).")
hard_silu = _unary(F.hardswish, "hard_silu", "``x * hard_sigmoid(x)`` (also called hard_swish).")
hard_swish = hard_silu
hard_tanh = _unary(F.hardtanh, "hard_tanh", "``x`` clipped to [-1, 1].")
mish = _unary(F.mish, "mish", "``x * tanh(softplus(x))``.")


@_op
def softmax(x: Any, axis: int = -1) -> torch.Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    return F.softmax(_float(_t(x)), dim=axis)


@_op
def log_softmax(x: Any, axis: int = -1) -> torch.Tensor:
    """``log(softmax(x))`` along ``axis``, computed stably."""
    return F.log_softmax(_float(_t(x)), dim=axis)


@_op
def gelu(x: Any, approximate: bool = True) -> torch.Tensor:
    """Gaussian error linear unit; the tanh approximation by default, as ``keras.ops.gelu``
    (the ``keras.activations.gelu`` default is the exact erf form: pass ``approximate=False``)."""
    return F.gelu(_t(x), approximate="tanh" if approximate else "none")


@_op
def elu(x: Any, alpha: float = 1.0) -> torch.Tensor:
    """``x`` if positive, else ``alpha * (exp(x) - 1)``."""
    return F.elu(_t(x), alpha=alpha)


@_op
def leaky_relu(x: Any, negative_slope: float = 0.2) -> torch.Tensor:
    """``x`` if positive, else ``negative_slope * x`` (Keras's default slope 0.2; torch's is 0.01)."""
    return F.leaky_relu(_t(x), negative_slope=negative_slope)


@_op
def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False) -> torch.Tensor:
    """Integer class ids -> one-hot vectors along ``axis`` of the result; ids < 0 give all zeros.

    Shapes: (...,) -> (..., num_classes) for ``axis=-1``. Float32 unless ``dtype`` says otherwise.
    """
    if not isinstance(num_classes, numbers.Integral) or num_classes <= 0:
        raise KilnValueError(f"Received an invalid value for `num_classes`, expected a positive integer. "
                             f"Received: num_classes={num_classes!r}")
    if sparse:
        raise KilnValueError("kiln has dense tensors only. Received: sparse=True")
    x = _t(x)
    ids = x if x.dtype == torch.int64 else x.long()
    out = F.one_hot(ids.clamp(min=0), int(num_classes))
    out = (out * (ids >= 0).unsqueeze(-1)).to(_torch_dtype(dtype) or torch.float32)
    return out if axis == -1 else torch.movedim(out, -1, axis)


def _check_same_shape(name: str, target: torch.Tensor, output: torch.Tensor) -> None:
    if target.shape != output.shape:
        raise ShapeError(f"`{name}` expects `target` and `output` of the same shape. Received: "
                         f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}")


@_op
def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> torch.Tensor:
    """Elementwise binary crossentropy (no reduction): shapes (...) and (...) -> (...).

    Args:
        from_logits: (False) ``output`` holds logits rather than probabilities; probabilities
            are clipped to [1e-7, 1 - 1e-7] before the log, as in Keras.
    """
    target, output = _pair(target, output)
    output = _float(output)
    _check_same_shape("binary_crossentropy", target, output)
    target = target.to(output.dtype)
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    p = output.clamp(EPSILON, 1.0 - EPSILON)
    return -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p))


def _log_probabilities(output: torch.Tensor, from_logits: bool, axis: int) -> torch.Tensor:
    if from_logits:
        return F.log_softmax(output, dim=axis)
    # Keras rescales probabilities to sum to 1, then clips before the log.
    p = output / output.sum(dim=axis, keepdim=True)
    return torch.log(p.clamp(EPSILON, 1.0 - EPSILON))


@_op
def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> torch.Tensor:
    """Crossentropy of one-hot (or soft) ``target`` against ``output``, summed over the class ``axis``.

    Shapes: (..., classes), (..., classes) -> (...).
    """
    target, output = _pair(target, output)
    output = _float(output)
    _check_same_shape("categorical_crossentropy", target, output)
    return -(target.to(output.dtype) * _log_probabilities(output, from_logits, axis)).sum(dim=axis)


@_op
def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False,
                                    axis: int = -1) -> torch.Tensor:
    """Crossentropy of integer class ids ``target`` against ``output`` along the class ``axis``.

    Shapes: (...) or (..., 1) ids, (..., classes) -> (...).
    """
    target, output = _pair(target, output)
    output = _float(output)
    if target.ndim == output.ndim and target.shape[-1] == 1:
        target = target.squeeze(-1)
    axis = axis % output.ndim
    expected = output.shape[:axis] + output.shape[axis + 1:]
    if target.shape != expected:
        raise ShapeError("`sparse_categorical_crossentropy` expects integer `target` of the shape of `output` "
                         f"without its class axis, {tuple(expected)}. Received: target.shape="
                         f"{tuple(target.shape)}, output.shape={tuple(output.shape)}")
    log_prob = _log_probabilities(output, from_logits, axis)
    return -log_prob.gather(axis, target.long().unsqueeze(axis)).squeeze(axis)


@_op
def moments(x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False):
    """Mean and (population) variance over ``axes``: ``(mean, variance)``.

    Half-precision inputs are reduced in float32 and cast back, as Keras does.
    """
    x = _t(x)
    half = x.dtype in (torch.float16, torch.bfloat16)
    variance, mean_ = torch.var_mean(_float(x.float() if half else x), dim=_dims(axes, x.ndim, "axes"),
                                     correction=0, keepdim=keepdims)
    if half:
        return mean_.to(x.dtype), variance.to(x.dtype)
    return mean_, variance


@_op
def normalize(x: Any, axis: int = -1, order: int = 2, epsilon: float | None = None) -> torch.Tensor:
    """``x / max(norm(x), epsilon)`` with the ``order``-norm along ``axis`` (L2 by default)."""
    if not isinstance(order, numbers.Integral) or order < 1:
        raise KilnValueError(f"Received an invalid value for `order`, expected an integer >= 1. "
                             f"Received: order={order!r}")
    x = _float(_t(x))
    if x.ndim == 0:
        x = x.unsqueeze(0)
    return F.normalize(x, p=order, dim=axis, eps=EPSILON if epsilon is None else epsilon)


@_op
def batch_normalization(x: Any, mean: Any, variance: Any, axis: int, offset: Any = None, scale: Any = None,
                        epsilon: float = 1e-3) -> torch.Tensor:
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset``, the statistics given along ``axis``."""
    x = _t(x)
    shape_ = [1] * x.ndim
    shape_[axis] = x.shape[axis]

    def along_axis(v):
        return None if v is None else _t(v, device=x.device).reshape(shape_)
    inv = torch.rsqrt(along_axis(variance) + epsilon)
    if scale is not None:
        inv = inv * along_axis(scale)
    out = (x - along_axis(mean)) * inv
    return out if offset is None else out + along_axis(offset)


# ============================================================================ convolution and pooling
@_op
def dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None, mask: Any = None,
                          scale: float | None = None, is_causal: bool = False, flash_attention: Any = None,
                          attn_logits_soft_cap: float | None = None) -> torch.Tensor:
    """Scaled dot-product attention with Keras's layout.

    Args:
        query: (B, T, N, H); key, value: (B, S, K, H), K dividing N (grouped-query attention).
        bias: (None) added to the logits, broadcastable to (B, N, T, S).
        mask: (None) booleans broadcastable to (B, N, T, S); True marks the pairs that attend.
        scale: (None: 1 / sqrt(H)) the logits' factor.
        is_causal: (False) position t attends to positions <= t only.
    Returns (B, T, N, H).
    """
    if attn_logits_soft_cap is not None:
        raise KilnValueError("kiln's dot_product_attention has no logits soft cap. "
                             f"Received: attn_logits_soft_cap={attn_logits_soft_cap!r}")
    q = _t(query)
    k, v = _t(key, device=q.device), _t(value, device=q.device)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ShapeError("`dot_product_attention` expects query, key and value of rank 4, (batch, length, heads, "
                         f"head_dim). Received: query.shape={tuple(q.shape)}, key.shape={tuple(k.shape)}, "
                         f"value.shape={tuple(v.shape)}")
    heads, kv_heads = q.shape[2], k.shape[2]
    if heads % kv_heads:
        raise ShapeError(f"`dot_product_attention`: the key's {kv_heads} heads must divide the query's {heads}.")
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, length, H)
    if kv_heads != heads:
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
    if bias is None and mask is None:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale)
    else:
        t_len, s_len = q.shape[2], k.shape[2]
        logits_bias = torch.zeros((), dtype=q.dtype, device=q.device) if bias is None else _t(bias, q.device)
        keep = None if mask is None else _t(mask, q.device).bool()
        if is_causal:
            causal = torch.ones(t_len, s_len, dtype=torch.bool, device=q.device).tril()
            keep = causal if keep is None else keep & causal
        if keep is not None:
            # A large negative number rather than -inf: a fully masked row then averages the
            # values uniformly, as Keras does, instead of giving NaN.
            large_negative = torch.finfo(q.dtype).min * 0.7
            logits_bias = logits_bias.to(q.dtype).masked_fill(~keep, large_negative)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_bias.to(q.dtype), scale=scale)
    return out.transpose(1, 2)  # (B, T, N, H)
