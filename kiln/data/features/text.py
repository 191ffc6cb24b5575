"""TextFeature: a string per row as a fixed-length row of token ids.

Three tokenizers, all fitted on the training texts only (kiln_edge's one tokenizer family,
``kiln_edge.preprocessing.tokenizers``, which the zoo's tokenizers use too):

- "word": ``\\w+`` runs and single punctuation marks (``"Don't!"`` -> ``don ' t !``); vocabulary
  = the most frequent tokens (ties by token), capped so that it holds ``vocab_size`` ids in all.
- "char": every character, spaces included; vocabulary as for "word".
- "bpe": byte-pair encoding trained with the ``tokenizers`` package (a ``Whitespace``
  pre-tokenizer, so merges never cross words; a ``Lowercase`` normalizer when ``lowercase``).
  Characters the training texts never held become ``<unk>``. The trained tokenizer is kept
  as its JSON string inside the feature's state.

Ids: 0 = ``<pad>``, 1 = ``<unk>`` (the family's special ids; text features never mark a text's
start or end, so they do not reserve the zoo's ``<bos>``=2 / ``<eos>``=3), then the vocabulary; a
loaded feature's ids are those of its saved vocabulary. Rows are cut or padded to ``max_length``
at the end ("post") or the start ("pre"). Missing texts count as "".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_bool, check_choice, check_int, kiln_errors
from kiln.errors import ShapeError
from kiln_edge.preprocessing.text import TextTokenizer
from kiln_edge.preprocessing.tokenizers import PAD, UNK

__all__ = ["TextFeature", "PAD", "UNK"]

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
        self._tokenizer: TextTokenizer | None = None  # fitted: kiln_edge's tokenizer, shared with kiln_edge

    def get_config(self) -> dict:
        return {"tokenizer": self.tokenizer, "vocab_size": self.vocab_size, "max_length": self.max_length,
                "lowercase": self.lowercase, "padding": self.padding, "truncation": self.truncation}

    @property
    def vocabulary(self) -> list[str]:
        """id -> token (``[]`` before ``fit``)."""
        return self._tokenizer.tokens if self._tokenizer is not None else []

    @property
    def _bpe(self):
        """The trained ``tokenizers.Tokenizer`` of "bpe" (None otherwise, or before ``fit``)."""
        return self._tokenizer.bpe if self._tokenizer is not None else None

    def _fit(self, series: pd.Series) -> None:
        self._tokenizer = TextTokenizer.fit(series.tolist(), self.tokenizer, self.vocab_size, self.lowercase)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, before padding/truncation (texts as given, not lowercased yet)."""
        self._check_fitted("encode")
        return self._tokenizer.encode(pd.Series(texts, dtype=object).tolist())

    def _transform(self, series: pd.Series) -> torch.Tensor:
        ids = self._tokenizer.transform(series.tolist(), self.max_length, self.padding, self.truncation)
        return torch.from_numpy(ids)  # (rows, max_length), 0 = <pad>

    def tokens(self, ids) -> list[list[str]]:
        """Id rows ``(rows, length)`` -> their tokens, padding dropped."""
        self._check_fitted("tokens")
        ids = ids.detach().cpu().numpy() if torch.is_tensor(ids) else np.asarray(ids)
        return self._tokenizer.lookup(ids[None, :] if ids.ndim == 1 else ids)

    def decode(self, outputs) -> list[str]:
        """Ids ``(rows, length)`` or per-token scores ``(rows, length, vocab)`` -> one string per row."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().numpy() if torch.is_tensor(outputs) else np.asarray(outputs)
        with kiln_errors(ShapeError):
            return self._tokenizer.decode(values, self._what())

    def _spec(self) -> dict:
        return {"shape": (self.max_length,), "dtype": "int64", "vocab_size": len(self.vocabulary),
                "max_length": self.max_length}

    def _fitted_state(self):
        return self._tokenizer.state(), {}

    def _load_fitted(self, fitted, tensors):
        self._tokenizer = TextTokenizer.from_state(self.tokenizer, self.lowercase, fitted, self._what())
