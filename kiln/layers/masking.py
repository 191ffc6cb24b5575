"""Masks: which timesteps of a padded batch count, carried from layer to layer as in Keras.

A mask is a boolean tensor shaped like a layer's input without its feature axis, e.g.
``(batch, timesteps)``; True marks real steps. ``Embedding(mask_zero=True)`` and ``Masking``
make one; Sequential and functional models pass it to the next layer's ``call(..., mask=)``
when that ``call`` takes ``mask`` (MultiHeadAttention: ``query_mask``/``value_mask``/
``key_mask``) and ask each layer's ``compute_mask`` for the mask of its output. Why explicit
propagation rather than Keras's ``_keras_mask`` tensor attribute: torch ops drop unknown
tensor attributes, so an attribute would vanish silently at the first torch function.

Example::

    model = Sequential([Masking(0.0, input_shape=(None, 3)), LSTM(8)])
    # a post-padded sequence gives the same output as the unpadded one
"""

from __future__ import annotations

import torch

from kiln.errors import KilnTypeError, ShapeError
from kiln.layers.layer import Layer

__all__ = ["Masking", "check_mask", "produces_masks", "mask_call_kwargs", "masked_sample_weight",
           "masked_metric_inputs"]


class Masking(Layer):
    """Mask the timesteps whose features all equal ``mask_value`` (and zero them).

    Args:
        mask_value: the padding value (default 0.0).

    Shapes: ``(batch, timesteps, features)`` -> the same; mask ``(batch, timesteps)``.

    Example::

        Masking(mask_value=0.0)  # steps that are all 0.0 are skipped by a following LSTM
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise KilnTypeError(f"Received an invalid value for `mask_value`, expected a number. "
                                f"Received: mask_value={mask_value!r}")
        self.mask_value = float(mask_value)

    def call(self, inputs):
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)  # (B, T, 1)
        return inputs * keep.to(inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return (inputs != self.mask_value).any(dim=-1)  # (B, T)

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config


def check_mask(layer, mask, inputs, what: str = "mask") -> torch.Tensor:
    """``mask`` as a bool tensor of shape ``inputs.shape[:2]``, or a ShapeError naming ``layer``."""
    mask = torch.as_tensor(mask, device=inputs.device)
    expected = tuple(inputs.shape[:2])
    if tuple(mask.shape) != expected:
        raise ShapeError(f"Layer '{layer.name}' ({type(layer).__name__}) received a `{what}` of shape "
                         f"{tuple(mask.shape)}, but its input has shape {tuple(inputs.shape)}: the mask must be "
                         f"(batch, timesteps)={expected}, True for real steps. Build it from the ids "
                         f"(ids != 0) or let Embedding(mask_zero=True) / Masking() make it.")
    return mask if mask.dtype == torch.bool else mask.bool()


def masked_sample_weight(mask, sample_weight):
    """Keras's loss weighting for an output mask: masked steps weigh 0 and real ones
    ``steps / real steps``, so a "sum_over_batch_size" loss is the mean over the real steps
    (metrics, normalised by their weights, are the same). ``mask``: the output's (batch, T)
    mask or None (then ``sample_weight`` is returned unchanged)."""
    if not torch.is_tensor(mask):
        return sample_weight
    weights = mask.to(torch.float32)
    weights = weights * (weights.numel() / weights.sum().clamp_min(1.0))
    if sample_weight is not None:
        sample_weight = torch.as_tensor(sample_weight, device=weights.device, dtype=weights.dtype)
        while sample_weight.dim() < weights.dim():
            sample_weight = sample_weight.unsqueeze(-1)
        weights = weights * sample_weight
    return weights


def masked_metric_inputs(mask, y_true, y_pred, sample_weight):
    """``(y_true, y_pred, sample_weight)`` restricted to the real steps of a (batch, T) output
    mask: each real step becomes one sample, so every metric (weighted or not) averages over
    the real steps only, as Keras's masked metrics do. Unchanged when there is no such mask."""
    if not (torch.is_tensor(mask) and torch.is_tensor(y_pred) and torch.is_tensor(y_true)
            and mask.dim() >= 2 and tuple(y_pred.shape[:mask.dim()]) == tuple(mask.shape)
            and tuple(y_true.shape[:mask.dim()]) == tuple(mask.shape)):
        return y_true, y_pred, sample_weight
    keep = mask.bool()
    if sample_weight is not None:
        sample_weight = torch.as_tensor(sample_weight, device=y_pred.device)
        while sample_weight.dim() < keep.dim():
            sample_weight = sample_weight.unsqueeze(-1)
        sample_weight = torch.broadcast_to(sample_weight, keep.shape)[keep]
    return y_true[keep], y_pred[keep], sample_weight


def produces_masks(layer) -> bool:
    """Whether ``layer`` may make or change a mask (it defines or inherits its own
    ``compute_mask``). Models without such layers skip mask bookkeeping: a layer that only
    passes masks on (``supports_masking``) has none to pass."""
    return isinstance(layer, Layer) and type(layer).compute_mask is not Layer.compute_mask


def mask_call_kwargs(layer, masks: list, kwargs: dict) -> dict:
    """The mask keywords for calling ``layer``: ``masks`` holds the mask of each positional
    input (or None). MultiHeadAttention-style layers get ``query_mask``/``value_mask``
    (and ``key_mask`` for a key given as a keyword); others ``mask`` (one, or a list)."""
    extra = {}
    if getattr(layer, "_accepts_query_mask", False):
        for name, m in zip(("query_mask", "value_mask", "key_mask"), masks):
            if m is not None and kwargs.get(name) is None:
                extra[name] = m
        return extra
    if getattr(layer, "_accepts_mask", False) and "mask" not in kwargs:
        first = masks[0] if masks else None
        if first is not None and not (isinstance(first, list) and all(m is None for m in first)):
            extra["mask"] = first
    return extra
