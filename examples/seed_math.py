"""The seed article's §4.3 worked example, fully specified and computed correctly.

Run: python examples/seed_math.py        (about 3 s on a CPU; exit code 0 when every check passes)

The seed's network: 2 inputs, 3 ReLU hidden units, 1 sigmoid output, binary cross-entropy, one
sample x = (0.5, 0.5) with label y = 0, learning rate 0.1. The seed gives only part of the weights,
so we complete them (the seed's numbers are kept, nothing else is invented):

    Notation. §4.2 writes the output layer as z^(3)_k = sum_i w^(3)_ik a_i, so the first index is
    the unit the weight comes *from* and the second the unit it goes *to*; w^(3)_11, w^(3)_21,
    w^(3)_31 = 0.5, 0.6, 0.7 are then the weights from hidden units 1, 2, 3 to the output. Read
    the same way, w^(2)_11, w^(2)_12, w^(2)_13 = 0.1, 0.2, 0.3 are the weights from input 1 to
    hidden units 1, 2, 3. This is also Keras's kernel layout: kernel[from, to].

    Missing weights. Input 2's weights are not given; each hidden unit i gets the same weight
    from input 2 as from input 1, w^(2)_2i = w^(2)_1i (the seed's example multiplies every
    weight by 0.5 as if all inputs were alike, and x1 = x2 here anyway).

    Missing biases. Only b^(2)_1 = 0.1 is given; every hidden unit gets it: b^(2) = (0.1, 0.1, 0.1).

    Hidden layer  kernel (2, 3) = [[0.1, 0.2, 0.3],      bias (3,) = [0.1, 0.1, 0.1]
                                   [0.1, 0.2, 0.3]]
    Output layer  kernel (3, 1) = [[0.5], [0.6], [0.7]]  bias (1,) = [0.1]

The script prints every z, a, delta and gradient from the §4.2 formulas (kiln.explain.trace),
checks each against torch autograd, takes one gradient-descent step (checked against autograd),
and then recomputes the seed's §4.3 numbers to show where and why they are wrong.
docs/seed_math.md has the same results as a table.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

import kiln
from kiln.explain import trace

TOLERANCE = 1e-6
LEARNING_RATE = 0.1

HIDDEN_KERNEL = [[0.1, 0.2, 0.3],  # from x1 to hidden units 1, 2, 3: the seed's w^(2)_11, _12, _13
                 [0.1, 0.2, 0.3]]  # from x2: not in the seed; the same as from x1 (our choice)
HIDDEN_BIAS = [0.1, 0.1, 0.1]  # the seed's b^(2)_1 = 0.1, given to every hidden unit (our choice)
OUTPUT_KERNEL = [[0.5], [0.6], [0.7]]  # the seed's w^(3)_11, w^(3)_21, w^(3)_31
OUTPUT_BIAS = [0.1]  # the seed's b^(3)_1
X = [[0.5, 0.5]]
Y = [[0.0]]


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 74 - len(title)))


def check(label: str, difference: float) -> None:
    """Print a difference against autograd and stop the script if it is too large."""
    print(f"  {label:<34} max |difference| = {difference:.2e}")
    assert difference < TOLERANCE, f"{label}: differs from autograd by {difference}"


def build_model() -> kiln.Sequential:
    model = kiln.Sequential([kiln.layers.Dense(3, activation="relu", input_shape=(2,)),
                             kiln.layers.Dense(1, activation="sigmoid")])
    hidden, output = model.layers
    hidden.set_weights([np.array(HIDDEN_KERNEL), np.array(HIDDEN_BIAS)])
    output.set_weights([np.array(OUTPUT_KERNEL), np.array(OUTPUT_BIAS)])
    return model


def one_step_with_autograd(model: kiln.Sequential) -> list[np.ndarray]:
    """W <- W - lr dL/dW with dL/dW from loss.backward(), on a copy of the model."""
    clone = copy.deepcopy(model).to(torch.float64)
    loss = kiln.losses.get("binary_crossentropy")(torch.tensor(Y, dtype=torch.float64),
                                            clone(torch.tensor(X, dtype=torch.float64)))
    loss.backward()
    with torch.no_grad():
        for p in clone.parameters():
            p -= LEARNING_RATE * p.grad
    return [w for layer in clone.layers for w in layer.get_weights()]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(np.asarray(u, dtype=np.float64) - np.asarray(v, dtype=np.float64)).max())
               for u, v in zip(a, b))


def seed_errors(t) -> None:
    """Recompute each number of the seed's §4.3 and compare it with the right one."""
    sigmoid = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    hidden, output = t.layers
    z2, a2, d2 = hidden.z[0].tolist(), hidden.a[0].tolist(), hidden.delta[0].tolist()
    z3, y_hat, d3 = float(output.z[0, 0]), float(output.a[0, 0]), float(output.delta[0, 0])
    close = math.isclose

    # 1. z^(2)_1 = 0.1*0.5 + 0.2*0.5 + 0.3*0.5 "= 0.15".
    seed_z2 = 0.15
    own_z2 = 0.1 * 0.5 + 0.2 * 0.5 + 0.3 * 0.5
    assert close(own_z2, 0.3) and not close(own_z2, seed_z2)
    # 2. a^(2)_1 = ReLU(z^(2)_1) "= 0.15": ReLU is right, the input to it is not.
    # 3. z^(3)_1 = 0.5*0.15 + 0.6*0.15 + 0.7*0.15 "= 0.15".
    seed_z3 = 0.15
    own_z3 = 0.5 * 0.15 + 0.6 * 0.15 + 0.7 * 0.15
    assert close(own_z3, 0.27) and not close(own_z3, seed_z3)
    # 4. y_hat = ReLU(z^(3)_1) "= 0.15": §4.2 and a binary classifier need the sigmoid.
    seed_y_hat = 0.15
    sigmoid_of_seed_z3 = sigmoid(seed_z3)
    # 5. delta^(3) = y_hat (1 - y_hat)(y - y_hat) = 0.15 * 0.85 * (0 - 0.15) "= -0.01125".
    seed_d3 = -0.01125
    own_d3 = 0.15 * 0.85 * (0 - 0.15)
    assert close(own_d3, -0.019125) and not close(own_d3, seed_d3)
    # The seed's formula is minus the delta of the squared error 0.5 (y - y_hat)^2 at a sigmoid
    # output: d/dz 0.5 (y - s(z))^2 = -(y - s) s (1 - s). Check that sign with autograd.
    z = torch.tensor(0.66, dtype=torch.float64, requires_grad=True)
    (0.5 * (0.0 - torch.sigmoid(z)) ** 2).backward()
    s = sigmoid(0.66)
    assert close(float(z.grad), -(s * (1 - s) * (0.0 - s)))
    # 6. delta^(2)_1 = 0.15*0.85*(0.5 + 0.6 + 0.7)*(-0.01125) "= -0.00338".
    seed_d2 = -0.00338
    own_d2 = 0.15 * 0.85 * (0.5 * -0.01125 + 0.6 * -0.01125 + 0.7 * -0.01125)
    own_d2_fixed_d3 = 0.15 * 0.85 * (0.5 + 0.6 + 0.7) * own_d3
    assert not close(own_d2, seed_d2, abs_tol=5e-6) and not close(own_d2_fixed_d3, seed_d2, abs_tol=5e-6)
    # 7. §4.1.3's loss -sum y log y_hat is zero for y = 0, whatever y_hat: nothing to learn from.
    seed_loss = -(0.0 * math.log(y_hat))
    bce = -(0.0 * math.log(y_hat) + 1.0 * math.log(1.0 - y_hat))
    assert seed_loss == 0.0 and close(bce, t.loss, rel_tol=1e-9)

    print("The seed's §4.3 numbers, recomputed (seed -> its own expression done right -> this network):")
    rows = [
        ("z^(2)_1", f"{seed_z2}", f"{own_z2:.6g}", f"{z2[0]:.6g}  (all: {', '.join(f'{v:.6g}' for v in z2)})",
         "0.05 + 0.10 + 0.15 = 0.3, not 0.15. It also adds three weights times 0.5 as if one unit had "
         "three inputs (there are two), and drops the bias b^(2)_1 = 0.1. Unit i: w_1i x1 + w_2i x2 + b_i."),
        ("a^(2)_1 = ReLU(z^(2)_1)", f"{seed_z2}", f"{max(own_z2, 0):.6g}",
         f"{a2[0]:.6g}  (all: {', '.join(f'{v:.6g}' for v in a2)})",
         "Follows the wrong z. Then z^(3) uses 0.15 for all three hidden units, which differ."),
        ("z^(3)_1", f"{seed_z3}", f"{own_z3:.6g}", f"{z3:.6g}",
         "0.075 + 0.09 + 0.105 = 0.27, not 0.15; drops b^(3)_1 = 0.1; uses a^(2)_1 for every unit. "
         "Right: 0.5*0.2 + 0.6*0.3 + 0.7*0.4 + 0.1."),
        ("y_hat", f"{seed_y_hat} (ReLU)", f"{sigmoid_of_seed_z3:.6g} = sigmoid(0.15)", f"{y_hat:.6g}",
         "Applies ReLU at the output; a binary classifier (and §4.2) uses the sigmoid."),
        ("loss", "-sum y log y_hat", f"{seed_loss:.6g}", f"{t.loss:.6g}",
         "With y = 0 the categorical form is 0 for any y_hat. Binary: -[y log y_hat + (1-y) log(1-y_hat)]."),
        ("delta^(3)", f"{seed_d3}", f"{own_d3:.6g}", f"{d3:.6g}",
         "0.15*0.85*(-0.15) = -0.019125. The formula y_hat(1-y_hat)(y-y_hat) is the squared-error delta "
         "with the sign flipped; for sigmoid + cross-entropy dL/dz = y_hat - y."),
        ("delta^(2)_1", f"{seed_d2}", f"{own_d2:.6g} (with -0.019125: {own_d2_fixed_d3:.6g})",
         f"{d2[0]:.6g}  (all: {', '.join(f'{v:.6g}' for v in d2)})",
         "Matches neither. Uses a(1-a), the sigmoid derivative, but the hidden unit is ReLU: "
         "1[z>0]. Sums w^(3) of all three hidden units, where unit 1 has only w^(3)_11: "
         "delta^(2)_i = 1[z_i>0] w^(3)_i1 delta^(3)."),
    ]
    for name, seed, own, right, why in rows:
        print(f"- {name}\n    seed: {seed}\n    seed's expression recomputed: {own}\n"
              f"    correct (this network): {right}\n    why: {why}")
    print("- §4.2.2 step 3, delta^(1)_j = x_j(1-x_j)...: the input layer has no activation and no weights"
          " below it; no input delta is needed to train (and x(1-x) is the sigmoid derivative again).")
    print("- §4.3.2 step 3 names dL/dw without its value: dL/dW^(l) = a^(l-1)^T delta^(l) (printed above).")


