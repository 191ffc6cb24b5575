"""Per-step time of kiln's fit with and without jit_compile, compile time excluded.

Run: python bench/jit_steady_state.py

W1's model (Dense(64, relu) -> Dense(1), Adam, MSE + mae, batch 32) on 20,000 rows, one
thread: one epoch to warm up (and compile), then two timed epochs.
"""

import time

import numpy as np
import torch

import kiln
from kiln.layers import Dense


def main():
    torch.set_num_threads(1)
    g = np.random.default_rng(0)
    x = g.random((20_000, 10), dtype=np.float32)
    y = g.random((20_000, 1), dtype=np.float32)
    steps = 2 * len(x) // 32
    for jit in (False, True):
        kiln.utils.set_random_seed(0)
        model = kiln.Sequential([Dense(64, activation="relu", input_shape=(10,)), Dense(1)])
        model.compile(optimizer="adam", loss="mse", metrics=["mae"], jit_compile=jit, num_threads=None)
        start = time.perf_counter()
        model.fit(x, y, epochs=1, verbose=0)
        warm = time.perf_counter() - start
        start = time.perf_counter()
        model.fit(x, y, epochs=2, verbose=0)
        per_step = (time.perf_counter() - start) / steps
        print(f"jit_compile={jit!s:<5}  first epoch {warm:5.2f} s   then {per_step * 1e6:5.0f} us/step")


if __name__ == "__main__":
    main()
