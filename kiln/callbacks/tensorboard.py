"""TensorBoard: write the epoch logs (and optionally batch logs, weight histograms and the graph)
as TensorBoard event files, with Keras's folders and tag names.

Layout, as Keras writes it: ``log_dir/train`` holds ``epoch_loss``, ``epoch_<metric>``,
``epoch_learning_rate`` (and ``batch_*`` scalars, histograms, the graph); ``log_dir/validation``
holds the ``val_`` values under the same tags without the prefix (``epoch_loss``, ...) plus
``evaluation_<name>_vs_iterations`` at each validation, stepped by the optimizer's iteration
count. Point ``tensorboard --logdir log_dir`` at it and train and validation curves share a plot.

Writing uses ``torch.utils.tensorboard.SummaryWriter``, imported when the callback is
created, so ``import kiln`` stays light and the ``tensorboard`` package stays optional
(``pip install "kiln[tensorboard]"``).

Cost: with ``update_freq="epoch"`` (default) the callback defines no batch hook, so the fit
loop never calls it per step (kiln/callbacks/callback.py). With ``update_freq=N`` it reads the
batch logs every N batches, and each read waits for the device once.
"""

from __future__ import annotations

import math
import numbers
import os
import time
import warnings

import torch

from kiln.callbacks.callback import Callback
from kiln.errors import KilnError, KilnTypeError, KilnValueError
from kiln.layers.symbolic import map_structure

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Log training to TensorBoard.

    Args:
        log_dir: the folder for the event files (str or ``os.PathLike``, default ``"logs"``);
            ``train/`` and ``validation/`` sub-folders are created in it when first written.
        histogram_freq: every this many epochs (counted from epoch 0), write a histogram of every
            parameter as ``<layer>/<weight>/histogram`` (default 0: never).
        write_graph: write the model's graph (``SummaryWriter.add_graph`` on the model's recorded
            example batch) once, when training starts (default False; Keras's default is True,
            but tracing a torch model costs time and not every model traces).
        write_images: with ``histogram_freq``, also write each 1-D/2-D weight as an image
            ``<layer>/<weight>/image``, min-max scaled to [0, 1] (default False).
        write_steps_per_second: add ``epoch_steps_per_second`` (training steps per second of
            the epoch, validation excluded) and, in batch mode, ``batch_steps_per_second``
            (default False).
        update_freq: ``"epoch"`` (default) writes at the end of every epoch; ``"batch"`` or an
            int N also writes the running batch logs as ``batch_<name>`` every N batches,
            stepped by the global batch count.
        profile_batch: only 0 (no profiling) is supported in kiln yet.
        embeddings_freq: only 0 (no embedding projector) is supported in kiln yet.
        embeddings_metadata: only None is supported in kiln yet.

    Raises:
        KilnError: the ``tensorboard`` package is not installed.
        KilnValueError / KilnTypeError: an argument out of range, or an unsupported option.

    Example::

        tensorboard = TensorBoard(log_dir="runs/exp1", histogram_freq=1)
        model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[tensorboard])
        # then: tensorboard --logdir runs/exp1
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=False, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            raise KilnTypeError(f"`log_dir` must be a str or os.PathLike; received {type(log_dir).__name__}")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, numbers.Integral) or histogram_freq < 0:
            raise KilnValueError(f"Received an invalid value for `histogram_freq`, expected a non-negative integer "
                                 f"(0 disables histograms). Received: histogram_freq={histogram_freq!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(update_freq, numbers.Integral)
                                       or update_freq <= 0):
            raise KilnValueError(f"Unrecognized update_freq: {update_freq!r}. Expected 'epoch', 'batch' or a "
                                 f"positive integer (write every that many batches).")
        _reject_unsupported(profile_batch, embeddings_freq, embeddings_metadata)
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.profile_batch = profile_batch
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._summary_writer = _summary_writer_class()  # fails now, not after the first epoch
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers: dict = {}  # created on first write, so an unused folder is never made
        self._graph_pending = False
        self._global_train_batch = 0
        self._epoch_start = (0.0, 0)  # (time, optimizer iterations) at the epoch's start
        self._train_stop_time = None  # when validation began: steps/second leaves it out
        self._batch_mark = (0.0, 0)  # (time, global batch) of the last batch write
        if self.update_freq != "epoch":
            # The trainer only calls batch hooks on callbacks that define them, so per-epoch
            # logging costs nothing per step; batch logging turns the hook on here.
            self.on_train_batch_end = self._on_train_batch_end

    # ------------------------------------------------------------------ writers
    def set_model(self, model) -> None:
        super().set_model(model)
        self._close_writers()  # a new fit/evaluate opens fresh event files

    @property
    def _train_writer(self):
        if "train" not in self._writers:
            self._writers["train"] = self._summary_writer(self._train_dir)
        return self._writers["train"]

    @property
    def _val_writer(self):
        if "val" not in self._writers:
            self._writers["val"] = self._summary_writer(self._val_dir)
        return self._writers["val"]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._global_train_batch = _iterations(self.model) or 0
        self._graph_pending = self.write_graph
        self._write_graph_if_ready(last_chance=False)

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        now = time.perf_counter()
        self._epoch_start = (now, _iterations(self.model) or 0)
        self._train_stop_time = None
        self._batch_mark = (now, self._global_train_batch)

    def _on_train_batch_end(self, batch, logs=None):
        self._global_train_batch += 1
        step = self._global_train_batch
        if step % self.update_freq:
            return
        writer = self._train_writer
        for name, value in (logs or {}).items():  # reading lazy logs waits for the device once
            value = _scalar(value)
            if value is not None:
                writer.add_scalar("batch_" + name, value, step)
        if self.write_steps_per_second:
            now = time.perf_counter()
            mark_time, mark_step = self._batch_mark
            if now > mark_time:
                # Averaged over the batches since the last write: one batch's host time says
                # little while the device runs asynchronously; the log read above synced it.
                writer.add_scalar("batch_steps_per_second", (step - mark_step) / (now - mark_time), step)
            self._batch_mark = (now, step)

    def on_test_begin(self, logs=None):
        if self._train_stop_time is None:
            self._train_stop_time = time.perf_counter()

    def on_test_end(self, logs=None):
        iterations = _iterations(self.model)
        if iterations is None or not logs:
            return
        writer = self._val_writer
        for name, value in logs.items():
            value = _scalar(value)
            if value is not None:
                writer.add_scalar(f"evaluation_{name}_vs_iterations", value, iterations)
        writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self._write_graph_if_ready(last_chance=True)  # a model fed by a DataLoader records its example in epoch 1
        self._log_epoch_metrics(epoch, logs or {})
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()  # on_train_end is skipped when training raises: keep every finished epoch

    # ------------------------------------------------------------------ writing
    def _log_epoch_metrics(self, epoch, logs) -> None:
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[len("val_"):]: v for k, v in logs.items() if k.startswith("val_")}
        learning_rate = _scalar(getattr(getattr(self.model, "optimizer", None), "learning_rate", None))
        if learning_rate is not None:
            train_logs["learning_rate"] = learning_rate
        if self.write_steps_per_second:
            train_logs["steps_per_second"] = self._steps_per_second()
        for writer_name, values in (("train", train_logs), ("val", val_logs)):
            if not values:
                continue
            writer = self._train_writer if writer_name == "train" else self._val_writer
            for name, value in values.items():
                value = _scalar(value)
                if value is not None:
                    writer.add_scalar("epoch_" + name, value, epoch)

    def _steps_per_second(self) -> float:
        start_time, start_iterations = self._epoch_start
        stop_time = self._train_stop_time or time.perf_counter()
        iterations = _iterations(self.model)
        steps = iterations - start_iterations if iterations is not None else self.params.get("steps") or 0
        return steps / (stop_time - start_time) if stop_time > start_time else 0.0

    def _log_weights(self, epoch) -> None:
        module = _module(self.model)
        if module is None:
            return
        writer = self._train_writer
        for name, param in module.named_parameters():
            if param.numel() == 0:
                continue
            tag = name.replace(".", "/")  # "dense.kernel" -> "dense/kernel", Keras's weight path
            values = param.detach().float().cpu()
            writer.add_histogram(f"{tag}/histogram", values, epoch)
            if self.write_images:
                image = _weight_image(values)
                if image is not None:
                    writer.add_image(f"{tag}/image", image, epoch, dataformats="HW")

    def _write_graph_if_ready(self, last_chance: bool) -> None:
        if not self._graph_pending:
            return
        module = _module(self.model)
        example = getattr(module, "_example_input", None)
        if example is None:
            if not last_chance:
                return
            warnings.warn("TensorBoard(write_graph=True): the model has no recorded example input "
                          "(`_example_input`), so its graph is not written.", stacklevel=3)
            self._graph_pending = False
            return
        self._graph_pending = False
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        example = map_structure(lambda t: t.to(device) if torch.is_tensor(t) else t, example)
        try:
            with warnings.catch_warnings():
                # torch's add_graph traces with torch.jit, whose deprecation notices are not the user's to fix.
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace")
                self._train_writer.add_graph(module, example)
        except Exception as err:  # a model that does not trace should not stop training
            warnings.warn(f"TensorBoard(write_graph=True): tracing the model failed, so its graph is not "
                          f"written. Reason: {err!r}", stacklevel=3)


