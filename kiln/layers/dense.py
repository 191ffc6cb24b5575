"""Dense: the fully connected layer, ``activation(inputs @ kernel + bias)`` (seed §4.1.1).

The kernel is stored in Keras's layout, shape ``(input_dim, units)``, so ``get_weights()``
matches Keras and the seed's ``z_i = sum_j w_ij x_j + b_i`` reads off ``kernel[j, i]``.
Inputs of any rank work: the product is taken over the last axis, as in Keras.
"""

from __future__ import annotations

import torch

from kiln import activations, constraints, initializers, regularizers
from kiln.errors import KilnValueError, ShapeError
from kiln.layers.layer import Layer

__all__ = ["Dense"]


class Dense(Layer):
    """Densely connected layer.

    Args:
        units: positive int, size of the output's last axis.
        activation: name or callable (default None: linear).
        use_bias: add a bias vector (default True).
        kernel_initializer: default "glorot_uniform"; bias_initializer: default "zeros".
        kernel_regularizer / bias_regularizer / activity_regularizer: penalties added to the loss.
        kernel_constraint / bias_constraint: projections applied after each optimizer step
            (kiln.constraints; the kernel is (in, units) as in Keras, so axis=0 is per unit).

    Shapes: ``(batch, ..., input_dim)`` -> ``(batch, ..., units)``.

    Example::

        Dense(64, activation="relu", input_shape=(10,))
    """

    supports_masking = True  # elementwise over features: a timestep mask passes through

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise KilnValueError(f"Received an invalid value for `units`, expected a positive integer. "
                                 f"Received: units={units!r}")
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ShapeError(f"Layer '{self.name}' (Dense) needs a known last axis; received shape {input_shape}.")
        self.kernel = self.add_weight("kernel", (input_dim, self.units), self.kernel_initializer,
                                      self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        # A wrong last axis makes torch raise; Layer.forward turns that into a ShapeError
        # naming this layer, so the hot path carries no check of its own.
        if inputs.dim() == 2 and self.bias is not None:
            return self.activation(torch.addmm(self.bias, inputs, self.kernel))  # one fused op
        outputs = torch.matmul(inputs, self.kernel)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
        )
        # Written only when set, so a Dense without constraints saves the same config as kiln 0.1 did.
        for key in ("kernel_constraint", "bias_constraint"):
            if getattr(self, key) is not None:
                config[key] = constraints.serialize(getattr(self, key))
        return config

    def extra_repr(self):
        in_dim = self.kernel.shape[0] if self.built else "?"
        return f"name={self.name!r}, in={in_dim}, units={self.units}"
