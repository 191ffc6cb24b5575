"""Attention layers: MultiHeadAttention (Vaswani et al., 2017) and Attention (Luong dot-product).

MultiHeadAttention keeps Keras 3's weights and shapes — the query kernel is
``(query_dim, num_heads, key_dim)``, the output kernel ``(num_heads, value_dim, output_dim)`` —
so ``get_weights()`` lines up with Keras's (query, key, value, output; kernel then bias). When
the attention scores are not requested it runs ``torch.nn.functional.scaled_dot_product_attention``
(flash/memory-efficient kernels where torch has them); otherwise an explicit softmax.

Masks follow Keras: ``True`` (or 1) means *attend*. A masked position gets ``-1e9`` added to its
score before the softmax, exactly as Keras does, so a row that is masked everywhere attends
uniformly instead of giving NaN.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from kiln import initializers, regularizers
from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.layer import Layer, _first_tensor

__all__ = ["MultiHeadAttention", "Attention"]


def _check_positive_int(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a positive integer. "
                             f"Received: {name}={value!r}")
    return int(value)


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a float in [0, 1). "
                             f"Received: {name}={value!r}")
    return float(value)


def _large_negative(dtype):
    """What Keras adds to masked scores: -1e9, or a value float16 can hold."""
    return -3e4 if dtype == torch.float16 else -1e9


def _causal_mask(q_len, v_len, device):
    """(q_len, v_len) bool, True where query i may see key j <= i (top-left aligned, as Keras)."""
    return torch.ones(q_len, v_len, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(Layer):
    """Multi-head attention with Keras 3's arguments, weights and mask semantics.

    Each head projects the query and key to ``key_dim`` and the value to ``value_dim``,
    computes ``softmax(q k^T / sqrt(key_dim)) v``; the heads are then concatenated and
    projected to ``output_shape`` (default: the query's last axis).

    Args:
        num_heads: positive int, number of attention heads.
        key_dim: positive int, size of each head for query and key.
        value_dim: size of each head for value (default None: ``key_dim``).
        dropout: dropout rate on the attention probabilities (default 0.0).
        use_bias: biases in the four projections (default True).
        output_shape: int or tuple of ints, the output's trailing axes (default None: the
            query's last axis).
        attention_axes: None (default: attend over every axis between batch and features,
            flattened) or the sequence axis of a 3-D input (1 or -2). Other axes raise an error.
        kernel_initializer: default "glorot_uniform"; bias_initializer: default "zeros".
        kernel_regularizer / bias_regularizer / activity_regularizer: default None.

    Call: ``mha(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False)``; ``key`` defaults to ``value``; ``attention_mask``
    is bool (True = attend) of shape (batch, T, S) (or broadcastable to it).

    Shapes: query (batch, T, dim), value/key (batch, S, dim_v / dim_k) -> (batch, T, output_dim);
    with ``return_attention_scores`` also the probabilities (batch, num_heads, T, S).

    Example::

        mha = MultiHeadAttention(num_heads=4, key_dim=16)
        x = torch.randn(2, 10, 64)
        y = mha(x, x, use_causal_mask=True)  # (2, 10, 64)
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.num_heads = _check_positive_int("num_heads", num_heads)
        self.key_dim = _check_positive_int("key_dim", key_dim)
        self.value_dim = self.key_dim if value_dim is None else _check_positive_int("value_dim", value_dim)
        self.dropout = _check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self._output_shape = self._check_output_shape(output_shape)
        self.attention_axes = self._check_attention_axes(attention_axes)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    @staticmethod
    def _check_output_shape(output_shape):
        if output_shape is None:
            return None
        dims = (output_shape,) if isinstance(output_shape, numbers.Integral) else output_shape
        if (not isinstance(dims, (tuple, list)) or not dims
                or any(not isinstance(d, numbers.Integral) or isinstance(d, bool) or d <= 0 for d in dims)):
            raise KilnValueError("Received an invalid value for `output_shape`, expected a positive integer or "
                                 f"a tuple of positive integers. Received: output_shape={output_shape!r}")
        return tuple(int(d) for d in dims)

    @staticmethod
    def _check_attention_axes(attention_axes):
        if attention_axes is None:
            return None
        axes = (attention_axes,) if isinstance(attention_axes, numbers.Integral) else tuple(attention_axes)
        if axes not in ((1,), (-2,)):
            raise KilnValueError(
                "kiln's MultiHeadAttention supports only attention_axes=None (attend over every axis between "
                "the batch and the features) or the sequence axis of a 3-D input (1 or -2). Received: "
                f"attention_axes={attention_axes!r}. Reshape the inputs so the attended axes come first, "
                "or use attention_axes=None.")
        return axes

    # ------------------------------------------------------------------ weights
    def build(self, query_shape, value_shape=None, key_shape=None):
        """Create the weights; ``value_shape`` defaults to ``query_shape``, ``key_shape`` to ``value_shape``."""
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        for what, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3 or shape[-1] is None:
                raise ShapeError(f"Layer '{self.name}' (MultiHeadAttention) expects `{what}` of shape "
                                 f"(batch, ..., features) with at least 3 axes; received shape {tuple(shape)}.")
        out_shape = self._output_shape or (query_shape[-1],)
        n, k, v = self.num_heads, self.key_dim, self.value_dim
        # Registration order = Keras's get_weights() order: query, key, value, output.
        for proj, in_dim, head_dim in (("query", query_shape[-1], k), ("key", key_shape[-1], k),
                                       ("value", value_shape[-1], v)):
            self.add_weight(f"{proj}_kernel", (in_dim, n, head_dim), self.kernel_initializer, self.kernel_regularizer)
            if self.use_bias:
                self.add_weight(f"{proj}_bias", (n, head_dim), self.bias_initializer, self.bias_regularizer)
        self.add_weight("output_kernel", (n, v, *out_shape), self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("output_bias", out_shape, self.bias_initializer, self.bias_regularizer)
        self.built = True

    def forward(self, query, value, key=None, **kwargs):
        # The base class builds from the first input only; the projections need all three.
        if not self.built:
            shape = lambda t: (None,) + tuple(t.shape[1:])  # noqa: E731
            self.build(shape(query), shape(value), None if key is None else shape(key))
            self.built = True
            self._build_input_shape = shape(query)
            example = _first_tensor(query)
            if example is not None:
                self.to(example.device)
        return super().forward(query, value, key, **kwargs)

    # ------------------------------------------------------------------ calling
    supports_masking = True  # the output's mask is the query's

    def call(self, query, value, key=None, attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False, query_mask=None, value_mask=None, key_mask=None):
        """``query_mask`` (B, T) / ``value_mask`` and ``key_mask`` (B, S), True for real steps, are
        combined with ``attention_mask`` as Keras does: query t attends to key s only when both
        are real. Functional and Sequential models pass them from Embedding(mask_zero=True)."""
        if query_mask is not None or value_mask is not None or key_mask is not None:
            attention_mask = self._padding_mask(query, value, key, query_mask, value_mask, key_mask, attention_mask)
        key = value if key is None else key
        training = self.training if training is None else bool(training)
        if query.dim() < 3 or value.dim() < 3 or key.dim() < 3:
            raise ShapeError(f"Layer '{self.name}' (MultiHeadAttention) expects query, value and key of shape "
                             f"(batch, ..., features); received {tuple(query.shape)}, {tuple(value.shape)}, "
                             f"{tuple(key.shape)}.")
        if self.attention_axes is not None and query.dim() != 3:
            raise ShapeError(f"Layer '{self.name}' (MultiHeadAttention): attention_axes={self.attention_axes} "
                             f"needs 3-D inputs; received query of shape {tuple(query.shape)}.")
        if key.shape[:-1] != value.shape[:-1]:
            raise ShapeError(f"Layer '{self.name}' (MultiHeadAttention): key and value must have the same "
                             f"shape up to the last axis; received {tuple(key.shape)} and {tuple(value.shape)}.")
        for what, tensor in (("query", query), ("key", key), ("value", value)):
            expected = getattr(self, f"{what}_kernel").shape[0]
            if tensor.shape[-1] != expected:
                raise ShapeError(f"Layer '{self.name}' (MultiHeadAttention) was built for `{what}` with "
                                 f"{expected} features; received shape {tuple(tensor.shape)}.")

        batch, q_axes, v_axes = query.shape[0], tuple(query.shape[1:-1]), tuple(value.shape[1:-1])
        q_len, v_len = math.prod(q_axes), math.prod(v_axes)
        # Every axis between batch and features is one long sequence (Keras's attention_axes=None).
        q = self._project(query.reshape(batch, q_len, -1), "query")  # (B, N, T, key_dim)
        k = self._project(key.reshape(batch, v_len, -1), "key")  # (B, N, S, key_dim)
        v = self._project(value.reshape(batch, v_len, -1), "value")  # (B, N, S, value_dim)

        mask = self._combined_mask(attention_mask, use_causal_mask, batch, q_len, v_len, query.device)
        scale = 1.0 / math.sqrt(self.key_dim)
        dropout_p = self.dropout if training else 0.0
        scores = None
        if return_attention_scores:
            logits = (q * scale) @ k.transpose(-1, -2)  # (B, N, T, S)
            if mask is not None:
                logits = logits + (~mask).to(logits.dtype) * _large_negative(logits.dtype)  # Keras adds, not replaces
            scores = torch.softmax(logits, dim=-1)
            attended = F.dropout(scores, dropout_p, training=dropout_p > 0) @ v  # (B, N, T, value_dim)
        else:
            is_causal = bool(use_causal_mask) and attention_mask is None
            additive = None
            if mask is not None and not is_causal:
                additive = (~mask).to(q.dtype) * _large_negative(q.dtype)  # (B|1, 1, T, S)
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, dropout_p=dropout_p,
                                                      is_causal=is_causal, scale=scale)

        out_shape = tuple(self.output_kernel.shape[2:])
        merged = attended.transpose(1, 2).reshape(batch, q_len, self.num_heads * self.value_dim)
        kernel = self.output_kernel.reshape(self.num_heads * self.value_dim, -1)  # (N*value_dim, prod(out))
        bias = self.output_bias.reshape(-1) if self.use_bias else None
        output = F.linear(merged, kernel.t(), bias).reshape(batch, *q_axes, *out_shape)
        if return_attention_scores:
            return output, scores.reshape(batch, self.num_heads, *q_axes, *v_axes)
        return output

    def _padding_mask(self, query, value, key, query_mask, value_mask, key_mask, attention_mask):
        """Keras's ``_compute_attention_mask``: (B, T, 1) & (B, 1, S) [& key] [& attention_mask]."""
        from kiln.layers.masking import check_mask
        auto = None
        if query_mask is not None:
            auto = check_mask(self, query_mask, query, "query_mask")[:, :, None]  # (B, T, 1)
        for what, m, like in (("value_mask", value_mask, value), ("key_mask", key_mask, key)):
            if m is not None:
                m = check_mask(self, m, like if like is not None else value, what)[:, None, :]  # (B, 1, S)
                auto = m if auto is None else auto & m
        if attention_mask is None:
            return auto
        return torch.as_tensor(attention_mask, device=query.device).bool() & auto

    def _project(self, x, proj):
        """(B, L, dim) @ kernel (dim, N, H) + bias (N, H) -> (B, N, L, H)."""
        kernel = getattr(self, f"{proj}_kernel")
        dim, n, h = kernel.shape
        bias = getattr(self, f"{proj}_bias").reshape(-1) if self.use_bias else None
        y = F.linear(x, kernel.reshape(dim, n * h).t(), bias)  # (B, L, N*H)
        return y.view(x.shape[0], x.shape[1], n, h).transpose(1, 2)

    def _combined_mask(self, attention_mask, use_causal_mask, batch, q_len, v_len, device):
        """Keras mask (True = attend) and causal mask -> bool (B|1, 1, T, S), or None."""
        mask = None
        if attention_mask is not None:
            mask = torch.as_tensor(attention_mask, device=device).bool()
            if mask.dim() > 3:  # (B, *q_axes, *v_axes) of a higher-rank input
                mask = mask.reshape(mask.shape[0], q_len, v_len)
            try:
                mask = torch.broadcast_to(mask, (batch, q_len, v_len)).unsqueeze(1)  # (B, 1, T, S)
            except RuntimeError as err:
                raise ShapeError(f"Layer '{self.name}' (MultiHeadAttention) expects `attention_mask` of shape "
                                 f"(batch, T, S)=({batch}, {q_len}, {v_len}) or broadcastable to it; received "
                                 f"shape {tuple(mask.shape)}.") from err
        if use_causal_mask:
            causal = _causal_mask(q_len, v_len, device)  # (T, S)
            mask = causal if mask is None else mask & causal
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            value_dim=self.value_dim,
            dropout=self.dropout,
            use_bias=self.use_bias,
            output_shape=list(self._output_shape) if self._output_shape else None,
            attention_axes=list(self.attention_axes) if self.attention_axes else None,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
        )
        return config

    def extra_repr(self):
        return f"name={self.name!r}, num_heads={self.num_heads}, key_dim={self.key_dim}, value_dim={self.value_dim}"


