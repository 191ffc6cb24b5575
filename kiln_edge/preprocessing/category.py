"""Category columns: labels -> int64 indices ``(rows,)`` or float32 one-hot ``(rows, classes)``; scores -> labels.

``classes`` is the fitted index -> label list. Input features start it with ``"<unk>"`` (index 0,
where unseen and missing values go); output features (the classes a model predicts) do not, and
an unseen or missing label is an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kiln_edge.errors import EdgeDataError, EdgeError
from kiln_edge.preprocessing.common import is_missing, plain, row_list, row_name

__all__ = ["lookup", "check_no_missing", "label_text", "indices", "input_indices", "transform", "transform_values",
           "decode"]


def lookup(classes: list, output: bool) -> pd.Index:
    """The label -> position index ``indices`` searches (inputs: without ``"<unk>"``)."""
    return pd.Index(classes if output else classes[1:], dtype=object)


def check_no_missing(series: pd.Series, where: str) -> None:
    """A classification target must name a class in every row."""
    missing = series.isna().to_numpy()
    if missing.any():
        raise EdgeDataError(f"{where}: no label (NaN/None) in {row_list(series.index[missing])}. Drop those rows "
                            f"or fill them: a classification target must name a class.")


def label_text(value) -> str:
    """A label's string form, the one labels are compared by when their types differ: ``0``, ``0.0``
    (an int column with a gap, read as float) and ``'0'`` (a folder name) are all ``'0'``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _match_by_text(codes: np.ndarray, values: np.ndarray, index: pd.Index) -> np.ndarray:
    """Look the labels that matched nothing up again by their string form (``label_text``): a CSV
    reads class ``0`` as a number, a model trained on folder names knows ``'0'``."""
    misses = np.flatnonzero(codes < 0)
    if not len(misses):
        return codes
    by_text: dict[str, int] = {}
    for position, label in enumerate(index):
        by_text.setdefault(label_text(label), position)  # the first of two labels with one text wins
    codes = codes.copy()
    for i in misses:
        if not is_missing(values[i]):
            codes[i] = by_text.get(label_text(values[i]), -1)
    return codes


def indices(series: pd.Series, where: str, classes: list, index: pd.Index, output: bool) -> np.ndarray:
    """Each label's position in ``classes`` as int64 ``(rows,)`` (``index`` = ``lookup(classes, output)``).

    A label that is not found as it is (``0``) is looked up by its string form (``'0'``).
    """
    values = series.to_numpy(dtype=object)
    if not output:
        return input_indices(values, index)
    codes = _match_by_text(index.get_indexer(values), values, index)  # -1: not in the vocabulary
    check_no_missing(series, where)
    unseen = codes < 0
    if unseen.any():
        first = int(np.flatnonzero(unseen)[0])
        known = ", ".join(repr(plain(c)) for c in classes[:10]) + (" ..." if len(classes) > 10 else "")
        raise EdgeDataError(f"{where}: {row_name(series.index, series.index[first])} "
                            f"holds {plain(series.iloc[first])!r}, a class the training "
                            f"split does not have ({row_list(series.index[unseen])}). Known classes: {known}. A "
                            f"model cannot predict a class it never saw: drop those rows, or split so that "
                            f"training holds every class (a stratified split).")
    return codes.astype(np.int64)


def input_indices(values: np.ndarray, index: pd.Index) -> np.ndarray:
    """An input's labels (an object array) -> int64 ``(rows,)``: position + 1, unseen and missing 0 (``"<unk>"``)."""
    codes = _match_by_text(index.get_indexer(values), values, index)  # -1: not in the vocabulary
    return (codes + 1).astype(np.int64)


def transform(series: pd.Series, where: str, classes: list, index: pd.Index, output: bool,
              encoding: str) -> np.ndarray:
    """Labels -> int64 ``(rows,)`` ("index") or float32 ``(rows, len(classes))`` ("onehot")."""
    return _encoded(indices(series, where, classes, index, output), classes, encoding)


def transform_values(values: np.ndarray, classes: list, index: pd.Index, encoding: str) -> np.ndarray:
    """An input's labels as an object array (the server's records) -> ``transform``'s output, without a Series."""
    return _encoded(input_indices(values, index), classes, encoding)


def _encoded(codes: np.ndarray, classes: list, encoding: str) -> np.ndarray:
    if encoding == "onehot":
        return np.eye(len(classes), dtype=np.float32)[codes]  # (rows, classes)
    return codes


def decode(values: np.ndarray, classes: list, what: str) -> list:
    """Scores ``(rows, classes)`` (argmax) or integer indices ``(rows,)`` -> labels."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == len(classes):
        positions = values.argmax(axis=1)
    elif values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
        positions = values
    else:
        raise EdgeError(f"{what} decodes scores of shape (rows, {len(classes)}) or integer indices (rows,); "
                        f"received {values.dtype} of shape {tuple(values.shape)}.")
    return [classes[i] for i in positions.tolist()]
