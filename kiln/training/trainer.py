"""Trainer: Keras's fit / evaluate / predict loop for any ``torch.nn.Module``.

The loop reads top to bottom: prepare (device, build, optimizer) -> for each epoch
(callbacks, batches, train step, validation) -> finish. A kiln ``Model`` owns a Trainer;
a plain ``nn.Module`` can use one directly::

    trainer = kiln.Trainer(my_module)
    trainer.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = trainer.fit(x, y, epochs=5)

What keeps it as fast as a hand-written loop (bench/fit_overhead.py measures it):
in-memory data is moved to the device once and batched by slicing after one shuffle per
epoch; the loss and metrics accumulate on the device and are read once per epoch (or when
the progress bar redraws, on a timer); batch callbacks are only called when some
callback uses them; optimizers use torch's fused/foreach kernels.

Where a running fit is (epoch, step, running sums, resume point, stop flag) lives in one
``FitState`` (kiln/training/fit_state.py), public as ``trainer.fit_state`` /
``model.fit_state``; ``training_state()`` / ``restore_training_state()`` turn it (with the
weights, optimizer and random generators) into a checkpoint and back.

Raises:
    NotCompiledError: fit/evaluate before compile.
    ShapeError: data whose shape does not fit the model or the loss.
    NaNLossError: the epoch's loss became NaN or infinite.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch

from kiln import optimizers as optimizers_mod
from kiln.callbacks.callback import CallbackList, LazyLogs
from kiln.callbacks.history import History
from kiln.callbacks.progbar_logger import ProgbarLogger
from kiln.distribution import distribution as current_distribution
from kiln.errors import KilnTypeError, KilnValueError, NaNLossError, NotCompiledError
from kiln.layers.symbolic import flatten, map_structure
from kiln.training import custom_step, data_adapter
from kiln.training.device import autocast_context, precision_dtype, resolve_device
from kiln.training.fit_state import FitState
from kiln.training.threads import ThreadChoice
from kiln.training.objectives import Objectives

__all__ = ["Trainer"]


class Trainer:
    """Trains, evaluates and runs one ``nn.Module``.

    Args:
        module: the model (any ``nn.Module``; kiln models call it with one argument, plain
            modules get a tuple of inputs unpacked and a dict as keywords).
        host: the object callbacks see as ``self.model`` (the kiln Model, or this trainer).

    Attributes:
        fit_state: the running (or last) ``fit``'s ``FitState``; None before the first fit.
    """

    def __init__(self, module: torch.nn.Module, host=None):
        if not isinstance(module, torch.nn.Module):
            raise KilnTypeError(f"Trainer needs a torch.nn.Module; received {type(module).__name__}")
        self.module = module
        self.host = host if host is not None else self
        self.fit_state: FitState | None = None
        self._stop_requested = False  # the stop flag when no fit has run yet
        self.history = None
        self.optimizer = None
        self.loss = None
        self.objectives: Objectives | None = None
        self.device = None
        self._prepared = False
        self._ddp = None  # the module under DistributedDataParallel while a distributed fit runs
        self._dist = None  # the fit's kiln.distribution.DataParallel, or None for one process
        self._kiln_model = hasattr(module, "compile") and hasattr(module, "_trainer")

    @property
    def stop_training(self):
        """Keras's stop flag: a callback sets it to end ``fit`` after the current step. It lives
        in ``fit_state``; ``fit`` starts with it False."""
        return self._stop_requested if self.fit_state is None else self.fit_state.stop_training

    @stop_training.setter
    def stop_training(self, value) -> None:
        if self.fit_state is None:
            self._stop_requested = value
        else:
            self.fit_state.stop_training = value

    # ------------------------------------------------------------------ setup
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                jit_compile=False, device=None, mixed_precision=None, num_threads="auto"):
        """Choose optimizer, loss and metrics (names, objects or callables), as Keras's compile.

        kiln's additions (``kiln.Model.compile`` documents them too):

        Args:
            jit_compile: compile the training step with ``torch.compile`` (default False).
            device: "cpu", "cuda", "cuda:1", ...; default CUDA when available.
            mixed_precision: None, "bfloat16" or "float16" (autocast; float16 adds loss scaling).
            num_threads: how many CPU threads ``fit``/``evaluate``/``predict`` use (default
                "auto": a guess from the model's size, then the faster of one thread and torch's
                setting, timed on the first training steps; an int fixes it; None leaves torch
                alone). This changes process-wide torch state: ``torch.set_num_threads`` holds for
                every torch op in the process while the run lasts, other Python threads included.
                The previous ``torch.get_num_threads()`` is put back when the run returns or raises.
        """
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self.objectives = Objectives(loss, metrics, loss_weights, weighted_metrics)
        self.device = resolve_device(device)
        self.amp_dtype = precision_dtype(mixed_precision)
        self.jit_compile = bool(jit_compile)
        self.threads = ThreadChoice(num_threads)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self._prepared = False
        self._penalized_layers = []
        self._optimizer_built = False
        self._compiled_loss_fn = None
        self._grad_step = None

    @property
    def metrics_names(self) -> list[str]:
        names = ["loss"]
        if self.objectives is not None and self.objectives.built:
            names += self.objectives.metric_names
        return names

    def _require_compiled(self, what):
        if self.objectives is None:
            raise NotCompiledError(f"You must call `compile()` before `{what}()`. "
                                   f"Example: compile(optimizer='adam', loss='mse')")

    def _call_module(self, x, module=None):
        module = self.module if module is None else module  # the DDP wrapper in distributed steps
        if self._kiln_model or torch.is_tensor(x):
            return module(x)
        if isinstance(x, dict):
            return module(**x)
        if isinstance(x, (list, tuple)):
            return module(*x)
        return module(x)

    def _prepare(self, x, y) -> None:
        """Move to the device, build lazy layers on a 2-sample batch, build optimizer and metrics."""
        self.module.to(self.device)
        x2 = map_structure(lambda t: t[:2].to(self.device), x)
        y2 = None if y is None else map_structure(lambda t: t[:2].to(self.device), y)
        was_training = self.module.training
        self.module.eval()
        with torch.no_grad():
            y_pred = self._call_module(x2)
        self.module.train(was_training)
        if not self.objectives.built:
            self.objectives.build(y2, y_pred, output_names=_output_names(self.module))
        if y2 is not None:
            with torch.no_grad():
                self.objectives.loss(y2, y_pred)  # shape errors now, with names, not mid-epoch
        if not self._optimizer_built:
            params = [p for p in self.module.parameters() if p.requires_grad]
            if not params:
                raise KilnValueError("The model has no trainable parameters; nothing to train.")
            self.optimizer.build(params)
            self._optimizer_built = True
        from kiln.layers.layer import Layer
        self._penalized_layers = [m for m in self.module.modules() if isinstance(m, Layer) and m.has_penalties]
        if self.jit_compile and self._compiled_loss_fn is None and self._grad_step is None:
            from kiln.training.compiled_step import CompiledGradStep
            if CompiledGradStep.supports(self):
                self._grad_step = CompiledGradStep(self)  # forward + loss + gradients in one graph
            else:
                self._compiled_loss_fn = torch.compile(self._loss_and_outputs)
        self._prepared = True

    def _prepare_custom(self) -> None:
        """Setup for a Model with its own steps: device and optimizer only. The model is not
        called here (a GAN wrapper has no ``call``); the compiled loss and metrics are built by
        ``Model.compute_loss``/``compute_metrics`` on their first use."""
        self.module.to(self.device)
        if not self._optimizer_built:
            params = [p for p in self.module.parameters() if p.requires_grad]
            if params:
                self.optimizer.build(params)
            self._optimizer_built = True

    def ensure_objectives(self, y, y_pred) -> None:
        """Build the compiled loss/metrics for these outputs if not built yet (custom steps)."""
        if not self.objectives.built:
            self.objectives.build(y, y_pred, output_names=_output_names(self.module))

    # ------------------------------------------------------------------ one step
    def _masked(self, sample_weight):
        """``sample_weight`` with the model output's mask applied (Keras: masked steps add no
        loss); unchanged for models that made no mask in their latest call."""
        mask = getattr(self.module, "_output_mask", None) if self._kiln_model else None
        if mask is None:
            return sample_weight
        from kiln.layers.masking import masked_sample_weight
        return masked_sample_weight(mask, sample_weight)

    def _update_metrics(self, y, y_pred, sample_weight) -> None:
        """Metrics of one batch; for an output with a mask, over its real steps only."""
        mask = getattr(self.module, "_output_mask", None) if self._kiln_model else None
        if mask is not None:
            from kiln.layers.masking import masked_metric_inputs
            y, y_pred, sample_weight = masked_metric_inputs(mask, y, y_pred, sample_weight)
        self.objectives.update_metrics(y, y_pred, sample_weight)

    def _loss_and_outputs(self, x, y, sample_weight, module=None):
        y_pred = self._call_module(x, module)
        loss = self.objectives.loss(y, y_pred, self._masked(sample_weight))
        for layer in self._penalized_layers:  # empty for most models: no per-step module walk
            for term in layer.regularization_losses():
                loss = loss + term
        return loss, y_pred

    def _train_step(self, x, y, sample_weight, loss_scale=None):
        """One optimizer step; returns the (unscaled) loss and outputs. ``loss_scale``: the
        factor a distributed rank puts on its loss (kiln/distribution/sharding.py says why)."""
        private = None if self.fit_state is None else self.fit_state.privacy
        if private is not None and private.attached:  # inside a private fit (train_on_batch after it is not)
            return private.train_step(x, y, sample_weight)
        if self._grad_step is not None:
            loss, y_pred = self._grad_step(x, y, sample_weight)  # sets every p.grad
            self.optimizer.step()
            return loss.detach(), y_pred.detach()
        loss_fn = self._compiled_loss_fn or self._loss_and_outputs
        if self.amp_dtype is None:
            loss, y_pred = loss_fn(x, y, sample_weight, self._ddp)
        else:
            with autocast_context(self.device, self.amp_dtype):
                loss, y_pred = loss_fn(x, y, sample_weight, self._ddp)
        to_backward = loss if loss_scale is None else loss * loss_scale
        self.optimizer.zero_grad()
        if self.scaler is None:
            to_backward.backward()
            self.optimizer.step()
        else:
            self._scaled_backward_and_step(to_backward)
        y_pred = y_pred.detach() if type(y_pred) is torch.Tensor else map_structure(torch.Tensor.detach, y_pred)
        return loss.detach(), y_pred

    def _scaled_backward_and_step(self, loss):
        """float16 training: scale the loss, unscale the gradients, and skip the step (as
        GradScaler.step does) when they overflowed; kiln's optimizer still applies its clipping,
        schedule and decay on the unscaled gradients."""
        torch_optimizer = self.optimizer.torch_optimizer
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(torch_optimizer)
        found_inf = self.scaler._per_optimizer_states[id(torch_optimizer)]["found_inf_per_device"]
        if not any(bool(v.item()) for v in found_inf.values()):
            self.optimizer.step()
        self.scaler.update()

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, batch_transform=None, privacy=None):
        """Train the module; arguments and the returned ``History`` are Keras's.

        kiln's additions: ``batch_transform(x, y) -> (x, y)`` is applied to each training
        batch (not to validation), for batch-level augmentation that changes labels too, such
        as ``kiln.training.mixing.MixUp``/``CutMix``. ``privacy=kiln.privacy.DP(epsilon=...)``
        trains with DP-SGD (kiln/privacy/engine.py); ``fit_state.privacy`` then holds its
        accountant and ``history.history["epsilon"]`` the budget spent after each epoch.

        Global state: while ``fit`` runs, torch's process-wide thread count is the one chosen
        by ``compile(num_threads=...)``; it is put back when ``fit`` returns or raises.
        ``fit_state`` describes the run while it goes and after it ends. After
        ``kiln.distribution.set_distribution(DataParallel())`` it trains data-parallel over the
        torchrun processes (kiln/distribution/distribution.py)."""
        self._require_compiled("fit")
        batch_size = _check_batch_size(batch_size)
        epochs = _check_epochs(epochs, initial_epoch)
        verbose = 1 if verbose == "auto" else int(verbose)
        data = data_adapter.adapt(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle,
                                  float_dtype=_float_dtype(self.module))
        data, val_data = self._validation_data(data, validation_split, validation_data, batch_size)
        if class_weight is not None:
            data = data.with_class_weight(class_weight)
        data = data.to(self.device)
        # Decided once per fit: a Model that overrides a Keras step gets the step-by-step loop,
        # every other model kiln's fast one.
        custom = custom_step.uses_custom_steps(self.module)
        if custom and privacy is not None:
            raise KilnValueError(f"{type(self.module).__name__} overrides train_step/test_step/compute_loss, and "
                                 "DP-SGD (`privacy=`) needs kiln's own step. Remove `privacy=` or the override.")
        private = None
        if privacy is not None:  # DP-SGD: validated, layers checked and noise calibrated before any step
            if not callable(getattr(privacy, "start_fit", None)):
                raise KilnTypeError(f"`privacy` must be kiln.privacy.DP(epsilon=..., delta=...); received "
                                    f"{type(privacy).__name__}. Example: "
                                    f"fit(x, y, privacy=kiln.privacy.DP(epsilon=3)).")
            # kiln.privacy wraps the trainer from outside: the trainer only calls what it is handed.
            private = privacy.start_fit(self, data, batch_size=batch_size, epochs=epochs - initial_epoch,
                                        steps_per_epoch=steps_per_epoch, batch_transform=batch_transform)
            data = private.data
            if private.replaced_layers:  # new layers: build them and the optimizer afresh
                self._prepared = self._optimizer_built = False
        dist = self._dist = current_distribution()
        if dist is not None:
            if private is not None:
                raise KilnValueError("Differentially private training (`privacy=`) does not run data-parallel yet: "
                                     "train it in one process (drop set_distribution / --nproc), or train "
                                     "data-parallel without `privacy`.")
            dist.check_fit(self, data)
        example = data.example()  # None for a stream: the model is then built on its first batch
        if custom:
            self._prepare_custom()
        elif example is not None and not self._prepared:
            self._prepare(*example)
        if private is not None:
            private.attach(self)
        steps = data.num_batches(batch_size) if steps_per_epoch is None else steps_per_epoch
        if steps is None and data.needs_steps_per_epoch and epochs - initial_epoch > 1:
            raise KilnValueError("Training on a generator for several epochs needs `steps_per_epoch` (how many "
                                 "batches make one epoch), e.g. fit(gen, steps_per_epoch=100, epochs=5).")

        history = History()
        # The one place a fit's state is created; it also draws the shuffle generator's seed.
        state = self.fit_state = FitState.start(epochs=epochs, initial_epoch=initial_epoch, steps=steps,
                                                history=history)
        state.privacy = private
        if dist is not None:
            dist.sync_generator(state.shuffle_generator)  # one global data order on every rank
        # As in Keras 3: History after the user's callbacks, so it records what they add to logs.
        cbs = list(callbacks or []) + [history]
        if private is not None:
            cbs.insert(0, private.callback())  # first: every later callback sees logs["epsilon"]
        if verbose:
            cbs.append(ProgbarLogger(verbose))
        if dist is not None:
            cbs = dist.callbacks(cbs)  # only rank 0 writes files and prints
        callback_list = CallbackList(cbs, model=self.host, params={"epochs": epochs, "steps": steps,
                                                                   "verbose": verbose, "inside_fit": True})

        self.threads.begin(self.module, self.device, measure=not custom)
        try:
            callback_list.on_train_begin({})  # BackupAndRestore may set state.resume here
            first_epoch = initial_epoch
            if state.resume is not None:
                first_epoch = state.resume["epoch"]
                history.history = {k: list(v) for k, v in state.resume["history"].items()}
                history.epoch = list(range(initial_epoch, first_epoch))
            for epoch in range(first_epoch, epochs):
                callback_list.on_epoch_begin(epoch, {})
                resume, state.resume = state.resume, None
                if custom:
                    logs = custom_step.train_epoch(self, data, batch_size, shuffle, steps_per_epoch, callback_list,
                                                   epoch, batch_transform)
                else:
                    logs = self._run_epoch(data, batch_size, shuffle, steps_per_epoch, callback_list,
                                           epoch=epoch, resume=resume, batch_transform=batch_transform)
                loss = logs.get("loss", 0.0)
                if isinstance(loss, float) and not math.isfinite(loss) and not state.stop_training:
                    _raise_nan(epoch, logs)  # TerminateOnNaN, when used, has stopped cleanly instead
                if val_data is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_data(val_data, validation_batch_size or batch_size,
                                                   validation_steps, callback_list)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                state.logs = logs
                callback_list.on_epoch_end(epoch, logs)
                if state.stop_training:
                    break
            callback_list.on_train_end(state.logs)
        finally:
            self.threads.end()
            if private is not None:
                private.close()
            self._ddp = self._dist = None  # DDP wraps one fit; the module stays the user's
        self.history = history
        if self.host is not self:
            self.host.history = history
        return history

    def _run_epoch(self, data, batch_size, shuffle, max_steps, callback_list, epoch=0,
                   resume=None, batch_transform=None) -> dict:
        module, objectives, state = self.module, self.objectives, self.fit_state
        generator = state.shuffle_generator
        module.train()
        objectives.reset()
        loss_sum = None
        count = 0
        first_step = 0
        if resume is not None and resume["step"] > 0:  # continue inside the epoch where the checkpoint was
            generator.set_state(resume["generator_state"])
            first_step, count = resume["step"], resume["count"]
            loss_sum = resume["loss_sum"].to(self.device)
            objectives.load_metric_states(resume["metric_states"], self.device)
        state.begin_epoch(epoch)  # keeps the generator state that regenerates this epoch's data order
        state.step, state.count, state.loss_sum = first_step, count, loss_sum
        wants_begin = callback_list.wants("on_train_batch_begin")
        wants_end = callback_list.wants("on_train_batch_end")
        track = wants_begin or wants_end  # the state's step fields are kept for batch hooks only
        threads = self.threads
        threads.interrupt()  # validation or callbacks ran since the last step: not a step's time
        running = lambda: self._epoch_logs(loss_sum, count)  # noqa: E731
        batches = data.batches(batch_size, shuffle, generator, start_step=first_step)
        if max_steps is not None:
            batches = itertools.islice(batches, max(max_steps - first_step, 0))  # a generator is not over-read
        dist = self._dist
        for step, (xb, yb, swb) in enumerate(batches, start=first_step):
            loss_scale = None
            if dist is not None:  # this rank's slice of the global batch
                part = dist.shard(xb, yb, swb)
                xb, yb, swb, rows, loss_scale = part.x, part.y, part.sample_weight, part.rows, part.loss_scale
            if not self._prepared:
                self._prepare(xb, yb)
            if dist is not None and self._ddp is None:
                self._ddp = dist.wrap(self.module, self.device)
            if threads.measuring:
                threads.before_step()
            if wants_begin:
                callback_list.batch_hook("on_train_batch_begin", step, {})
            if batch_transform is not None:
                xb, yb = batch_transform(xb, yb)
            loss, y_pred = self._train_step(xb, yb, swb, loss_scale)
            if dist is None:
                n = xb.shape[0] if type(xb) is torch.Tensor else data_adapter.first_tensor(xb).shape[0]
            else:
                n = rows  # 0 for a placeholder row, which must count for nothing
            loss_sum = loss * n if loss_sum is None else loss_sum.add_(loss, alpha=n)
            count += n
            if n:
                self._update_metrics(yb, y_pred, swb)
            if track:
                state.step, state.loss_sum, state.count = step + 1, loss_sum, count
            if wants_end:
                callback_list.batch_hook("on_train_batch_end", step, LazyLogs(running))
            if state.stop_training:
                break
        if dist is not None:  # the epoch over all ranks: every rank logs the same numbers
            loss_sum, count = dist.reduce(loss_sum, count, objectives, self.device)
        if count == 0:
            raise KilnValueError("The training data produced no batches; check that it is not empty.")
        state.end_epoch(epoch)
        return self._epoch_logs(loss_sum, count)

    # ------------------------------------------------------------------ checkpoints
    def training_state(self) -> dict:
        """Everything needed to continue this run exactly (see kiln/training/checkpoint.py).

        Valid inside ``fit`` from a batch or epoch callback: it describes the position just
        after the last completed step (``fit_state``'s); after ``fit``, where the run ended."""
        from kiln.training.checkpoint import capture_rng_states
        state = self._require_fit_state("training_state")
        in_epoch = state.in_epoch
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": capture_rng_states(),
            "progress": {
                "epoch": state.epoch,
                "step": state.step,
                "generator_state": state.epoch_generator_state if in_epoch else state.shuffle_generator.get_state(),
                "loss_sum": state.loss_sum.detach().to("cpu", torch.float64) if in_epoch else
                torch.zeros((), dtype=torch.float64),
                "count": state.count,
                "metric_states": self.objectives.metric_states() if in_epoch else [],
            },
            "history": state.history.history,
            "threads": self.threads.decided,
            **({"privacy": state.privacy.state_dict()} if state.privacy is not None else {}),
        }

    def restore_training_state(self, state: dict) -> None:
        """Load a ``training_state()`` into this trainer; fit then continues from its position.

        Called from a callback's ``on_train_begin`` (as BackupAndRestore does): the position
        becomes ``fit_state.resume``, which the running fit continues from."""
        from kiln.saving.weights_io import apply_state
        from kiln.training.checkpoint import restore_rng_states
        fit_state = self._require_fit_state("restore_training_state")
        _restore_privacy(fit_state.privacy, state.get("privacy"))  # before anything is loaded
        apply_state(self.module, state["model"], source="the checkpoint")
        self.optimizer.load_state_dict(state["optimizer"])
        restore_rng_states(state["rng"])
        if state.get("threads"):
            self.threads.adopt(int(state["threads"]))
        progress = state["progress"]
        fit_state.resume = {**progress, "history": state.get("history", {})}
        if progress["step"] == 0:
            fit_state.shuffle_generator.set_state(progress["generator_state"])

    def _require_fit_state(self, what: str) -> FitState:
        if self.fit_state is None:
            raise KilnValueError(f"`{what}()` works on a fit in progress, but this model has not started `fit` "
                                 f"yet. Call it from a callback during fit (as BackupAndRestore does).")
        return self.fit_state

    def _epoch_logs(self, loss_sum, count) -> dict:
        logs = {"loss": float(loss_sum) / count if count else float("nan")}
        logs.update(self.objectives.results())
        return logs

    def _validation_data(self, data, validation_split, validation_data, batch_size):
        """``(training data, validation data or None)``: ``validation_data`` if given (it wins
        over ``validation_split``, as in Keras), else the last ``validation_split`` of ``data``."""
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3) and \
                    not isinstance(validation_data, torch.utils.data.Dataset):
                vx, vy = validation_data[0], validation_data[1]
                vsw = validation_data[2] if len(validation_data) == 3 else None
                val = data_adapter.adapt(vx, vy, vsw, batch_size=batch_size, what="fit",
                                         float_dtype=_float_dtype(self.module))
            else:
                val = data_adapter.adapt(validation_data, batch_size=batch_size, what="fit")
            return data, val.to(self.device)
        if validation_split:
            if not 0 < validation_split < 1:
                raise KilnValueError(f"validation_split must be between 0 and 1; received {validation_split}")
            train, val = data.split_last(validation_split)
            return train, val.to(self.device)
        return data, None

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics over the data: a float (loss only), a list, or a dict."""
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        data = data_adapter.adapt(x, y, sample_weight, batch_size=batch_size, what="evaluate",
                                  float_dtype=_float_dtype(self.module)).to(self.device)
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(ProgbarLogger(verbose))
        callback_list = CallbackList(cbs, model=self.host, params={"steps": data.num_batches(batch_size),
                                                                   "verbose": verbose})
        self.threads.begin(self.module, self.device)
        try:
            logs = self._evaluate_data(data, batch_size, steps, callback_list)
        finally:
            self.threads.end()
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_data(self, data, batch_size, max_steps, callback_list) -> dict:
        if custom_step.uses_custom_steps(self.module):
            self._prepare_custom()
            return custom_step.evaluate(self, data, batch_size, max_steps, callback_list)
        module, objectives = self.module, self.objectives
        was_training = module.training
        module.eval()
        objectives.reset()
        callback_list.on_test_begin({})
        loss_sum, count = None, 0
        wants_end = callback_list.wants("on_test_batch_end")
        batches = data.batches(batch_size)
        if max_steps is not None:
            batches = itertools.islice(batches, max_steps)
        dist = current_distribution()
        with torch.no_grad():
            for step, (xb, yb, swb) in enumerate(batches):
                if dist is not None:  # each rank evaluates its slice; the sums are reduced below
                    part = dist.shard(xb, yb, swb)
                    if part.rows == 0:
                        continue
                    xb, yb, swb = part.x, part.y, part.sample_weight
                if not self._prepared:
                    self._prepare(xb, yb)
                with autocast_context(self.device, self.amp_dtype):
                    loss, y_pred = self._loss_and_outputs(xb, yb, swb)
                n = data_adapter.first_tensor(xb).shape[0]
                loss_sum = loss * n if loss_sum is None else loss_sum.add_(loss, alpha=n)
                count += n
                self._update_metrics(yb, y_pred, swb)
                if wants_end:
                    callback_list.batch_hook("on_test_batch_end", step, {})
        module.train(was_training)
        if dist is not None:
            loss_sum, count = dist.reduce(loss_sum, count, objectives, self.device)
        if count == 0:
            raise KilnValueError("The evaluation data produced no batches; check that it is not empty.")
        logs = self._epoch_logs(loss_sum, count)
        callback_list.on_test_end(logs)
        return logs

    # ------------------------------------------------------------------ predict
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` as NumPy (a list/dict of arrays for several outputs)."""
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)  # Keras shows the bar by default
        data = data_adapter.adapt(x, None, batch_size=batch_size, what="predict",
                                  float_dtype=_float_dtype(self.module))
        device = self.device or _module_device(self.module)
        data = data.to(device)
        self.module.to(device)
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(ProgbarLogger(verbose))
        callback_list = CallbackList(cbs, model=self.host, params={"steps": data.num_batches(batch_size),
                                                                   "verbose": verbose})
        was_training = self.module.training
        self.module.eval()
        outputs = []
        callback_list.on_predict_begin({})
        threads = getattr(self, "threads", None) or ThreadChoice("auto")
        amp_dtype = getattr(self, "amp_dtype", None)
        wants_end = callback_list.wants("on_predict_batch_end")
        threads.begin(self.module, device)
        try:
            with torch.no_grad():
                batches = data.batches(batch_size)
                if steps is not None:
                    batches = itertools.islice(batches, steps)
                predict_step = self.module.predict_step if custom_step.overrides(self.module, "predict_step") \
                    else None
                for step, (xb, _, _) in enumerate(batches):
                    if predict_step is not None:
                        outputs.append(predict_step(custom_step.pack_x_y_sample_weight(xb)))
                    elif amp_dtype is None:
                        outputs.append(self._call_module(xb))
                    else:
                        with autocast_context(device, amp_dtype):
                            outputs.append(self._call_module(xb))
                    if wants_end:
                        callback_list.batch_hook("on_predict_batch_end", step, {})
        finally:
            threads.end()
            self.module.train(was_training)
        callback_list.on_predict_end({})
        return _concat_outputs(outputs)

    # ------------------------------------------------------------------ single batches
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._require_compiled("train_on_batch")
        data = data_adapter.adapt(x, y, sample_weight, what="train_on_batch", float_dtype=_float_dtype(self.module))
        if class_weight is not None:
            data = data.with_class_weight(class_weight)
        data = data.to(self.device)
        if custom_step.uses_custom_steps(self.module):
            self._prepare_custom()
            self.module.train()
            self.module.reset_metrics()
            logs = custom_step.step_logs(self.module.train_step(custom_step.pack_x_y_sample_weight(
                data.x, data.y, data.sample_weight)), "train_step", self.module)
            return logs if return_dict else (list(logs.values())[0] if len(logs) == 1 else list(logs.values()))
        if not self._prepared:
            self._prepare(data.x, data.y)
        self.module.train()
        self.objectives.reset()
        loss, y_pred = self._train_step(data.x, data.y, data.sample_weight)
        self._update_metrics(data.y, y_pred, data.sample_weight)
        logs = {"loss": float(loss)}
        logs.update(self.objectives.results())
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # ------------------------------------------------------------------ what callbacks may use
    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state):
        return self.module.load_state_dict(state)

    def get_weights(self):
        return [t.detach().cpu().numpy().copy() for t in self.module.state_dict().values()]

    def set_weights(self, weights):
        state = self.module.state_dict()
        self.module.load_state_dict({k: torch.as_tensor(w) for k, w in zip(state, weights)})

    def save_weights(self, filepath, overwrite=True):
        from kiln.saving.weights_io import save_weights
        save_weights(self.module, filepath, overwrite=overwrite)

    def save(self, filepath, overwrite=True):
        """A plain module has no kiln architecture to save; its weights are saved instead."""
        self.save_weights(filepath, overwrite=overwrite)