# ---------------------------------------------------------------------- helpers
def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise KilnError('The TensorBoard callback needs the `tensorboard` package. Install it with '
                        '`pip install "kiln[tensorboard]"` (or `pip install tensorboard`).') from err
    return SummaryWriter


def _reject_unsupported(profile_batch, embeddings_freq, embeddings_metadata) -> None:
    problems = []
    if not _is_zero_profile(profile_batch):
        problems.append(f"profile_batch={profile_batch!r} (profiling; use torch.profiler around fit instead)")
    if embeddings_freq:
        problems.append(f"embeddings_freq={embeddings_freq!r} (the embedding projector)")
    if embeddings_metadata is not None:
        problems.append(f"embeddings_metadata={embeddings_metadata!r} (the embedding projector)")
    if problems:
        raise KilnValueError("TensorBoard does not support these options in kiln yet: " + "; ".join(problems)
                             + ". Leave profile_batch=0, embeddings_freq=0 and embeddings_metadata=None.")


def _is_zero_profile(profile_batch) -> bool:
    """Keras's "off" spellings: 0, "0", "0,0", (0, 0)."""
    if profile_batch is None:
        return True
    parts = profile_batch.split(",") if isinstance(profile_batch, str) else profile_batch
    if not isinstance(parts, (list, tuple)):
        parts = [parts]
    try:
        return all(int(part) == 0 for part in parts)
    except (TypeError, ValueError):
        return False


