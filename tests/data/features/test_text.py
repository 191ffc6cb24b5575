"""TextFeature: word/char vocabularies by hand, padding and truncation, BPE ids <-> tokens."""

import pandas as pd
import pytest
import torch

from kiln.data.features import TextFeature
from kiln.errors import KilnValueError

TRAIN = pd.Series(["The cat sat.", "the cat, the dog!"])


def test_word_vocabulary_by_frequency_then_token():
    f = TextFeature("t", max_length=6).fit(TRAIN)
    # the:3, cat:2, then the singletons in code-point order: "!" < "," < "." < "dog" < "sat"
    assert f.vocabulary == ["<pad>", "<unk>", "the", "cat", "!", ",", ".", "dog", "sat"]
    out = f.transform(pd.Series(["The DOG sat on the mat.", None]))
    assert out.dtype == torch.int64 and out.shape == (2, 6)
    assert out.tolist() == [[2, 7, 8, 1, 2, 1], [0, 0, 0, 0, 0, 0]]  # truncated at 6; missing -> all padding
    assert f.spec() == {"shape": (6,), "dtype": "int64", "vocab_size": 9, "max_length": 6}


def test_vocab_size_caps_the_vocabulary_and_counts_the_specials():
    f = TextFeature("t", vocab_size=4).fit(TRAIN)
    assert f.vocabulary == ["<pad>", "<unk>", "the", "cat"]


def test_char_tokenizer_and_lowercase_off():
    f = TextFeature("t", tokenizer="char", lowercase=False, max_length=4).fit(pd.Series(["abba", "Ab"]))
    assert f.vocabulary == ["<pad>", "<unk>", "b", "a", "A"]  # b:3, a:2, A:1
    assert f.transform(pd.Series(["Abc"])).tolist() == [[4, 2, 1, 0]]
    assert f.decode(torch.tensor([[4, 2, 3, 0]])) == ["Aba"]


@pytest.mark.parametrize("padding, truncation, expected", [
    ("post", "post", [[3, 4, 5], [6, 0, 0]]),
    ("pre", "post", [[3, 4, 5], [0, 0, 6]]),
    ("post", "pre", [[4, 5, 6], [6, 0, 0]]),
    ("pre", "pre", [[4, 5, 6], [0, 0, 6]]),
])
def test_padding_and_truncation_sides(padding, truncation, expected):
    f = TextFeature("t", max_length=3, padding=padding, truncation=truncation).fit(pd.Series(["a b c d", "e"]))
    assert f.vocabulary == ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
    assert f.transform(pd.Series(["b c d e", "e"])).tolist() == expected


def test_bpe_ids_round_trip_to_tokens():
    train = pd.Series(["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 3)
    f = TextFeature("t", tokenizer="bpe", vocab_size=60, max_length=12).fit(train)
    assert f.vocabulary[:2] == ["<pad>", "<unk>"] and len(f.vocabulary) <= 60
    ids = f.transform(pd.Series(["The cat sat on the log", "zebra"]))
    tokens = f.tokens(ids)
    # ids -> tokens: each word is rebuilt from its pieces; unseen characters are <unk> (id 1)
    assert "".join(tokens[0]) == "thecatsatonthelog"
    assert all(0 < i < len(f.vocabulary) for i in ids[0].tolist() if i)
    assert 1 in ids[1].tolist() and "<unk>" in tokens[1]
    assert f.decode(ids[:1]) == [" ".join(tokens[0])]
    # the tokens are the trained tokenizer's own
    assert tokens[0] == f._bpe.encode("the cat sat on the log").tokens
    assert f.spec()["vocab_size"] == len(f.vocabulary)


def test_vocabulary_never_sees_validation_rows():
    f = TextFeature("t").fit(pd.Series(["alpha beta"]))
    f.transform(pd.Series(["gamma gamma gamma"]))
    assert f.vocabulary == ["<pad>", "<unk>", "alpha", "beta"]


@pytest.mark.parametrize("options, option", [({"tokenizer": "words"}, "tokenizer"), ({"vocab_size": 2}, "vocab_size"),
                                             ({"max_length": 0}, "max_length"), ({"padding": "left"}, "padding"),
                                             ({"truncation": None}, "truncation"), ({"lowercase": "yes"}, "lowercase")])
def test_invalid_options_name_the_option(options, option):
    with pytest.raises(KilnValueError, match=f"`{option}`"):
        TextFeature("t", **options)