# ---------------------------------------------------------------------- helpers
def _check_batch_size(batch_size) -> int:
    if batch_size is None:
        return 32
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise KilnValueError(f"Received an invalid value for `batch_size`, expected a positive integer. "
                             f"Received: batch_size={batch_size!r}")
    return batch_size


def _check_epochs(epochs, initial_epoch) -> int:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise KilnValueError(f"Received an invalid value for `epochs`, expected a non-negative integer. "
                             f"Received: epochs={epochs!r}")
    if not isinstance(initial_epoch, int) or initial_epoch < 0:
        raise KilnValueError(f"`initial_epoch` must be a non-negative integer; received {initial_epoch!r}")
    return epochs


def _restore_privacy(private, saved) -> None:
    """A private run resumes only as the same private run: its accountant continues the
    checkpoint's; a checkpoint and a fit that disagree on privacy are refused."""
    if private is None and saved is None:
        return
    if private is None:
        raise KilnValueError("The checkpoint comes from a differentially private run, but this fit has no "
                             "`privacy`; pass the same privacy=... to resume it (or start a new run).")
    if saved is None:
        raise KilnValueError("This fit is private (`privacy` is set) but the checkpoint comes from a non-private "
                             "run, whose steps no accountant saw; start a new run folder for private training.")
    private.load_state_dict(saved)


