"""MLP: a stack of Dense -> activation -> dropout blocks, then a linear head.

The plain baseline for tabular data and flattened images.

    model = kiln.zoo.mlp(input_dim=20, num_classes=3)           # (B, 20) -> (B, 3) logits
    model = kiln.zoo.mlp(input_dim=8, units=1, hidden=(32,))     # a regressor: (B, 8) -> (B, 1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

import kiln
from kiln.errors import KilnValueError
from kiln.zoo.common import single_input

__all__ = ["MLPConfig", "MLP", "mlp"]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}


@dataclass
class MLPConfig:
    input_dim: int
    num_classes: int = 10      # width of the output: classes (logits) or regression targets
    hidden: tuple = (64, 64)   # two hidden layers of 64: enough for most tabular baselines
    dropout: float = 0.0       # off by default: small models on small data rarely need it
    activation: str = "relu"

    def __post_init__(self):
        problems = []
        if not isinstance(self.input_dim, int) or self.input_dim <= 0:
            problems.append(f"`input_dim` must be a positive integer. Received: input_dim={self.input_dim!r}")
        if not isinstance(self.num_classes, int) or self.num_classes <= 0:
            problems.append(f"`num_classes` must be a positive integer. Received: num_classes={self.num_classes!r}")
        self.hidden = tuple(self.hidden)
        if any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            problems.append(f"`hidden` must hold positive integers, e.g. (64, 64). Received: hidden={self.hidden!r}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.activation not in _ACTIVATIONS:
            problems.append(f"`activation` must be one of {sorted(_ACTIVATIONS)}. Received: activation={self.activation!r}")
        if problems:
            raise KilnValueError("Invalid MLP config:\n  " + "\n  ".join(problems))


class MLP(kiln.Model):
    """Multi-layer perceptron: (B, input_dim) -> (B, num_classes) logits.

    Args: the fields of ``MLPConfig``; also ``name``/``trainable`` as any kiln Model.
    Accepts a tensor or a one-entry dict ``{"x": tensor}``.
    """

    def __init__(self, input_dim, num_classes=10, hidden=(64, 64), dropout=0.0, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.config = MLPConfig(input_dim, num_classes, tuple(hidden), dropout, activation)
        c = self.config
        blocks, width = [], c.input_dim
        for h in c.hidden:
            blocks += [nn.Linear(width, h), _ACTIVATIONS[c.activation]()]
            if c.dropout > 0:
                blocks.append(nn.Dropout(c.dropout))
            width = h
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, c.num_classes)

    def call(self, inputs):
        x = single_input(inputs)     # (B, input_dim)
        return self.head(self.body(x))  # (B, num_classes)

    def get_config(self) -> dict:
        config = asdict(self.config)
        config["hidden"] = list(config["hidden"])
        return {**super().get_config(), **config}


def mlp(input_dim: int, num_classes: int | None = None, units: int | None = None, hidden=(64, 64),
        dropout: float = 0.0, activation: str = "relu") -> MLP:
    """An MLP classifier (``num_classes`` logits) or regressor (``units`` outputs); give one of them.

    Example: ``mlp(input_dim=20, num_classes=3, hidden=(128, 64), dropout=0.1)``.
    """
    if (num_classes is None) == (units is None):
        raise KilnValueError(f"Give exactly one of `num_classes` (a classifier) or `units` (a regressor). "
                             f"Received: num_classes={num_classes!r}, units={units!r}")
    return MLP(input_dim=input_dim, num_classes=num_classes if units is None else units, hidden=hidden,
               dropout=dropout, activation=activation)