def _module(model):
    """The nn.Module behind ``self.model``: a kiln Model, or a Trainer's module."""
    if isinstance(model, torch.nn.Module):
        return model
    module = getattr(model, "module", None)
    return module if isinstance(module, torch.nn.Module) else None


def _iterations(model) -> int | None:
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    return int(iterations) if isinstance(iterations, numbers.Integral) else None


def _scalar(value) -> float | None:
    """A log value as a float, or None for anything that is not one number."""
    if isinstance(value, torch.Tensor):
        return float(value.item()) if value.numel() == 1 else None
    if hasattr(value, "ndim") and hasattr(value, "item"):  # NumPy scalars and 0-d arrays
        return float(value.item()) if getattr(value, "size", 1) == 1 else None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def _weight_image(values: torch.Tensor) -> torch.Tensor | None:
    """A weight as one (H, W) image in [0, 1]; None for 3-D and larger kernels."""
    image = values.squeeze()
    if image.ndim <= 1:  # a bias: one row
        image = image.reshape(1, -1)
    elif image.ndim == 2:
        if image.shape[0] > image.shape[1]:  # wide rather than tall, as Keras shows kernels
            image = image.t()
    else:
        return None
    low, high = float(image.min()), float(image.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    # Min-max scaled: raw weights mostly lie outside [0, 1] and would clip to black and white.
    return (image - low) / (high - low) if high > low else torch.zeros_like(image)
