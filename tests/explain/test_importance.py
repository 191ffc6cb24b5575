"""Permutation importance: the features that drive the label come first; others score about zero."""

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import KilnValueError
from kiln.explain.importance import permutation_importance


def _three_of_ten(rows=400, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((rows, 10)).astype("float32")
    y = (x[:, 2] + 2 * x[:, 5] - 1.5 * x[:, 7] > 0).astype("int64")  # only features 2, 5 and 7 matter
    return {f"f{i}": torch.from_numpy(x[:, i:i + 1]) for i in range(10)}, torch.from_numpy(y)


def _fitted(x, y):
    inputs = {name: kiln.Input(shape=(1,), name=name) for name in x}
    h = kiln.layers.Concatenate()(list(inputs.values()))
    model = kiln.Model(inputs, kiln.layers.Dense(2)(kiln.layers.Dense(16, activation="relu")(h)))
    model.compile(optimizer=kiln.optimizers.Adam(0.02), loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    return model


@pytest.mark.slow
def test_the_three_features_that_drive_the_label_rank_first():
    x, y = _three_of_ten()
    model = _fitted(x, y)
    result = permutation_importance(model, x, y, n_repeats=3)
    assert result["metric"] == "accuracy" and result["higher_is_better"]
    assert set(list(result["importances"])[:3]) == {"f2", "f5", "f7"}
    noise = [v["mean"] for n, v in result["importances"].items() if n not in ("f2", "f5", "f7")]
    assert max(noise) < 0.05 < min(result["importances"][n]["mean"] for n in ("f2", "f5", "f7"))


def test_a_loss_metric_is_flipped_so_that_important_is_positive():
    x, y = _three_of_ten(rows=200)
    model = _fitted(x, y)
    result = permutation_importance(model, x, y, metric="loss", n_repeats=2)
    assert not result["higher_is_better"]
    assert result["importances"]["f5"]["mean"] > 0


def test_an_unknown_metric_names_the_ones_there_are():
    x, y = _three_of_ten(rows=64)
    model = _fitted(x, y)
    with pytest.raises(KilnValueError, match=r"does not report metric 'auc'; it reports \['accuracy', 'loss'\]"):
        permutation_importance(model, x, y, metric="auc")
