"""ModelCheckpoint: file names, best-only logic, batch frequency and atomic saving."""

import os

import numpy as np
import pytest
import torch

from kiln.callbacks.callback import CallbackList
from kiln.callbacks.model_checkpoint import ModelCheckpoint
from kiln.errors import KilnValueError


class FakeModel:
    """save/save_weights write a file holding a counter, so a test can tell saves apart."""

    def __init__(self, folder_saves=False):
        self.stop_training = False
        self.saves = []  # (kind, path the saver was called with)
        self.version = 0
        self.folder_saves = folder_saves

    def save(self, path):
        self.saves.append(("model", path))
        if self.folder_saves:
            os.makedirs(path)
            with open(os.path.join(path, "weights.txt"), "w") as f:
                f.write(f"model {self.version}")
        else:
            with open(path, "w") as f:
                f.write(f"model {self.version}")

    def save_weights(self, path):
        self.saves.append(("weights", path))
        with open(path, "w") as f:
            f.write(f"weights {self.version}")


def play(callback, logs_per_epoch, model=None):
    model = model or FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch):
        model.version = epoch
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, dict(logs))
    callback.on_train_end()
    return model


def read(path):
    with open(path) as f:
        return f.read()


def test_filepath_is_formatted_with_one_based_epoch_and_log_values(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "{epoch:02d}-{val_loss:.2f}.keras"))
    play(cb, [{"loss": 1.0, "val_loss": 0.5}, {"loss": 0.9, "val_loss": 0.4321}])
    assert sorted(os.listdir(tmp_path)) == ["01-0.50.keras", "02-0.43.keras"]
    assert read(tmp_path / "02-0.43.keras") == "model 1"


def test_save_every_epoch_overwrites_a_fixed_name(tmp_path):
    path = tmp_path / "last.keras"
    model = play(ModelCheckpoint(path), [{"val_loss": 3.0}, {"val_loss": 2.0}, {"val_loss": 5.0}])
    assert len(model.saves) == 3
    assert read(path) == "model 2"
    assert os.listdir(tmp_path) == ["last.keras"]  # no temporary files left behind


def test_save_best_only_saves_only_improvements(tmp_path):
    path = tmp_path / "best.keras"
    cb = ModelCheckpoint(path, save_best_only=True)
    model = play(cb, [{"val_loss": 0.5}, {"val_loss": 0.6}, {"val_loss": 0.4}, {"val_loss": 0.4}])
    assert len(model.saves) == 2
    assert read(path) == "model 2"
    assert cb.best == 0.4


def test_save_best_only_mode_auto_maximises_accuracy(tmp_path):
    path = tmp_path / "best.keras"
    cb = ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)
    model = play(cb, [{"val_accuracy": 0.5}, {"val_accuracy": 0.4}, {"val_accuracy": 0.7}])
    assert len(model.saves) == 2
    assert read(path) == "model 2"


def test_initial_value_threshold_must_be_beaten(tmp_path):
    path = tmp_path / "best.keras"
    cb = ModelCheckpoint(path, save_best_only=True, initial_value_threshold=0.3)
    model = play(cb, [{"val_loss": 0.5}, {"val_loss": 0.2}, {"val_loss": 0.25}])
    assert len(model.saves) == 1
    assert read(path) == "model 1"


