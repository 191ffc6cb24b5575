"""Keras-named optimizers that build a real ``torch.optim`` optimizer once the parameters exist.

Why a config object: in Keras an optimizer is created before the model has weights
(``compile(optimizer=Adam(1e-3))``), while a torch optimizer needs the parameters up front. A
kiln optimizer therefore stores its hyperparameters, and ``build(params)`` creates
``self.torch_optimizer``; ``step()`` adds what Keras has and torch leaves to the loop: gradient
clipping, a learning-rate schedule, Keras's decoupled ``weight_decay`` and an ``iterations``
count. The update math itself is torch's (fused kernels where possible); where it differs from
Keras's, each class's docstring says how.

Example:
    >>> model = torch.nn.Linear(4, 2)
    >>> opt = Adam(learning_rate=1e-3, global_clipnorm=1.0)
    >>> _ = opt.build(model.parameters())
    >>> model(torch.randn(8, 4)).sum().backward()
    >>> opt.step(); opt.zero_grad()
    >>> opt.iterations
    1
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Iterable
from typing import Any

import torch

from kiln.errors import KilnError, KilnTypeError, KilnValueError, unknown_name_error
from kiln.optimizers import schedules
from kiln.optimizers.schedules import LearningRateSchedule
from kiln.optimizers.direct_step import DirectFusedStep

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "TorchOptimizer",
    "get",
    "serialize",
    "deserialize",
    "schedules",
]


def _require(name: str, value: Any, expected: str, ok) -> None:
    """Raise the Keras-style error unless ``value`` is a real number for which ``ok(value)`` holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        raise KilnValueError(
            f"Received an invalid value for `{name}`, expected {expected}. Received: {name}={value!r}"
        )


def _normalize_params(params: Iterable) -> tuple[list, list[torch.Tensor]]:
    """Return ``params`` as a list (param-group dicts get list ``"params"``) and the flat tensors.

    Why: ``params`` is often a generator (``model.parameters()``); it must be read once, and
    the fused check needs every tensor, including those inside param groups.
    """
    if isinstance(params, torch.Tensor):
        params = [params]
    items, tensors = [], []
    for item in params:
        if isinstance(item, dict):
            group = item["params"]
            group = [group] if isinstance(group, torch.Tensor) else list(group)
            items.append({**item, "params": group})
            tensors.extend(group)
        else:
            items.append(item)
            tensors.append(item[1] if isinstance(item, tuple) else item)  # (name, tensor) pairs
    return items, tensors


def _fused_supported(tensors: list[torch.Tensor], devices: tuple[str, ...]) -> bool:
    """True when torch has a fused kernel for every tensor: floating point, on a supported device."""
    return bool(tensors) and all(
        isinstance(t, torch.Tensor) and t.is_floating_point() and t.device.type in devices and not t.is_sparse
        for t in tensors
    )


