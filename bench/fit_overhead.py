"""kiln's fit/predict against a tuned hand-written PyTorch loop, in one process, alternately.

Run: python bench/fit_overhead.py [--repeats 3] [--quick]

The hand-written loop is what a careful PyTorch user writes: one shuffle per epoch then
slices (views), fused Adam, zero_grad(set_to_none=True), no per-step .item(); like kiln's
log line it keeps the epoch's loss and MAE, accumulated on the device and read once per
epoch. Both sides train the same model from the same initial weights on the same data.
Printed: seconds per run (median of --repeats, alternating sides) and the ratio
kiln / hand-written, against the loop on torch's default thread count and against the
same loop pinned to one thread (kiln picks its own thread count; see
kiln/training/threads.py). Short workloads are repeated 3x as often, since a 2-core VM's
noise is a larger share of a short run.

Workloads (issue 2):
  W1  X 200,000 x 10, Dense(64, relu) -> Dense(1), Adam 1e-3, MSE, metric mae, batch 32, 3 epochs
  W2  the same at batch 1024 for 20 epochs
  W3  a small CNN on scikit-learn's digits (8x8x1), batch 32, 5 epochs, sparse CE, accuracy
  P1  predict on W1's X (batch 32... Keras's default batch size)
  W1-jit  W1 with compile(jit_compile=True) (kiln) vs the eager hand-written loop
  W3-jit  W3 likewise

jit times include torch.compile's compile (a few seconds, cached on disk between runs).
  W1-jit-steady  W1 with jit_compile=True after the compile: the model is compiled and
          warmed on one short fit first, then the same 3 epochs are timed (the per-step
          speed a long run sees).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import kiln  # noqa: E402
from kiln.layers import Dense  # noqa: E402


# ---------------------------------------------------------------------- data
def w1_data(n=200_000):
    g = np.random.default_rng(0)
    x = g.random((n, 10), dtype=np.float32)
    y = (x @ g.random((10, 1), dtype=np.float32) + 0.1 * g.standard_normal((n, 1), dtype=np.float32)).astype(np.float32)
    return x, y


def digits_data():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1) channels_last
    return x, d.target.astype(np.int64)


# ---------------------------------------------------------------------- models
def mlp():
    return kiln.Sequential([Dense(64, activation="relu", input_shape=(10,)), Dense(1)])


def cnn():
    from kiln.layers import Conv2D, Flatten, MaxPooling2D
    return kiln.Sequential([Conv2D(16, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
                            MaxPooling2D(2), Conv2D(32, 3, activation="relu", padding="same"),
                            MaxPooling2D(2), Flatten(), Dense(64, activation="relu"), Dense(10)])


# ---------------------------------------------------------------------- hand-written loop
def hand_fit(model, x, y, *, epochs, batch_size, loss_fn, metric_fn, seed):
    """The tuned loop; ``model`` is the same kiln Sequential (a plain nn.Module here)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, fused=True)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        xs, ys = x[perm], y[perm]
        loss_sum = torch.zeros(())
        metric_sum = torch.zeros(())
        for i in range(0, n, batch_size):
            xb, yb = xs[i:i + batch_size], ys[i:i + batch_size]
            pred = model(xb)
            loss = loss_fn(pred, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * xb.shape[0]
            metric_sum += metric_fn(pred.detach(), yb)
        float(loss_sum) / n, float(metric_sum) / n  # read once per epoch, as kiln's log line does
    return model


def hand_predict(model, x, batch_size=32):
    x = torch.from_numpy(x)
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    return out.numpy()


mse = lambda p, y: F.mse_loss(p, y)  # noqa: E731
mae_sum = lambda p, y: (p - y).abs().sum()  # noqa: E731
ce = lambda p, y: F.cross_entropy(p, y)  # noqa: E731
acc_sum = lambda p, y: (p.argmax(-1) == y).sum()  # noqa: E731


# ---------------------------------------------------------------------- kiln side
def kiln_fit(model, x, y, *, epochs, batch_size, loss, metric, jit=False):
    model.compile(optimizer=kiln.optimizers.Adam(1e-3), loss=loss, metrics=[metric], jit_compile=jit, device="cpu")
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one_thread(fn):
    """Run ``fn`` with torch on one thread: the hand-written loop given kiln's thread choice."""
    def run(model):
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(model)
        finally:
            torch.set_num_threads(previous)
    return run


def compare(name, make_model, kiln_run, hand_run, repeats):
    """Median seconds of kiln, the hand-written loop (torch's default threads), and the
    hand-written loop on one thread; ratios against both."""
    repeats = repeats * 3 if name in ("W3", "P1") else repeats
    kiln.utils.set_random_seed(0)
    base = make_model()
    k_times, h_times, h1_times = [], [], []
    for _ in range(repeats):  # alternate, so drifts in machine speed hit every side
        k_times.append(timed(lambda: kiln_run(copy.deepcopy(base))))
        h_times.append(timed(lambda: hand_run(copy.deepcopy(base))))
        h1_times.append(timed(lambda: one_thread(hand_run)(copy.deepcopy(base))))
    k, h, h1 = (statistics.median(t) for t in (k_times, h_times, h1_times))
    print(f"{name:<7} kiln {k:7.3f}s | hand-written {h:7.3f}s ratio {k / h:5.2f} | "
          f"hand-written 1 thread {h1:7.3f}s ratio {k / h1:5.2f}", flush=True)
    return name, k, h, h1


def compare_steady(name, make_model, x, y, repeats):
    """kiln with jit_compile, compiled and warmed before timing, against the hand-written loop."""
    kiln.utils.set_random_seed(0)
    base = make_model()
    k_times, h_times, h1_times = [], [], []
    for _ in range(repeats):
        warm = copy.deepcopy(base)
        warm.compile(optimizer=kiln.optimizers.Adam(1e-3), loss="mse", metrics=["mae"], jit_compile=True,
                     device="cpu")
        warm.fit(x[:3200], y[:3200], epochs=1, batch_size=32, verbose=0)  # compiles; same shapes as below
        k_times.append(timed(lambda: warm.fit(x, y, epochs=3, batch_size=32, verbose=0)))
        h_times.append(timed(lambda: hand_fit(copy.deepcopy(base), x, y, epochs=3, batch_size=32, loss_fn=mse,
                                              metric_fn=mae_sum, seed=0)))
        h1_times.append(timed(lambda: one_thread(lambda m: hand_fit(m, x, y, epochs=3, batch_size=32, loss_fn=mse,
                                                                    metric_fn=mae_sum, seed=0))(copy.deepcopy(base))))
    k, h, h1 = (statistics.median(t) for t in (k_times, h_times, h1_times))
    print(f"{name:<7} kiln {k:7.3f}s | hand-written {h:7.3f}s ratio {k / h:5.2f} | "
          f"hand-written 1 thread {h1:7.3f}s ratio {k / h1:5.2f}", flush=True)
    return name, k, h, h1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)  # the hand-written side runs with torch's default
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, kiln {kiln.__version__}, torch threads {torch.get_num_threads()}")
    x1, y1 = w1_data(20_000 if args.quick else 200_000)
    xd, yd = digits_data()
    runs = {
        "W1": lambda: compare("W1", mlp,
                              lambda m: kiln_fit(m, x1, y1, epochs=3, batch_size=32, loss="mse", metric="mae"),
                              lambda m: hand_fit(m, x1, y1, epochs=3, batch_size=32, loss_fn=mse, metric_fn=mae_sum, seed=0),
                              args.repeats),
        "W2": lambda: compare("W2", mlp,
                              lambda m: kiln_fit(m, x1, y1, epochs=20, batch_size=1024, loss="mse", metric="mae"),
                              lambda m: hand_fit(m, x1, y1, epochs=20, batch_size=1024, loss_fn=mse, metric_fn=mae_sum, seed=0),
                              args.repeats),
        "W3": lambda: compare("W3", cnn,
                              lambda m: kiln_fit(m, xd, yd, epochs=5, batch_size=32,
                                                 loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True),
                                                 metric="accuracy"),
                              lambda m: hand_fit(m, xd, yd, epochs=5, batch_size=32, loss_fn=ce, metric_fn=acc_sum, seed=0),
                              args.repeats),
        "P1": lambda: compare("P1", mlp, lambda m: m.predict(x1, batch_size=32, verbose=0),
                              lambda m: hand_predict(m, x1, 32), args.repeats),
        "W3-jit": lambda: compare("W3-jit", cnn,
                                  lambda m: kiln_fit(m, xd, yd, epochs=5, batch_size=32,
                                                     loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True),
                                                     metric="accuracy", jit=True),
                                  lambda m: hand_fit(m, xd, yd, epochs=5, batch_size=32, loss_fn=ce, metric_fn=acc_sum, seed=0),
                                  args.repeats),
        "W1-jit": lambda: compare("W1-jit", mlp,
                                  lambda m: kiln_fit(m, x1, y1, epochs=3, batch_size=32, loss="mse", metric="mae", jit=True),
                                  lambda m: hand_fit(m, x1, y1, epochs=3, batch_size=32, loss_fn=mse, metric_fn=mae_sum, seed=0),
                                  args.repeats),
        "W1-jit-steady": lambda: compare_steady("W1-jit-steady", mlp, x1, y1, args.repeats),
    }
    for name, run in runs.items():
        if args.only is None or name in args.only:
            run()


if __name__ == "__main__":
    main()
