"""pad_sequences against hand-computed expectations (Keras's semantics: pre/pre by default)."""

from __future__ import annotations

import numpy as np
import pytest

import kiln
from kiln.errors import KilnValueError
from kiln.utils import pad_sequences

SEQS = [[1], [2, 3], [4, 5, 6]]


def test_defaults_pad_and_truncate_at_the_start():
    out = pad_sequences(SEQS)
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=2), [[0, 1], [2, 3], [5, 6]])


def test_post_padding_and_post_truncating():
    np.testing.assert_array_equal(pad_sequences(SEQS, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=2, padding="post", truncating="post"),
                                  [[1, 0], [2, 3], [4, 5]])
    np.testing.assert_array_equal(pad_sequences(SEQS, maxlen=4, padding="post"),
                                  [[1, 0, 0, 0], [2, 3, 0, 0], [4, 5, 6, 0]])


def test_maxlen_none_uses_the_longest_sequence_and_value_pads():
    out = pad_sequences([[7, 8], [9], [1, 2, 3, 4]], value=-1)
    np.testing.assert_array_equal(out, [[-1, -1, 7, 8], [-1, -1, -1, 9], [1, 2, 3, 4]])


def test_empty_sequences_become_all_padding():
    np.testing.assert_array_equal(pad_sequences([[], [1, 2]]), [[0, 0], [1, 2]])
    np.testing.assert_array_equal(pad_sequences([[], [5]], maxlen=3, value=9, padding="post"), [[9, 9, 9], [5, 9, 9]])
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([[], []]).shape == (2, 0)


def test_float_dtype_keeps_fractions():
    out = pad_sequences([[0.5, 1.5], [2.25]], dtype="float32", value=-1.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.5, 1.5], [-1.0, 2.25]])
    # With the default int32, fractions are cut as NumPy's cast does (Keras too).
    np.testing.assert_array_equal(pad_sequences([[0.5, 1.5]]), [[0, 1]])


def test_arrays_and_multidimensional_samples():
    seqs = [np.array([[1, 1], [2, 2]]), np.array([[3, 3]])]
    out = pad_sequences(seqs)
    assert out.shape == (2, 2, 2)
    np.testing.assert_array_equal(out, [[[1, 1], [2, 2]], [[0, 0], [3, 3]]])
    with pytest.raises(KilnValueError, match="Shape of sample"):
        pad_sequences([[[1, 1]], [[1, 1, 1]]])


def test_strings_need_an_object_dtype():
    out = pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert out.tolist() == [["a", "b"], ["<pad>", "c"]]
    with pytest.raises(KilnValueError, match="dtype=object"):
        pad_sequences([["a"]], value="<pad>")


def test_ragged_non_iterable_input_is_a_clear_error():
    with pytest.raises(KilnValueError, match="position 0") as info:
        pad_sequences([1, [2, 3]])
    assert "list of sequences" in str(info.value)
    with pytest.raises(KilnValueError, match="list of sequences"):
        pad_sequences(5)
    with pytest.raises(ValueError):  # KilnValueError is a ValueError, as Keras raises
        pad_sequences([[1], 2])


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": "left"}, "`padding`"),
    ({"truncating": "middle"}, "`truncating`"),
    ({"maxlen": -1}, "`maxlen`"),
    ({"maxlen": 2.5}, "`maxlen`"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(KilnValueError, match=match):
        pad_sequences(SEQS, **kwargs)


def test_exported_like_keras():
    assert kiln.utils.pad_sequences is pad_sequences
    assert "pad_sequences" in kiln.utils.__all__
