"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper, with Keras 3 semantics.

Weights are stored in Keras's layout and gate order, so ``get_weights()`` matches Keras:
``kernel`` (input_dim, units * gates), ``recurrent_kernel`` (units, units * gates) and ``bias``
(units * gates,) — ``(2, 3 * units)`` for a GRU with ``reset_after=True``. Gate order: LSTM
i, f, c, o; GRU z, r, h.

Two ways to run. The fast path hands the sequence to torch's fused kernels (``torch.lstm``,
``torch.gru``, ``torch.rnn_tanh``/``torch.rnn_relu``; cuDNN on a GPU) with the weights converted
to torch's layout on every call — a transpose and, for the GRU, a reordering of the gates
(torch: r, z, n). It is taken when the layer uses the activations those kernels hard-code
(tanh or relu for SimpleRNN; tanh + sigmoid for LSTM/GRU; ``reset_after=True`` for GRU, which is
the equation torch implements) and no recurrent dropout is active. Otherwise a Python loop over
time runs the Keras equations; it is slower but exact for any activation.

Dropout: ``dropout`` draws one mask per sequence for the inputs (the same at every step), shared
by all gates, as Keras 3 does by default; it works on both paths. ``recurrent_dropout`` masks the
previous output inside the recurrent product, one mask per sequence shared by all gates; it runs
only in the Python loop, so a layer with ``recurrent_dropout > 0`` trains on the slow path (and
evaluates on the fast one).