def test_save_best_only_with_missing_monitor_warns_and_saves(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m.keras", monitor="val_acc", save_best_only=True)
    with pytest.warns(UserWarning, match="val_acc"):
        model = play(cb, [{"loss": 1.0}])
    assert len(model.saves) == 1


def test_save_weights_only_calls_save_weights(tmp_path):
    path = tmp_path / "w.weights.safetensors"
    model = play(ModelCheckpoint(path, save_weights_only=True), [{"val_loss": 1.0}])
    assert [kind for kind, _ in model.saves] == ["weights"]
    assert read(path) == "weights 0"


def test_the_saver_writes_a_temporary_name_in_the_same_folder_with_the_same_ending(tmp_path):
    path = tmp_path / "sub" / "model.keras"
    model = play(ModelCheckpoint(path), [{"val_loss": 1.0}])
    _, written = model.saves[0]
    assert os.path.dirname(written) == str(tmp_path / "sub")  # folder created; rename stays on one disk
    assert written.endswith(".keras") and written != str(path)
    assert os.path.exists(path) and not os.path.exists(written)


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "model.keras"

    class Crashing(FakeModel):
        def save(self, p):
            with open(p, "w") as f:
                f.write("half")
            raise OSError("disk full")

    play(ModelCheckpoint(path), [{"val_loss": 1.0}])
    with pytest.raises(OSError, match="disk full"):
        play(ModelCheckpoint(path), [{"val_loss": 1.0}], model=Crashing())
    assert read(path) == "model 0"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_folder_checkpoints_are_replaced_whole(tmp_path):
    path = tmp_path / "ckpt"
    model = play(ModelCheckpoint(path), [{"val_loss": 1.0}, {"val_loss": 0.5}], model=FakeModel(folder_saves=True))
    assert len(model.saves) == 2
    assert read(path / "weights.txt") == "model 1"
    assert os.listdir(tmp_path) == ["ckpt"]


def test_save_freq_in_batches(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "{epoch}-{batch}.keras"), save_freq=2)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch in range(2):
        cb.on_epoch_begin(epoch)
        for batch in range(5):
            cb.on_train_batch_end(batch, {"loss": 1.0})
        cb.on_epoch_end(epoch, {"loss": 1.0})
    # Epoch 1: after batches 2 and 4; the fifth batch and epoch 2's first make the next pair.
    assert sorted(os.listdir(tmp_path)) == ["1-2.keras", "1-4.keras", "2-1.keras", "2-3.keras", "2-5.keras"]


def test_batch_hook_is_dispatched_only_when_saving_by_batch(tmp_path):
    per_epoch = CallbackList([ModelCheckpoint(tmp_path / "a.keras")])
    per_batch = CallbackList([ModelCheckpoint(tmp_path / "a.keras", save_freq=3)])
    assert not per_epoch.wants("on_train_batch_end")
    assert per_batch.wants("on_train_batch_end")


def test_unknown_key_in_filepath_names_the_available_keys(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.keras"))
    with pytest.raises(KilnValueError, match="val_acc.*epoch, loss"):
        play(cb, [{"loss": 1.0}])


def test_invalid_arguments(tmp_path):
    with pytest.raises(KilnValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "a.keras", save_freq="batch")
    with pytest.raises(KilnValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "a.keras", save_freq=0)
    with pytest.raises(KilnValueError, match="mode"):
        ModelCheckpoint(tmp_path / "a.keras", mode="best")
    with pytest.raises(TypeError, match="filepath"):
        ModelCheckpoint(None)


def test_verbose_messages(tmp_path, capsys):
    cb = ModelCheckpoint(tmp_path / "b.keras", save_best_only=True, verbose=1)
    play(cb, [{"val_loss": 0.5}, {"val_loss": 0.7}])
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from None to 0.50000, saving model to" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


def test_fit_writes_one_weights_file_per_epoch(tmp_path):
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = Sequential([Dense(4, activation="relu"), Dense(1)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    pattern = str(tmp_path / "w-{epoch:02d}-{val_loss:.3f}.weights.safetensors")
    best = tmp_path / "best" / "model.keras"
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0,
                        callbacks=[ModelCheckpoint(pattern, save_weights_only=True),
                                   ModelCheckpoint(best, save_best_only=True)])
    expected = [f"w-{e + 1:02d}-{v:.3f}.weights.safetensors" for e, v in enumerate(history.history["val_loss"])]
    assert sorted(os.listdir(tmp_path)) == ["best"] + expected
    assert os.listdir(tmp_path / "best") == ["model.keras"]  # the whole model, one zip file
    final = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    model.load_weights(tmp_path / expected[-1])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, final[key])
