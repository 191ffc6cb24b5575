"""Model: a Layer that can be compiled, trained, evaluated, saved and summarised.

Three ways to get one, as in Keras:
- ``Sequential([...])`` (kiln/models/sequential.py),
- ``Model(inputs, outputs)`` — the functional API (kiln/models/functional.py),
- subclassing ``Model`` and writing ``call``.

Training itself lives in ``kiln.training.Trainer``, which works on any ``nn.Module``; a
Model owns one Trainer, created by ``compile``.
"""

from __future__ import annotations

from typing import Any

import torch

from kiln.errors import KilnValueError, NotCompiledError
from kiln.layers.layer import Layer

__all__ = ["Model"]


def _default_step(fn):
    """Mark one of Model's own step methods: the trainer keeps its fast loop unless a model
    replaces one (kiln/training/custom_step.py reads the mark)."""
    fn._kiln_default_step = True
    return fn


class Model(Layer):
    """A trainable model with Keras's ``compile / fit / evaluate / predict``.

    Example (subclassing)::

        class TwoLayer(kiln.Model):
            def __init__(self):
                super().__init__()
                self.hidden = kiln.layers.Dense(32, activation="relu")
                self.out = kiln.layers.Dense(1)
            def call(self, x):
                return self.out(self.hidden(x))
    """

    def __new__(cls, *args, **kwargs):
        # Keras's Model(inputs, outputs) returns a functional model; so does a subclass called
        # that way (``CustomModel(inputs, outputs)``): it becomes a functional model that keeps
        # the subclass's methods (train_step, ...).
        from kiln.models.functional import Functional
        if not issubclass(cls, Functional) and _functional_arguments(args, kwargs):
            return super().__new__(Functional if cls is Model else _functional_subclass(cls))
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__(**kwargs)
        self._trainer = None
        self._stop_requested = False  # the stop flag before compile (afterwards the trainer's fit_state holds it)
        self.history = None
        self._example_input = None  # a small real batch, recorded for summary() and export
        self.built = True  # a subclassed model builds its layers lazily, one by one
        self._loss_tracker = None  # Keras's "loss" Mean, made by compile
        self._output_mask = None  # the output's mask from the latest call, when a layer made one

    # ------------------------------------------------------------------ forward
    def forward(self, inputs, *args, **kwargs):
        if self._example_input is None:
            self._record_example(inputs)
        return super().forward(inputs, *args, **kwargs)

    def _record_example(self, inputs) -> None:
        from kiln.utils.tree import map_structure
        self._example_input = map_structure(
            lambda t: t[:2].detach().to("cpu").clone() if torch.is_tensor(t) else t, inputs)

    # ------------------------------------------------------------------ training API
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile=False, device=None,
                mixed_precision=None, num_threads="auto"):
        """Configure training. Arguments as Keras's ``Model.compile``, plus:

        Args:
            jit_compile: compile the training step with ``torch.compile`` (default False).
            device: "cpu", "cuda", "cuda:1", ...; default CUDA when available.
            mixed_precision: None, "bfloat16" or "float16" (autocast; float16 adds loss scaling).
            num_threads: "auto" (default) guesses from the model's size, then times the first
                training steps on one CPU thread and on torch's setting and keeps the faster;
                an int fixes it; None leaves torch's setting alone. This changes process-wide
                torch state: ``torch.set_num_threads`` holds for every torch op in the process
                while ``fit``/``evaluate``/``predict`` runs; the previous
                ``torch.get_num_threads()`` is put back when the run returns or raises.
        """
        from kiln.metrics.base import Mean
        from kiln.training.trainer import Trainer
        self._loss_tracker = Mean(name="loss")
        self._trainer = Trainer(self, host=self)
        self._trainer.compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights,
                              weighted_metrics=weighted_metrics, jit_compile=jit_compile, device=device,
                              mixed_precision=mixed_precision, num_threads=num_threads)
        self._compile_config = {
            "optimizer": optimizer, "loss": loss, "metrics": metrics, "loss_weights": loss_weights,
            "jit_compile": jit_compile, "mixed_precision": mixed_precision,
        }

    @property
    def compiled(self) -> bool:
        return self._trainer is not None

    def _require_trainer(self, what: str):
        if self._trainer is None:
            raise NotCompiledError(f"You must call `compile()` before `{what}()`. "
                                   f"Example: model.compile(optimizer='adam', loss='mse')")
        return self._trainer

    @property
    def optimizer(self):
        return None if self._trainer is None else self._trainer.optimizer

    @property
    def loss(self):
        return None if self._trainer is None else self._trainer.loss

    @property
    def metrics_names(self) -> list[str]:
        return self._require_trainer("metrics_names").metrics_names

    @property
    def fit_state(self):
        """Where the running (or last) ``fit`` is: a ``kiln.training.FitState`` (epoch, step,
        history, resume point, stop flag), for callbacks; None before the first fit."""
        return None if self._trainer is None else self._trainer.fit_state

    @property
    def stop_training(self):
        """Keras's flag: a callback sets it to True to end ``fit`` after the current step."""
        return self._stop_requested if self._trainer is None else self._trainer.stop_training

    @stop_training.setter
    def stop_training(self, value) -> None:
        if self._trainer is None:
            self._stop_requested = value
        else:
            self._trainer.stop_training = value

    def training_state(self) -> dict:
        """Weights, optimizer, random generators and fit position: a checkpoint of the running
        fit (see ``kiln.training.checkpoint``), as BackupAndRestore writes it."""
        return self._require_trainer("training_state").training_state()

    def restore_training_state(self, state: dict) -> None:
        """Load a ``training_state()``; the running fit continues from its position."""
        self._require_trainer("restore_training_state").restore_training_state(state)

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        return torch.device("cpu")

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, batch_transform=None, privacy=None):
        """Train for ``epochs`` epochs; returns a ``History``. Same arguments as Keras, plus
        ``batch_transform(x, y) -> (x, y)`` for training batches (e.g. MixUp) and
        ``privacy=kiln.privacy.DP(epsilon=3, delta=1e-5)`` for differentially private training."""
        return self._require_trainer("fit").fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
            class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size, validation_freq=validation_freq,
            batch_transform=batch_transform, privacy=privacy)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on the given data: a float, a list, or a dict with ``return_dict``."""
        return self._require_trainer("evaluate").evaluate(
            x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight, steps=steps,
            callbacks=callbacks, return_dict=return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs as NumPy arrays, computed in batches without gradients."""
        from kiln.training.trainer import Trainer
        trainer = self._trainer or Trainer(self, host=self)
        return trainer.predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        return self._require_trainer("train_on_batch").train_on_batch(
            x, y, sample_weight=sample_weight, class_weight=class_weight, return_dict=return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        return self._require_trainer("test_on_batch").evaluate(
            x, y, batch_size=len(_first(x)), verbose=0, sample_weight=sample_weight, return_dict=return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=len(_first(x)), verbose=0)

    # ------------------------------------------------------------------ Keras 3's step API
    # Overriding any of these switches fit/evaluate/predict to the step-by-step loop of
    # kiln/training/custom_step.py; the methods here are Keras 3's defaults (torch backend), so
    # ``super().train_step(data)`` works as in Keras.
    @_default_step
    def train_step(self, data):
        """One training step on a batch ``data`` (``x``, ``(x, y)`` or ``(x, y, sample_weight)``);
        returns a dict of logs. Keras 3's default: forward, ``compute_loss``, backward,
        ``self.optimizer.apply``, ``compute_metrics``."""
        from kiln.training.custom_step import unpack_x_y_sample_weight
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        self._tracker().update_state(loss.detach(), sample_weight=_first(x).shape[0])
        trainable = self.trainable_weights
        if trainable:
            loss.backward()
            self.optimizer.apply([p.grad for p in trainable], trainable)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @_default_step
    def test_step(self, data):
        """One evaluation step (no gradients); returns a dict of logs (Keras 3's default)."""
        from kiln.training.custom_step import unpack_x_y_sample_weight
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        self._tracker().update_state(loss.detach(), sample_weight=_first(x).shape[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @_default_step
    def predict_step(self, data):
        """The outputs for one batch (Keras 3's default: ``self(x, training=False)``)."""
        from kiln.training.custom_step import unpack_x_y_sample_weight
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)

    @_default_step
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss of ``y`` vs ``y_pred`` plus every ``self.losses`` term (add_loss,
        regularizers); 0 when there is neither. Override it to change the loss only."""
        trainer = self._require_trainer("compute_loss")
        total = None
        if trainer.loss is not None and y is not None:
            from kiln.layers.masking import masked_sample_weight
            trainer.ensure_objectives(y, y_pred)
            total = trainer.objectives.loss(y, y_pred, masked_sample_weight(self._output_mask, sample_weight))
        for term in self.losses:
            total = term if total is None else total + term
        if total is None:
            device = _first(y_pred).device if y_pred is not None else self.device
            return torch.zeros((), device=device)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Update the compiled metrics with this batch; return ``get_metrics_result()``."""
        trainer = self._require_trainer("compute_metrics")
        objectives = trainer.objectives
        if y is not None and trainer.loss is not None and (objectives._metric_spec or objectives._weighted_spec):
            from kiln.layers.masking import masked_metric_inputs
            trainer.ensure_objectives(y, y_pred)
            objectives.update_metrics(*masked_metric_inputs(self._output_mask, y, y_pred, sample_weight))
        return self.get_metrics_result()

    def get_metrics_result(self) -> dict:
        """``{metric.name: metric.result()}`` for every metric in ``self.metrics``."""
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self) -> list:
        """The metrics fit resets each epoch: the "loss" tracker and the compiled metrics.
        Override it to list your own ``kiln.metrics.Mean`` trackers (Keras's pattern)."""
        if self._trainer is None:
            return []
        compiled = [m for _, m, _ in self._trainer.objectives.metrics]
        return [self._tracker()] + compiled

    def reset_metrics(self) -> None:
        """Reset every metric in ``self.metrics`` (fit does it at the start of each epoch)."""
        for metric in self.metrics:
            metric.reset_state()
        if self._trainer is not None:
            self._trainer.objectives.reset()

    def _tracker(self):
        if self._loss_tracker is None:
            from kiln.metrics.base import Mean
            self._loss_tracker = Mean(name="loss")
        return self._loss_tracker

    def regularization_loss(self):
        """Sum of every layer's weight and activity penalties, or None when there are none."""
        losses = self.losses
        if not losses:
            return None
        total = losses[0]
        for term in losses[1:]:
            total = total + term
        return total

    # ------------------------------------------------------------------ inspection & saving
    def get_layer(self, name=None, index=None):
        """A layer by name or by position in ``model.layers`` (Keras's ``get_layer``)."""
        layers = list(getattr(self, "layers", None) or [m for m in self.children()])
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise KilnValueError(f"Model '{self.name}' has {len(layers)} layers; index {index} is out of range.")
            return layers[index]
        for layer in layers:
            if getattr(layer, "name", None) == name:
                return layer
        from kiln.errors import closest_match
        names = [getattr(l, "name", "?") for l in layers]
        hint = closest_match(str(name), names)
        raise KilnValueError(f"No layer named {name!r} in model '{self.name}'." +
                             (f" Did you mean {hint!r}?" if hint else "") + f" Layers: {names}")

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False):
        """Print Keras's table: layer (type), output shape, parameter count, totals."""
        from kiln.models.summary import summary_text
        text = summary_text(self, show_trainable=show_trainable)
        (print_fn or print)(text)

    def get_config(self) -> dict:
        return super().get_config()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # A subclass built as CustomModel(inputs, outputs) saved a functional graph.
        if isinstance(config, dict) and "nodes" in config and "inputs" in config:
            from kiln.models.functional import functional_from_config
            return functional_from_config(cls, config, custom_objects=custom_objects)
        return cls(**config)

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture + compile settings (JSON), weights and optimizer state (safetensors);
        no pickle. ``filepath`` ending in ``.keras`` or ``.kiln`` gives one zip file; any other
        path a folder."""
        from kiln.saving.model_io import save_model
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Write the weights (the ``state_dict``) as one safetensors file."""
        from kiln.saving.weights_io import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """Load weights written by ``save_weights`` (or a saved model's folder/zip)."""
        from kiln.saving.saved_model import load_weights
        load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def quantize(self, mode="int8", **kwargs):
        """Keras 3's ``model.quantize("int8")``: Dense layers become dynamic int8, in place.
        A thin door to ``kiln.compress.quantize`` (imported here so the core stays light); to
        save an int8 model use ``kiln compress RUN --quantize int8``."""
        from kiln.compress.quantize import quantize
        quantize(self, mode, inplace=True, **kwargs)

    def save_assets(self) -> dict[str, bytes]:
        """Files to store beside the weights when the model is saved, ``{file name: bytes}``.

        The hook through which a model family keeps what is not a weight with it (the zoo's text
        models: their tokenizer), so saving need not know the family. None by default.
        """
        return {}

    def load_assets(self, assets: dict[str, bytes]) -> None:
        """Take back the files ``save_assets`` returned; ``load_model`` calls it after the weights."""

    def to_json(self) -> str:
        from kiln.saving.model_io import model_to_json
        return model_to_json(self)


def _functional_arguments(args, kwargs) -> bool:
    """True when a Model constructor got symbolic ``inputs, outputs`` (the functional API)."""
    from kiln.layers.symbolic import contains_symbolic
    inputs = args[0] if args else kwargs.get("inputs")
    outputs = args[1] if len(args) >= 2 else kwargs.get("outputs")
    return inputs is not None and outputs is not None and contains_symbolic(inputs) and contains_symbolic(outputs)


def _functional_subclass(cls):
    """``cls`` with Functional's graph replay mixed in: its own methods first, then Functional's
    (``call``, ``get_config``, ...). Named like ``cls`` so it saves and loads under that name.
    Made once per subclass and kept on the subclass itself."""
    from kiln.models.functional import Functional
    derived = cls.__dict__.get("_kiln_functional_class")
    if derived is None:
        derived = type(cls.__name__, (cls, Functional), {"__module__": cls.__module__,
                                                         "__qualname__": cls.__qualname__})
        cls._kiln_functional_class = derived
    return derived


def _first(x: Any):
    if isinstance(x, (list, tuple)):
        return _first(x[0])
    if isinstance(x, dict):
        return _first(next(iter(x.values())))
    return x
