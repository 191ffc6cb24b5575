"""LambdaCallback: a callback made of plain functions, one per hook, without a class.

The functions take the hook's positional arguments: ``on_epoch_begin/on_epoch_end(epoch,
logs)``, ``on_train_begin/on_train_end(logs)``, ``on_train_batch_begin/on_train_batch_end(batch,
logs)``; any other hook of ``Callback`` can be given by name. Only the hooks given are set,
so the trainer keeps skipping batch hooks that no function was given for.
"""

from __future__ import annotations

import functools
import inspect

from kiln.callbacks.callback import Callback
from kiln.errors import KilnTypeError, closest_match

__all__ = ["LambdaCallback"]

_HOOKS = sorted(name for name in vars(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """Build a callback from functions.

    Args:
        on_epoch_begin, on_epoch_end: ``f(epoch, logs)`` (default None).
        on_train_begin, on_train_end: ``f(logs)`` (default None).
        on_train_batch_begin, on_train_batch_end: ``f(batch, logs)`` (default None).
        **kwargs: any other hook by its name, e.g. ``on_test_end=f``.

    Example::

        log = open("loss.jsonl", "w")
        json_logger = LambdaCallback(
            on_epoch_end=lambda epoch, logs: log.write(json.dumps({"epoch": epoch, "loss": logs["loss"]}) + "\\n"),
            on_train_end=lambda logs: log.close())
        model.fit(x, y, epochs=5, callbacks=[json_logger])
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end, "on_train_begin": on_train_begin,
                 "on_train_end": on_train_end, "on_train_batch_begin": on_train_batch_begin,
                 "on_train_batch_end": on_train_batch_end, **kwargs}
        for name, fn in hooks.items():
            if name not in _HOOKS:
                hint = closest_match(name, _HOOKS)
                raise KilnTypeError(f"LambdaCallback received an unknown hook `{name}`."
                                    + (f" Did you mean `{hint}`?" if hint else "")
                                    + f" Valid hooks: {', '.join(_HOOKS)}.")
            if fn is None:
                continue
            if not callable(fn):
                raise KilnTypeError(f"LambdaCallback's `{name}` must be a function; received {fn!r}")
            # Set on the instance, as Keras does; the trainer's dispatch sees instance hooks.
            setattr(self, name, _with_logs(fn, name))


def _with_logs(fn, name):
    """Call ``fn`` with every positional argument of the hook, ``logs`` included.

    Why: a hook may be called without ``logs`` (``on_epoch_begin(epoch)``), but the functions
    are written as Keras documents them, ``lambda epoch, logs: ...``.
    """
    arity = len(inspect.signature(getattr(Callback, name)).parameters) - 1  # (logs) or (epoch/batch, logs)

    @functools.wraps(fn)
    def hook(*args, logs=None):
        if len(args) < arity:
            args = args + (logs,)
        return fn(*args)
    return hook
