"""Pruning: zero the smallest weights (unstructured) or remove whole units/channels (structured).

Unstructured pruning keeps the architecture and sets a fraction of the weights to exactly
zero — global magnitude by default (one threshold over every prunable kernel, so layers
with many small weights lose more). With ``epochs`` and training data, sparsity follows
Zhu & Gupta's polynomial schedule ``s_e = amount * (1 - (1 - e / epochs) ** 3)``, one
fine-tuning epoch per step, the mask re-applied after every optimizer step so pruned
weights stay zero.

Structured pruning removes the Dense units and Conv filters with the smallest L2 norm from
every hidden prunable layer and slices the layers that consume them (through activations,
pooling, dropout, batch norm and Flatten), so the model is physically smaller. A layer
whose output feeds anything it cannot slice (a merge, a model output, LayerNormalization)
is left whole, and the result says why.

Works on kiln ``Sequential`` and functional models and on plain ``nn.Sequential``. The
input model is never changed: a copy is pruned and returned.

Example::

    result = kiln.compress.prune(model, 0.5, structured=True)
    result.model.count_params(), result.kept   # {"dense": [0, 3, 4, ...], ...}
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["PruneResult", "prune", "sparsity", "prunable_layers"]


@dataclass
class PruneResult:
    """What ``prune`` did: the pruned copy and, per layer, what it kept or why it skipped it."""

    model: Any
    sparsity: dict = field(default_factory=dict)  # layer name -> fraction of its kernel that is zero
    kept: dict = field(default_factory=dict)  # structured: layer name -> kept unit/filter indices
    skipped: dict = field(default_factory=dict)  # layer name -> why it was not pruned


# ---------------------------------------------------------------------- which layers
def _kiln_types():
    from kiln.layers.conv import Conv1D, Conv2D, Conv3D
    from kiln.layers.dense import Dense
    return Dense, (Conv1D, Conv2D, Conv3D)


def _is_dense(layer) -> bool:
    dense, _ = _kiln_types()
    return isinstance(layer, (dense, nn.Linear))


def _is_conv(layer) -> bool:
    _, convs = _kiln_types()
    return isinstance(layer, (*convs, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and getattr(layer, "groups", 1) == 1


def _weight_name(layer) -> str:
    return "kernel" if hasattr(layer, "kernel") else "weight"


def _named_layers(model) -> list[tuple[str, nn.Module]]:
    if hasattr(model, "named_layers"):
        return list(model.named_layers())
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    return [(name, m) for name, m in model.named_modules() if name]


def prunable_layers(model) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every Dense/Linear and (ungrouped) Conv layer, in model order."""
    return [(n, l) for n, l in _named_layers(model) if _is_dense(l) or _is_conv(l)]


def sparsity(model) -> dict:
    """Fraction of exactly-zero entries in each prunable layer's kernel."""
    out = {}
    for name, layer in prunable_layers(model):
        w = getattr(layer, _weight_name(layer))
        out[name] = float((w == 0).sum()) / w.numel()
    return out


def _check_amount(amount) -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount < 1.0:
        raise KilnValueError(f"Received an invalid value for `amount` (the fraction of weights to prune), expected a "
                             f"number in [0, 1). Received: amount={amount!r}. Use e.g. 0.5 to prune half.")
    return float(amount)


# ---------------------------------------------------------------------- unstructured
def _masks(layers, amount: float, scope: str) -> dict[str, torch.Tensor]:
    """Boolean keep-masks that zero exactly ``round(amount * n)`` weights (globally or per layer)."""
    weights = {name: getattr(l, _weight_name(l)).detach() for name, l in layers}
    if scope == "layer":
        groups = [[name] for name in weights]
    else:
        groups = [list(weights)]
    masks = {}
    for names in groups:
        flat = torch.cat([weights[n].abs().reshape(-1) for n in names])
        k = round(amount * flat.numel())
        keep = torch.ones_like(flat, dtype=torch.bool)
        if k:
            keep[torch.argsort(flat, stable=True)[:k]] = False  # exactly k, ties broken by position
        start = 0
        for n in names:
            size = weights[n].numel()
            masks[n] = keep[start:start + size].reshape(weights[n].shape)
            start += size
    return masks


