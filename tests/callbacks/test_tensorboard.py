"""TensorBoard: real fits whose event files are read back and checked against ``history``."""

import sys

import numpy as np
import pytest
import torch

from kiln.callbacks.callback import Callback, CallbackList
from kiln.callbacks.tensorboard import TensorBoard
from kiln.errors import KilnError, KilnTypeError, KilnValueError
from kiln.layers.dense import Dense
from kiln.models.sequential import Sequential

# 96 samples, validation_split=0.25, batch_size=12: 6 training batches per epoch.
STEPS_PER_EPOCH = 6


@pytest.fixture(scope="module")
def event_accumulator():
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    return EventAccumulator


def fit(callbacks, epochs=3, validation_split=0.25, model=None):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    if model is None:
        model = Sequential([Dense(8, activation="relu"), Dense(1)])
        model.compile(optimizer="adam", loss="mse", metrics=["mae"], device="cpu")
    history = model.fit(x, y, batch_size=12, epochs=epochs, validation_split=validation_split, verbose=0,
                        callbacks=callbacks)
    return model, history


def read(event_accumulator, folder):
    """{"scalars": {tag: [(step, value)]}, "histograms": {tag: [step]}, "images": ..., "graph": bool}."""
    acc = event_accumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    return {"scalars": {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]},
            "histograms": {t: [e.step for e in acc.Histograms(t)] for t in tags["histograms"]},
            "images": {t: [e.step for e in acc.Images(t)] for t in tags["images"]},
            "graph": tags["graph"]}


def test_epoch_scalars_equal_history_in_train_and_validation_folders(tmp_path, event_accumulator):
    tensorboard = TensorBoard(log_dir=tmp_path)
    _, history = fit([tensorboard])
    train = read(event_accumulator, tmp_path / "train")["scalars"]
    val = read(event_accumulator, tmp_path / "validation")["scalars"]

    assert set(train) == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    for key in ("loss", "mae"):
        assert [step for step, _ in train[f"epoch_{key}"]] == [0, 1, 2]
        assert [v for _, v in train[f"epoch_{key}"]] == pytest.approx(history.history[key], rel=1e-6)
        # The validation writer holds val_* under the same tag, without the prefix.
        assert [step for step, _ in val[f"epoch_{key}"]] == [0, 1, 2]
        assert [v for _, v in val[f"epoch_{key}"]] == pytest.approx(history.history[f"val_{key}"], rel=1e-6)
    assert [v for _, v in train["epoch_learning_rate"]] == pytest.approx([1e-3] * 3)
    # Keras's evaluation_<name>_vs_iterations: each validation, stepped by the optimizer's iterations.
    assert [step for step, _ in val["evaluation_loss_vs_iterations"]] == [6, 12, 18]
    assert [v for _, v in val["evaluation_loss_vs_iterations"]] == pytest.approx(history.history["val_loss"],
                                                                                 rel=1e-6)
    assert set(val) == {"epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations", "evaluation_mae_vs_iterations"}


def test_per_epoch_mode_defines_no_batch_hook(tmp_path):
    # The fit loop then never calls the callback per step (and never syncs for it).
    callbacks = CallbackList([TensorBoard(log_dir=tmp_path)])
    assert not callbacks.wants("on_train_batch_end")
    assert not callbacks.wants("on_train_batch_begin")
    assert CallbackList([TensorBoard(log_dir=tmp_path, update_freq=3)]).wants("on_train_batch_end")


def test_without_validation_no_validation_folder_is_written(tmp_path, event_accumulator):
    fit([TensorBoard(log_dir=tmp_path)], epochs=1, validation_split=0.0)
    assert (tmp_path / "train").is_dir()
    assert not (tmp_path / "validation").exists()


def test_update_freq_n_writes_running_batch_logs_every_n_batches_across_epochs(tmp_path, event_accumulator):
    _, history = fit([TensorBoard(log_dir=tmp_path, update_freq=STEPS_PER_EPOCH)], epochs=2)
    scalars = read(event_accumulator, tmp_path / "train")["scalars"]
    assert [step for step, _ in scalars["batch_loss"]] == [6, 12]
    assert [step for step, _ in scalars["batch_mae"]] == [6, 12]
    # At an epoch's last batch the running logs are that epoch's logs.
    assert [v for _, v in scalars["batch_loss"]] == pytest.approx(history.history["loss"], rel=1e-5)
    assert [v for _, v in scalars["batch_mae"]] == pytest.approx(history.history["mae"], rel=1e-5)
    assert "batch_steps_per_second" not in scalars


def test_update_freq_batch_writes_every_batch(tmp_path, event_accumulator):
    fit([TensorBoard(log_dir=tmp_path, update_freq="batch")], epochs=2)
    scalars = read(event_accumulator, tmp_path / "train")["scalars"]
    assert [step for step, _ in scalars["batch_loss"]] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert len(scalars["epoch_loss"]) == 2


