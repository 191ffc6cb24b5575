"""trace: back-propagation through a stack of Dense layers, written out by hand (seed §4.2).

A glass box for what ``loss.backward()`` does in a multilayer perceptron. For one batch it runs
the forward pass layer by layer, then the backward pass with the textbook formulas, explicitly:

    forward   z^(l) = a^(l-1) @ W^(l) + b^(l)               W^(l): (in, units), Keras's layout
              a^(l) = f_l(z^(l))                             a^(0) = x
    output    delta^(L) = dL_n/dz^(L)                        per sample n, from loss and f_L
                sigmoid + binary_crossentropy      -> (y_hat - y) / k
                softmax + categorical_crossentropy -> y_hat - y          (rows of y sum to 1)
                f + mse                            -> 2 (y_hat - y) / k * f'(z)
    hidden    delta^(l) = f_l'(z^(l)) * (delta^(l+1) @ W^(l+1).T)
    gradients dL/dW^(l) = a^(l-1).T @ delta^(l) / batch      dL/db^(l) = mean over the batch of delta^(l)

with k the number of outputs (Keras averages binary crossentropy and mse over the last axis) and
L the mean over the batch of the per-sample loss L_n, as kiln's ``fit`` minimises it. The
derivatives are those of the activation each layer really uses: relu' = 1[z > 0],
sigmoid' = a (1 - a), tanh' = 1 - a^2, linear' = 1.

The sign matters: delta here is a *gradient*, dL/dz, and gradient descent subtracts it. The seed's
``delta = y_hat (1 - y_hat) (y - y_hat)`` is minus the delta of the squared error 0.5 (y - y_hat)^2;
for a sigmoid output trained with cross-entropy the y_hat (1 - y_hat) cancels and delta = y_hat - y.

Everything is computed in float64 whatever the model's dtype, so the printed digits are the
mathematics rather than float32 rounding. ``Trace.check_against_autograd`` recomputes every z,
activation, delta and gradient with torch autograd and returns the largest differences.
Weight regularizers are not part of the traced loss (they add ``dR/dW`` to the kernel gradient only).

Example::

    model = kiln.Sequential([Dense(3, activation="relu", input_shape=(2,)),
                             Dense(1, activation="sigmoid")])
    t = trace(model, x=[[0.5, 0.5]], y=[[0.0]])
    print(t.to_text())
    assert max(t.check_against_autograd(model).values()) < 1e-6
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kiln import activations, losses
from kiln.errors import KilnTypeError, KilnValueError, ShapeError, unknown_name_error
from kiln.layers.activation import Activation
from kiln.layers.dense import Dense

__all__ = ["trace", "Trace", "LayerTrace", "SUPPORTED_LOSSES", "SUPPORTED_ACTIVATIONS"]

SUPPORTED_ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")  # elementwise: f'(z) is a diagonal
SUPPORTED_LOSSES = ("binary_crossentropy", "categorical_crossentropy", "mse")
_LOSS_ALIASES = {"binary_crossentropy": "binary_crossentropy", "bce": "binary_crossentropy",
                 "categorical_crossentropy": "categorical_crossentropy", "cce": "categorical_crossentropy",
                 "mse": "mse", "mean_squared_error": "mse"}
# The output activation each loss's delta formula is written for.
_OUTPUT_ACTIVATIONS = {"binary_crossentropy": ("sigmoid",), "categorical_crossentropy": ("softmax",),
                       "mse": SUPPORTED_ACTIVATIONS}


@dataclass
class LayerTrace:
    """Forward and backward quantities of one Dense layer; every tensor is float64, batch first.

    Shapes, for a layer with ``n_in`` inputs and ``units`` outputs on a batch of ``B``:
    inputs (B, n_in); kernel (n_in, units); bias (units,) or None; z, a, delta (B, units);
    grad_kernel (n_in, units); grad_bias (units,) or None.
    """

    name: str
    activation: str
    inputs: torch.Tensor  # a^(l-1), the layer's input
    kernel: torch.Tensor
    bias: torch.Tensor | None
    z: torch.Tensor  # pre-activation
    a: torch.Tensor  # activation output
    delta: torch.Tensor = None  # dL_n/dz per sample n (filled by the backward pass)
    grad_kernel: torch.Tensor = None  # dL/dW for the batch-mean loss L
    grad_bias: torch.Tensor | None = None

    def updated(self, learning_rate: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One plain gradient-descent step: ``(W - lr dL/dW, b - lr dL/db)``."""
        kernel = self.kernel - learning_rate * self.grad_kernel
        bias = None if self.bias is None else self.bias - learning_rate * self.grad_bias
        return kernel, bias