class Optimizer:
    """Base class: Keras's optimizer options on top of a ``torch.optim`` optimizer built later.

    Args:
        learning_rate: a positive float, or a ``schedules.LearningRateSchedule`` evaluated at
            ``iterations`` before every step.
        weight_decay: Keras's decoupled decay, ``w -= lr * weight_decay * w`` before the update
            (None: off). Not torch's L2-in-the-gradient.
        clipnorm: clip each gradient to this L2 norm on its own (Keras's per-variable rule).
        clipvalue: clip every gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clip all gradients together so their joint L2 norm is at most this.
        name: a label (default: the class name in lower case).

    Only one of ``clipnorm``, ``clipvalue`` and ``global_clipnorm`` may be set (as in Keras).

    Subclasses say which torch class to build (``_torch_class``), with which keyword arguments
    (``_torch_kwargs``), and what to save (``_hyper_config``).
    """

    _fused_devices: tuple[str, ...] = ()  # devices where the torch class has a fused kernel
    _allows_zero_learning_rate = False
    _constrained: tuple = ()  # (param, constraint) pairs, set by build

    def __init__(self, learning_rate, *, weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None, name: str | None = None):
        self._schedule: LearningRateSchedule | None = None
        self._learning_rate = 0.0
        self._set_learning_rate(learning_rate, allow_zero=self._allows_zero_learning_rate)
        if weight_decay is not None:
            _require("weight_decay", weight_decay, "a non-negative float", lambda v: v >= 0)
        clip = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        clip = {key: value for key, value in clip.items() if value is not None}
        if len(clip) > 1:
            raise KilnValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: {', '.join(f'{k}={v}' for k, v in clip.items())}"
            )
        for key, value in clip.items():
            _require(key, value, "a positive float", lambda v: v > 0)
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self._pending_state: dict | None = None
        self._direct: DirectFusedStep | None = None

    # ----- what subclasses define -------------------------------------------------------
    def _torch_class(self) -> type[torch.optim.Optimizer]:
        raise NotImplementedError(f"{type(self).__name__} must say which torch optimizer it builds.")

    def _torch_kwargs(self) -> dict:
        """Hyperparameters for the torch constructor, in torch's names (``lr`` is added by build)."""
        return {}

    def _hyper_config(self) -> dict:
        """Hyperparameters for ``get_config``, in Keras's names."""
        return {}

    def _decays_weights_itself(self) -> bool:
        """True when the torch class already applies Keras's decoupled decay (torch AdamW)."""
        return False

    # ----- learning rate ----------------------------------------------------------------
    def _set_learning_rate(self, value, allow_zero: bool) -> None:
        if isinstance(value, LearningRateSchedule):
            self._schedule = value
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise KilnTypeError(
                "Expected `learning_rate` to be a float or a kiln.optimizers.schedules."
                f"LearningRateSchedule. Received: learning_rate={value!r} of type {type(value).__name__}"
            )
        if allow_zero:
            _require("learning_rate", value, "a non-negative float", lambda v: v >= 0)
        else:
            _require("learning_rate", value, "a positive float", lambda v: v > 0)
        self._schedule = None
        self._learning_rate = float(value)

    @property
    def learning_rate(self) -> float:
        """The current learning rate as a float (a schedule's value at ``iterations``)."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
        if self.torch_optimizer is not None:
            # Read from torch so a change made straight on param_groups is seen too.
            return float(self.torch_optimizer.param_groups[0]["lr"])
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        """Set a float (replaces any schedule; written into every param group) or a schedule."""
        self._set_learning_rate(value, allow_zero=True)
        if self.torch_optimizer is not None:
            scheduled = self._schedule is not None
            self._write_learning_rate(float(self._schedule(self.iterations)) if scheduled else self._learning_rate)

    def _write_learning_rate(self, lr: float) -> None:
        # A plain float: a tensor here would cost a device sync on every step.
        for group in self.torch_optimizer.param_groups:
            group["lr"] = lr

    # ----- building and stepping --------------------------------------------------------
    def build(self, params: Iterable) -> torch.optim.Optimizer:
        """Create ``self.torch_optimizer`` over ``params`` (tensors or torch param-group dicts).

        Uses torch's fused kernel when every parameter allows it, else the ``foreach`` one.
        Building again starts from fresh optimizer state.
        """
        items, tensors = _normalize_params(params)
        if not tensors:
            raise KilnValueError(
                f"{type(self).__name__}.build() received no parameters. Pass the model's trainable "
                "parameters, e.g. optimizer.build(model.parameters())."
            )
        self.torch_optimizer = self._create_torch_optimizer(items, tensors)
        self._find_constraints()
        self._direct = DirectFusedStep(self.torch_optimizer) if DirectFusedStep.supports(self.torch_optimizer) else None
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)
        return self.torch_optimizer

    def _create_torch_optimizer(self, items: list, tensors: list[torch.Tensor]) -> torch.optim.Optimizer:
        torch_class = self._torch_class()
        kwargs = {"lr": self.learning_rate, **self._torch_kwargs()}
        if _fused_supported(tensors, self._fused_devices):
            try:
                return torch_class(items, fused=True, **kwargs)
            except (RuntimeError, TypeError, ValueError):
                pass  # e.g. an older torch without this fused kernel: the foreach path is next best
        return torch_class(items, foreach=True, **kwargs)

    def _built(self) -> torch.optim.Optimizer:
        if self.torch_optimizer is None:
            raise KilnError(
                f"The {type(self).__name__} optimizer has not been built. Call "
                "optimizer.build(model.parameters()) first (model.compile does this for you)."
            )
        return self.torch_optimizer

    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for group in self.torch_optimizer.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def _clip_gradients(self, params: list[torch.Tensor]) -> None:
        if self.clipvalue is not None:
            torch.nn.utils.clip_grad_value_(params, self.clipvalue, foreach=True)
        elif self.global_clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.global_clipnorm, foreach=True)
        elif self.clipnorm is not None:
            # Keras's clip_by_norm on each gradient: g * c / max(||g||, c). No host sync.
            grads = [p.grad for p in params]
            norms = torch._foreach_norm(grads)
            torch._foreach_clamp_min_(norms, self.clipnorm)
            scales = torch._foreach_reciprocal(norms)
            torch._foreach_mul_(scales, self.clipnorm)
            torch._foreach_mul_(grads, scales)

    @torch.no_grad()
    def _apply_weight_decay(self) -> None:
        # Keras applies decay before the update with the same lr: w <- w * (1 - lr * wd).
        for group in self.torch_optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                torch._foreach_mul_(params, 1.0 - float(group["lr"]) * self.weight_decay)

    def step(self, closure=None):
        """Clip gradients, set the scheduled lr, apply decoupled decay, run the torch step.

        ``closure`` is passed to torch (for optimizers such as LBFGS); clipping acts on the
        gradients present before the call.
        """
        optimizer = self._built()
        if self.clipnorm or self.clipvalue or self.global_clipnorm:
            self._clip_gradients(self._params_with_grad())
        if self._schedule is not None:
            self._write_learning_rate(float(self._schedule(self.iterations)))
        if self.weight_decay and not self._decays_weights_itself():
            self._apply_weight_decay()
        if closure is not None:
            loss = optimizer.step(closure)
        elif self._direct is not None and self._direct.step():
            loss = None
        else:
            loss = optimizer.step()
        if self._constrained:
            self._apply_constraints()
        self.iterations += 1
        return loss

    def _find_constraints(self) -> None:
        # Weights with a kernel_constraint-style projection (kiln/constraints.py), found once per build.
        self._constrained = [(p, p.constraint) for group in self.torch_optimizer.param_groups
                             for p in group["params"] if getattr(p, "constraint", None) is not None]

    @torch.no_grad()
    def _apply_constraints(self) -> None:
        # Keras's variable.assign(constraint(variable)) after the update, for the weights this step
        # updated (a None gradient, as in apply() on part of the variables, leaves the weight alone).
        for param, constraint in self._constrained:
            if param.grad is not None:
                param.copy_(constraint(param))

    def apply(self, grads, trainable_variables=None):
        """Keras 3's ``optimizer.apply(grads, variables)``: one update of ``variables`` with ``grads``.

        Built on the first call over ``trainable_variables`` when not built yet (a GAN's two
        optimizers each own one sub-model). Variables the optimizer holds but that are not
        listed keep their values. A None gradient leaves its variable alone, as in Keras.
        """
        grads = list(grads)
        if trainable_variables is None:
            if self.torch_optimizer is None:
                raise KilnValueError(f"{type(self).__name__}.apply(grads) needs `trainable_variables` on its first "
                                     "call, e.g. optimizer.apply(grads, model.trainable_weights).")
            trainable_variables = [p for g in self.torch_optimizer.param_groups for p in g["params"]]
        variables = list(trainable_variables)
        if len(grads) != len(variables):
            raise KilnValueError(f"{type(self).__name__}.apply received {len(grads)} gradients for "
                                 f"{len(variables)} variables; pass one gradient per variable.")
        if self.torch_optimizer is None:
            self.build(variables)
        listed = {id(v) for v in variables}
        held = [p for g in self.torch_optimizer.param_groups for p in g["params"]]
        unknown = [tuple(v.shape) for v in variables if all(v is not p for p in held)]
        if unknown:
            raise KilnValueError(f"{type(self).__name__}.apply received variables it was not built for (shapes "
                                 f"{unknown[:3]}). Use one optimizer per set of variables (e.g. compile("
                                 "d_optimizer=..., g_optimizer=...)) or build it on all of them.")
        others = {id(p): p.grad for p in held if id(p) not in listed}
        with torch.no_grad():
            for p in held:
                if id(p) in others:
                    p.grad = None
            for v, g in zip(variables, grads):
                v.grad = None if g is None else g.to(v.dtype)
            self.step()
            for p in held:
                if id(p) in others:
                    p.grad = others[id(p)]

    def apply_gradients(self, grads_and_vars):
        """Keras's ``apply_gradients(zip(grads, variables))``."""
        pairs = list(grads_and_vars)
        return self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none=True``: cheaper than filling with zeros)."""
        self._built().zero_grad(set_to_none=True)

    # ----- checkpointing and config -----------------------------------------------------
    def state_dict(self) -> dict:
        """The torch optimizer's state plus ``iterations``, so a run can resume where it stopped."""
        if self.torch_optimizer is None:
            torch_state = self._pending_state["torch"] if self._pending_state else None
        else:
            torch_state = self.torch_optimizer.state_dict()
        return {"torch": torch_state, "iterations": self.iterations}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``'s output; before ``build`` it is kept and applied at build."""
        if not isinstance(state, dict) or "iterations" not in state or "torch" not in state:
            raise KilnValueError(
                "Expected the dict returned by Optimizer.state_dict(), with keys 'torch' and "
                f"'iterations'. Received: {state if not isinstance(state, dict) else sorted(state)!r}"
            )
        self.iterations = int(state["iterations"])
        if self.torch_optimizer is None:
            self._pending_state = state
        elif state["torch"] is not None:
            self.torch_optimizer.load_state_dict(state["torch"])
            if self._direct is not None:
                self._direct.invalidate()  # load_state_dict replaced the state tensors

    def get_config(self) -> dict:
        """JSON-serialisable settings; a schedule is stored as ``{"class_name", "config"}``."""
        learning_rate = schedules.serialize(self._schedule) if self._schedule is not None else self.learning_rate
        return {
            "name": self.name,
            "learning_rate": learning_rate,
            **self._hyper_config(),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Optimizer":
        """Rebuild from ``get_config()``; ``custom_objects`` maps names of your own schedules."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None and k != "name")
        return f"{type(self).__name__}({settings})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum; ``torch.optim.SGD``.

    Args:
        learning_rate: default 0.01.
        momentum: float in [0, 1] (default 0.0).
        nesterov: use Nesterov momentum (default False).
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.

    Torch vs Keras: Keras keeps ``lr * grad`` in its velocity, torch keeps ``grad`` and multiplies
    by lr after; the two agree exactly while the lr is constant and differ slightly right after
    the lr changes (schedules, ReduceLROnPlateau).
    """

    _fused_devices = ("cpu", "cuda")

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        _require("momentum", momentum, "a float between 0 and 1", lambda v: 0 <= v <= 1)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _torch_class(self):
        return torch.optim.SGD

    def _torch_kwargs(self) -> dict:
        # torch rejects nesterov without momentum; Keras treats it as a no-op.
        return {"momentum": self.momentum, "nesterov": self.nesterov and self.momentum > 0}

    def _hyper_config(self) -> dict:
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam; ``torch.optim.Adam`` (``torch.optim.AdamW`` when ``weight_decay`` is set).

    Args:
        learning_rate: default 0.001.
        beta_1: decay of the first-moment average (default 0.9).
        beta_2: decay of the second-moment average (default 0.999).
        epsilon: added to the denominator (default 1e-7, Keras's; torch's is 1e-8).
        amsgrad: use the running maximum of the second moment (default False).
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.

    Torch vs Keras: Keras adds epsilon to ``sqrt(v)`` before bias correction, torch after, so
    Keras's effective epsilon is torch's times ``sqrt(1 - beta_2**t)``; they differ only while
    ``sqrt(v)`` is near epsilon. Keras's decoupled weight decay is exactly torch AdamW's.
    """

    _fused_devices = ("cpu", "cuda")

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        _require("beta_1", beta_1, "a float in [0, 1)", lambda v: 0 <= v < 1)
        _require("beta_2", beta_2, "a float in [0, 1)", lambda v: 0 <= v < 1)
        _require("epsilon", epsilon, "a non-negative float", lambda v: v >= 0)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def _torch_class(self):
        return torch.optim.AdamW if self.weight_decay else torch.optim.Adam

    def _torch_kwargs(self) -> dict:
        kwargs = {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon, "amsgrad": self.amsgrad}
        if self.weight_decay:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs

    def _decays_weights_itself(self) -> bool:
        return True

    def _hyper_config(self) -> dict:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay; ``torch.optim.AdamW``.

    Args:
        learning_rate: default 0.001.
        weight_decay: default 0.004 (Keras's; torch's default is 0.01).
        beta_1, beta_2, epsilon, amsgrad: as ``Adam``.
        **kwargs: ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.

    Torch vs Keras: as ``Adam`` (epsilon placement); the decay ``w -= lr * wd * w`` is identical.
    """

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise KilnValueError(
                "Received an invalid value for `weight_decay`, expected a non-negative float "
                "(AdamW needs it; use Adam for no decay). Received: weight_decay=None"
            )
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop; ``torch.optim.RMSprop``.

    Args:
        learning_rate: default 0.001.
        rho: decay of the squared-gradient average (default 0.9; torch calls it ``alpha``).
        momentum: default 0.0.
        epsilon: default 1e-7.
        centered: divide by the gradient's estimated variance instead of its raw second moment.
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.

    Torch vs Keras: Keras divides by ``sqrt(v + epsilon)``, torch by ``sqrt(v) + epsilon``; with
    momentum, Keras stores ``lr * g / ...`` in the buffer and torch ``g / ...`` (same while the lr
    is constant). Torch has no fused RMSprop, so this uses the foreach kernel.
    """

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        _require("rho", rho, "a float in [0, 1)", lambda v: 0 <= v < 1)
        _require("momentum", momentum, "a float between 0 and 1", lambda v: 0 <= v <= 1)
        _require("epsilon", epsilon, "a non-negative float", lambda v: v >= 0)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def _torch_class(self):
        return torch.optim.RMSprop

    def _torch_kwargs(self) -> dict:
        return {"alpha": self.rho, "momentum": self.momentum, "eps": self.epsilon, "centered": self.centered}

    def _hyper_config(self) -> dict:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad; ``torch.optim.Adagrad`` (fused on CPU, where torch has that kernel).

    Args:
        learning_rate: default 0.001.
        initial_accumulator_value: starting value of the squared-gradient sums (default 0.1).
        epsilon: default 1e-7.
        **kwargs: ``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.

    Torch vs Keras: Keras divides by ``sqrt(acc + epsilon)``, torch by ``sqrt(acc) + epsilon``;
    with the default ``initial_accumulator_value=0.1`` the difference is negligible.
    """

    _fused_devices = ("cpu",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        _require("initial_accumulator_value", initial_accumulator_value, "a non-negative float", lambda v: v >= 0)
        _require("epsilon", epsilon, "a non-negative float", lambda v: v >= 0)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _torch_class(self):
        return torch.optim.Adagrad

    def _torch_kwargs(self) -> dict:
        return {"initial_accumulator_value": self.initial_accumulator_value, "eps": self.epsilon}

    def _hyper_config(self) -> dict:
        return {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}


def _torch_optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class called ``name`` (only that namespace: a config names no code)."""
    choices = [n for n, c in vars(torch.optim).items()
               if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer]
    if name not in choices:
        raise unknown_name_error("torch optimizer", name, choices)
    return getattr(torch.optim, name)


def _json_safe(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (tuple, list)):
        return [_json_safe(v) for v in value]
    return value


class TorchOptimizer(Optimizer):
    """Any ``torch.optim`` optimizer behind kiln's interface (lr property, clipping, iterations).

    Args:
        optimizer: a ``torch.optim.Optimizer`` you already built (``build`` then keeps it and
            its parameters), or the name of a ``torch.optim`` class (e.g. ``"NAdam"``) to build
            over the model's parameters at ``build`` time with ``torch_config``.
        torch_config: keyword arguments for that class, in torch's names (with a name only).
        clipnorm, clipvalue, global_clipnorm, name: as ``Optimizer``.

    Example:
        >>> opt = TorchOptimizer("NAdam", torch_config={"lr": 2e-3})
    """

    _allows_zero_learning_rate = True

    def __init__(self, optimizer: torch.optim.Optimizer | str, *, torch_config: dict | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None):
        if isinstance(optimizer, torch.optim.Optimizer):
            torch_class, self.torch_config = type(optimizer), None
            lr = optimizer.param_groups[0]["lr"]
        elif isinstance(optimizer, str):
            torch_class, self.torch_config = _torch_optimizer_class(optimizer), dict(torch_config or {})
            lr = self.torch_config.get("lr", inspect.signature(torch_class).parameters["lr"].default)
        else:
            raise KilnTypeError(
                "Expected a torch.optim.Optimizer instance or the name of a torch.optim class. "
                f"Received: optimizer={optimizer!r} of type {type(optimizer).__name__}"
            )
        self._class = torch_class
        super().__init__(float(lr), clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         name=name or torch_class.__name__.lower())
        if isinstance(optimizer, torch.optim.Optimizer):
            self.torch_optimizer = optimizer

    def build(self, params: Iterable) -> torch.optim.Optimizer:
        """Build from ``torch_config``; a wrapped, user-built optimizer is kept as it is."""
        if self.torch_config is None:
            self._find_constraints()  # the wrapped optimizer's weights may carry constraints too
            return self.torch_optimizer
        return super().build(params)

    def _create_torch_optimizer(self, items: list, tensors: list[torch.Tensor]) -> torch.optim.Optimizer:
        return self._class(items, **{**self.torch_config, "lr": self.learning_rate})

    def get_config(self) -> dict:
        if self.torch_config is None:
            # Rebuildable from the user's optimizer settings, for its parameters' defaults.
            allowed = inspect.signature(self._class).parameters
            config = {k: _json_safe(v) for k, v in self.torch_optimizer.defaults.items() if k in allowed}
        else:
            config = {k: _json_safe(v) for k, v in self.torch_config.items()}
        config["lr"] = self.learning_rate
        return {"name": self.name, "optimizer": self._class.__name__, "torch_config": config,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
_BY_CLASS_NAME = {cls.__name__: cls for cls in (*_BY_NAME.values(), TorchOptimizer)}


def serialize(optimizer: Optimizer) -> dict:
    """Return ``{"class_name", "config"}`` for an optimizer (JSON-serialisable)."""
    if not isinstance(optimizer, Optimizer):
        raise KilnTypeError(
            f"Expected a kiln optimizer to serialize. Received: {optimizer!r} of type {type(optimizer).__name__}"
        )
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict | str, custom_objects: dict | None = None) -> Optimizer:
    """Rebuild an optimizer from ``serialize``'s output (or a name); ``custom_objects`` maps your classes."""
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise KilnTypeError(
            f"Expected a dict {{'class_name': ..., 'config': {{...}}}} for an optimizer. Received: {config!r}"
        )
    classes = {**_BY_CLASS_NAME, **{k.lower(): v for k, v in _BY_NAME.items()}, **(custom_objects or {})}
    name = config["class_name"]
    cls = classes.get(name) or classes.get(str(name).lower())
    if cls is None:
        raise unknown_name_error("optimizer", name, classes)
    return cls.from_config(config.get("config", {}), custom_objects=custom_objects)


def get(identifier) -> Optimizer:
    """Resolve what ``compile(optimizer=...)`` accepts into a kiln ``Optimizer``.

    Args:
        identifier: a name ("adam", "sgd", "adamw", "rmsprop", "adagrad"; any case), a kiln
            optimizer (returned as is), a ``{"class_name", "config"}`` dict, or a built
            ``torch.optim.Optimizer`` (wrapped in ``TorchOptimizer``).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, torch.optim.Optimizer):
        return TorchOptimizer(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise unknown_name_error("optimizer", identifier, _BY_NAME)
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise KilnTypeError(
        "Could not interpret optimizer identifier: expected a name such as 'adam', a kiln optimizer, "
        f"a config dict or a torch.optim.Optimizer. Received: {identifier!r} of type {type(identifier).__name__}"
    )
