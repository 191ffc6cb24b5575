"""SavesTokenizer: a zoo text model keeps its tokenizer with it through ``model.save``/``load_model``.

Why a mixin through the ``save_assets``/``load_assets`` hook of ``kiln.Model``: saving stays
ignorant of the zoo (it stores whatever files a model hands it), and the tokenizer file format
stays in kiln/zoo/tokenizers.py.

Example::

    model = kiln.zoo.gpt_tiny(tokenizer.vocab_size)
    model.tokenizer = tokenizer            # a fitted CharTokenizer or BPETokenizer
    model.save("lm.keras")                 # lm.keras holds tokenizer.json too
    kiln.load_model("lm.keras").tokenizer  # the same tokenizer back
"""

from __future__ import annotations

from kiln.zoo.tokenizers import tokenizer_from_bytes, tokenizer_to_bytes

__all__ = ["SavesTokenizer", "TOKENIZER_FILE"]

TOKENIZER_FILE = "tokenizer.json"  # the name kiln has always stored it under


class SavesTokenizer:
    """Mixin for a ``kiln.Model``: ``self.tokenizer`` (None until set) is saved and loaded with it."""

    tokenizer = None

    def save_assets(self) -> dict[str, bytes]:
        assets = super().save_assets()
        if self.tokenizer is not None and hasattr(self.tokenizer, "save"):
            assets[TOKENIZER_FILE] = tokenizer_to_bytes(self.tokenizer)
        return assets

    def load_assets(self, assets: dict[str, bytes]) -> None:
        super().load_assets(assets)
        if TOKENIZER_FILE in assets:
            self.tokenizer = tokenizer_from_bytes(assets[TOKENIZER_FILE])
