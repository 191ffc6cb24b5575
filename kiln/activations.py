"""Activation functions with Keras 3 names and defaults, on ``torch.nn.functional``.

Each takes a tensor and returns one of the same shape. ``get`` turns what a layer's
``activation=`` argument accepts (None, a name, a callable) into a function, and ``serialize``
turns it back into a name for the layer's config.

Example:
    >>> get("leaky_relu")(torch.tensor([-1.0, 2.0]))
    tensor([-0.2000,  2.0000])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kiln.errors import KilnTypeError, KilnValueError, unknown_name_error

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu", "swish", "elu", "selu",
    "softplus", "softsign", "leaky_relu", "relu6", "hard_sigmoid", "hard_silu", "hard_swish", "mish",
    "exponential", "linear", "get", "serialize", "deserialize",
]


def relu(x: torch.Tensor, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> torch.Tensor:
    """``max(x, 0)``; Keras's options: a slope below ``threshold``, a cap at ``max_value``."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return F.relu(x)  # the common case: one fused kernel
    out = torch.where(x >= threshold, x, negative_slope * (x - threshold))
    return out if max_value is None else out.clamp(max=max_value)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``1 / (1 + exp(-x))``."""
    return torch.sigmoid(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent."""
    return torch.tanh(x)


def softmax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis`` (default: the last)."""
    return F.softmax(x, dim=axis)


def log_softmax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """``log(softmax(x))`` along ``axis``, computed stably."""
    return F.log_softmax(x, dim=axis)


def gelu(x: torch.Tensor, approximate: bool = False) -> torch.Tensor:
    """Gaussian error linear unit; exact erf form by default (Keras), tanh form if ``approximate``."""
    return F.gelu(x, approximate="tanh" if approximate else "none")


def silu(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` (also called swish)."""
    return F.silu(x)


swish = silu  # Keras's alias; serialize() names it "silu", as Keras 3 does.


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """``x`` if positive, else ``alpha * (exp(x) - 1)``."""
    return F.elu(x, alpha=alpha)


def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled ELU with the self-normalising constants (pair it with ``lecun_normal`` init)."""
    return F.selu(x)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(x))``."""
    return F.softplus(x)


def softsign(x: torch.Tensor) -> torch.Tensor:
    """``x / (1 + |x|)``."""
    return F.softsign(x)


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.2) -> torch.Tensor:
    """``x`` if positive, else ``negative_slope * x``; default 0.2 as Keras 3 (torch's is 0.01)."""
    return F.leaky_relu(x, negative_slope=negative_slope)


def relu6(x: torch.Tensor) -> torch.Tensor:
    """``min(max(x, 0), 6)``."""
    return F.relu6(x)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``relu6(x + 3) / 6``: Keras 3's piecewise-linear sigmoid (Keras 2 used ``0.2 * x + 0.5``)."""
    return F.hardsigmoid(x)


def hard_silu(x: torch.Tensor) -> torch.Tensor:
    """``x * hard_sigmoid(x)`` (also called hard_swish)."""
    return F.hardswish(x)


hard_swish = hard_silu


def mish(x: torch.Tensor) -> torch.Tensor:
    """``x * tanh(softplus(x))``."""
    return F.mish(x)


def exponential(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)``."""
    return torch.exp(x)


def linear(x: torch.Tensor) -> torch.Tensor:
    """The identity: what ``activation=None`` means."""
    return x


# Name -> function. The first name of a function is the one serialize() gives it.
_ACTIVATIONS: dict[str, Callable] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax, "log_softmax": log_softmax,
    "gelu": gelu, "silu": silu, "swish": swish, "elu": elu, "selu": selu, "softplus": softplus,
    "softsign": softsign, "leaky_relu": leaky_relu, "relu6": relu6, "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu, "hard_swish": hard_swish, "mish": mish, "exponential": exponential,
    "linear": linear,
}

# torch functions users pass directly (``activation=torch.relu``) whose defaults equal kiln's.
_TORCH_EQUIVALENTS: dict[Callable, str] = {
    torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh",
    F.tanh: "tanh", F.gelu: "gelu", F.silu: "silu", F.elu: "elu", F.selu: "selu", torch.selu: "selu",
    F.softplus: "softplus", F.softsign: "softsign", F.relu6: "relu6", F.hardsigmoid: "hard_sigmoid",
    F.hardswish: "hard_silu", F.mish: "mish", torch.exp: "exponential",
}


def get(identifier) -> Callable:
    """Resolve an ``activation=`` argument into a function.

    Args:
        identifier: None (the identity, ``linear``), a name such as "relu" (case-insensitive),
            or any callable (returned as is: a torch function, an ``nn.Module``, your own).
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _ACTIVATIONS.get(identifier.lower())
        if fn is None:
            raise unknown_name_error("activation", identifier, _ACTIVATIONS)
        return fn
    if callable(identifier):
        return identifier
    raise KilnTypeError(
        "Could not interpret activation: expected None, a name such as 'relu', or a callable. "
        f"Received: {identifier!r} of type {type(identifier).__name__}"
    )


def serialize(activation) -> str | None:
    """Return the name of a built-in activation (None for None), for a layer's config.

    Raises KilnValueError for a callable that is not built in: a config holds names, not code.
    """
    if activation is None:
        return None
    if isinstance(activation, str):
        get(activation)  # validates the name
        return activation.lower()
    for name, fn in _ACTIVATIONS.items():
        if activation is fn:
            return name
    try:
        return _TORCH_EQUIVALENTS[activation]
    except (KeyError, TypeError):  # TypeError: an unhashable callable
        pass
    raise KilnValueError(
        f"Cannot serialize the custom activation {activation!r}: a config stores activations by name. "
        "Use a built-in name (e.g. 'relu'), register the function as a custom object when saving "
        "and loading, or apply it with an Activation layer / your own nn.Module instead."
    )


def deserialize(name: str | None) -> Callable:
    """Inverse of ``serialize``: a name (or None) back to the function."""
    return get(name)