Not supported: ``mask=`` (Keras masking), ``stateful=True``, constraints.
"""

from __future__ import annotations

import numbers
import warnings

import torch
import torch.nn.functional as F

from kiln import activations, initializers, regularizers
from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.layer import Layer

__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"]


def _check_units(units):
    if not isinstance(units, numbers.Integral) or isinstance(units, bool) or units <= 0:
        raise KilnValueError(f"Received an invalid value for `units`, expected a positive integer. "
                             f"Received: units={units!r}")
    return int(units)


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a float in [0, 1). "
                             f"Received: {name}={value!r}")
    return float(value)


def _activation_name(fn):
    """The built-in name of an activation function, or None for a custom one."""
    try:
        return activations.serialize(fn)
    except KilnValueError:
        return None


def _sequence_dropout_mask(shape, rate, like):
    """An inverted-dropout mask of ``shape`` (kept entries are ``1 / (1 - rate)``)."""
    return F.dropout(torch.ones(shape, dtype=like.dtype, device=like.device), rate, training=True)


class _RNN(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, weights, states and the two run paths.

    Subclasses set ``_GATES`` (weight blocks per unit) and ``_STATES`` (tensors of state),
    and implement ``_step`` (one time step of the Keras equations) and ``_fused``.
    """

    _GATES = 1
    _STATES = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        if stateful:
            raise KilnValueError(f"{type(self).__name__} does not support `stateful=True` in kiln. "
                                 "Received: stateful=True. Pass the previous call's states back "
                                 "yourself with `return_state=True` and `initial_state=`.")
        self.stateful = False
        self.unroll = bool(unroll)  # accepted for Keras compatibility; torch decides how to run
        # Names resolved once: they decide whether the fused kernel applies.
        self._activation_name = _activation_name(self.activation)
        self._recurrent_activation_name = _activation_name(self.recurrent_activation)

    # ------------------------------------------------------------------ weights
    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) expects inputs of shape "
                             f"(batch, timesteps, features) with known features; received shape {input_shape}.")
        width = self.units * self._GATES
        self.kernel = self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer, self.recurrent_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self.bias_initializer, self.bias_regularizer)
        else:
            self.bias = None
        self.built = True

    def _bias_shape(self):
        return (self.units * self._GATES,)

    def _input_bias(self):
        """The part of the bias added to ``inputs @ kernel`` (all of it, except GRU reset_after)."""
        return self.bias

    # ------------------------------------------------------------------ calling
    def call(self, inputs, initial_state=None, training=None, mask=None):
        """``mask`` (batch, timesteps) bool, True for real steps: a masked step keeps the previous
        state and output, as in Keras, so a post-padded sequence ends in the same state as the
        unpadded one."""
        if inputs.dim() != 3:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) expects inputs of shape "
                             f"(batch, timesteps, features); received shape {tuple(inputs.shape)}.")
        if inputs.shape[-1] != self.kernel.shape[0]:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) expects {self.kernel.shape[0]} "
                             f"features per step, but received shape {tuple(inputs.shape)}.")
        training = self.training if training is None else bool(training)
        states = self._initial_states(initial_state, inputs)
        x = inputs.flip(1) if self.go_backwards else inputs
        if training and self.dropout > 0:
            x = x * _sequence_dropout_mask((x.shape[0], 1, x.shape[2]), self.dropout, x)
        if mask is not None:
            from kiln.layers.masking import check_mask
            mask = check_mask(self, mask, inputs)
            sequence, states = self._loop(x, states, training, mask.flip(1) if self.go_backwards else mask)
        elif self._can_fuse(training):
            sequence, states = self._fused(x, states)
        else:
            sequence, states = self._loop(x, states, training)
        output = sequence if self.return_sequences else sequence[:, -1]
        return [output, *states] if self.return_state else output

    def _initial_states(self, initial_state, inputs):
        batch = inputs.shape[0]
        if initial_state is None:
            zeros = inputs.new_zeros(batch, self.units)
            return [zeros] * self._STATES
        states = [initial_state] if torch.is_tensor(initial_state) else list(initial_state)
        expected = "[h, c]" if self._STATES == 2 else "[h]"
        if len(states) != self._STATES:
            raise KilnValueError(f"Layer '{self.name}' ({type(self).__name__}) expects `initial_state` to be "
                                 f"{expected}, each of shape (batch, units)=({batch}, {self.units}). "
                                 f"Received {len(states)} tensors.")
        for s in states:
            if not torch.is_tensor(s) or tuple(s.shape) != (batch, self.units):
                raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) expects each initial state to "
                                 f"have shape (batch, units)=({batch}, {self.units}). "
                                 f"Received: {tuple(s.shape) if torch.is_tensor(s) else s!r}.")
        return [s.to(inputs.dtype) for s in states]

    def _can_fuse(self, training):
        return self._fusable() and not (training and self.recurrent_dropout > 0)

    def _fusable(self):
        return self._activation_name == "tanh" and self._recurrent_activation_name == "sigmoid"

    def compute_mask(self, inputs, mask=None):
        """The input mask for a whole sequence of outputs, else None (Keras's rule)."""
        output_mask = mask if self.return_sequences else None
        return [output_mask] + [None] * self._STATES if self.return_state else output_mask

    def _loop(self, x, states, training, mask=None):
        """Run the Keras equations step by step. ``x``: (batch, time, features); ``mask``
        (batch, time) bool or None: where False the step keeps the previous states."""
        # The input projection of every step at once: one big matmul instead of T small ones.
        projected = x @ self.kernel  # (B, T, G*U)
        input_bias = self._input_bias()
        if input_bias is not None:
            projected = projected + input_bias
        recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            recurrent_mask = _sequence_dropout_mask((x.shape[0], self.units), self.recurrent_dropout, x)
        outputs = []
        for t in range(x.shape[1]):
            h_for_product = states[0] if recurrent_mask is None else states[0] * recurrent_mask
            new_states = self._step(projected[:, t], states, h_for_product)
            if mask is not None:
                keep = mask[:, t, None]  # (B, 1)
                new_states = [torch.where(keep, new, old) for new, old in zip(new_states, states)]
            states = new_states
            outputs.append(states[0])
        if not outputs:
            raise ShapeError(f"Layer '{self.name}' ({type(self).__name__}) received a sequence of 0 timesteps.")
        return torch.stack(outputs, dim=1), states  # (B, T, U)

    def _step(self, projected_t, states, h_for_product):
        raise NotImplementedError

    def _fused(self, x, states):
        raise NotImplementedError

    def _torch_params(self, kernel, recurrent_kernel, input_bias, recurrent_bias):
        """Keras-layout weights -> torch's ``[w_ih, w_hh, b_ih, b_hh]`` list ((G*U, in), (G*U, U), ...)."""
        params = [kernel.t(), recurrent_kernel.t()]
        if self.use_bias:
            params += [input_bias, recurrent_bias if recurrent_bias is not None else torch.zeros_like(input_bias)]
        return params

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
        )
        return config

    def extra_repr(self):
        in_dim = self.kernel.shape[0] if self.built else "?"
        return f"name={self.name!r}, in={in_dim}, units={self.units}"


