"""On scikit-learn's bundled datasets, a small kiln network reaches scikit-learn's own baselines.

Held-out test splits the model never sees; the baseline is scikit-learn's standard linear
model on the same split and the same scaling.
"""

import numpy as np
import pytest
from sklearn import datasets
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import kiln
from kiln.layers import Dense, Dropout


def split(loader, stratify=True):
    x, y = loader(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0,
                                              stratify=y if stratify else None)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr).astype("float32"), scaler.transform(x_te).astype("float32"), y_tr, y_te


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
def test_classifier_reaches_logistic_regression(name):
    x_tr, x_te, y_tr, y_te = split(getattr(datasets, f"load_{name}"))
    n_classes = len(np.unique(y_tr))
    baseline = accuracy_score(y_te, LogisticRegression(max_iter=5000).fit(x_tr, y_tr).predict(x_te))

    kiln.utils.set_random_seed(0)
    model = kiln.Sequential([Dense(64, activation="relu", input_shape=(x_tr.shape[1],)), Dropout(0.1),
                             Dense(n_classes, activation="softmax")])
    model.compile(optimizer=kiln.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=100, batch_size=32, verbose=0, validation_split=0.1,
              callbacks=[kiln.callbacks.EarlyStopping(patience=15, restore_best_weights=True)])
    accuracy = model.evaluate(x_te, y_te, verbose=0, return_dict=True)["accuracy"]
    assert accuracy >= baseline - 0.02, (name, accuracy, baseline)


@pytest.mark.slow
def test_regressor_reaches_linear_regression_on_diabetes():
    x_tr, x_te, y_tr, y_te = split(datasets.load_diabetes, stratify=False)
    baseline = r2_score(y_te, LinearRegression().fit(x_tr, y_tr).predict(x_te))
    mean, std = y_tr.mean(), y_tr.std()

    kiln.utils.set_random_seed(0)
    model = kiln.Sequential([Dense(32, activation="relu", input_shape=(10,)), Dense(1)])
    model.compile(optimizer=kiln.optimizers.Adam(1e-3), loss="mse", metrics=[kiln.metrics.R2Score()])
    model.fit(x_tr, ((y_tr - mean) / std).astype("float32"), epochs=200, batch_size=32, verbose=0,
              validation_split=0.15, callbacks=[kiln.callbacks.EarlyStopping(patience=20, restore_best_weights=True)])
    pred = model.predict(x_te, verbose=0)[:, 0] * std + mean
    assert r2_score(y_te, pred) >= baseline - 0.03, (r2_score(y_te, pred), baseline)
