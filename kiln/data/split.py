"""Split the table into train/validation/test frames, or into k folds.

Splits are exact and deterministic: the split sizes are the ratios times the row count
rounded by largest remainder (every split with a ratio above 0 gets at least one row), and a
stratified split gives every class a share within one row of its ratio in every split. The
same frame and seed always give the same rows. Each output frame keeps the input's row order
and the input's index: a CSV's rows keep their file row numbers (``read_source``), so an error
about a training row names the row of the file, not its position in the split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kiln.data.optional import require
from kiln.errors import DataError, KilnTypeError, closest_match
from kiln_edge.preprocessing.common import row_list

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SPLITS", "split_frame", "kfold"]

SPLITS = ("train", "validation", "test")
# Values accepted in a `by_column` column, after str().strip().lower().
_SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
                "valid": "validation", "dev": "validation", "test": "test", "testing": "test"}


def split_frame(frame: pd.DataFrame, *, train: float = 0.8, validation: float = 0.1, test: float = 0.1,
                stratify: str | None = None, by_column: str | None = None, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Split a frame into ``{"train", "validation", "test"}`` frames.

    Args:
        frame: the table, one row per example.
        train, validation, test: the share of rows for each split (defaults 0.8/0.1/0.1); they
            must sum to 1. A share of 0 gives an empty frame for that split.
        stratify: a column whose class proportions every split keeps (default None).
        by_column: a column that names each row's split ("train"; "validation", "val",
            "valid" or "dev"; "test"), case-insensitive. It wins over the ratios (default None).
        seed: the seed of the shuffle (default 0).

    Returns:
        A dict of three DataFrames with the input's columns and index labels.

    Raises:
        DataError: the ratios are invalid, a column is missing, there are too few rows (or too
            few examples of a class) for a non-empty split, or `by_column` holds other values.

    Example:
        >>> parts = split_frame(frame, train=0.7, validation=0.15, test=0.15, stratify="label")
        >>> len(parts["train"]) + len(parts["validation"]) + len(parts["test"]) == len(frame)
        True
    """
    _check_frame(frame)
    if by_column is not None:
        return _split_by_column(frame, by_column)
    ratios = _check_ratios({"train": train, "validation": validation, "test": test})
    rng = np.random.default_rng(seed)
    n = len(frame)
    sizes = _split_sizes(n, ratios)

    if stratify is None:
        order = rng.permutation(n)
        bounds = np.cumsum([0, *sizes])
        assignment = np.empty(n, dtype=np.int64)
        for s in range(len(SPLITS)):
            assignment[order[bounds[s]:bounds[s + 1]]] = s
    else:
        codes, classes = _class_codes(frame, stratify, need=2, why="a stratified split")
        counts = np.bincount(codes, minlength=len(classes))
        table = _allocate(counts, ratios, sizes)  # (classes, splits) rows of each class per split
        assignment = np.empty(n, dtype=np.int64)
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(codes == c))
            bounds = np.cumsum([0, *table[c]])
            for s in range(len(SPLITS)):
                assignment[members[bounds[s]:bounds[s + 1]]] = s
    return {name: _rows(frame, np.flatnonzero(assignment == s)) for s, name in enumerate(SPLITS)}


