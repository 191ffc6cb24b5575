"""TextFeature: a string per row as a fixed-length row of token ids.

Three tokenizers, all fitted on the training texts only:

- "word": ``\\w+`` runs and single punctuation marks (``"Don't!"`` -> ``don ' t !``); vocabulary
  = the most frequent tokens (ties by token), capped so that it holds ``vocab_size`` ids in all.
- "char": every character, spaces included; vocabulary as for "word".
- "bpe": byte-pair encoding trained with the ``tokenizers`` package (a ``Whitespace``
  pre-tokenizer, so merges never cross words; a ``Lowercase`` normalizer when ``lowercase``).
  Characters the training texts never held become ``<unk>``. The trained tokenizer is kept
  as its JSON string inside the feature's state.

Ids: 0 = ``<pad>``, 1 = ``<unk>``, then the vocabulary. Rows are cut or padded to
``max_length`` at the end ("post") or the start ("pre"). Missing texts count as "".
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_bool, check_choice, check_int, is_missing
from kiln.errors import ShapeError
from kiln_edge.features import pad_ids

__all__ = ["TextFeature", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"\w+|[^\w\s]")
_TOKENIZERS = ("word", "char", "bpe")
_SIDES = ("post", "pre")


class TextFeature(Feature):
    """A text column as int64 token ids ``(rows, max_length)``, 0-padded.

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: True for a text target (``decode`` turns ids or per-token scores into strings).
        tokenizer: "word" (default), "char" or "bpe".
        vocab_size: the most ids, ``<pad>`` and ``<unk>`` included (default 10000); for "bpe" the
            trainer's target size.
        max_length: tokens per row after padding/truncation (default 64).
        lowercase: lowercase texts before tokenizing (default True).
        padding: "post" (default: pad at the end) or "pre".
        truncation: "post" (default: drop tokens from the end) or "pre".

    Example::

        f = TextFeature("review", max_length=4).fit(pd.Series(["good film", "bad film"]))
        f.vocabulary                       # ["<pad>", "<unk>", "film", "bad", "good"]
        f.transform(pd.Series(["Good!"]))  # tensor([[4, 1, 0, 0]])
    """

    type = "text"

    def __init__(self, name: str, column: str | None = None, *, output: bool = False, tokenizer: str = "word",
                 vocab_size: int = 10000, max_length: int = 64, lowercase: bool = True, padding: str = "post",
                 truncation: str = "post"):
        super().__init__(name, column, output=output)
        self.tokenizer = check_choice("tokenizer", tokenizer, _TOKENIZERS)
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=3)  # <pad>, <unk> and one token
        self.max_length = check_int("max_length", max_length)
        self.lowercase = check_bool("lowercase", lowercase)
        self.padding = check_choice("padding", padding, _SIDES)
        self.truncation = check_choice("truncation", truncation, _SIDES)
        self.vocabulary: list[str] = []  # id -> token
        self._ids: dict[str, int] = {}
        self._bpe = None  # a tokenizers.Tokenizer for "bpe"

    def get_config(self) -> dict:
        return {"tokenizer": self.tokenizer, "vocab_size": self.vocab_size, "max_length": self.max_length,
                "lowercase": self.lowercase, "padding": self.padding, "truncation": self.truncation}

    def _texts(self, series: pd.Series) -> list[str]:
        texts = ["" if is_missing(v) else str(v) for v in series.tolist()]
        return [t.lower() for t in texts] if self.lowercase and self.tokenizer != "bpe" else texts

    def _split(self, text: str) -> list[str]:
        return _WORD.findall(text) if self.tokenizer == "word" else list(text)

    def _fit(self, series: pd.Series) -> None:
        texts = self._texts(series)
        if self.tokenizer == "bpe":
            self._bpe = _train_bpe(texts, self.vocab_size, self.lowercase)
            self.vocabulary = [self._bpe.id_to_token(i) for i in range(self._bpe.get_vocab_size())]
        else:
            counts = Counter(token for text in texts for token in self._split(text))
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:self.vocab_size - 2]
            self.vocabulary = [PAD, UNK] + [token for token, _ in ranked]
        self._ids = {token: i for i, token in enumerate(self.vocabulary)}

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, before padding/truncation (texts as given, not lowercased yet)."""
        self._check_fitted("encode")
        texts = self._texts(pd.Series(texts, dtype=object))
        if self.tokenizer == "bpe":
            return [encoding.ids for encoding in self._bpe.encode_batch(texts)]
        ids = self._ids
        return [[ids.get(token, 1) for token in self._split(text)] for text in texts]

    def _transform(self, series: pd.Series) -> torch.Tensor:
        ids = pad_ids(self.encode(series.tolist()), self.max_length, self.padding, self.truncation)
        return torch.from_numpy(ids)  # (rows, max_length), 0 = <pad>

    def tokens(self, ids) -> list[list[str]]:
        """Id rows ``(rows, length)`` -> their tokens, padding dropped."""
        self._check_fitted("tokens")
        ids = ids.detach().cpu().numpy() if torch.is_tensor(ids) else np.asarray(ids)
        if ids.ndim == 1:
            ids = ids[None, :]
        return [[self.vocabulary[i] for i in row.tolist() if i != 0] for row in ids]

    def decode(self, outputs) -> list[str]:
        """Ids ``(rows, length)`` or per-token scores ``(rows, length, vocab)`` -> one string per row."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().numpy() if torch.is_tensor(outputs) else np.asarray(outputs)
        if values.ndim == 3 and values.shape[2] == len(self.vocabulary):
            values = values.argmax(axis=2)
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
            raise ShapeError(f"{self._what()} decodes integer ids (rows, length) or scores (rows, length, "
                             f"{len(self.vocabulary)}); received {values.dtype} of shape {tuple(values.shape)}.")
        if self.tokenizer == "bpe":
            return [self._bpe.decode([i for i in row.tolist() if i != 0], skip_special_tokens=False)
                    for row in values]
        joiner = "" if self.tokenizer == "char" else " "
        return [joiner.join(tokens) for tokens in self.tokens(values)]

    def _spec(self) -> dict:
        return {"shape": (self.max_length,), "dtype": "int64", "vocab_size": len(self.vocabulary),
                "max_length": self.max_length}

    def _fitted_state(self):
        if self.tokenizer == "bpe":
            return {"bpe": self._bpe.to_str()}, {}
        return {"vocabulary": list(self.vocabulary)}, {}

    def _load_fitted(self, fitted, tensors):
        if self.tokenizer == "bpe":
            from tokenizers import Tokenizer
            self._bpe = Tokenizer.from_str(fitted["bpe"])
            self.vocabulary = [self._bpe.id_to_token(i) for i in range(self._bpe.get_vocab_size())]
        else:
            self.vocabulary = list(fitted["vocabulary"])
        self._ids = {token: i for i, token in enumerate(self.vocabulary)}


def _train_bpe(texts: list[str], vocab_size: int, lowercase: bool):
    """A BPE tokenizer trained on ``texts``: ids 0 and 1 are ``<pad>`` and ``<unk>``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer
