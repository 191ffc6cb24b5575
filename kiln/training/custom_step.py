"""Keras 3's overridable steps: a Model's own ``train_step`` / ``test_step`` / ``predict_step``.

Why a second loop: kiln's fast loop (kiln/training/trainer.py) fuses loss, backward and
metric updates and reads results once per epoch; a user's ``train_step`` instead owns the
whole step (``self.zero_grad()``, ``self.compute_loss(...)``, ``loss.backward()``,
``self.optimizer.apply(...)``, ``self.metrics``) and returns the logs, as in Keras's guide
"Customizing what happens in fit() with PyTorch". The Trainer decides once per call which
loop to use (``uses_custom_steps``), so models that override nothing keep the fast path.

Contract (Keras 3, torch backend):
- a step receives one batch packed as Keras packs it: ``x`` alone, ``(x, y)`` or
  ``(x, y, sample_weight)`` (``unpack_x_y_sample_weight`` undoes it);
- ``train_step``/``test_step`` return a dict of logs (floats, scalar tensors or metric results);
  the epoch's logs are the last step's, as Keras's metrics are running means;
- ``model.metrics`` are reset at the start of every epoch and every evaluation.
"""

from __future__ import annotations

import itertools

import torch

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["pack_x_y_sample_weight", "unpack_x_y_sample_weight", "uses_custom_steps", "overrides"]


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """One batch as Keras hands it to a step: ``x``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from a packed batch (missing parts are None), as Keras's."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) in (1, 2, 3):
        return tuple(data) + (None,) * (3 - len(data))
    raise KilnValueError(f"A batch must be x, (x,), (x, y) or (x, y, sample_weight); received a tuple of "
                         f"{len(data)} entries. Return at most three from your dataset.")


def overrides(model, method: str) -> bool:
    """True when ``model``'s class replaces ``kiln.Model``'s ``method`` (e.g. "train_step").

    kiln.Model marks its own defaults with ``_kiln_default_step`` (training sits below models
    and does not import them); any other function under that name is an override."""
    if not hasattr(model, "reset_metrics"):  # a plain nn.Module given to kiln.Trainer: its methods are its own
        return False
    fn = getattr(type(model), method, None)
    return fn is not None and not getattr(fn, "_kiln_default_step", False)


def uses_custom_steps(model) -> bool:
    """Whether fit/evaluate take the step-by-step Keras loop: some step or ``compute_loss`` is overridden."""
    return any(overrides(model, m) for m in ("train_step", "test_step", "compute_loss"))


def step_logs(logs, method: str, model) -> dict:
    """Check a step's return value and make its entries plain floats where they are scalars."""
    if not isinstance(logs, dict):
        raise KilnTypeError(f"{type(model).__name__}.{method}() must return a dict of logs, e.g. "
                            f"{{'loss': loss}} or {{m.name: m.result() for m in self.metrics}}; it returned "
                            f"{type(logs).__name__}: {logs!r:.80}. Return a dict.")
    out = {}
    for key, value in logs.items():
        if torch.is_tensor(value) and value.numel() == 1:
            value = float(value.detach())
        elif hasattr(value, "result") and callable(value.result):
            value = value.result()
        out[key] = value
    return out


def check_trackers_declared(model, method: str) -> None:
    """Raise if a step updated a ``Metric`` attribute that ``model.metrics`` does not list.

    Why: Keras resets only the metrics in ``model.metrics`` each epoch; an undeclared tracker
    keeps averaging over every epoch so far and its logs silently drift."""
    from kiln.metrics.base import Metric
    declared = {id(m) for m in model.metrics}
    for name, value in vars(model).items():
        if isinstance(value, Metric) and not name.startswith("_") and id(value) not in declared \
                and value._state is not None:
            listed = ", ".join(f"self.{n}" for n, v in vars(model).items()
                               if isinstance(v, Metric) and not n.startswith("_"))
            raise KilnValueError(
                f"{type(model).__name__}.{method}() updated the metric tracker `self.{name}` ({value.name!r}), "
                f"but `{type(model).__name__}.metrics` does not list it, so it would not be reset at each epoch. "
                f"Declare it: @property\ndef metrics(self):\n    return [{listed}]")


def train_epoch(trainer, data, batch_size, shuffle, max_steps, callback_list, epoch, batch_transform) -> dict:
    """One epoch of ``model.train_step`` calls; returns the last step's logs."""
    model, state = trainer.module, trainer.fit_state
    model.train()
    model.reset_metrics()
    state.begin_epoch(epoch)
    wants_begin = callback_list.wants("on_train_batch_begin")
    wants_end = callback_list.wants("on_train_batch_end")
    batches = data.batches(batch_size, shuffle, state.shuffle_generator)
    if max_steps is not None:
        batches = itertools.islice(batches, max_steps)
    logs = None
    for step, (xb, yb, swb) in enumerate(batches):
        if wants_begin:
            callback_list.batch_hook("on_train_batch_begin", step, {})
        if batch_transform is not None:
            xb, yb = batch_transform(xb, yb)
        logs = step_logs(model.train_step(pack_x_y_sample_weight(xb, yb, swb)), "train_step", model)
        if step == 0:
            check_trackers_declared(model, "train_step")
        state.step = step + 1
        if wants_end:
            callback_list.batch_hook("on_train_batch_end", step, dict(logs))
        if state.stop_training:
            break
    if logs is None:
        raise KilnValueError("The training data produced no batches; check that it is not empty.")
    state.end_epoch(epoch)
    return logs


def evaluate(trainer, data, batch_size, max_steps, callback_list) -> dict:
    """``model.test_step`` over the data without gradients; returns the last step's logs."""
    model = trainer.module
    was_training = model.training
    model.eval()
    model.reset_metrics()
    callback_list.on_test_begin({})
    wants_end = callback_list.wants("on_test_batch_end")
    batches = data.batches(batch_size)
    if max_steps is not None:
        batches = itertools.islice(batches, max_steps)
    logs = None
    try:
        with torch.no_grad():
            for step, (xb, yb, swb) in enumerate(batches):
                logs = step_logs(model.test_step(pack_x_y_sample_weight(xb, yb, swb)), "test_step", model)
                if step == 0:
                    check_trackers_declared(model, "test_step")
                if wants_end:
                    callback_list.batch_hook("on_test_batch_end", step, dict(logs))
    finally:
        model.train(was_training)
    if logs is None:
        raise KilnValueError("The evaluation data produced no batches; check that it is not empty.")
    callback_list.on_test_end(logs)
    return logs
