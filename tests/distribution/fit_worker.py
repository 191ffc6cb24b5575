"""A Keras-style training script the distribution tests run, alone or under torchrun.

    python fit_worker.py OUT ROWS BATCH [--distributed]

Trains two tiny deterministic regressors (no Dropout, no BatchNorm, so N processes can
reproduce the one-process run), each with validation and metrics: a kiln Sequential through
``fit`` with batches of BATCH, and a plain ``nn.Module`` through ``kiln.Trainer`` with batches
of 2 (with an odd ROWS its last batch has one row: one of 2 ranks then gets none). Rank 0 writes OUT/{kind}.npz
(the weights); every rank writes OUT/{kind}-rank{r}.json (the history and an evaluation).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import kiln as keras


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("rows", type=int)
    parser.add_argument("batch", type=int)
    parser.add_argument("--distributed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank = 0
    if args.distributed:
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        rank = keras.distribution.distribution().rank
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 2)) + 0.1 * rng.normal(size=(args.rows, 2))).astype("float32")
    x_val, y_val = x[:37] * 0.5, y[:37]
    for kind in ("sequential", "module"):
        keras.utils.set_random_seed(7)
        if kind == "module":
            model = keras.Trainer(torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)))
        else:
            model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(16, activation="tanh"),
                                      keras.layers.Dense(2)])
        learning_rate = 0.05 if kind == "sequential" else 0.005  # batches of 2 need small steps to converge
        model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9), loss="mse", metrics=["mae", "r2_score"],
                      num_threads=1)
        batch_size = args.batch if kind == "sequential" else 2
        history = model.fit(x, y, batch_size=batch_size, epochs=3, validation_data=(x_val, y_val),
                            verbose=2 if kind == "sequential" else 0)
        evaluation = model.evaluate(x_val, y_val, batch_size=batch_size, return_dict=True, verbose=0)
        out = Path(args.out)
        (out / f"{kind}-rank{rank}.json").write_text(json.dumps({"history": history.history,
                                                                 "evaluation": evaluation}))
        if rank == 0:
            np.savez(out / f"{kind}.npz", *model.get_weights())


if __name__ == "__main__":
    main()