def _run_fused(fn, x, hx, params, has_biases):
    """Call a fused torch RNN kernel (one layer, one direction, batch first)."""
    if x.is_cuda:
        # cuDNN wants all weights in one flat buffer and copies them when they are not; ours
        # are rebuilt from the Keras layout on every call anyway, so its warning says nothing new.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            return fn(x, hx, params, has_biases, 1, 0.0, False, False, True)
    return fn(x, hx, params, has_biases, 1, 0.0, False, False, True)


class SimpleRNN(_RNN):
    """Fully connected RNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Args:
        units: positive int, size of the output and of the state.
        activation: default "tanh" ("tanh" and "relu" run torch's fused kernel).
        use_bias: default True.
        kernel_initializer: default "glorot_uniform"; recurrent_initializer: default "orthogonal";
            bias_initializer: default "zeros".
        kernel_regularizer / recurrent_regularizer / bias_regularizer / activity_regularizer:
            default None.
        dropout: fraction of input features dropped (one mask per sequence), default 0.0.
        recurrent_dropout: fraction of the previous output dropped in the recurrent product,
            default 0.0 (runs in the Python loop while training).
        return_sequences: return the whole sequence of outputs, not only the last (default False).
        return_state: also return the final state: ``[output, h]`` (default False).
        go_backwards: process the sequence in reverse and return the reversed sequence (default False).

    Call: ``layer(inputs, initial_state=None, training=None)``; ``initial_state`` is a tensor
    (or a list of one) of shape (batch, units).

    Shapes: ``(batch, timesteps, features)`` -> ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences=True``.

    Example::

        rnn = SimpleRNN(4, return_sequences=True)
        rnn(torch.randn(32, 10, 8)).shape  # (32, 10, 4)
    """

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=None, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards, **kwargs)

    def _fusable(self):
        return self._activation_name in ("tanh", "relu")

    def _step(self, projected_t, states, h_for_product):
        h = self.activation(projected_t + h_for_product @ self.recurrent_kernel)
        return [h]

    def _fused(self, x, states):
        fn = torch.rnn_tanh if self._activation_name == "tanh" else torch.rnn_relu
        params = self._torch_params(self.kernel, self.recurrent_kernel, self.bias, None)
        sequence, h = _run_fused(fn, x, states[0].unsqueeze(0), params, self.use_bias)
        return sequence, [h[0]]


