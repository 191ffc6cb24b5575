"""SequenceFeature: parsing, padding/truncation, standardisation of the real values only."""

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.data.features import SequenceFeature
from kiln.errors import DataError, KilnValueError


def test_strings_lists_and_arrays_are_parsed_and_padded_to_the_training_max():
    train = pd.Series(["1 2 3", "4,5", "6, 7 ,8,9", [10, 11], np.array([12.5]), "[1, 2]", None])
    f = SequenceFeature("s").fit(train)
    assert f.spec() == {"shape": (4,), "dtype": "float32", "max_length": 4}
    out = f.transform(train)
    assert out.dtype == torch.float32
    assert out.tolist() == [[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9], [10, 11, 0, 0], [12.5, 0, 0, 0],
                            [1, 2, 0, 0], [0, 0, 0, 0]]


def test_max_length_truncates_and_padding_value_fills():
    f = SequenceFeature("s", max_length=2, padding_value=-1.0).fit(pd.Series(["1 2 3"]))
    assert f.transform(pd.Series(["1 2 3", "7"])).tolist() == [[1, 2], [7, -1]]


def test_standardisation_uses_the_real_training_values_and_leaves_padding():
    train = pd.Series([[1.0, 3.0], [5.0]])  # values 1, 3, 5: mean 3, population std sqrt(8/3)
    f = SequenceFeature("s", normalization="standard").fit(train)
    std = np.sqrt(8 / 3)
    assert (f.mean, f.std) == (pytest.approx(3.0), pytest.approx(std))
    out = f.transform(pd.Series([[5.0], [100.0, 1.0]]))
    np.testing.assert_allclose(out.numpy(), [[2 / std, 0.0], [97 / std, -2 / std]], rtol=1e-6)
    assert (f.mean, f.std) == (pytest.approx(3.0), pytest.approx(std))  # validation rows not used
    np.testing.assert_allclose(f.decode(out)[:, 0], [5.0, 100.0], rtol=1e-6)


def test_bad_items_are_named():
    f = SequenceFeature("signal").fit(pd.Series(["1 2"]))
    with pytest.raises(DataError) as info:
        f.transform(pd.Series(["1 2", "3 x 4"], index=[5, 6]))
    assert "'signal'" in str(info.value) and "row 6" in str(info.value) and "'x'" in str(info.value)
    with pytest.raises(DataError, match="row 0 holds NaN or infinite"):
        f.transform(pd.Series([[1.0, float("nan")]]))


@pytest.mark.parametrize("options, option", [({"max_length": 0}, "max_length"),
                                             ({"padding_value": "0"}, "padding_value"),
                                             ({"normalization": "minmax"}, "normalization")])
def test_invalid_options_name_the_option(options, option):
    with pytest.raises(KilnValueError, match=f"`{option}`"):
        SequenceFeature("s", **options)