def _raise_nan(epoch, logs):
    raise NaNLossError(f"The training loss became {logs['loss']} in epoch {epoch + 1}. Common fixes: a lower "
                       f"learning rate, clipnorm=1.0 in the optimizer, scaling the inputs, or checking the "
                       f"labels (e.g. probabilities outside [0, 1] for binary_crossentropy).")


def _output_names(module) -> list[str] | None:
    outputs = getattr(module, "_outputs", None)
    if outputs is None:
        return None
    names = []
    for t in flatten(outputs):
        layer = getattr(getattr(t, "node", None), "layer", None)
        names.append(getattr(layer, "name", None))
    return names if all(names) and len(set(names)) == len(names) else None


def _float_dtype(module) -> torch.dtype:
    """float64 data stays float64 for a model whose weights are float64; else float32."""
    for p in module.parameters():
        if p.is_floating_point():
            return torch.float64 if p.dtype == torch.float64 else torch.float32
    return torch.float32


def _module_device(module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def _concat_outputs(outputs: list) -> Any:
    if not outputs:
        raise KilnValueError("predict received no data (0 batches).")
    first = outputs[0]
    if torch.is_tensor(first):
        return torch.cat(outputs).float().cpu().numpy() if first.dtype in (torch.bfloat16, torch.float16) \
            else torch.cat(outputs).cpu().numpy()
    if isinstance(first, dict):
        return {k: _concat_outputs([o[k] for o in outputs]) for k in first}
    if isinstance(first, (list, tuple)):
        return [_concat_outputs([o[i] for o in outputs]) for i in range(len(first))]
    return np.asarray(outputs)
