"""Which layers DP-SGD cannot train, and (on request) their replacement.

Why BatchNorm is refused: it mixes the samples of a batch (each output depends on every
sample's statistics), so a sample's gradient is no longer its own and clipping it bounds
nothing. Opacus's ``ModuleValidator`` knows torch's layers; kiln's ``BatchNormalization`` is a
kiln layer Opacus has never heard of, so it is checked here by type.

``fix_layers=True`` replaces, in place, torch's ``BatchNorm*`` by ``GroupNorm`` (Opacus's own
fix: ``min(32, C)`` groups) and kiln's ``BatchNormalization`` by ``LayerNormalization`` on the
same axis (per-sample, channels-last friendly). Other problems Opacus reports are refused
with its message.
"""

from __future__ import annotations

import torch
from torch import nn

from kiln.errors import KilnValueError

__all__ = ["check_layers"]

_FIX = ("Replace them with GroupNorm or LayerNormalization (per-sample normalizations), or set "
        "`privacy.fix_layers: true` (Python: DP(..., fix_layers=True)) to have kiln replace them.")


def check_layers(module: nn.Module, fix_layers: bool) -> list[str]:
    """Refuse (or, with ``fix_layers``, replace) layers DP cannot train.

    Returns the names of the replaced layers (empty when nothing changed).

    Raises:
        KilnValueError: naming each offending layer and the fix.
    """
    batch_norms = [(name, m) for name, m in module.named_modules() if _is_batch_norm(m)]
    if batch_norms and not fix_layers:
        listed = ", ".join(f"'{name}' ({type(m).__name__})" for name, m in batch_norms)
        raise KilnValueError(f"Differentially private training cannot use batch normalization: layer(s) {listed} "
                             f"mix the samples of a batch, so per-sample gradients do not exist. {_FIX}")
    replaced = []
    for name, old in batch_norms:
        _replace(module, name, old, _replacement(old))
        replaced.append(name)
    from opacus.validators import ModuleValidator
    from opacus.utils.module_utils import trainable_modules
    errors = []
    for name, m in trainable_modules(module):  # Opacus's own check, but naming each layer
        validator = ModuleValidator.VALIDATORS.get(type(m))
        errors += [f"layer '{name}' ({type(m).__name__}): {e}" for e in (validator(m) if validator else [])]
    if errors:
        raise KilnValueError("Opacus cannot make this model private: " + "; ".join(errors) +
                             " Replace those layers (opacus.validators.ModuleValidator.fix shows the replacements).")
    return replaced


def _is_batch_norm(m: nn.Module) -> bool:
    from kiln.layers.normalization import BatchNormalization
    return isinstance(m, (BatchNormalization, nn.modules.batchnorm._BatchNorm))


def _replacement(old: nn.Module) -> nn.Module:
    from kiln.layers.normalization import BatchNormalization, LayerNormalization
    if isinstance(old, BatchNormalization):
        # Built lazily on the next forward; the trainer rebuilds its optimizer afterwards.
        return LayerNormalization(axis=old.axis, epsilon=old.epsilon, name=old.name)
    channels = old.num_features
    new = nn.GroupNorm(min(32, channels), channels, affine=old.affine)
    return new.to(next((p.device for p in old.parameters()), torch.device("cpu")))


def _replace(root: nn.Module, name: str, old: nn.Module, new: nn.Module) -> None:
    """Swap ``old`` for ``new`` under its parent, and in any kiln functional graph that calls it."""
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)
    for m in root.modules():
        for node in getattr(m, "_nodes", ()):
            if getattr(node, "layer", None) is old:
                node.layer = new
