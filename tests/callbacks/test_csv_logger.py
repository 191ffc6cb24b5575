"""CSVLogger: header, rows, flushing, appending and separators."""

import csv

import numpy as np
import pytest

from kiln.callbacks.csv_logger import CSVLogger


def read_rows(path, separator=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


def test_header_is_epoch_then_sorted_keys_and_one_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"val_loss": 0.5, "loss": 1.0, "mae": 0.75, "val_mae": 0.25})
    logger.on_epoch_end(1, {"val_loss": 0.4, "loss": 0.9, "mae": 0.7, "val_mae": 0.2})
    logger.on_train_end()
    assert read_rows(path) == [["epoch", "loss", "mae", "val_loss", "val_mae"],
                               ["0", "1.0", "0.75", "0.5", "0.25"],
                               ["1", "0.9", "0.7", "0.4", "0.2"]]


def test_rows_are_on_disk_after_each_epoch(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    # No on_train_end: as after a crash, the finished epoch is already written.
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"]]
    logger.on_train_end()


def test_without_validation_keys_val_columns_are_na(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0})
    logger.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.7})  # validation_freq=2, as Keras handles it
    logger.on_train_end()
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "NA"], ["1", "0.5", "0.7"]]


def test_keys_that_appear_later_are_ignored(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    logger.on_epoch_end(1, {"loss": 0.5, "val_loss": 1.0, "learning_rate": 0.1})
    logger.on_train_end()
    assert read_rows(path)[-1] == ["1", "0.5", "1.0"]


def test_append_keeps_rows_and_writes_one_header(tmp_path):
    path = tmp_path / "log.csv"
    first = CSVLogger(path)
    first.on_train_begin()
    first.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    first.on_train_end()
    second = CSVLogger(path, append=True)
    second.on_train_begin()
    second.on_epoch_end(1, {"loss": 0.5, "val_loss": 1.5})
    second.on_train_end()
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"], ["1", "0.5", "1.5"]]
    overwrite = CSVLogger(path)
    overwrite.on_train_begin()
    overwrite.on_epoch_end(0, {"loss": 3.0, "val_loss": 3.0})
    overwrite.on_train_end()
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "3.0", "3.0"]]


def test_append_to_a_missing_file_writes_the_header(tmp_path):
    path = tmp_path / "new" / "log.csv"
    logger = CSVLogger(path, append=True)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    logger.on_train_end()
    assert read_rows(path)[0] == ["epoch", "loss", "val_loss"]


def test_separator_and_array_values(tmp_path):
    path = tmp_path / "log.tsv"
    logger = CSVLogger(path, separator="\t")
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0, "per_class": np.array([0.5, 0.25])})
    logger.on_train_end()
    rows = read_rows(path, separator="\t")
    assert rows[0] == ["epoch", "loss", "per_class", "val_loss"]
    assert rows[1] == ["0", "1.0", '"[0.5, 0.25]"', "2.0"]


def test_invalid_separator():
    with pytest.raises(TypeError, match="separator"):
        CSVLogger("log.csv", separator=", ")


def test_fit_writes_a_row_per_epoch_matching_the_history(tmp_path):
    from kiln.layers.dense import Dense
    from kiln.models.sequential import Sequential

    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = Sequential([Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"], device="cpu")
    path = tmp_path / "training.csv"
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, callbacks=[CSVLogger(path)])
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert len(rows) == 4
    for epoch, row in enumerate(rows[1:]):
        assert int(row[0]) == epoch
        for key, cell in zip(rows[0][1:], row[1:]):
            assert float(cell) == pytest.approx(history.history[key][epoch])