class LSTM(_RNN):
    """Long Short-Term Memory (Hochreiter & Schmidhuber, 1997), Keras 3 equations and weights.

    With ``z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`` split into i, f, c, o blocks:
    ``c_t = σ(f) * c_{t-1} + σ(i) * tanh(c)``, ``h_t = σ(o) * tanh(c_t)`` (σ =
    ``recurrent_activation``, tanh = ``activation``).

    Args:
        units: positive int, size of the output and of each state.
        activation: default "tanh"; recurrent_activation: default "sigmoid" (these two defaults,
            without active recurrent dropout, run torch's fused ``torch.lstm``).
        use_bias: default True.
        kernel_initializer: default "glorot_uniform"; recurrent_initializer: default "orthogonal";
            bias_initializer: default "zeros".
        unit_forget_bias: add 1 to the forget gate's bias at initialisation (default True).
        kernel_regularizer / recurrent_regularizer / bias_regularizer / activity_regularizer:
            default None.
        dropout: fraction of input features dropped (one mask per sequence), default 0.0.
        recurrent_dropout: fraction of ``h_{t-1}`` dropped in the recurrent product, default 0.0
            (runs in the Python loop while training).
        return_sequences: return the whole sequence of outputs (default False).
        return_state: also return the final states: ``[output, h, c]`` (default False).
        go_backwards: process the sequence in reverse and return the reversed sequence (default False).

    Call: ``layer(inputs, initial_state=None, training=None)``; ``initial_state`` is ``[h, c]``,
    each of shape (batch, units).

    Shapes: ``(batch, timesteps, features)`` -> ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences=True``.
    Weights: kernel (features, 4*units), recurrent_kernel (units, 4*units), bias (4*units,).

    Example::

        lstm = LSTM(32, return_state=True)
        output, h, c = lstm(torch.randn(8, 20, 10))  # each (8, 32)
    """

    _GATES = 4
    _STATES = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_bias and self.unit_forget_bias:
            with torch.no_grad():  # Keras: bias = [init(units), ones(units), init(2 * units)]
                self.bias[self.units:2 * self.units] = 1.0

    def _step(self, projected_t, states, h_for_product):
        c_prev = states[1]
        z = projected_t + h_for_product @ self.recurrent_kernel  # (B, 4U)
        i, f, c, o = z.chunk(4, dim=-1)
        i, f, o = self.recurrent_activation(i), self.recurrent_activation(f), self.recurrent_activation(o)
        c = f * c_prev + i * self.activation(c)
        h = o * self.activation(c)
        return [h, c]

    def _fused(self, x, states):
        # torch's gate order i, f, g, o is Keras's i, f, c, o: only a transpose is needed.
        params = self._torch_params(self.kernel, self.recurrent_kernel, self.bias, None)
        hx = (states[0].unsqueeze(0), states[1].unsqueeze(0))  # (1, B, U) each
        sequence, h, c = _run_fused(torch.lstm, x, hx, params, self.use_bias)
        return sequence, [h[0], c[0]]

    def get_config(self):
        config = super().get_config()
        config.update(recurrent_activation=activations.serialize(self.recurrent_activation),
                      unit_forget_bias=self.unit_forget_bias)
        return config


def _zrh_to_rzh(w):
    """Reorder the gate blocks on the last axis from Keras's (z, r, h) to torch's (r, z, n)."""
    z, r, h = w.chunk(3, dim=-1)
    return torch.cat([r, z, h], dim=-1)