def _apply_masks(layers, masks) -> None:
    with torch.no_grad():
        for name, layer in layers:
            getattr(layer, _weight_name(layer)).mul_(masks[name].to(getattr(layer, _weight_name(layer)).dtype))


def _mask_callback(layers, masks):
    from kiln.callbacks.callback import Callback

    class _KeepPruned(Callback):
        """Re-zero pruned weights after each step: optimizer moments would otherwise revive them."""

        def on_train_batch_end(self, batch, logs=None):
            _apply_masks(layers, masks)
    return _KeepPruned()


def _prune_unstructured(model, amount, scope, x, y, epochs, batch_size, fit_kwargs) -> PruneResult:
    layers = prunable_layers(model)
    if not layers:
        raise KilnValueError(f"{type(model).__name__} has no Dense/Linear or Conv layer to prune.")
    if epochs and (x is None or not hasattr(model, "fit")):
        raise KilnValueError("prune(..., epochs=N) fine-tunes between pruning steps: pass training data x=, y= and a "
                             "compiled kiln model (or epochs=0 for one-shot pruning).")
    steps = max(int(epochs), 1)
    for step in range(1, steps + 1):
        target = amount * (1.0 - (1.0 - step / steps) ** 3) if epochs else amount
        masks = _masks(layers, target, scope)
        _apply_masks(layers, masks)
        if epochs:
            model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0,
                      callbacks=[_mask_callback(layers, masks)], **fit_kwargs)
            _apply_masks(layers, masks)
    return PruneResult(model, sparsity=sparsity(model))


