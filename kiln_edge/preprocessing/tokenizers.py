"""The one tokenizer family of kiln: special ids, word/char vocabularies and BPE, for text features and the zoo.

Special tokens have one id each, everywhere: ``<pad>``=0 (so zero-padding is padding), ``<unk>``=1,
``<bos>``=2, ``<eos>``=3. A vocabulary starts with a prefix of ``SPECIAL_TOKENS``: text features
reserve ``<pad>`` and ``<unk>`` (they never mark a text's start or end), the zoo's generative
tokenizers all four. Which specials a tokenizer holds is part of what it saves (the vocabulary
list itself, or the BPE JSON), so a saved file's ids are read as it declares them.

- ``Vocabulary``: one id per token (words or characters), ranked by frequency (text features) or
  sorted (the zoo's ``CharTokenizer``); unknown tokens -> ``<unk>``.
- ``train_bpe``: a Hugging Face ``tokenizers`` BPE, either over whitespace-split words (text
  features) or byte-level (the zoo's ``BPETokenizer``), with the specials first.
"""

from __future__ import annotations

import re
from collections import Counter

from kiln_edge.errors import EdgeError

__all__ = ["SPECIAL_TOKENS", "PAD", "UNK", "BOS", "EOS", "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID", "Vocabulary",
           "split_text", "train_bpe", "load_bpe", "bpe_vocabulary"]

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = SPECIAL_TOKENS
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # positions in SPECIAL_TOKENS
_WORD = re.compile(r"\w+|[^\w\s]")  # \w+ runs and single punctuation marks: "don't!" -> don ' t !
_SPLITS = ("word", "char")


def split_text(text: str, split: str) -> list[str]:
    """``text`` as tokens: "word" (``\\w+`` runs and punctuation marks) or "char" (every character)."""
    return _WORD.findall(text) if split == "word" else list(text)


class Vocabulary:
    """A token list (id -> token) that starts with special tokens; ``encode``/``decode`` by lookup.

    Args:
        tokens: every token in id order, the specials first (e.g. ``["<pad>", "<unk>", "the", ...]``).
        split: "word" or "char": how ``encode`` cuts a text into tokens.

    Example::

        v = Vocabulary.fit(["the cat", "the dog"], "word", specials=2)
        v.tokens                 # ["<pad>", "<unk>", "the", "cat", "dog"]
        v.encode("the bird")     # [2, 1]
    """

    def __init__(self, tokens: list[str], split: str):
        if split not in _SPLITS:
            raise EdgeError(f"Received an invalid value for `split`, expected 'word' or 'char'. Received: "
                            f"split={split!r}")
        self.tokens = list(tokens)
        self.split = split
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def fit(cls, texts: list[str], split: str, specials: int, limit: int | None = None,
            order: str = "frequency") -> "Vocabulary":
        """Learn the tokens of ``texts`` after the first ``specials`` of ``SPECIAL_TOKENS``.

        Args:
            texts: the training texts (already lowercased where wanted).
            split: "word" or "char".
            specials: how many of ``SPECIAL_TOKENS`` come first (2: <pad>, <unk>; 4: and <bos>, <eos>).
            limit: keep at most this many tokens besides the specials (default None: all).
            order: "frequency" (most frequent first, ties by token) or "sorted" (by token).
        """
        if order == "frequency":
            counts = Counter(token for text in texts for token in split_text(text, split))
            ranked = [token for token, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
        else:
            ranked = sorted(set().union(*(set(split_text(t, split)) for t in texts)) - set(SPECIAL_TOKENS))
        return cls(list(SPECIAL_TOKENS[:specials]) + ranked[:limit], split)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; a token the vocabulary lacks is ``<unk>`` (1)."""
        ids = self.ids
        return [ids.get(token, UNK_ID) for token in split_text(text, self.split)]

    def lookup(self, ids, skip: int = 0) -> list[str]:
        """Ids -> tokens, dropping ids below ``skip`` (1: padding; the number of specials: every special)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise EdgeError(f"Token id {i} is outside this tokenizer's vocabulary (0..{len(self.tokens) - 1}).")
            if i >= skip:
                out.append(self.tokens[i])
        return out


def train_bpe(texts: list[str], vocab_size: int, specials: int, *, byte_level: bool = False,
              lowercase: bool = False, min_frequency: int | None = None):
    """A ``tokenizers.Tokenizer`` BPE trained on ``texts``, the first ``specials`` of ``SPECIAL_TOKENS`` at ids 0...

    Args:
        texts: training texts.
        vocab_size: the trainer's target size, specials included.
        specials: 2 (<pad>, <unk>: text features) or 4 (and <bos>, <eos>: the zoo's generative models).
        byte_level: False (default): merges inside whitespace-split words, characters never seen in
            training -> ``<unk>``. True: GPT-2's byte-level BPE (every byte is in the alphabet, so
            nothing is unknown; decoding restores the spaces).
        lowercase: add a ``Lowercase`` normalizer (default False).
        min_frequency: a pair must occur this often to be merged (default None: the trainer's own).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    options = {"vocab_size": vocab_size, "special_tokens": list(SPECIAL_TOKENS[:specials]), "show_progress": False}
    if min_frequency is not None:
        options["min_frequency"] = min_frequency
    if byte_level:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        options["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(list(texts), trainer=trainers.BpeTrainer(**options))
    return tokenizer


def load_bpe(text: str, what: str):
    """A ``tokenizers.Tokenizer`` from its JSON string; ``what`` names the feature in the install hint."""
    try:
        from tokenizers import Tokenizer
    except ImportError as err:
        raise EdgeError(f"{what} uses BPE: pip install tokenizers ({err}).") from err
    return Tokenizer.from_str(text)


def bpe_vocabulary(tokenizer) -> list[str]:
    """A BPE tokenizer's tokens in id order."""
    return [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
