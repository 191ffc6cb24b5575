"""Callback base class and the list that dispatches hooks, with Keras's hook names.

Why the dispatch is selective: a training step on a small model takes tens of
microseconds, so calling every callback's empty ``on_train_batch_end`` on every step
would cost a visible share. ``CallbackList`` calls a batch hook only on callbacks that
override it, and batch ``logs`` are lazy: values are read from the device (a host sync)
only when a callback actually looks at them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Callback", "CallbackList", "LazyLogs"]

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class: override the hooks you need. ``self.model`` is the model being trained;
    ``self.params`` holds ``epochs``, ``steps`` and ``verbose``.

    What a callback may use of the model during ``fit``: ``self.model.fit_state`` (a
    ``kiln.training.FitState``: epoch, step, history, logs, resume point), the stop flag
    ``self.model.stop_training``, ``training_state()`` / ``restore_training_state()`` for
    checkpoints, and the usual model API (``optimizer``, ``state_dict``, ``save``). These work
    the same on a kiln Model and on a ``kiln.Trainer`` around a plain module."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...

    # Keras 2 names, still used by many programs.
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


def _overrides(callback: Callback, hook: str) -> bool:
    if getattr(type(callback), hook, None) is not getattr(Callback, hook):
        return True
    # A hook set on the instance counts too (LambdaCallback's functions, ModelCheckpoint's
    # batch saving). Only reached for callbacks whose class leaves the hook alone.
    return hook in getattr(callback, "__dict__", ())


class LazyLogs(Mapping):
    """A dict-like view of running logs that computes its values on first access."""

    def __init__(self, compute: Callable[[], dict]):
        self._compute = compute
        self._values: dict | None = None

    def _get(self) -> dict:
        if self._values is None:
            self._values = self._compute()
        return self._values

    def __getitem__(self, key):
        return self._get()[key]

    def __iter__(self):
        return iter(self._get())

    def __len__(self):
        return len(self._get())

    def __repr__(self):
        return repr(self._get())


class CallbackList:
    """Calls each hook on every callback, batch hooks only on those that define them."""

    def __init__(self, callbacks=None, *, model=None, params: dict | None = None):
        self.callbacks: list[Callback] = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                from kiln.errors import KilnTypeError
                raise KilnTypeError(f"callbacks must be kiln.callbacks.Callback instances; received {cb!r}")
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(dict(params or {}))
        self._batch_users = {hook: [cb for cb in self.callbacks if _overrides(cb, hook)] for hook in _BATCH_HOOKS}
        # Keras 2's on_batch_* are aliases of on_train_batch_*.
        for alias, hook in (("on_batch_begin", "on_train_batch_begin"), ("on_batch_end", "on_train_batch_end")):
            for cb in self.callbacks:
                if _overrides(cb, alias) and cb not in self._batch_users[hook]:
                    self._batch_users[hook].append(cb)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def wants(self, hook: str) -> bool:
        return bool(self._batch_users[hook])

    def batch_hook(self, hook: str, batch: int, logs: Any = None) -> None:
        for cb in self._batch_users[hook]:
            getattr(cb, hook)(batch, logs)
            if hook == "on_train_batch_begin" and _overrides(cb, "on_batch_begin"):
                cb.on_batch_begin(batch, logs)
            elif hook == "on_train_batch_end" and _overrides(cb, "on_batch_end"):
                cb.on_batch_end(batch, logs)

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call_all(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call_all