@dataclass
class Trace:
    """The result of ``trace``: one ``LayerTrace`` per Dense layer, input side first, and the loss."""

    layers: list[LayerTrace]
    loss: float  # the batch-mean loss, as kiln's losses compute it
    loss_name: str
    x: torch.Tensor  # (B, n_in) float64
    y: torch.Tensor  # (B, k) float64, aligned with the output
    y_pred: torch.Tensor = field(repr=False, default=None)  # (B, k), the last layer's a

    def __getitem__(self, index: int) -> LayerTrace:
        return self.layers[index]

    def updated_weights(self, learning_rate: float) -> list[np.ndarray]:
        """The weights after one gradient-descent step, as ``model.set_weights`` takes them."""
        out = []
        for layer in self.layers:
            kernel, bias = layer.updated(learning_rate)
            out.append(kernel.numpy())
            if bias is not None:
                out.append(bias.numpy())
        return out

    def check_against_autograd(self, model, x=None, y=None) -> dict[str, float]:
        """Recompute everything with torch autograd; return ``{"<layer>/<quantity>": max |difference|}``.

        Two references, both in float64:
          * the model itself (a float64 deep copy): its output, the loss from ``kiln.losses``, and
            ``.grad`` of every kernel and bias after ``loss.backward()``;
          * the same layers recomposed with each ``z`` kept as a graph node, so that
            ``z.grad * batch`` gives the per-sample delta the formulas claim.

        Args:
            model: the model (or list of layers) that was traced.
            x, y: default None: the traced batch. Other data checks the trace against a
                different batch, which shows up as large differences.
        """
        x = self.x if x is None else x
        y = self.y if y is None else y
        stack = _dense_stack(model)
        x64 = _as_batch(x, stack[0][0].kernel.shape[0])
        y64 = _align_targets(y, x64.shape[0], stack[-1][0].units, self.loss_name)
        if x64.shape != self.x.shape:
            raise ShapeError(f"check_against_autograd: `x` has shape {tuple(x64.shape)}, but the trace was "
                             f"made on a batch of shape {tuple(self.x.shape)}.")
        loss_fn = losses.get(self.loss_name)
        diffs: dict[str, float] = {}

        def record(key: str, mine: torch.Tensor | float | None, ref: torch.Tensor | float | None) -> None:
            if mine is None and ref is None:
                return
            diffs[key] = float((torch.as_tensor(mine) - torch.as_tensor(ref).cpu()).abs().max())

        # Reference 1: the model's own forward and backward, on a float64 copy.
        layers64 = [copy.deepcopy(dense).to(torch.float64) for dense, _ in stack]
        for dense in layers64:
            dense.requires_grad_(True)  # frozen layers too: we want their gradients
        device = layers64[0].kernel.device
        a = x64.to(device)
        for dense, (_, extra) in zip(layers64, stack):
            a = dense(a)
            if extra is not None:
                a = extra(a)
        ref_loss = loss_fn(y64.to(device), a)
        ref_loss.backward()
        record("loss", self.loss, float(ref_loss.detach()))
        record("output", self.y_pred, a.detach())
        for mine, dense in zip(self.layers, layers64):
            record(f"{mine.name}/grad_kernel", mine.grad_kernel, dense.kernel.grad)
            if dense.bias is not None:
                record(f"{mine.name}/grad_bias", mine.grad_bias, dense.bias.grad)

        # Reference 2: recompose z = a @ W + b with z as a node, so autograd reports dL/dz.
        zs = []
        a = x64
        for mine in self.layers:
            kernel = mine.kernel.clone().requires_grad_()  # a leaf, so z is part of a graph
            z = a @ kernel + (0.0 if mine.bias is None else mine.bias)
            z.retain_grad()
            zs.append(z)
            a = _ACTIVATION_FNS[mine.activation](z)
        loss_fn(y64, a).backward()
        batch = x64.shape[0]
        for mine, z in zip(self.layers, zs):
            record(f"{mine.name}/z", mine.z, z.detach())
            record(f"{mine.name}/delta", mine.delta, z.grad * batch)  # dL/dz = delta / batch
        return diffs

    def to_text(self, precision: int = 6) -> str:
        """A readable per-layer printout of z, a, delta and the gradients."""

        def row(label: str, t: torch.Tensor | None) -> str:
            if t is None:
                return f"  {label:<15}= None (no bias)"
            text = np.array2string(t.numpy(), precision=precision, suppress_small=True, separator=", ",
                                   floatmode="maxprec")
            return f"  {label:<15}= " + text.replace("\n", "\n" + " " * 19)

        batch = self.x.shape[0]
        lines = [f"trace: {len(self.layers)} Dense layer(s), batch of {batch}, "
                 f"{self.loss_name} = {self.loss:.{precision}f}", row("x", self.x), row("y", self.y)]
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            n_in, units = layer.kernel.shape
            how = (_output_delta_formula(self.loss_name, layer.activation) if i == last
                   else f"{_DERIVATIVE_TEXT[layer.activation]} * (delta_next @ W_next.T)")
            lines += [f"layer {i + 1} '{layer.name}' ({n_in} -> {units}, {layer.activation})",
                      row("W", layer.kernel), row("b", layer.bias),
                      row("z = aW + b", layer.z), row(f"a = {layer.activation}(z)", layer.a),
                      row("delta = dL/dz", layer.delta), f"  {'':<15}  ({how})",
                      row("dL/dW", layer.grad_kernel), row("dL/db", layer.grad_bias)]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the formulas