# ---------------------------------------------------------------------- structured
def _passthrough(layer) -> str | None:
    """How a layer between a pruned producer and its consumer treats channels:
    "same" (per-channel or elementwise), "batchnorm" (per-channel weights to slice),
    "flatten_last"/"flatten_first" (channel order after flattening), or None (cannot follow)."""
    from kiln import layers as kl
    same = (kl.Activation, kl.ReLU, kl.LeakyReLU, kl.ELU, kl.Identity, kl.Dropout, kl.GaussianNoise,
            kl.GaussianDropout, kl.MaxPooling1D, kl.MaxPooling2D, kl.MaxPooling3D, kl.AveragePooling1D,
            kl.AveragePooling2D, kl.AveragePooling3D, kl.GlobalAveragePooling1D, kl.GlobalAveragePooling2D,
            kl.GlobalAveragePooling3D, kl.GlobalMaxPooling1D, kl.GlobalMaxPooling2D, kl.GlobalMaxPooling3D,
            kl.ZeroPadding1D, kl.ZeroPadding2D, kl.Cropping1D, kl.Cropping2D, kl.UpSampling1D, kl.UpSampling2D,
            nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.LeakyReLU, nn.Identity, nn.Dropout, nn.Dropout2d,
            nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
            nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    if isinstance(layer, kl.SpatialDropout1D) or isinstance(layer, same):
        return "same"
    if isinstance(layer, (kl.BatchNormalization, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return "batchnorm"
    if isinstance(layer, kl.Flatten):
        return "flatten_last"  # kiln's Flatten always orders features channels-last
    if isinstance(layer, nn.Flatten):
        return "flatten_first"  # torch flattens (C, H, W): each channel is a block of H*W
    return None


def _chains(model) -> list[tuple[str, nn.Module, list | None, str]]:
    """For each prunable layer: ``(name, layer, path, reason)`` where ``path`` is the layers
    from it to the next prunable layer (passthroughs, then the consumer), or None and why not."""
    named = _named_layers(model)
    name_of = {id(l): n for n, l in named}
    if hasattr(model, "_nodes"):  # functional: follow each layer's output through the graph
        return _functional_chains(model, name_of)
    result = []
    for i, (name, layer) in enumerate(named):
        if not (_is_dense(layer) or _is_conv(layer)):
            continue
        path, reason = [], "it is the model's output layer"
        for _, nxt in named[i + 1:]:
            path.append(nxt)
            if _is_dense(nxt) or _is_conv(nxt):
                reason = ""
                break
            if _passthrough(nxt) is None:
                reason = f"its output feeds {type(nxt).__name__} '{name_of[id(nxt)]}', which pruning cannot slice"
                break
        result.append((name, layer, None if reason else path, reason))
    return result


def _functional_chains(model, name_of) -> list:
    from kiln.layers.symbolic import flatten
    calls: dict[int, list] = {}
    for node in model._nodes:
        calls.setdefault(id(node.layer), []).append(node)
    model_outputs = {id(t) for t in flatten(model.outputs)}
    result = []
    for node in model._nodes:
        layer = node.layer
        if not (_is_dense(layer) or _is_conv(layer)):
            continue
        name = name_of[id(layer)]
        if len(calls[id(layer)]) > 1:
            result.append((name, layer, None, "it is shared (called more than once)"))
            continue
        path, reason, current = [], "", node
        while True:
            out = flatten(current.outputs)
            users = [n for n in model._nodes if any(id(a) == id(out[0]) for a in flatten(n.args) + flatten(n.kwargs))]
            if id(out[0]) in model_outputs or len(out) != 1:
                reason = "it is (or feeds) a model output"
                break
            if len(users) != 1 or len(calls[id(users[0].layer)]) > 1:
                reason = "its output feeds more than one layer"
                break
            nxt = users[0].layer
            path.append(nxt)
            if _is_dense(nxt) or _is_conv(nxt):
                break
            if _passthrough(nxt) is None or len(flatten(users[0].args)) != 1:
                reason = f"its output feeds {type(nxt).__name__} '{name_of[id(nxt)]}', which pruning cannot slice"
                break
            current = users[0]
        result.append((name, layer, None if reason else path, reason))
    return result


def _set(module, attr: str, value: torch.Tensor) -> None:
    """Replace a parameter or buffer with a smaller tensor (same requires_grad)."""
    old = getattr(module, attr)
    if isinstance(old, nn.Parameter):
        setattr(module, attr, nn.Parameter(value.contiguous().clone(), requires_grad=old.requires_grad))
    else:
        setattr(module, attr, value.contiguous().clone())


def _unit_norms(layer) -> torch.Tensor:
    w = getattr(layer, _weight_name(layer)).detach()
    if _is_dense(layer) and hasattr(layer, "kernel"):  # kiln Dense: (in, units)
        return w.pow(2).sum(dim=0).sqrt()
    return w.reshape(w.shape[0], -1).pow(2).sum(dim=1).sqrt()  # (out, ...)


def _shrink_producer(layer, keep: torch.Tensor) -> None:
    if hasattr(layer, "kernel"):
        if _is_dense(layer):
            _set(layer, "kernel", layer.kernel.detach()[:, keep])
            layer.units = len(keep)
        else:
            _set(layer, "kernel", layer.kernel.detach()[keep])
            layer.filters = len(keep)
    else:
        _set(layer, "weight", layer.weight.detach()[keep])
        if isinstance(layer, nn.Linear):
            layer.out_features = len(keep)
        else:
            layer.out_channels = len(keep)
    if getattr(layer, "bias", None) is not None:
        _set(layer, "bias", layer.bias.detach()[keep])


def _shrink_batchnorm(layer, keep: torch.Tensor) -> None:
    for attr, value in list(layer.named_parameters(recurse=False)) + list(layer.named_buffers(recurse=False)):
        if value is not None and value.dim() == 1:
            _set(layer, attr, value.detach()[keep])
    if hasattr(layer, "num_features"):
        layer.num_features = len(keep)


def _shrink_consumer(layer, keep: torch.Tensor, flatten: str | None, channels: int) -> None:
    """Drop the consumer's inputs that read removed channels (mapping them through Flatten)."""
    w = getattr(layer, _weight_name(layer)).detach()
    kiln_dense = hasattr(layer, "kernel") and _is_dense(layer)
    fan_in = w.shape[0] if kiln_dense else w.shape[1]
    index = torch.arange(fan_in)
    if flatten == "flatten_last":  # features (..., C): feature r reads channel r % C
        rows = index[torch.isin(index % channels, keep)]
    elif flatten == "flatten_first":  # features (C, ...): feature r reads channel r // (fan_in / C)
        rows = index[torch.isin(index // (fan_in // channels), keep)]
    else:
        rows = keep
    if kiln_dense:
        _set(layer, "kernel", w[rows])
    else:
        _set(layer, _weight_name(layer), w[:, rows])
        if isinstance(layer, nn.Linear):
            layer.in_features = len(rows)
        elif isinstance(layer, nn.Module) and hasattr(layer, "in_channels"):
            layer.in_channels = len(rows)


def _prune_structured(model, amount) -> PruneResult:
    result = PruneResult(model)
    for name, layer, path, reason in _chains(model):
        if path is None:
            result.skipped[name] = reason
            continue
        norms = _unit_norms(layer)
        channels = norms.numel()
        n_keep = max(1, channels - round(amount * channels))
        keep = torch.sort(torch.argsort(norms, descending=True, stable=True)[:n_keep]).values
        flatten = None
        for between in path[:-1]:
            kind = _passthrough(between)
            if kind == "batchnorm":
                _shrink_batchnorm(between, keep)
            elif kind and kind.startswith("flatten"):
                flatten = kind
        _shrink_consumer(path[-1], keep, flatten, channels)
        _shrink_producer(layer, keep)
        result.kept[name] = keep.tolist()
    result.sparsity = sparsity(model)
    return result


# ---------------------------------------------------------------------- the entry point
def prune(model, amount: float, *, structured: bool = False, scope: str = "global", x=None, y=None,
          epochs: int = 0, batch_size: int = 32, copy_model: bool = True, **fit_kwargs) -> PruneResult:
    """Prune a copy of ``model``.

    Args:
        model: a kiln Sequential/functional model or a plain ``nn.Sequential``.
        amount: fraction in [0, 1): of all prunable weights (unstructured) or of each hidden
            layer's units/filters (structured).
        structured: remove whole units/filters and rebuild smaller layers (default False:
            zero individual weights).
        scope: unstructured only — "global" (one threshold for every layer, default) or
            "layer" (each layer loses exactly ``amount``).
        x, y, epochs, batch_size: unstructured fine-tuning with the polynomial schedule
            (needs a compiled kiln model); epochs=0 (default) prunes in one shot.
        copy_model: prune a deep copy (default True) so ``model`` is left untouched.

    Returns a ``PruneResult``; its ``model`` predicts like ``model`` with those weights
    (structured: those units) removed.
    """
    amount = _check_amount(amount)
    if not isinstance(model, nn.Module):
        raise KilnTypeError(f"prune expects a torch nn.Module (a kiln model or nn.Sequential); received "
                            f"{type(model).__name__}.")
    if scope not in ("global", "layer"):
        raise KilnValueError(f"Received an invalid value for `scope`, expected 'global' or 'layer'. Received: "
                             f"scope={scope!r}")
    if structured and epochs:
        raise KilnValueError("prune(structured=True) removes units in one shot; fine-tune the smaller model with "
                             "its own fit() afterwards (epochs is for unstructured pruning).")
    model = copy.deepcopy(model) if copy_model else model
    if structured:
        return _prune_structured(model, amount)
    return _prune_unstructured(model, amount, scope, x, y, epochs, batch_size, fit_kwargs)
