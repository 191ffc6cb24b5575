"""Tokenizers for the zoo's text models: characters, or byte-level BPE (the ``tokenizers`` package).

Both share one small interface: ``fit(texts)``, ``encode(text) -> list[int]``,
``decode(ids) -> str``, ``vocab_size``, ``save(folder)`` / ``load(folder)`` as JSON.

    tok = CharTokenizer().fit(["hello world"])
    tok.decode(tok.encode("hello"))          # "hello"
"""

from __future__ import annotations

import json
from pathlib import Path

from kiln.errors import KilnValueError

__all__ = ["CharTokenizer", "BPETokenizer", "SPECIAL_TOKENS"]

# Ids 0..3 in both tokenizers: padding first so that zero-padding is padding.
SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
_FILE = "tokenizer.json"


class _Tokenizer:
    """What both tokenizers share: the ids of ``SPECIAL_TOKENS`` and ``encode``'s <bos> / <eos>."""

    pad_id, bos_id, eos_id = 0, 2, 3  # positions in SPECIAL_TOKENS

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
        self._build()

    def _build(self):
        self.itos = SPECIAL_TOKENS + self.chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def fit(self, texts) -> "CharTokenizer":
        if isinstance(texts, str):
            texts = [texts]
        self.chars = sorted(set().union(*(set(t) for t in texts)) - set(SPECIAL_TOKENS))
        self._build()
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def _encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, 1) for c in text]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise KilnValueError(f"Token id {i} is outside this tokenizer's vocabulary (0..{len(self.itos) - 1}).")
            if skip_special_tokens and i < len(SPECIAL_TOKENS):
                continue
            out.append(self.itos[i])
        return "".join(out)

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
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if isinstance(texts, str):
            texts = [texts]
        tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=self.target_vocab_size, min_frequency=self.min_frequency,
                                      special_tokens=SPECIAL_TOKENS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tokenizer.train_from_iterator(list(texts), trainer=trainer)
        self._tokenizer = tokenizer
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
        """A BPETokenizer around a trained ``tokenizers.Tokenizer``."""
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
        return CharTokenizer(parsed["chars"])
    from tokenizers import Tokenizer
    return BPETokenizer._wrap(Tokenizer.from_str(text))