def test_histograms_every_histogram_freq_epochs_and_images_when_asked(tmp_path, event_accumulator):
    model, _ = fit([TensorBoard(log_dir=tmp_path, histogram_freq=2, write_images=True)], epochs=3)
    events = read(event_accumulator, tmp_path / "train")
    names = [name.replace(".", "/") for name, _ in model.named_parameters()]
    assert names == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    assert events["histograms"] == {f"{name}/histogram": [0, 2] for name in names}
    assert events["images"] == {f"{name}/image": [0, 2] for name in names}


def test_no_histograms_by_default(tmp_path, event_accumulator):
    fit([TensorBoard(log_dir=tmp_path)], epochs=1)
    events = read(event_accumulator, tmp_path / "train")
    assert events["histograms"] == {} and events["images"] == {} and not events["graph"]


def test_steps_per_second_per_epoch_and_per_batch(tmp_path, event_accumulator):
    fit([TensorBoard(log_dir=tmp_path, write_steps_per_second=True, update_freq=3)], epochs=2)
    scalars = read(event_accumulator, tmp_path / "train")["scalars"]
    assert [step for step, _ in scalars["epoch_steps_per_second"]] == [0, 1]
    assert all(v > 0 for _, v in scalars["epoch_steps_per_second"])
    assert [step for step, _ in scalars["batch_steps_per_second"]] == [3, 6, 9, 12]
    assert all(v > 0 for _, v in scalars["batch_steps_per_second"])


def test_write_graph_writes_the_traced_model(tmp_path, event_accumulator):
    fit([TensorBoard(log_dir=tmp_path, write_graph=True)], epochs=1)
    assert read(event_accumulator, tmp_path / "train")["graph"]


def test_write_graph_warns_and_trains_when_the_model_has_no_example(tmp_path, event_accumulator):
    from kiln.training.trainer import Trainer
    module = torch.nn.Sequential(torch.nn.Linear(4, 1))
    trainer = Trainer(module)
    trainer.compile(optimizer="sgd", loss="mse", device="cpu")
    with pytest.warns(UserWarning, match="_example_input"):
        _, history = fit([TensorBoard(log_dir=tmp_path, write_graph=True, histogram_freq=1)], epochs=2,
                         model=trainer)
    events = read(event_accumulator, tmp_path / "train")
    assert not events["graph"]
    # A plain module trained by a Trainer still gets its scalars and histograms.
    assert [v for _, v in events["scalars"]["epoch_loss"]] == pytest.approx(history.history["loss"], rel=1e-6)
    assert set(events["histograms"]) == {"0/weight/histogram", "0/bias/histogram"}


def test_finished_epochs_are_on_disk_when_training_raises(tmp_path, event_accumulator):
    class Crash(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit([TensorBoard(log_dir=tmp_path), Crash()], epochs=3)
    scalars = read(event_accumulator, tmp_path / "train")["scalars"]
    assert [step for step, _ in scalars["epoch_loss"]] == [0, 1]


@pytest.mark.parametrize("kwargs", [{"profile_batch": 2}, {"profile_batch": (10, 20)}, {"profile_batch": "5,6"},
                                    {"embeddings_freq": 1}, {"embeddings_metadata": "meta.tsv"},
                                    {"embeddings_metadata": {"embedding": "meta.tsv"}}])
def test_unsupported_options_are_rejected(tmp_path, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(KilnValueError, match=f"not support.*{name}="):
        TensorBoard(log_dir=tmp_path, **kwargs)


@pytest.mark.parametrize("profile_batch", [0, None, "0", "0,0", (0, 0)])
def test_profiling_off_spellings_are_accepted(tmp_path, profile_batch):
    pytest.importorskip("tensorboard")
    TensorBoard(log_dir=tmp_path, profile_batch=profile_batch, embeddings_freq=0, embeddings_metadata=None)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"update_freq": 0}, KilnValueError, "update_freq"),
    ({"update_freq": "step"}, KilnValueError, "update_freq"),
    ({"update_freq": True}, KilnValueError, "update_freq"),
    ({"histogram_freq": -1}, KilnValueError, "histogram_freq"),
    ({"histogram_freq": 1.5}, KilnValueError, "histogram_freq"),
    ({"log_dir": 3}, KilnTypeError, "log_dir"),
])
def test_invalid_arguments_name_the_argument(tmp_path, kwargs, error, match):
    kwargs.setdefault("log_dir", tmp_path)
    with pytest.raises(error, match=match):
        TensorBoard(**kwargs)


def test_missing_tensorboard_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(KilnError, match=r'pip install "kiln\[tensorboard\]"'):
        TensorBoard(log_dir=tmp_path)