def kfold(frame: pd.DataFrame, k: int, *, stratify: str | None = None,
          seed: int = 0) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Split a frame into ``k`` folds: every row is in exactly one fold's validation frame.

    Args:
        frame: the table, one row per example.
        k: the number of folds (at least 2, at most the number of rows).
        stratify: a column whose class proportions each fold keeps, within one row per class
            (default None).
        seed: the seed of the shuffle (default 0).

    Returns:
        ``k`` pairs ``(train_frame, validation_frame)``; fold sizes differ by at most one row.

    Raises:
        DataError: ``k`` is out of range, the stratify column is missing, or one of its
            classes has a single example.

    Example:
        >>> for train_part, val_part in kfold(frame, 5, stratify="label"):
        ...     ...
    """
    _check_frame(frame)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise KilnTypeError(f"Received an invalid value for `k`, expected an integer >= 2. Received: k={k!r}")
    n = len(frame)
    if k < 2 or k > n:
        raise DataError(f"Received an invalid value for `k`, expected 2 <= k <= {n} (the number of rows). "
                        f"Received: k={k}. Use fewer folds or more data.")
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
    else:
        codes, classes = _class_codes(frame, stratify, need=2, why="stratified k-fold")
        # Deal the classes one after another round-robin over the folds: each class is spread
        # within one row per fold, and the fold sizes stay within one row of each other.
        order = np.concatenate([rng.permutation(np.flatnonzero(codes == c)) for c in range(len(classes))])
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % k
    return [(_rows(frame, np.flatnonzero(fold_of != f)), _rows(frame, np.flatnonzero(fold_of == f)))
            for f in range(k)]


# --- helpers -----------------------------------------------------------------------------

def _check_frame(frame) -> None:
    pd = require("pandas")
    if not isinstance(frame, pd.DataFrame):
        raise KilnTypeError(f"Expected a pandas.DataFrame to split. Received: {type(frame).__name__}. "
                            "Read the data with kiln.data.read_source first.")
    if len(frame) == 0:
        raise DataError("The frame to split has no rows. Check the data source.")


def _check_ratios(ratios: dict[str, float]) -> np.ndarray:
    for name, value in ratios.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value <= 1:
            raise DataError(f"Received an invalid value for `{name}`, expected a share between 0 and 1. "
                            f"Received: {name}={value!r}")
    total = sum(ratios.values())
    if abs(total - 1) > 1e-6:
        given = ", ".join(f"{k}={v}" for k, v in ratios.items())
        raise DataError(f"The split ratios must sum to 1, but {given} sum to {total:g}. Adjust them, "
                        "e.g. train=0.8, validation=0.1, test=0.1.")
    return np.array(list(ratios.values()), dtype=np.float64)


def _split_sizes(n: int, ratios: np.ndarray) -> np.ndarray:
    """Row counts per split: n * ratios rounded by largest remainder, each used split >= 1 row."""
    used = ratios > 0
    if n < used.sum():
        wanted = ", ".join(f"{SPLITS[s]}={ratios[s]:g}" for s in np.flatnonzero(used))
        raise DataError(f"The frame has {n} row(s), too few for {used.sum()} non-empty splits ({wanted}): each "
                        "needs at least one row. Add data, or set a ratio to 0 to leave that split empty.")
    sizes = _largest_remainder(n * ratios)
    for s in np.flatnonzero(used & (sizes == 0)):
        sizes[int(np.argmax(sizes))] -= 1  # a tiny split still gets a row, from the largest one
        sizes[s] = 1
    return sizes


def _largest_remainder(quotas: np.ndarray) -> np.ndarray:
    floors = np.floor(quotas + 1e-9).astype(np.int64)
    short = int(round(quotas.sum())) - int(floors.sum())
    # Stable sort: ties go to the earlier split (train before validation before test).
    for i in np.argsort(-(quotas - floors), kind="stable")[:short]:
        floors[i] += 1
    return floors


def _allocate(counts: np.ndarray, ratios: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """A (classes, splits) table with row sums ``counts`` and column sums ``sizes``.

    Each cell starts at floor(count * ratio); the leftover rows of each class go to the splits
    that still need rows, at most one extra per cell, found as a small max-flow so the split
    totals come out exact (a greedy pass can get stuck). That keeps each class within one
    row of its share in every split.
    """
    table = np.floor(np.outer(counts, ratios) + 1e-9).astype(np.int64)
    need = sizes - table.sum(axis=0)  # rows each split still needs
    # A split shrunk below its floor (to give a tiny split its one row) hands rows back.
    for s in np.flatnonzero(need < 0):
        while need[s] < 0:
            c = int(np.argmax(table[:, s]))
            table[c, s] -= 1
            need[s] += 1
    spare = counts - table.sum(axis=1)  # rows each class has yet to place
    frac = np.outer(counts, ratios) - table
    extra = np.zeros_like(table)

    def augment(c: int, seen: set[int]) -> bool:
        # Place one row of class c: in a split with room, or by moving another class's extra row.
        for s in np.argsort(-frac[c], kind="stable"):
            if extra[c, s] or s in seen or ratios[s] == 0:
                continue
            seen.add(s)
            if need[s] > 0:
                need[s] -= 1
                extra[c, s] = 1
                return True
            for other in np.flatnonzero(extra[:, s]):
                if augment(int(other), seen):
                    extra[other, s] = 0
                    extra[c, s] = 1
                    return True
        return False

    for c in np.argsort(-counts, kind="stable"):
        for _ in range(int(spare[c])):
            if augment(int(c), set()):
                spare[c] -= 1
    # Should the one-extra-per-cell rule have no solution (only after the tiny-split adjustment),
    # place what is left wherever a split still needs rows: the totals stay exact.
    for c in range(len(counts)):
        while spare[c] > 0:
            s = int(np.argmax(need))
            extra[c, s] += 1
            need[s] -= 1
            spare[c] -= 1
    return table + extra


def _require_column(frame: pd.DataFrame, column: str, what: str) -> None:
    if column not in frame.columns:
        hint = closest_match(column, map(str, frame.columns))
        raise DataError(f"{what} is not in the frame." + (f" Did you mean {hint!r}?" if hint else "")
                        + f" Columns: {', '.join(map(str, frame.columns))}.")


def _class_codes(frame: pd.DataFrame, column: str, *, need: int, why: str) -> tuple[np.ndarray, list]:
    pd = require("pandas")
    _require_column(frame, column, f"The stratify column {column!r}")
    values = frame[column]
    if values.map(lambda v: isinstance(v, np.ndarray)).any():
        raise DataError(f"The stratify column {column!r} holds arrays; stratify by a column of class labels.")
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise DataError(f"The stratify column {column!r} has {len(missing)} missing value(s), at "
                        f"{row_list(frame.index[missing])}. Fill or drop those rows first.")
    codes, classes = pd.factorize(values)
    counts = np.bincount(codes, minlength=len(classes))
    rare = [(classes[c], int(counts[c])) for c in np.flatnonzero(counts < need)]
    if rare:
        listed = ", ".join(f"{label!r} ({count} example{'s' if count != 1 else ''})" for label, count in rare[:5])
        raise DataError(f"Column {column!r}: {len(rare)} class(es) have fewer than {need} examples, too few for "
                        f"{why}: {listed}. Add examples, drop or merge those classes, or set stratify to None.")
    return codes, list(classes)


def _split_by_column(frame: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    _require_column(frame, column, f"The split column {column!r} (by_column)")
    names = frame[column].map(lambda v: _SPLIT_NAMES.get(str(v).strip().lower()) if isinstance(v, str) else None)
    bad = frame[column][names.isna()]
    if len(bad):
        values = ", ".join(repr(v) for v in dict.fromkeys(bad.tolist()))
        rows = row_list(frame.index[names.isna().to_numpy()])
        raise DataError(f"The split column {column!r} holds values that name no split: {values} ({rows}). "
                        f"Use train, validation (or val/valid/dev) or test.")
    return {name: _rows(frame, np.flatnonzero((names == name).to_numpy())) for name in SPLITS}


def _rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    return frame.iloc[np.sort(positions)]  # the source's index labels: errors name rows of the file