def main() -> None:
    torch.set_printoptions(precision=6)
    model = build_model()
    x, y = torch.tensor(X), torch.tensor(Y)

    section("the network (the seed's §4.3, completed)")
    print(model)
    print("hidden kernel (from input j to hidden unit i) =", HIDDEN_KERNEL, " bias =", HIDDEN_BIAS)
    print("output kernel (from hidden unit i to output)  =", OUTPUT_KERNEL, " bias =", OUTPUT_BIAS)
    print(f"sample x = {X[0]}, label y = {Y[0][0]:g}, loss = binary cross-entropy, learning rate = {LEARNING_RATE}")

    section("forward and backward by the §4.2 formulas")
    t = trace(model, x, y, loss="binary_crossentropy")
    print(t.to_text())
    hidden, output = t.layers
    print("\nsummary")
    row = lambda v: "(" + ", ".join(f"{e:.6f}" for e in v[0].tolist()) + ")"  # noqa: E731
    print(f"  z^(2) = {row(hidden.z)}  ->  a^(2) = ReLU(z^(2)) = {row(hidden.a)}")
    print(f"  z^(3) = {float(output.z[0, 0]):.6f}  ->  y_hat = sigmoid(z^(3)) = {float(output.a[0, 0]):.6f}")
    print(f"  loss = -log(1 - y_hat) = {t.loss:.6f}")
    print(f"  delta^(3) = y_hat - y = {float(output.delta[0, 0]):.6f}")
    print(f"  delta^(2) = 1[z^(2) > 0] * w^(3) * delta^(3) = {row(hidden.delta)}")
    print(f"  dL/dW^(3) = a^(2) * delta^(3) = {row(output.grad_kernel.T)},  dL/db^(3) = {float(output.grad_bias[0]):.6f}")
    print(f"  dL/dW^(2) = x^T delta^(2): each input row = {row(hidden.grad_kernel[:1])},  dL/db^(2) = {row(hidden.grad_bias[None])}")

    section("checked against torch autograd")
    for key, difference in t.check_against_autograd(model).items():
        check(key, difference)

    section(f"one gradient-descent step, learning rate {LEARNING_RATE}: W <- W - lr dL/dW")
    new = t.updated_weights(LEARNING_RATE)
    for name, value in zip(["hidden kernel", "hidden bias", "output kernel", "output bias"], new):
        print(f"  new {name:<14} = {np.array2string(value, precision=6, separator=', ')}".replace("\n", " "))
    check("step vs autograd + manual SGD", max_diff(new, one_step_with_autograd(model)))
    clone = copy.deepcopy(model)
    for layer, (kernel, bias) in zip(clone.layers, zip(new[::2], new[1::2])):
        layer.set_weights([kernel, bias])
    after = trace(clone, x, y)
    print(f"  loss after the step: {after.loss:.6f} (before: {t.loss:.6f}); y_hat {float(after.y_pred[0, 0]):.6f}")
    assert after.loss < t.loss

    section("where the seed's §4.3 numbers are wrong")
    seed_errors(t)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
