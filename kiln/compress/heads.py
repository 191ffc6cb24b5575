"""Structured pruning of attention heads in kiln's ``MultiHeadAttention``: fewer heads, a smaller layer.

A head's contribution to the layer's output goes only through its slice of the output kernel
``(num_heads, value_dim, out)``, so a head can be removed exactly by slicing the head axis of
the query/key/value kernels ``(in, num_heads, head_dim)`` and biases ``(num_heads, head_dim)``
and of the output kernel, and lowering ``num_heads``; the output bias stays. The remaining
heads compute what they computed before (each head's softmax is its own), so the layer's
output changes only by the removed heads' terms — zero when the removed heads' output kernel
slices are zero, which ``tests/compress/test_heads.py`` uses as the exact reference.

Which heads go: the lowest importance ``||W_v[:, h]|| * ||W_o[h]||`` (the Frobenius norms of
the head's value projection and output slice), a data-free proxy of how much a head can add to
the output — the magnitude criterion structured pruning of units uses too. A saved model keeps
working: ``get_config`` records the new ``num_heads``, so ``kiln.load_model`` rebuilds the
smaller layer and loads the sliced weights.

Not covered: the zoo's BERT blocks (``kiln.zoo.bert``), whose ``SelfAttention`` derives the head
size from one ``BertConfig.heads`` shared by every block; pruning them needs per-block head
counts in that config.

Example::

    kept = kiln.compress.prune_heads(model, 0.5)   # {layer name: kept head indices}
"""

from __future__ import annotations

import torch
from torch import nn

from kiln.errors import KilnValueError

__all__ = ["head_importance", "prune_heads", "prune_layer_heads"]


def head_importance(layer) -> torch.Tensor:
    """``(num_heads,)``: ``||value_kernel[:, h]|| * ||output_kernel[h]||`` of a built MultiHeadAttention."""
    value = layer.value_kernel.detach()  # (in, N, value_dim)
    output = layer.output_kernel.detach()  # (N, value_dim, *out)
    n = layer.num_heads
    return value.transpose(0, 1).reshape(n, -1).norm(dim=1) * output.reshape(n, -1).norm(dim=1)


def prune_layer_heads(layer, keep) -> None:
    """Keep only the heads ``keep`` (indices, in order) of a built MultiHeadAttention, in place."""
    keep = sorted(int(h) for h in keep)
    if not keep or len(set(keep)) != len(keep) or keep[0] < 0 or keep[-1] >= layer.num_heads:
        raise KilnValueError(f"Received an invalid value for `keep` of layer {layer.name!r}, expected distinct head "
                             f"indices in [0, {layer.num_heads}), at least one. Received: keep={keep!r}")
    index = torch.tensor(keep)
    with torch.no_grad():
        for proj in ("query", "key", "value"):
            kernel = getattr(layer, f"{proj}_kernel")  # (in, N, head_dim)
            setattr(layer, f"{proj}_kernel", _sliced(kernel, 1, index))
            bias = getattr(layer, f"{proj}_bias", None)  # (N, head_dim)
            if bias is not None:
                setattr(layer, f"{proj}_bias", _sliced(bias, 0, index))
        layer.output_kernel = _sliced(layer.output_kernel, 0, index)  # (N', value_dim, *out)
    layer.num_heads = len(keep)


def _sliced(weight, dim: int, index) -> nn.Parameter:
    return nn.Parameter(weight.index_select(dim, index).clone(), requires_grad=weight.requires_grad)


def prune_heads(model, amount: float) -> dict:
    """Remove ``amount`` (a fraction in [0, 1)) of the heads of every built kiln MultiHeadAttention
    in ``model`` (in place), the least important first; each layer keeps at least one head.

    Returns ``{layer name: kept head indices}``.
    """
    from kiln.layers.attention import MultiHeadAttention
    if not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise KilnValueError(f"Received an invalid value for `amount`, expected a fraction in [0, 1) of each "
                             f"layer's heads to remove. Received: amount={amount!r}. Use e.g. 0.5")
    kept = {}
    for path, layer in model.named_modules():
        if isinstance(layer, MultiHeadAttention) and layer.built:
            count = max(layer.num_heads - round(amount * layer.num_heads), 1)
            order = torch.argsort(head_importance(layer), descending=True, stable=True)
            keep = sorted(order[:count].tolist())
            prune_layer_heads(layer, keep)
            kept[path] = keep
    if not kept:
        raise KilnValueError(f"{type(model).__name__} has no built kiln MultiHeadAttention layer whose heads could "
                             f"be pruned.")
    return kept
