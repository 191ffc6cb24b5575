"""Tokenizers for the zoo's text models: characters, or byte-level BPE (the ``tokenizers`` package).

Both are kiln's one tokenizer family (``kiln_edge.preprocessing.tokenizers``, which text features
use too): the same special ids (``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3), the same
``Vocabulary`` and BPE trainer. Both share one small interface: ``fit(texts)``,
``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``, ``save(folder)`` /
``load(folder)`` as JSON. A loaded file must hold the special tokens at those ids.

    tok = CharTokenizer().fit(["hello world"])
    tok.decode(tok.encode("hello"))          # "hello"
"""

from __future__ import annotations

import json
from pathlib import Path

from kiln.errors import KilnValueError
from kiln_edge.errors import EdgeError
from kiln_edge.preprocessing import tokenizers as family

__all__ = ["CharTokenizer", "BPETokenizer", "SPECIAL_TOKENS"]

# Ids 0..3 in both tokenizers (and <pad>, <unk> in text features): padding first so that
# zero-padding is padding. The zoo's tokenizers hold all four.
SPECIAL_TOKENS = list(family.SPECIAL_TOKENS)
_FILE = "tokenizer.json"


class _Tokenizer:
    """What both tokenizers share: the ids of ``SPECIAL_TOKENS`` and ``encode``'s <bos> / <eos>."""

    pad_id, bos_id, eos_id = family.PAD_ID, family.BOS_ID, family.EOS_ID

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return ([self.bos_id] if add_bos else []) + self._encode(text) + ([self.eos_id] if add_eos else [])

    def _encode(self, text: str) -> list[int]:
        raise NotImplementedError


class CharTokenizer(_Tokenizer):
    """One id per character seen in ``fit``; unseen characters map to ``<unk>`` (id 1).

    Ids: ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3, then the characters in sorted order.
    """

    def __init__(self, chars: list[str] | None = None):
        self.chars = list(chars or [])
        self._vocabulary = family.Vocabulary(SPECIAL_TOKENS + self.chars, "char")

    @property
    def itos(self) -> list[str]:
        """id -> token: the special tokens, then the characters."""
        return self._vocabulary.tokens

    @property
    def stoi(self) -> dict[str, int]:
        return self._vocabulary.ids

    def fit(self, texts) -> "CharTokenizer":
        if isinstance(texts, str):
            texts = [texts]
        self._vocabulary = family.Vocabulary.fit(list(texts), "char", len(SPECIAL_TOKENS), order="sorted")
        self.chars = self._vocabulary.tokens[len(SPECIAL_TOKENS):]
        return self

    @property
    def vocab_size(self) -> int:
        return len(self._vocabulary)

    def _encode(self, text: str) -> list[int]:
        return self._vocabulary.encode(text)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        try:
            return "".join(self._vocabulary.lookup(ids, skip=len(SPECIAL_TOKENS) if skip_special_tokens else 0))
        except EdgeError as err:
            raise KilnValueError(str(err)) from None

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {"type": "char", "special_tokens": SPECIAL_TOKENS, "chars": self.chars}
        (folder / _FILE).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder) -> "CharTokenizer":
        data = json.loads((Path(folder) / _FILE).read_text(encoding="utf-8"))
        if data.get("type") != "char":
            raise KilnValueError(f"{str(Path(folder) / _FILE)!r} is not a CharTokenizer file "
                                 f"(type={data.get('type')!r}). Use BPETokenizer.load for BPE tokenizers.")
        return cls._from_data(data, repr(str(Path(folder) / _FILE)))

    @classmethod
    def _from_data(cls, data: dict, where: str) -> "CharTokenizer":
        """A CharTokenizer from its saved dict; the file's declared special tokens must be the family's."""
        declared = data.get("special_tokens", SPECIAL_TOKENS)
        if list(declared) != SPECIAL_TOKENS:
            raise KilnValueError(f"{where} declares the special tokens {declared!r}; this kiln's tokenizers use "
                                 f"{SPECIAL_TOKENS!r} (ids 0..{len(SPECIAL_TOKENS) - 1}). Fit the tokenizer again.")
        return cls(data["chars"])


class BPETokenizer(_Tokenizer):
    """Byte-level BPE trained with Hugging Face ``tokenizers``; saved as that library's own JSON.

    Args:
        vocab_size: (1000) target vocabulary size, special tokens and the 256 bytes included.
        min_frequency: (2) a pair must occur this often to be merged.
    """

    def __init__(self, vocab_size: int = 1000, min_frequency: int = 2):
        if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
            raise KilnValueError(f"`vocab_size` must be an integer above {len(SPECIAL_TOKENS)}. "
                                 f"Received: vocab_size={vocab_size!r}")
        self.target_vocab_size, self.min_frequency = vocab_size, min_frequency
        self._tokenizer = None

    def fit(self, texts) -> "BPETokenizer":
        if isinstance(texts, str):
            texts = [texts]
        self._tokenizer = family.train_bpe(list(texts), self.target_vocab_size, len(SPECIAL_TOKENS), byte_level=True,
                                           min_frequency=self.min_frequency)
        return self

    def _require(self):
        if self._tokenizer is None:
            raise KilnValueError("This BPETokenizer is not trained: call `fit(texts)` or `BPETokenizer.load(folder)`.")
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self._require().get_vocab_size()

    def _encode(self, text: str) -> list[int]:
        return self._require().encode(text).ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._require().decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._require().save(str(folder / _FILE))

    @classmethod
    def load(cls, folder) -> "BPETokenizer":
        from tokenizers import Tokenizer

        return cls._wrap(Tokenizer.from_file(str(Path(folder) / _FILE)))

    @classmethod
    def _wrap(cls, tokenizer) -> "BPETokenizer":
        """A BPETokenizer around a trained ``tokenizers.Tokenizer`` whose ids 0..3 are ``SPECIAL_TOKENS``."""
        found = [tokenizer.id_to_token(i) for i in range(len(SPECIAL_TOKENS))]
        if found != SPECIAL_TOKENS:
            raise KilnValueError(f"This BPE tokenizer holds {found!r} at ids 0..{len(SPECIAL_TOKENS) - 1}; kiln's "
                                 f"tokenizers use {SPECIAL_TOKENS!r} there. Train it with BPETokenizer.fit.")
        self = cls(vocab_size=max(tokenizer.get_vocab_size(), len(SPECIAL_TOKENS) + 1))
        self._tokenizer = tokenizer
        return self


def tokenizer_to_bytes(tokenizer) -> bytes:
    """A tokenizer's file as bytes (what ``model.save`` stores beside a text model's weights)."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save(folder)
        return (Path(folder) / _FILE).read_bytes()


def tokenizer_from_bytes(data: bytes):
    """Rebuild a CharTokenizer or BPETokenizer from ``tokenizer_to_bytes``' output."""
    text = data.decode("utf-8")
    parsed = json.loads(text)
    if isinstance(parsed, dict) and parsed.get("type") == "char":
        return CharTokenizer._from_data(parsed, "The saved character tokenizer")
    from tokenizers import Tokenizer
    return BPETokenizer._wrap(Tokenizer.from_str(text))
