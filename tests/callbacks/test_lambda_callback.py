"""LambdaCallback: the given functions run at their hooks, and the trainer sees batch hooks."""

import numpy as np
import pytest

from kiln.callbacks.callback import Callback, CallbackList
from kiln.callbacks.lambda_callback import LambdaCallback
from kiln.errors import KilnTypeError


def test_given_functions_run_with_the_hook_arguments():
    calls = []
    cb = LambdaCallback(on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch, logs)),
                        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs)),
                        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
                        on_train_end=lambda logs: calls.append(("train_end", logs)),
                        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch, logs)),
                        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs)))
    cbs = CallbackList([cb])
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.batch_hook("on_train_batch_begin", 0)
    cbs.batch_hook("on_train_batch_end", 0, {"loss": 1.0})
    cbs.on_epoch_end(0, {"loss": 1.0})
    cbs.on_train_end({"loss": 1.0})
    assert calls == [("train_begin", None), ("epoch_begin", 0, None), ("batch_begin", 0, None),
                     ("batch_end", 0, {"loss": 1.0}), ("epoch_end", 0, {"loss": 1.0}), ("train_end", {"loss": 1.0})]


def test_hooks_not_given_stay_the_base_no_ops():
    cb = LambdaCallback(on_epoch_end=lambda epoch, logs: None)
    assert cb.on_train_begin() is None
    assert "on_train_begin" not in vars(cb)
    cbs = CallbackList([cb])
    assert not cbs.wants("on_train_batch_end") and not cbs.wants("on_train_batch_begin")


def test_batch_hooks_given_are_dispatched_by_the_trainer():
    assert CallbackList([LambdaCallback(on_train_batch_end=lambda b, logs: None)]).wants("on_train_batch_end")
    assert CallbackList([LambdaCallback(on_train_batch_begin=lambda b, logs: None)]).wants("on_train_batch_begin")
    assert CallbackList([LambdaCallback(on_test_batch_end=lambda b, logs: None)]).wants("on_test_batch_end")


def test_keras2_on_batch_end_alias_runs_on_train_batches():
    seen = []
    cbs = CallbackList([LambdaCallback(on_batch_end=lambda batch, logs: seen.append(batch))])
    assert cbs.wants("on_train_batch_end")
    cbs.batch_hook("on_train_batch_end", 4)
    assert seen == [4]


def test_ordinary_callbacks_keep_the_class_check():
    class OnlyEpochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    assert not CallbackList([OnlyEpochs()]).wants("on_train_batch_end")
    assert CallbackList([Batches()]).wants("on_train_batch_end")


def test_unknown_hook_names_are_rejected_with_a_suggestion():
    with pytest.raises(KilnTypeError, match="on_epoch_ends.*Did you mean `on_epoch_end`"):
        LambdaCallback(on_epoch_ends=lambda epoch, logs: None)
    with pytest.raises(KilnTypeError, match="must be a function"):
        LambdaCallback(on_epoch_end="print")


def test_fit_calls_each_given_hook():
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential

    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = Sequential([Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    events = []
    cb = LambdaCallback(on_train_begin=lambda logs: events.append("train_begin"),
                        on_epoch_begin=lambda epoch, logs: events.append(f"epoch_begin {epoch}"),
                        on_train_batch_end=lambda batch, logs: events.append(f"batch {batch} {logs['loss'] > 0}"),
                        on_epoch_end=lambda epoch, logs: events.append(f"epoch_end {epoch} {sorted(logs)}"),
                        on_train_end=lambda logs: events.append("train_end"))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    epoch = ["batch 0 True", "batch 1 True", "batch 2 True"]  # 40 samples in batches of 16
    assert events == (["train_begin", "epoch_begin 0"] + epoch + ["epoch_end 0 ['loss']", "epoch_begin 1"]
                      + epoch + ["epoch_end 1 ['loss']", "train_end"])
