"""kiln.tuners: KerasTuner's RandomSearch / BayesianOptimization / Hyperband with hp.Int/Float/Choice."""

import numpy as np
import pytest
import torch

import kiln as keras
from kiln import tuners as kt
from kiln.errors import KilnValueError


def _data():
    from sklearn.datasets import load_iris
    x, y = load_iris(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype("float32"), y[order]
    return (x[:120], y[:120]), (x[120:], y[120:])


def build_model(hp):
    model = keras.Sequential([keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu",
                                                 input_shape=(4,)),
                              keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"] if hp.Choice("metric", ["acc"]) == "acc" else [])
    return model


@pytest.mark.parametrize("cls", [kt.RandomSearch, kt.BayesianOptimization])
def test_search_finds_and_keeps_the_best_model(cls, tmp_path):
    (x, y), (xv, yv) = _data()
    tuner = cls(build_model, objective="val_loss", max_trials=3, seed=0, directory=tmp_path, project_name="p")
    tuner.search(x, y, epochs=1, batch_size=16, validation_data=(xv, yv))
    assert len(tuner.study.trials) == 3
    best_hp = tuner.get_best_hyperparameters(1)[0]
    assert best_hp.get("units") in (4, 8, 12, 16) and 1e-3 <= best_hp.get("lr") <= 1e-1
    values = [t.value for t in tuner.study.trials]
    best = tuner.get_best_models(1)[0]
    # One epoch: the trial's value is its only epoch's val_loss, what the saved model scores.
    loss = best.evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(min(values), rel=1e-5)
    assert isinstance(tuner.hypermodel.build(best_hp), torch.nn.Module)


def test_a_second_search_continues_the_project(tmp_path):
    (x, y), (xv, yv) = _data()
    first = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=1, seed=0, directory=tmp_path)
    first.search(x, y, epochs=1, validation_data=(xv, yv))
    again = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=2, seed=1, directory=tmp_path)
    again.search(x, y, epochs=1, validation_data=(xv, yv))
    assert len(again.study.trials) == 2
    fresh = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=1, directory=tmp_path, overwrite=True)
    assert len(fresh.study.trials) == 0


def test_hyperband_trains_max_epochs_and_prunes_by_epoch(tmp_path):
    (x, y), (xv, yv) = _data()
    tuner = kt.Hyperband(build_model, objective=kt.Objective("val_accuracy", "max"), max_epochs=3, factor=3,
                         max_trials=4, seed=0, directory=tmp_path)
    tuner.search(x, y, epochs=99, validation_data=(xv, yv))
    trials = tuner.study.trials
    assert len(trials) == 4
    for t in trials:
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)) and len(steps) <= 3  # max_epochs, not 99
        if t.state.name == "COMPLETE":
            assert len(steps) == 3


def test_bad_arguments_are_kiln_errors(tmp_path):
    with pytest.raises(KilnValueError, match=r"expected a positive integer. Received: max_trials=0"):
        kt.RandomSearch(build_model, objective="val_loss", max_trials=0, directory=tmp_path)
    with pytest.raises(KilnValueError, match=r"expected 'min' or 'max'. Received: direction='up'"):
        kt.Objective("val_loss", "up")
    hp = kt.HyperParameters(values={"units": 4})
    with pytest.raises(KilnValueError, match=r"Hyperparameter 'lr' has no value here \(known: units\)"):
        hp.Float("lr", 1e-3, 1e-1)
    tuner = kt.RandomSearch(build_model, objective="val_f1", max_trials=1, directory=tmp_path)
    (x, y), (xv, yv) = _data()
    with pytest.raises(KilnValueError, match=r"The objective 'val_f1' is not logged by fit"):
        tuner.search(x, y, epochs=1, validation_data=(xv, yv))
