"""JSONLLogger: one line per epoch, rebuilt from the fit's history (so a resumed run has each epoch once)."""

import json

import numpy as np

import kiln
from kiln.layers import Dense


class Crash(Exception):
    pass


class CrashAtEpoch(kiln.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Crash()


def test_a_resumed_run_writes_each_epoch_once(tmp_path):
    g = np.random.default_rng(0)
    x = g.random((20, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)

    def model():
        kiln.utils.set_random_seed(0)
        m = kiln.Sequential([Dense(1, input_shape=(2,))])
        m.compile(optimizer="sgd", loss="mse", num_threads=1)
        return m

    log = tmp_path / "log.jsonl"
    backup = tmp_path / "backup"
    try:
        model().fit(x, y, epochs=3, batch_size=5, verbose=0,
                    callbacks=[kiln.callbacks.BackupAndRestore(backup), kiln.callbacks.JSONLLogger(log),
                               CrashAtEpoch(2)])
    except Crash:
        pass
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2]
    history = model().fit(x, y, epochs=3, batch_size=5, verbose=0,
                          callbacks=[kiln.callbacks.BackupAndRestore(backup), kiln.callbacks.JSONLLogger(log)])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["loss"] for r in rows] == history.history["loss"]