def _relu_prime(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)  # 1[z > 0]; torch also takes 0 at z == 0


def _sigmoid_prime(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return a * (1.0 - a)


def _tanh_prime(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return 1.0 - a * a


def _linear_prime(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(z)


_DERIVATIVES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "relu": _relu_prime, "sigmoid": _sigmoid_prime, "tanh": _tanh_prime, "linear": _linear_prime}
_DERIVATIVE_TEXT = {"relu": "1[z > 0]", "sigmoid": "a(1 - a)", "tanh": "(1 - a^2)", "linear": "1"}
_ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=-1)}


def _output_delta(loss_name: str, activation: str, z: torch.Tensor, y_hat: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
    """dL_n/dz at the output, per sample; (B, k) -> (B, k)."""
    k = y_hat.shape[-1]
    if loss_name == "binary_crossentropy":  # sigmoid: dL/dy_hat = (y_hat - y) / (y_hat (1 - y_hat) k)
        return (y_hat - y) / k
    if loss_name == "categorical_crossentropy":  # softmax; = y_hat - y when a row of y sums to 1
        return y_hat * y.sum(dim=-1, keepdim=True) - y
    return 2.0 * (y_hat - y) / k * _DERIVATIVES[activation](z, y_hat)  # mse


def _output_delta_formula(loss_name: str, activation: str) -> str:
    if loss_name == "binary_crossentropy":
        return "sigmoid + binary cross-entropy: (y_hat - y) / k"
    if loss_name == "categorical_crossentropy":
        return "softmax + categorical cross-entropy: y_hat - y"
    return f"mse: 2 (y_hat - y) / k * {_DERIVATIVE_TEXT[activation]}"


def trace(model, x, y, loss: str = "binary_crossentropy") -> Trace:
    """Trace the forward and backward pass of a Dense stack on one batch, by the §4.2 formulas.

    Args:
        model: a built kiln ``Sequential`` of ``Dense`` layers (an ``Activation`` layer may follow a
            Dense without its own activation), or a plain list of such layers.
        x: inputs, shape (batch, n_in), or (n_in,) for one sample.
        y: targets, any shape holding batch * k values (k outputs): (batch, k), (batch,) when
            k == 1, (k,) for one sample. For categorical_crossentropy, one-hot rows.
        loss: "binary_crossentropy" (default; sigmoid output), "categorical_crossentropy"
            (softmax output) or "mse" (output relu, sigmoid, tanh or linear).

    Returns:
        A ``Trace``: ``layers[l].z / a / delta / grad_kernel / grad_bias`` and ``loss``.

    Raises:
        KilnValueError: an unsupported layer, activation, loss or output/loss pairing.
        ShapeError: x or y do not fit the model.
    """
    loss_name = _loss_name(loss)
    stack = _dense_stack(model)
    names = [_activation_name(dense, extra) for dense, extra in stack]
    for (dense, extra), act in zip(stack[:-1], names[:-1]):
        if act not in SUPPORTED_ACTIVATIONS:
            raise KilnValueError(
                f"trace: hidden layer '{_where(dense, extra)}' uses the activation {act!r}; hidden "
                f"layers must use one of {', '.join(SUPPORTED_ACTIVATIONS)} (elementwise, so the "
                "derivative is a simple product).")
    if names[-1] not in _OUTPUT_ACTIVATIONS[loss_name]:
        raise KilnValueError(
            f"trace: the output layer '{_where(*stack[-1])}' uses the activation {names[-1]!r}, but "
            f"the {loss_name} delta formula needs one of {', '.join(_OUTPUT_ACTIVATIONS[loss_name])} "
            "(binary_crossentropy: sigmoid; categorical_crossentropy: softmax; mse: relu, sigmoid, "
            "tanh or linear). Change the output activation or the loss.")

    x64 = _as_batch(x, stack[0][0].kernel.shape[0])  # (B, n_in)
    batch = x64.shape[0]
    y64 = _align_targets(y, batch, stack[-1][0].units, loss_name)  # (B, k)

    # Forward: z = a_prev @ W + b, a = f(z), layer by layer.
    traces: list[LayerTrace] = []
    a = x64
    for position, ((dense, _), act) in enumerate(zip(stack, names), start=1):
        kernel = dense.kernel.detach().to("cpu", torch.float64)  # (n_in, units)
        bias = None if dense.bias is None else dense.bias.detach().to("cpu", torch.float64)
        z = a @ kernel + (0.0 if bias is None else bias)  # (B, units)
        out = _ACTIVATION_FNS[act](z)
        # Layers outside a model may share a name; the position keeps check results apart.
        name = dense.name if sum(d.name == dense.name for d, _ in stack) == 1 else f"{dense.name}[{position}]"
        traces.append(LayerTrace(name=name, activation=act, inputs=a, kernel=kernel, bias=bias,
                                 z=z, a=out))
        a = out
    y_hat = a

    # Backward: the output delta from the loss, then delta^(l) = f'(z^(l)) * (delta^(l+1) @ W^(l+1).T).
    last = traces[-1]
    last.delta = _output_delta(loss_name, last.activation, last.z, y_hat, y64)
    for layer, above in zip(reversed(traces[:-1]), reversed(traces[1:])):
        layer.delta = _DERIVATIVES[layer.activation](layer.z, layer.a) * (above.delta @ above.kernel.T)
    for layer in traces:
        layer.grad_kernel = layer.inputs.T @ layer.delta / batch  # (n_in, units)
        layer.grad_bias = None if layer.bias is None else layer.delta.mean(dim=0)  # (units,)

    loss_value = float(losses.get(loss_name)(y64, y_hat))
    return Trace(layers=traces, loss=loss_value, loss_name=loss_name, x=x64, y=y64, y_pred=y_hat)


# ----------------------------------------------------------------------------- checking the input


def _loss_name(loss: Any) -> str:
    if not isinstance(loss, str):
        raise KilnTypeError(f"trace: `loss` must be a name, one of {', '.join(SUPPORTED_LOSSES)}. "
                            f"Received: loss={loss!r}")
    name = _LOSS_ALIASES.get(loss.lower())
    if name is None:
        raise unknown_name_error("loss for trace", loss, _LOSS_ALIASES)
    return name


def _dense_stack(model) -> list[tuple[Dense, Activation | None]]:
    """The model's Dense layers, each paired with the Activation layer that follows it (or None)."""
    if isinstance(model, (list, tuple)):
        layers = list(model)
    elif hasattr(model, "layers"):
        layers = list(model.layers)
    else:
        raise KilnTypeError("trace: `model` must be a kiln Sequential of Dense layers or a list of Dense "
                            f"layers. Received: {type(model).__name__}")
    supported = "Dense layers, each optionally followed by an Activation layer"
    stack: list[tuple[Dense, Activation | None]] = []
    for layer in layers:
        label = f"'{getattr(layer, 'name', '?')}' ({type(layer).__name__})"
        if isinstance(layer, Dense):
            if not layer.built:
                raise KilnValueError(f"trace: layer {label} has no weights yet. Build the model first: "
                                     "give the first layer input_shape=, or call the model on data.")
            stack.append((layer, None))
        elif isinstance(layer, Activation):
            if _safe_name(layer.activation) == "linear":
                continue  # the identity changes nothing
            if not stack or stack[-1][1] is not None or _safe_name(stack[-1][0].activation) != "linear":
                raise KilnValueError(f"trace: layer {label} must directly follow a Dense layer that has no "
                                     f"activation of its own. trace supports {supported}.")
            stack[-1] = (stack[-1][0], layer)
        else:
            raise KilnValueError(f"trace: layer {label} is not supported; trace supports {supported} "
                                 "(the §4.2 multilayer perceptron).")
    if not stack:
        raise KilnValueError(f"trace: the model has no Dense layer; trace supports {supported}.")
    for (lower, _), (upper, _) in zip(stack, stack[1:]):
        if lower.units != upper.kernel.shape[0]:
            raise ShapeError(f"trace: layer '{upper.name}' expects {upper.kernel.shape[0]} inputs but "
                             f"'{lower.name}' gives {lower.units}.")
    return stack


def _safe_name(fn) -> str | None:
    try:
        return activations.serialize(fn)
    except KilnValueError:
        return None  # a custom callable: no known derivative


def _activation_name(dense: Dense, extra: Activation | None) -> str:
    fn = dense.activation if extra is None else extra.activation
    name = _safe_name(fn)
    if name is None or name not in _ACTIVATION_FNS:
        raise KilnValueError(
            f"trace: layer '{_where(dense, extra)}' uses the activation {name or repr(fn)}, whose derivative "
            f"trace does not know. Supported: {', '.join(SUPPORTED_ACTIVATIONS)}, and softmax on the "
            "output with categorical_crossentropy.")
    return name


def _where(dense: Dense, extra: Activation | None) -> str:
    return dense.name if extra is None else f"{dense.name}' + '{extra.name}"


def _as_batch(x, n_in: int) -> torch.Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.dim() == 1:
        x = x.unsqueeze(0)  # one sample -> a batch of one
    if x.dim() != 2 or x.shape[1] != n_in:
        raise ShapeError(f"trace: `x` must have shape (batch, {n_in}) or ({n_in},) for one sample. "
                         f"Received shape {tuple(x.shape)}.")
    return x


def _align_targets(y, batch: int, k: int, loss_name: str) -> torch.Tensor:
    y = torch.as_tensor(y).detach().to("cpu", torch.float64)
    if y.numel() != batch * k:
        hint = (" For categorical_crossentropy pass one-hot rows "
                "(torch.nn.functional.one_hot(labels, num_classes)).") if loss_name == "categorical_crossentropy" else ""
        raise ShapeError(f"trace: `y` must hold {batch} x {k} values (batch x outputs); received shape "
                         f"{tuple(y.shape)}.{hint}")
    return y.reshape(batch, k)
