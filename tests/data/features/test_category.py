"""CategoryFeature: vocabulary order by hand, <unk> for inputs, strict classes for outputs."""

import numpy as np
import pandas as pd
import pytest
import torch

from kiln.data.features import CategoryFeature
from kiln.errors import DataError, KilnValueError, ShapeError


def test_input_vocabulary_is_sorted_by_frequency_then_value_with_unk_first():
    train = pd.Series(["b", "c", "a", "c", "b", "d", "c", None])  # c:3, b:2, a:1, d:1
    f = CategoryFeature("letter").fit(train)
    assert f.classes == ["<unk>", "c", "b", "a", "d"]
    out = f.transform(pd.Series(["a", "c", "zzz", None]))
    assert out.dtype == torch.int64 and out.tolist() == [3, 1, 0, 0]  # unseen and missing -> <unk>
    assert f.spec() == {"shape": (), "dtype": "int64", "vocab_size": 5, "classes": ["<unk>", "c", "b", "a", "d"]}


def test_max_vocab_and_min_count_cut_the_rare_values():
    train = pd.Series(["x"] * 4 + ["y"] * 3 + ["z"] * 2 + ["w"])
    assert CategoryFeature("v", max_vocab=2).fit(train).classes == ["<unk>", "x", "y"]
    assert CategoryFeature("v", min_count=2).fit(train).classes == ["<unk>", "x", "y", "z"]
    assert CategoryFeature("v", min_count=2).fit(train).transform(pd.Series(["w"])).tolist() == [0]


def test_vocabulary_never_sees_validation_rows():
    f = CategoryFeature("v").fit(pd.Series(["a", "b"]))
    f.transform(pd.Series(["c", "c", "c"]))
    assert f.classes == ["<unk>", "a", "b"]


def test_output_classes_are_sorted_labels_and_ints_stay_ints():
    f = CategoryFeature("y", output=True).fit(pd.Series([3, 1, 2, 1, 1]))
    assert f.classes == [1, 2, 3]
    assert f.transform(pd.Series([2, 3, 1])).tolist() == [1, 2, 0]
    probabilities = torch.tensor([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]])
    labels = f.decode(probabilities)
    assert labels == [3, 1] and all(type(label) is int for label in labels)
    assert f.decode(torch.log(probabilities)) == labels  # logits decode the same
    assert f.decode(np.array([1, 0])) == [2, 1]          # indices too
    assert f.spec()["vocab_size"] == 3 and f.spec()["classes"] == [1, 2, 3]


def test_string_labels_sorted_and_onehot_encoding():
    f = CategoryFeature("y", output=True, encoding="onehot").fit(pd.Series(["dog", "cat", "bird", "cat"]))
    assert f.classes == ["bird", "cat", "dog"]
    out = f.transform(pd.Series(["cat", "bird"]))
    assert out.dtype == torch.float32 and out.tolist() == [[0, 1, 0], [1, 0, 0]]
    assert f.spec()["shape"] == (3,) and f.spec()["dtype"] == "float32"


def test_unseen_output_label_is_a_data_error_naming_row_and_value():
    f = CategoryFeature("species", output=True).fit(pd.Series(["cat", "dog"]))
    valid = pd.DataFrame({"species": ["dog", "bird", "cat", "bird"]}, index=[7, 8, 9, 10])
    with pytest.raises(DataError) as info:
        f.transform(valid)
    message = str(info.value)
    assert "'species'" in message and "row 8" in message and "'bird'" in message and "rows 8, 10" in message
    assert "'cat', 'dog'" in message


def test_missing_output_label_is_a_data_error_naming_the_rows():
    with pytest.raises(DataError, match=r"'label'.*no label \(NaN/None\) in rows 1, 3"):
        CategoryFeature("label", output=True).fit(pd.Series(["a", None, "b", np.nan]))
    f = CategoryFeature("label", output=True).fit(pd.Series(["a", "b"]))
    with pytest.raises(DataError, match=r"row 0"):
        f.transform(pd.Series([None, "a"]))


def test_decode_checks_the_width():
    f = CategoryFeature("y", output=True).fit(pd.Series(["a", "b"]))
    with pytest.raises(ShapeError, match=r"\(rows, 2\)"):
        f.decode(torch.zeros(4, 3))


@pytest.mark.parametrize("options, option", [({"max_vocab": 0}, "max_vocab"), ({"min_count": 0}, "min_count"),
                                             ({"encoding": "one_hot"}, "encoding")])
def test_invalid_options_name_the_option(options, option):
    with pytest.raises(KilnValueError, match=f"`{option}`"):
        CategoryFeature("c", **options)


def test_output_features_refuse_input_only_options():
    with pytest.raises(KilnValueError, match="max_vocab"):
        CategoryFeature("y", output=True, max_vocab=3)


def test_an_output_with_one_class_is_refused_like_the_binary_one():
    # It would train to loss 0 and accuracy 1.0 without learning anything.
    with pytest.raises(DataError, match=r"^Column 'species' \(output category feature 'species'\): the training "
                                        r"split holds only the class 'cat'; a category target needs at least two"):
        CategoryFeature("species", output=True).fit(pd.Series(["cat", "cat", "cat"]))
    CategoryFeature("colour").fit(pd.Series(["red", "red"]))  # an input with one value is fine (just useless)


def test_labels_match_by_their_string_form_across_types():
    # A model trained on folder names ('0', '1') evaluated on a CSV that reads the labels as numbers.
    f = CategoryFeature("digit", output=True).fit(pd.Series(["0", "1", "2"]))
    got = f.transform(pd.Series(np.array([2, 0, 1], dtype=np.int64)))
    assert got.tolist() == [2, 0, 1]
    assert f.transform(pd.Series([1.0, 0.0])).tolist() == [1, 0]  # an int column with a gap reads as float
    colour = CategoryFeature("c").fit(pd.Series(["1", "1", "2"]))  # inputs: no longer <unk>
    assert colour.transform(pd.Series([1, 2, 3])).tolist() == [1, 2, 0]


def test_an_unseen_numeric_label_is_shown_as_python_not_numpy():
    f = CategoryFeature("digit", output=True).fit(pd.Series(["0", "1"]))
    with pytest.raises(DataError) as info:
        f.transform(pd.Series(np.array([0, 7], dtype=np.int64)))
    assert "row 1 holds 7, a class the training split does not have" in str(info.value)
    assert "np." not in str(info.value)
