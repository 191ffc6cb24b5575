"""DP: the settings of one differentially private fit, validated when they are made.

Why a dataclass of its own: the same settings come from Python
(``fit(..., privacy=DP(epsilon=3, delta=1e-5))``) and from YAML (``training.privacy:``), and
both must refuse impossible values with the same message before any training (or any run
folder) starts. Checks that need the data (``delta < 1/n``) happen in ``check_dataset_size``
when the fit knows ``n``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["DP"]


@dataclass(frozen=True)
class DP:
    """Train with DP-SGD so the whole run is (``epsilon``, ``delta``)-differentially private.

    Args:
        epsilon: the privacy budget to spend over the planned epochs (> 0; 1-10 is usual).
        delta: the probability the guarantee fails (default 1e-5; must be below 1/n for n
            training samples, else one sample could leak outright).
        max_grad_norm: each sample's gradient is clipped to this L2 norm (default 1.0).
        fix_layers: replace layers DP cannot train (BatchNorm) by ones it can (GroupNorm
            for torch's, LayerNormalization for kiln's) instead of refusing the model
            (default False: a silent architecture change would surprise).
        accountant: "prv" (default, as Opacus's PrivacyEngine: the tighter bound) or "rdp".

    Example::

        model.fit(x, y, epochs=3, batch_size=64, privacy=kiln.privacy.DP(epsilon=3, delta=1e-5))
    """

    epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    fix_layers: bool = False
    accountant: str = "prv"

    def __post_init__(self):
        problems = []
        for name in ("epsilon", "delta", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise KilnTypeError(f"Received an invalid value for privacy `{name}`, expected a number. "
                                    f"Received: {name}={value!r} ({type(value).__name__}).")
            if not math.isfinite(value):
                problems.append(f"`{name}` must be finite; received {name}={value!r}")
        if not isinstance(self.fix_layers, bool):
            raise KilnTypeError(f"Received an invalid value for privacy `fix_layers`, expected true or false. "
                                f"Received: fix_layers={self.fix_layers!r}.")
        if not problems:
            if self.epsilon <= 0:
                problems.append(f"`epsilon` must be > 0 (the privacy budget; 1-10 is usual); "
                                f"received epsilon={self.epsilon!r}")
            if not 0 < self.delta < 1:
                problems.append(f"`delta` must be in (0, 1) and below 1/n for n training samples (1e-5 is usual); "
                                f"received delta={self.delta!r}")
            if self.max_grad_norm <= 0:
                problems.append(f"`max_grad_norm` must be > 0 (the per-sample clipping norm, e.g. 1.0); "
                                f"received max_grad_norm={self.max_grad_norm!r}")
        if self.accountant not in ("rdp", "prv"):
            problems.append(f"`accountant` must be 'rdp' or 'prv'; received accountant={self.accountant!r}")
        if problems:
            raise KilnValueError("Invalid privacy settings: " + "; ".join(problems) + ".")

    @classmethod
    def from_config(cls, config) -> "DP":
        """A ``DP`` from a dict (YAML's ``training.privacy``) or a ``DP`` itself."""
        if isinstance(config, DP):
            return config
        if not isinstance(config, dict):
            raise KilnTypeError(f"`privacy` must be kiln.privacy.DP(...) or a dict like {{'epsilon': 3, "
                                f"'delta': 1e-5}}; received {type(config).__name__}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            raise KilnValueError(f"Unknown privacy key(s) {unknown}; expected some of {sorted(known)}.")
        if "epsilon" not in config:
            raise KilnValueError("privacy needs `epsilon` (the budget), e.g. {'epsilon': 3, 'delta': 1e-5}.")
        return cls(**config)

    def start_fit(self, trainer, data, **fit_settings):
        """Called by ``Trainer.fit``: check everything and calibrate the noise for this fit;
        returns the fit's ``kiln.privacy.engine.PrivateFit``."""
        from kiln.privacy.engine import PrivateFit
        return PrivateFit.start(trainer, self, data, **fit_settings)

    def to_dict(self) -> dict:
        return asdict(self)

    def check_dataset_size(self, n: int) -> None:
        """Refuse ``delta >= 1/n``: with that much slack a mechanism that publishes one whole
        training sample would still satisfy the guarantee."""
        if self.delta >= 1.0 / n:
            raise KilnValueError(f"privacy delta={self.delta!r} is not below 1/n = {1.0 / n:.3g} for the {n} "
                                 f"training samples; a meaningful guarantee needs delta << 1/n. Use e.g. "
                                 f"delta={_suggest_delta(n):g}.")


def _suggest_delta(n: int) -> float:
    return 10.0 ** math.floor(math.log10(1.0 / n) - 1)
