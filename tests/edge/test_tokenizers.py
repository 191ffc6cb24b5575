"""One tokenizer family (kiln_edge.preprocessing.tokenizers) for text features and the zoo: one set of
special ids, vocabularies checked by hand, saved files read with the ids they declare."""

import json

import pandas as pd
import pytest

from kiln.data.features import TextFeature
from kiln.errors import KilnValueError
from kiln.zoo.tokenizers import BPETokenizer, CharTokenizer, tokenizer_from_bytes
from kiln_edge import EdgeError
from kiln_edge.preprocessing.tokenizers import SPECIAL_TOKENS, Vocabulary

TEXTS = ["the cat sat", "the dog sat", "a cat"]


def test_special_ids_are_the_same_in_every_tokenizer():
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>")
    char, bpe = CharTokenizer().fit(TEXTS), BPETokenizer(vocab_size=270).fit(TEXTS * 5)
    assert char.itos[:4] == list(SPECIAL_TOKENS)
    assert [bpe._tokenizer.id_to_token(i) for i in range(4)] == list(SPECIAL_TOKENS)
    assert (char.pad_id, char.bos_id, char.eos_id) == (0, 2, 3)
    # text features hold <pad> and <unk> at the same ids (they never mark a text's start or end)
    for kind in ("word", "char", "bpe"):
        assert TextFeature("t", tokenizer=kind, vocab_size=30).fit(pd.Series(TEXTS)).vocabulary[:2] == ["<pad>", "<unk>"]


def test_vocabulary_by_frequency_and_sorted():
    by_count = Vocabulary.fit(TEXTS, "word", specials=2)
    # the:2, cat:2, sat:2 (ties by token), then a:1, dog:1
    assert by_count.tokens == ["<pad>", "<unk>", "cat", "sat", "the", "a", "dog"]
    assert by_count.encode("the bird sat") == [4, 1, 3]
    assert Vocabulary.fit(TEXTS, "word", specials=2, limit=2).tokens == ["<pad>", "<unk>", "cat", "sat"]
    chars = Vocabulary.fit(["bca", "a"], "char", specials=4, order="sorted")
    assert chars.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c"]
    assert chars.lookup([2, 4, 0, 6], skip=4) == ["a", "c"] and chars.lookup([0, 4], skip=0) == ["<pad>", "a"]
    with pytest.raises(EdgeError, match=r"Token id 7 is outside this tokenizer's vocabulary \(0..6\)"):
        chars.lookup([7])


def test_the_zoo_char_tokenizer_is_the_shared_vocabulary():
    tok = CharTokenizer().fit(TEXTS)
    shared = Vocabulary.fit(TEXTS, "char", specials=4, order="sorted")
    assert tok.itos == shared.tokens and tok.encode("a zebra") == shared.encode("a zebra")
    with pytest.raises(KilnValueError, match="Token id 99 is outside"):
        tok.decode([99])


def test_a_saved_tokenizer_with_other_special_tokens_is_refused(tmp_path):
    data = {"type": "char", "special_tokens": ["<pad>", "<unk>"], "chars": ["a"]}
    with pytest.raises(KilnValueError, match=r"declares the special tokens \['<pad>', '<unk>'\]"):
        tokenizer_from_bytes(json.dumps(data).encode())
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(KilnValueError, match="Fit the tokenizer again"):
        CharTokenizer.load(tmp_path)
    text_bpe = TextFeature("t", tokenizer="bpe", vocab_size=30).fit(pd.Series(TEXTS))._bpe  # <pad>, <unk> only
    with pytest.raises(KilnValueError, match=r"holds \['<pad>', '<unk>', "):
        BPETokenizer._wrap(text_bpe)
