"""NumericFeature: fill and normalisation against hand computations, fit on train only, errors named."""

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.data.features import NumericFeature
from kiln.errors import DataError, KilnValueError


def test_standard_normalization_matches_hand_computation():
    train = pd.Series([1.0, 2.0, 3.0, 6.0], name="x")
    f = NumericFeature("x").fit(train)
    mean = (1 + 2 + 3 + 6) / 4
    std = np.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (3 - mean) ** 2 + (6 - mean) ** 2) / 4)  # population
    out = f.transform(pd.Series([6.0, 0.0]))
    assert out.dtype == torch.float32 and out.shape == (2, 1)
    np.testing.assert_allclose(out[:, 0].numpy(), [(6 - mean) / std, (0 - mean) / std], rtol=1e-6)
    assert f.spec() == {"shape": (1,), "dtype": "float32"}


def test_minmax_and_none():
    train = pd.Series([2.0, 4.0, 10.0])
    out = NumericFeature("x", normalization="minmax").fit(train).transform(pd.Series([2.0, 6.0, 12.0]))
    np.testing.assert_allclose(out[:, 0].numpy(), [0.0, 0.5, 1.25])
    raw = NumericFeature("x", normalization=None).fit(train).transform(pd.Series([7.5]))
    assert raw.item() == 7.5


@pytest.mark.parametrize("fill, expected", [("mean", 4.0), ("median", 3.0), ("zero", 0.0), (-1.5, -1.5)])
def test_missing_values_take_the_training_statistic(fill, expected):
    train = pd.Series([1.0, 3.0, None, 8.0])  # observed: mean 4, median 3
    f = NumericFeature("x", normalization=None, fill_missing=fill).fit(train)
    out = f.transform(pd.Series([np.nan, None, "", 2.0], dtype=object))
    np.testing.assert_allclose(out[:, 0].numpy(), [expected, expected, expected, 2.0])


def test_statistics_never_see_validation_rows():
    train, valid = pd.Series([0.0, 2.0]), pd.Series([1000.0, -1000.0])
    f = NumericFeature("x").fit(train)
    f.transform(valid)
    assert (f.mean, f.std) == (1.0, 1.0)
    np.testing.assert_allclose(f.transform(valid)[:, 0].numpy(), [999.0, -1001.0])


def test_constant_column_stays_finite():
    f = NumericFeature("x").fit(pd.Series([5.0, 5.0]))
    assert f.transform(pd.Series([5.0, 6.0]))[:, 0].tolist() == [0.0, 1.0]


def test_decode_undoes_the_normalization():
    train = pd.Series([10.0, 20.0, 60.0])
    for normalization in ("standard", "minmax", None):
        f = NumericFeature("y", output=True, normalization=normalization).fit(train)
        np.testing.assert_allclose(f.decode(f.transform(train)), train.to_numpy(), rtol=1e-5)


def test_numeric_strings_are_numbers_text_is_a_data_error_naming_column_row_value():
    f = NumericFeature("price").fit(pd.Series(["1.5", 2, 3.0], dtype=object))
    assert f.mean == pytest.approx(6.5 / 3)
    frame = pd.DataFrame({"price": [1.0, "cheap", 3.0, "n/a"]}, index=[10, 11, 12, 13])
    with pytest.raises(DataError) as info:
        f.transform(frame)
    message = str(info.value)
    assert "'price'" in message and "row 11" in message and "'cheap'" in message and "2 such rows" in message


def test_infinite_and_missing_target_are_data_errors():
    with pytest.raises(DataError, match=r"infinite values in row 1"):
        NumericFeature("x").fit(pd.Series([1.0, np.inf]))
    with pytest.raises(DataError, match=r"'y'.*no target value in row 2"):
        NumericFeature("y", output=True).fit(pd.Series([1.0, 2.0, None]))
    with pytest.raises(DataError, match="every training value is missing"):
        NumericFeature("x").fit(pd.Series([None, None], dtype=float))


@pytest.mark.parametrize("options, option", [({"normalization": "std"}, "normalization"),
                                             ({"fill_missing": "average"}, "fill_missing"),
                                             ({"fill_missing": float("nan")}, "fill_missing")])
def test_invalid_options_name_the_option(options, option):
    with pytest.raises(KilnValueError, match=f"`{option}`"):
        NumericFeature("x", **options)


def test_did_you_mean_for_a_near_choice():
    with pytest.raises(KilnValueError, match="Did you mean 'standard'"):
        NumericFeature("x", normalization="standart")