class Attention(Layer):
    """Dot-product attention (Luong style): ``softmax(query @ key^T) @ value``.

    Args:
        use_scale: learn a scalar ``scale`` multiplying the scores (default False).
        score_mode: "dot" (default) or "concat": ``sum(tanh(query + key))`` scores, times a
            learned scalar, as Keras.
        dropout: dropout rate on the attention probabilities (default 0.0).

    Call: ``layer([query, value], mask=None, return_attention_scores=False, training=None,
    use_causal_mask=False)``, or ``[query, value, key]`` (key defaults to value);
    ``mask=[query_mask, value_mask]``, bool (batch, Tq) / (batch, Tv), True = keep.

    Shapes: query (batch, Tq, dim), value/key (batch, Tv, dim) -> (batch, Tq, dim); with
    ``return_attention_scores`` also the probabilities (batch, Tq, Tv).

    Example::

        q, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
        Attention()([q, v]).shape  # (2, 5, 8)
    """

    _SCORE_MODES = ("dot", "concat")

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in self._SCORE_MODES:
            raise KilnValueError(f"Received an invalid value for `score_mode`, expected one of {self._SCORE_MODES}. "
                                 f"Received: score_mode={score_mode!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = _check_rate("dropout", dropout)

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight("concat_score_weight", (), "ones")
        else:
            self.concat_score_weight = None
        self.built = True

    def call(self, inputs, mask=None, return_attention_scores=False, training=None, use_causal_mask=False):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise KilnTypeError("Attention expects `inputs` to be a list [query, value] or [query, value, key]. "
                                f"Received: {type(inputs).__name__} of length {len(inputs) if isinstance(inputs, (list, tuple)) else '-'}")
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) == 3 else value
        training = self.training if training is None else bool(training)
        q_mask, v_mask = (None, None) if mask is None else (mask[0], mask[1])

        if self.score_mode == "dot":
            scores = query @ key.transpose(-1, -2)  # (B, Tq, Tv)
            if self.scale is not None:
                scores = scores * self.scale
        else:
            summed = query.unsqueeze(-2) + key.unsqueeze(-3)  # (B, Tq, Tv, dim)
            if self.scale is not None:
                summed = summed * self.scale
            scores = self.concat_score_weight * torch.tanh(summed).sum(-1)

        keep = None
        if v_mask is not None:
            keep = torch.as_tensor(v_mask, device=scores.device).bool().unsqueeze(-2)  # (B, 1, Tv)
        if use_causal_mask:
            causal = _causal_mask(scores.shape[-2], scores.shape[-1], scores.device)
            keep = causal if keep is None else keep & causal
        if keep is not None:
            scores = scores + (~keep).to(scores.dtype) * _large_negative(scores.dtype)
        weights = torch.softmax(scores, dim=-1)
        dropout_p = self.dropout if training else 0.0
        result = F.dropout(weights, dropout_p, training=dropout_p > 0) @ value  # (B, Tq, dim)
        if q_mask is not None:
            result = result * torch.as_tensor(q_mask, device=result.device).unsqueeze(-1).to(result.dtype)
        return (result, weights) if return_attention_scores else result

    def get_config(self):
        config = super().get_config()
        config.update(use_scale=self.use_scale, score_mode=self.score_mode, dropout=self.dropout)
        return config
