"""split_frame and kfold: exact sizes, class proportions, reproducibility, every row used once."""

import numpy as np
import pandas as pd
import pytest

from kiln.data import kfold, split_frame
from kiln.errors import DataError


def labelled(counts, seed=0):
    labels = np.concatenate([[name] * n for name, n in counts.items()])
    labels = np.random.default_rng(seed).permutation(labels)
    return pd.DataFrame({"id": np.arange(len(labels)), "label": labels})


def ids(frame):
    return frame["id"].tolist()


def test_sizes_and_every_row_once():
    frame = labelled({"a": 100})
    parts = split_frame(frame)
    assert {k: len(v) for k, v in parts.items()} == {"train": 80, "validation": 10, "test": 10}
    assert sorted(sum((ids(p) for p in parts.values()), [])) == list(range(100))
    for part in parts.values():
        assert list(part.index) == ids(part)  # the input's index labels are kept (errors name file rows)
        assert ids(part) == sorted(ids(part))  # the input's row order is kept


def test_uneven_sizes_sum_to_rows():
    parts = split_frame(labelled({"a": 7}), train=0.5, validation=0.25, test=0.25)
    assert sum(len(p) for p in parts.values()) == 7 and all(len(p) >= 1 for p in parts.values())


def test_zero_ratio_gives_empty_frame():
    parts = split_frame(labelled({"a": 10}), train=0.7, validation=0.3, test=0)
    assert len(parts["test"]) == 0 and list(parts["test"].columns) == ["id", "label"]
    assert len(parts["train"]) == 7 and len(parts["validation"]) == 3


def test_seed_reproducibility():
    frame = labelled({"a": 50, "b": 30})
    first, again, other = (split_frame(frame, seed=s) for s in (1, 1, 2))
    assert all(ids(first[k]) == ids(again[k]) for k in first)
    assert ids(first["test"]) != ids(other["test"])


@pytest.mark.parametrize("counts, ratios", [
    ({"a": 97, "b": 41, "c": 13}, (0.8, 0.1, 0.1)),
    ({"a": 10, "b": 11, "c": 12, "d": 2}, (0.6, 0.2, 0.2)),
    ({"x": 33, "y": 7}, (0.5, 0.5, 0.0)),
])
def test_stratified_proportions_within_one_per_class(counts, ratios):
    frame = labelled(counts)
    parts = split_frame(frame, train=ratios[0], validation=ratios[1], test=ratios[2], stratify="label", seed=5)
    assert sum(len(p) for p in parts.values()) == len(frame)
    for part, ratio in zip(parts.values(), ratios):
        assert abs(len(part) - ratio * len(frame)) <= 1
        got = part["label"].value_counts()
        for label, n in counts.items():
            assert abs(got.get(label, 0) - ratio * n) <= 1, (label, ratio)


def test_stratified_iris_exact():
    from kiln.data import read_source

    parts = split_frame(read_source("sklearn:iris"), stratify="target")
    for name, size in [("train", 40), ("validation", 5), ("test", 5)]:
        assert set(parts[name]["target"].value_counts()) == {size}


def test_ratio_errors():
    frame = labelled({"a": 10})
    with pytest.raises(DataError, match="sum to 1.1"):
        split_frame(frame, train=0.9, validation=0.1, test=0.1)
    with pytest.raises(DataError, match="test=-0.1"):
        split_frame(frame, train=1.0, validation=0.1, test=-0.1)


def test_too_few_rows():
    with pytest.raises(DataError, match=r"2 row\(s\), too few for 3 non-empty splits"):
        split_frame(labelled({"a": 2}))


def test_stratify_errors():
    frame = labelled({"a": 10, "lonely": 1})
    with pytest.raises(DataError, match=r"'lonely' \(1 example\).*stratify"):
        split_frame(frame, stratify="label")
    with pytest.raises(DataError, match=r"'lable'.*Did you mean 'label'"):
        split_frame(frame, stratify="lable")
    frame.loc[3, "label"] = None
    with pytest.raises(DataError, match=r"1 missing value.*at row 3\. "):
        split_frame(frame, stratify="label")


def test_by_column_wins_over_ratios():
    frame = pd.DataFrame({"x": range(6), "split": ["train", "VAL", "test", "dev", "Train ", "valid"]})
    parts = split_frame(frame, train=0.1, validation=0.1, test=0.8, by_column="split")
    assert parts["train"]["x"].tolist() == [0, 4]
    assert parts["validation"]["x"].tolist() == [1, 3, 5]
    assert parts["test"]["x"].tolist() == [2]


def test_by_column_unknown_values():
    frame = pd.DataFrame({"x": range(4), "split": ["train", "holdout", "test", "holdout"]})
    with pytest.raises(DataError, match=r"'split'.*'holdout'.*rows 1, 3"):
        split_frame(frame, by_column="split")


@pytest.mark.parametrize("stratify", [None, "label"])
def test_kfold_covers_every_row_once(stratify):
    frame = labelled({"a": 23, "b": 11, "c": 4})
    folds = kfold(frame, 5, stratify=stratify, seed=3)
    assert len(folds) == 5
    seen = sum((ids(val) for _, val in folds), [])
    assert sorted(seen) == list(range(len(frame)))
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert sorted(ids(train) + ids(val)) == list(range(len(frame)))
        if stratify:
            for label, n in {"a": 23, "b": 11, "c": 4}.items():
                assert abs((val["label"] == label).sum() - n / 5) <= 1
    again = kfold(frame, 5, stratify=stratify, seed=3)
    assert all(ids(a[1]) == ids(b[1]) for a, b in zip(folds, again))


def test_kfold_errors():
    frame = labelled({"a": 3, "b": 1})
    with pytest.raises(DataError, match="k=5"):
        kfold(frame, 5)
    with pytest.raises(DataError, match=r"'b' \(1 example\)"):
        kfold(frame, 2, stratify="label")
