"""Embedding: look up a learned vector for each integer id (token, category, ...).

The table is stored in Keras's layout, ``(input_dim, output_dim)`` — also torch's
``nn.Embedding`` layout — so ``get_weights()`` matches Keras.

Ids are checked before the lookup: an id outside ``[0, input_dim)`` raises a ShapeError that
names it, instead of torch's bare IndexError (or, on a GPU, a device-side assert that leaves the
CUDA context unusable). The check costs one small reduction and one device sync per call.
"""

from __future__ import annotations

import numbers
import warnings

import torch
import torch.nn.functional as F

from kiln import constraints, initializers, regularizers
from kiln.errors import ShapeError
from kiln.layers.conv import normalize_positive_int
from kiln.layers.layer import Layer

__all__ = ["Embedding"]


class Embedding(Layer):
    """Turn integer ids into dense vectors of size ``output_dim``.

    Args:
        input_dim: positive int, the vocabulary size (largest id + 1).
        output_dim: positive int, the size of each vector.
        embeddings_initializer: default "uniform" (Keras's RandomUniform(-0.05, 0.05)).
        embeddings_regularizer: penalty on the table, added to the loss.
        embeddings_constraint: projection applied after each optimizer step (kiln.constraints); the
            table is (input_dim, output_dim) as in Keras.
        mask_zero: id 0 is padding: ``compute_mask`` returns ``ids != 0`` (default False). Keep
            id 0 unused by real tokens, so ``input_dim`` = vocabulary size + 1.
        input_length: ignored (accepted for Keras 2 code).

    Shapes: ``(batch, ...)`` integer ids (float ids are cast) -> ``(batch, ..., output_dim)``.

    Example::

        Embedding(10_000, 64, mask_zero=True)  # (B, T) ids -> (B, T, 64)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = normalize_positive_int(input_dim, "input_dim")
        self.output_dim = normalize_positive_int(output_dim, "output_dim")
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self._zero_checked = False  # id-0-inside-a-row warning: checked on the first masked call
        # Ignored (Keras 2 compat); kept as an int or None so the config stays JSON-serialisable.
        self.input_length = int(input_length) if isinstance(input_length, numbers.Integral) else None

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer, self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)
        self.built = True

    def call(self, inputs):
        ids = inputs if inputs.dtype in (torch.int64, torch.int32) else inputs.long()
        if ids.device.type == "cpu":
            # On the CPU torch checks the range itself: no extra reduction on the hot path.
            try:
                return F.embedding(ids, self.embeddings)
            except IndexError:
                self._raise_out_of_range(ids)
        # On accelerators an out-of-range id is a device-side assert that poisons the process,
        # so check first (one reduction and one bool read back per call).
        if ids.numel() and bool(((ids < 0) | (ids >= self.input_dim)).any()):
            self._raise_out_of_range(ids)
        return F.embedding(ids, self.embeddings)

    def _raise_out_of_range(self, ids):
        bad = ids[(ids < 0) | (ids >= self.input_dim)]
        raise ShapeError(f"Layer '{self.name}' (Embedding) received id {int(bad[0])} (ids range from "
                         f"{int(ids.min())} to {int(ids.max())}), but input_dim={self.input_dim} allows "
                         f"ids 0..{self.input_dim - 1} only. Raise input_dim to the vocabulary size "
                         "(+1 if id 0 is padding) or fix the ids.")

    def compute_mask(self, inputs, mask=None):
        """``inputs != 0`` when ``mask_zero`` (shape of the ids), else None.

        On the first masked call, warns when id 0 sits between real tokens of a row (0 then
        used as a word, not as padding): those steps would be skipped silently."""
        if not self.mask_zero:
            return None
        keep = inputs != 0
        if not self._zero_checked:
            self._zero_checked = True
            self._warn_on_inner_zeros(keep)
        return keep

    def _warn_on_inner_zeros(self, keep) -> None:
        if keep.dim() < 2 or keep.shape[-1] < 3:
            return
        seen_real = keep.long().cummax(dim=-1).values.bool()  # a real token came at or before
        later_real = keep.flip(-1).long().cummax(dim=-1).values.flip(-1).bool()  # one comes at or after
        inner = ~keep & seen_real & later_real  # (B, T): a 0 with real tokens on both sides
        if bool(inner.any()):
            row = int(inner.reshape(-1, keep.shape[-1]).any(-1).nonzero()[0])
            warnings.warn(f"Layer '{self.name}' (Embedding, mask_zero=True) received id 0 between real tokens "
                          f"(row {row}): with mask_zero=True id 0 is padding and those steps are skipped. "
                          "Keep 0 for padding only (shift the ids by 1 and set input_dim = vocabulary size + 1), "
                          "or set mask_zero=False.", UserWarning, stacklevel=3)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
            embeddings_constraint=constraints.serialize(self.embeddings_constraint),
            mask_zero=self.mask_zero,
            input_length=self.input_length,
        )
        return config

    def extra_repr(self):
        return f"name={self.name!r}, input_dim={self.input_dim}, output_dim={self.output_dim}"
