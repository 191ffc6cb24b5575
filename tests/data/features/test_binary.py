"""BinaryFeature: the positive value, encoding, decoding at 0.5, and the errors."""

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.data.features import BinaryFeature
from kiln.errors import DataError, KilnValueError


@pytest.mark.parametrize("negative, positive", [(False, True), (0, 1), ("no", "yes"), ("false", "true"),
                                                ("neg", "pos"), ("negative", "positive"), ("N", "Y")])
def test_the_positive_value_is_the_second_in_sorted_order(negative, positive):
    train = pd.Series([positive, negative, negative, positive])
    f = BinaryFeature("b").fit(train)
    assert f.classes == [negative, positive]
    out = f.transform(train)
    assert out.dtype == torch.float32 and out.shape == (4, 1)
    assert out[:, 0].tolist() == [1.0, 0.0, 0.0, 1.0]


def test_given_positive_wins_and_matches_by_text():
    f = BinaryFeature("b", positive="no").fit(pd.Series(["yes", "no"]))
    assert f.classes == ["yes", "no"] and f.transform(pd.Series(["no"])).item() == 1.0
    g = BinaryFeature("b", positive="True").fit(pd.Series([True, False]))
    assert g.classes == [False, True]


def test_decode_thresholds_at_one_half_and_restores_labels():
    f = BinaryFeature("y", output=True).fit(pd.Series([0, 1, 1]))
    labels = f.decode(torch.tensor([[0.2], [0.5], [0.9]]))
    assert labels == [0, 1, 1] and all(type(v) is int for v in labels)
    assert BinaryFeature("y", output=True).fit(pd.Series(["neg", "pos"])).decode(np.array([0.7, 0.1])) == ["pos", "neg"]
    assert f.spec() == {"shape": (1,), "dtype": "float32", "classes": [0, 1]}


def test_more_than_two_values_is_a_data_error():
    with pytest.raises(DataError, match=r"'flag'.*3 distinct values.*category feature"):
        BinaryFeature("flag").fit(pd.Series(["a", "b", "c"]))


def test_one_value_needs_positive():
    with pytest.raises(DataError, match="only 'no'"):
        BinaryFeature("b").fit(pd.Series(["no", "no"]))
    f = BinaryFeature("b", positive="yes").fit(pd.Series(["no", "no"]))
    assert f.classes == ["no", "yes"] and f.transform(pd.Series(["yes", "no"]))[:, 0].tolist() == [1.0, 0.0]


def test_unknown_value_and_missing_label_are_named():
    f = BinaryFeature("answer", output=True).fit(pd.Series(["no", "yes"]))
    with pytest.raises(DataError) as info:
        f.transform(pd.Series(["yes", "maybe"], index=[4, 5]))
    assert "'answer'" in str(info.value) and "row 5" in str(info.value) and "'maybe'" in str(info.value)
    with pytest.raises(DataError, match=r"no label \(NaN/None\) in row 1"):
        f.transform(pd.Series(["yes", None]))
    inputs = BinaryFeature("answer").fit(pd.Series(["no", "yes"]))
    assert inputs.transform(pd.Series([None, "yes"]))[:, 0].tolist() == [0.0, 1.0]  # input: missing -> negative


def test_positive_not_in_the_column_and_bad_option():
    with pytest.raises(DataError, match="`positive`='maybe'"):
        BinaryFeature("b", positive="maybe").fit(pd.Series(["yes", "no"]))
    with pytest.raises(KilnValueError, match="`positive`"):
        BinaryFeature("b", positive=["yes"])