class GRU(_RNN):
    """Gated Recurrent Unit (Cho et al., 2014), Keras 3 equations and weights.

    ``z = σ(x W_z + h U_z + b_z)``, ``r = σ(x W_r + h U_r + b_r)``,
    ``hh = tanh(x W_h + r * (h U_h + b_rh) + b_ih)`` with ``reset_after=True`` (default, cuDNN's
    form) or ``tanh(x W_h + (r * h) U_h + b_h)`` with ``reset_after=False``;
    ``h_t = z * h_{t-1} + (1 - z) * hh``.

    Args:
        units: positive int, size of the output and of the state.
        activation: default "tanh"; recurrent_activation: default "sigmoid" (these defaults with
            ``reset_after=True`` and no active recurrent dropout run torch's fused ``torch.gru``).
        use_bias: default True.
        kernel_initializer: default "glorot_uniform"; recurrent_initializer: default "orthogonal";
            bias_initializer: default "zeros".
        kernel_regularizer / recurrent_regularizer / bias_regularizer / activity_regularizer:
            default None.
        dropout: fraction of input features dropped (one mask per sequence), default 0.0.
        recurrent_dropout: fraction of ``h_{t-1}`` dropped in the recurrent product, default 0.0
            (runs in the Python loop while training).
        return_sequences: return the whole sequence of outputs (default False).
        return_state: also return the final state: ``[output, h]`` (default False).
        go_backwards: process the sequence in reverse and return the reversed sequence (default False).
        reset_after: apply the reset gate after the recurrent matmul (default True, as Keras 3);
            then the bias has shape (2, 3*units): input bias and recurrent bias.

    Call: ``layer(inputs, initial_state=None, training=None)``; ``initial_state`` is a tensor
    (or a list of one) of shape (batch, units).

    Shapes: ``(batch, timesteps, features)`` -> ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences=True``.

    Example::

        gru = GRU(16, return_sequences=True)
        gru(torch.randn(4, 7, 3)).shape  # (4, 7, 16)
    """

    _GATES = 3
    _STATES = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, reset_after=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def _fusable(self):
        return super()._fusable() and self.reset_after

    def _step(self, projected_t, states, h_prev_for_product):
        h_prev = states[0]
        x_z, x_r, x_h = projected_t.chunk(3, dim=-1)
        U = self.recurrent_kernel
        u = self.units
        if self.reset_after:
            inner = h_prev_for_product @ U  # (B, 3U)
            if self.bias is not None:
                inner = inner + self.bias[1]
            r_z, r_r, r_h = inner.chunk(3, dim=-1)
            z = self.recurrent_activation(x_z + r_z)
            r = self.recurrent_activation(x_r + r_r)
            hh = self.activation(x_h + r * r_h)
        else:
            inner = h_prev_for_product @ U[:, :2 * u]  # (B, 2U)
            z = self.recurrent_activation(x_z + inner[:, :u])
            r = self.recurrent_activation(x_r + inner[:, u:])
            hh = self.activation(x_h + (r * h_prev_for_product) @ U[:, 2 * u:])
        h = z * h_prev + (1 - z) * hh
        return [h]

    def _fused(self, x, states):
        # torch's GRU is the reset_after form with separate input and hidden biases, gates (r, z, n).
        input_bias = _zrh_to_rzh(self.bias[0]) if self.use_bias else None
        recurrent_bias = _zrh_to_rzh(self.bias[1]) if self.use_bias else None
        params = self._torch_params(_zrh_to_rzh(self.kernel), _zrh_to_rzh(self.recurrent_kernel),
                                    input_bias, recurrent_bias)
        sequence, h = _run_fused(torch.gru, x, states[0].unsqueeze(0), params, self.use_bias)
        return sequence, [h[0]]

    def get_config(self):
        config = super().get_config()
        config.update(recurrent_activation=activations.serialize(self.recurrent_activation),
                      reset_after=self.reset_after)
        return config


