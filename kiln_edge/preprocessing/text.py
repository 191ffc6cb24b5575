"""Text columns: strings -> token ids, cut and 0-padded to int64 ``(rows, max_length)``; ids or scores -> strings.

``TextTokenizer`` is a text feature's fitted tokenizer ("word", "char" or "bpe", from
``kiln_edge.preprocessing.tokenizers``) with its ``lowercase`` rule; kiln's ``TextFeature`` fits
one, kiln_edge's reads one back from ``features.json``. Ids: 0 = ``<pad>``, 1 = ``<unk>``, then
the vocabulary. Missing texts count as "".
"""

from __future__ import annotations

import numpy as np

from kiln_edge.errors import EdgeError
from kiln_edge.preprocessing.common import is_missing
from kiln_edge.preprocessing.tokenizers import PAD_ID, Vocabulary, bpe_vocabulary, load_bpe, train_bpe

__all__ = ["TextTokenizer", "pad_ids", "SPECIALS"]

SPECIALS = 2  # text features reserve <pad> and <unk> (ids 0 and 1) of the shared special tokens


class TextTokenizer:
    """A fitted "word", "char" or "bpe" tokenizer and its lowercase rule.

    Args:
        kind: "word", "char" or "bpe".
        lowercase: lowercase texts before tokenizing ("bpe" lowercases in its own normalizer).
        vocabulary: the ``Vocabulary`` of "word"/"char".
        bpe: the ``tokenizers.Tokenizer`` of "bpe".
    """

    def __init__(self, kind: str, lowercase: bool, vocabulary: Vocabulary | None = None, bpe=None):
        self.kind, self.lowercase = kind, lowercase
        self.vocabulary, self.bpe = vocabulary, bpe
        self.tokens = bpe_vocabulary(bpe) if kind == "bpe" else list(vocabulary.tokens)  # id -> token

    @classmethod
    def fit(cls, values, kind: str, vocab_size: int, lowercase: bool) -> "TextTokenizer":
        """Learn from the training texts: at most ``vocab_size`` ids, ``<pad>`` and ``<unk>`` included."""
        texts = prepare(values, kind, lowercase)
        if kind == "bpe":
            return cls(kind, lowercase, bpe=train_bpe(texts, vocab_size, SPECIALS, lowercase=lowercase))
        return cls(kind, lowercase, Vocabulary.fit(texts, kind, SPECIALS, limit=vocab_size - SPECIALS))

    @classmethod
    def from_state(cls, kind: str, lowercase: bool, fitted: dict, what: str) -> "TextTokenizer":
        """The tokenizer ``state()`` saved: ids as the saved vocabulary (or BPE JSON) declares them."""
        if kind == "bpe":
            return cls(kind, lowercase, bpe=load_bpe(fitted["bpe"], what))
        return cls(kind, lowercase, Vocabulary(fitted["vocabulary"], kind))

    def state(self) -> dict:
        """What ``features.json`` keeps: the BPE tokenizer's JSON, or the vocabulary list."""
        return {"bpe": self.bpe.to_str()} if self.kind == "bpe" else {"vocabulary": list(self.tokens)}

    def encode(self, values) -> list[list[int]]:
        """Token ids of each value, before padding/truncation."""
        texts = prepare(values, self.kind, self.lowercase)
        if self.kind == "bpe":
            return [encoding.ids for encoding in self.bpe.encode_batch(texts)]
        return [self.vocabulary.encode(text) for text in texts]

    def transform(self, values, max_length: int, padding: str, truncation: str) -> np.ndarray:
        """Values -> int64 ``(rows, max_length)``, 0 = ``<pad>``."""
        return pad_ids(self.encode(values), max_length, padding, truncation)

    def lookup(self, ids: np.ndarray) -> list[list[str]]:
        """Id rows ``(rows, length)`` -> their tokens, padding dropped."""
        return [[self.tokens[i] for i in row.tolist() if i != PAD_ID] for row in ids]

    def decode(self, values: np.ndarray, what: str) -> list[str]:
        """Ids ``(rows, length)`` or per-token scores ``(rows, length, vocab)`` -> one string per row."""
        values = np.asarray(values)
        if values.ndim == 3 and values.shape[2] == len(self.tokens):
            values = values.argmax(axis=2)
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
            raise EdgeError(f"{what} decodes integer ids (rows, length) or scores (rows, length, {len(self.tokens)}); "
                            f"received {values.dtype} of shape {tuple(values.shape)}.")
        if self.kind == "bpe":
            return [self.bpe.decode([i for i in row.tolist() if i != PAD_ID], skip_special_tokens=False)
                    for row in values]
        joiner = "" if self.kind == "char" else " "
        return [joiner.join(tokens) for tokens in self.lookup(values)]


def prepare(values, kind: str, lowercase: bool) -> list[str]:
    """Values as texts: missing -> "", lowercased (except for "bpe", whose normalizer lowercases)."""
    texts = ["" if is_missing(v) else str(v) for v in list(values)]
    return [t.lower() for t in texts] if lowercase and kind != "bpe" else texts


def pad_ids(rows: list, max_length: int, padding: str, truncation: str) -> np.ndarray:
    """Token id lists -> int64 ``(rows, max_length)``, cut and 0-padded ("post" or "pre" each)."""
    out = np.zeros((len(rows), max_length), dtype=np.int64)  # 0 = <pad>
    for r, ids in enumerate(rows):
        ids = ids[:max_length] if truncation == "post" else ids[-max_length:]
        if ids:
            if padding == "post":
                out[r, :len(ids)] = ids
            else:
                out[r, max_length - len(ids):] = ids
    return out