_RECURRENT_CLASSES = {cls.__name__: cls for cls in (SimpleRNN, LSTM, GRU)}
_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _serialize_layer(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _deserialize_layer(config, custom_objects=None):
    if isinstance(config, Layer):
        return config
    if not isinstance(config, dict) or "class_name" not in config:
        raise KilnTypeError(f"Expected a layer or a dict {{'class_name': ..., 'config': {{...}}}}. Received: {config!r}")
    classes = {**_RECURRENT_CLASSES, **(custom_objects or {})}
    name = config["class_name"]
    if name not in classes:
        raise KilnValueError(f"Bidirectional cannot rebuild a layer of class {name!r}: known classes are "
                             f"{', '.join(sorted(classes))}. Pass custom_objects={{{name!r}: YourClass}}.")
    return classes[name].from_config(dict(config.get("config", {})))


def _strip(prefix, name):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards over the sequence, and merge.

    The forward layer is rebuilt from ``layer``'s config (fresh weights, named ``forward_<name>``);
    the backward layer is the same config with ``go_backwards=True`` (named ``backward_<name>``)
    unless ``backward_layer`` is given. With ``return_sequences`` the backward outputs are flipped
    back into time order before merging.

    Args:
        layer: a SimpleRNN, LSTM or GRU instance (or any kiln recurrent layer with the same config keys).
        merge_mode: "concat" (default), "sum", "mul", "ave", or None (return both outputs as a list).
        backward_layer: optional recurrent layer for the backward direction; it must have
            ``go_backwards`` different from ``layer`` and the same ``return_sequences``/``return_state``.

    Call: ``layer(inputs, initial_state=None, training=None)``; ``initial_state`` lists the
    forward states, then the backward states.

    Shapes: ``(batch, timesteps, features)`` -> ``(batch, [timesteps,] 2 * units)`` for "concat",
    ``units`` for the others. With ``return_state``: ``[output, *forward_states, *backward_states]``.

    Example::

        bi = Bidirectional(LSTM(16, return_sequences=True))
        bi(torch.randn(4, 7, 3)).shape  # (4, 7, 32)
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, _RNN):
            raise KilnTypeError("Bidirectional needs a recurrent layer instance such as LSTM(16). "
                                f"Received: layer={layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, _RNN):
            raise KilnTypeError("`backward_layer` must be a recurrent layer instance such as "
                                f"LSTM(16, go_backwards=True). Received: backward_layer={backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise KilnValueError(f"Received an invalid value for `merge_mode`, expected one of "
                                 f"{_MERGE_MODES}. Received: merge_mode={merge_mode!r}")
        super().__init__(**kwargs)
        config = layer.get_config()
        config["name"] = "forward_" + _strip("forward_", layer.name)
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = not layer.go_backwards
            config["name"] = "backward_" + _strip("backward_", _strip("forward_", layer.name))
            backward_layer = type(layer).from_config(config)
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise KilnValueError("The forward and backward layers of Bidirectional must have different "
                                 f"`go_backwards`. Received: go_backwards={self.forward_layer.go_backwards} for both.")
        for attr in ("return_sequences", "return_state"):
            fwd, bwd = getattr(self.forward_layer, attr), getattr(self.backward_layer, attr)
            if fwd != bwd:
                raise KilnValueError(f"The forward and backward layers of Bidirectional must have the same "
                                     f"`{attr}`. Received: {attr}={fwd} (forward), {attr}={bwd} (backward).")
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state

    def build(self, input_shape):
        for layer in (self.forward_layer, self.backward_layer):
            if not layer.built:
                layer.build(input_shape)
                layer.built = True
                layer._build_input_shape = input_shape
        self.built = True

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        if self.merge_mode is None:
            output_mask = [output_mask, output_mask]
        if self.return_state:
            n_states = self.forward_layer._STATES + self.backward_layer._STATES
            return (output_mask if isinstance(output_mask, list) else [output_mask]) + [None] * n_states
        return output_mask

    def call(self, inputs, initial_state=None, training=None, mask=None):
        forward_state = backward_state = None
        if initial_state is not None:
            initial_state = list(initial_state)
            half = len(initial_state) // 2
            if half == 0 or len(initial_state) != 2 * half:
                raise KilnValueError(f"Layer '{self.name}' (Bidirectional) expects `initial_state` to list the "
                                     "forward states then the backward states (an even number of tensors). "
                                     f"Received {len(initial_state)} tensors.")
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(inputs, initial_state=forward_state, training=training, mask=mask)
        y_rev = self.backward_layer(inputs, initial_state=backward_state, training=training, mask=mask)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev.flip(1)  # the backward layer returned its outputs in reversed time order
        if self.merge_mode == "concat":
            output = torch.cat([y, y_rev], dim=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = [y, y_rev]
        if self.return_state:
            return (output if isinstance(output, list) else [output]) + states
        return output

    def get_config(self):
        config = super().get_config()
        config.update(layer=_serialize_layer(self.forward_layer), merge_mode=self.merge_mode,
                      backward_layer=_serialize_layer(self.backward_layer))
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = _deserialize_layer(config["layer"], custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = _deserialize_layer(config["backward_layer"], custom_objects)
        return cls(**config)

    def extra_repr(self):
        return f"name={self.name!r}, merge_mode={self.merge_mode!r}"
