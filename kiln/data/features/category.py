"""CategoryFeature: a label per row, as an index into a vocabulary learned from the training split.

Input features: the vocabulary is the training values seen at least ``min_count`` times, most
frequent first (ties by value), cut to ``max_vocab``; index 0 is ``"<unk>"``, where values the
training split did not have (and missing values) go. Output features (the classes a model
predicts): no ``<unk>`` — the classes are the sorted unique training labels, and a label the
training split lacks, or a missing label, is a ``DataError`` (a model cannot learn to predict
a class it never saw).

Labels keep their type: JSON stores ``3`` and ``"3"`` apart, so ``decode`` gives back ints for
an int column and strings for a string column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kiln.data.features.base import Feature, check_choice, check_int, kiln_errors, sort_key, to_python
from kiln.errors import DataError, KilnValueError, ShapeError
from kiln_edge.preprocessing import category

__all__ = ["CategoryFeature", "UNKNOWN"]

UNKNOWN = "<unk>"
_ENCODINGS = ("index", "onehot")


class CategoryFeature(Feature):
    """A categorical column as class indices ``(rows,)`` int64, or one-hot ``(rows, vocab_size)``.

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: True for a classification target (no ``<unk>``; classes sorted by value).
        max_vocab: input features: keep at most this many values, the most frequent (default
            None: all). Not used by output features.
        min_count: input features: drop values seen fewer times in training (default 1).
        encoding: "index" (default; int64 indices for an Embedding or sparse cross-entropy) or
            "onehot" (float32 one-hot rows).

    Example::

        f = CategoryFeature("color").fit(pd.Series(["red", "blue", "red"]))
        f.classes                                # ["<unk>", "red", "blue"]
        f.transform(pd.Series(["blue", "pink"]))  # tensor([2, 0])
    """

    type = "category"

    def __init__(self, name: str, column: str | None = None, *, output: bool = False,
                 max_vocab: int | None = None, min_count: int = 1, encoding: str = "index"):
        super().__init__(name, column, output=output)
        self.max_vocab = check_int("max_vocab", max_vocab, allow_none=True)
        self.min_count = check_int("min_count", min_count)
        self.encoding = check_choice("encoding", encoding, _ENCODINGS)
        if output and (max_vocab is not None or min_count != 1):
            raise KilnValueError(f"`max_vocab` and `min_count` apply to input category features; the output "
                                 f"feature {name!r} keeps every training class. Received: max_vocab={max_vocab!r}, "
                                 f"min_count={min_count!r}")
        self.classes: list = []  # index -> value; inputs start with "<unk>"
        self._lookup: pd.Index | None = None

    def get_config(self) -> dict:
        return {"max_vocab": self.max_vocab, "min_count": self.min_count, "encoding": self.encoding}

    @property
    def vocab_size(self) -> int:
        return len(self.classes)

    def _fit(self, series: pd.Series) -> None:
        if self.output:
            with kiln_errors():
                category.check_no_missing(series, self._where())
            values = [to_python(v) for v in pd.unique(series.to_numpy())]
            if len(values) < 2:  # one class trains to loss 0 and accuracy 1.0 and learns nothing
                raise DataError(f"{self._where()}: the training split holds only the class {values[0]!r}; a "
                                f"category target needs at least two classes to learn from. Check the column "
                                f"(and the split: a stratified split keeps every class in training).")
            self.classes = sorted(values, key=sort_key)
        else:
            counts = series.dropna().value_counts(sort=False)
            items = [(to_python(v), int(c)) for v, c in counts.items() if c >= self.min_count]
            items.sort(key=lambda item: (-item[1], sort_key(item[0])))  # frequency, then value
            if self.max_vocab is not None:
                items = items[:self.max_vocab]
            self.classes = [UNKNOWN] + [value for value, _ in items]
        self._lookup = None

    def _transform(self, series: pd.Series) -> torch.Tensor:
        if self._lookup is None:
            self._lookup = category.lookup(self.classes, self.output)
        with kiln_errors():
            out = category.transform(series, self._where(), self.classes, self._lookup, self.output, self.encoding)
        return torch.from_numpy(out)  # (rows,) int64, or (rows, vocab_size) float32 one-hot

    def _transform_values(self, values: np.ndarray) -> torch.Tensor:
        if self.output or values.dtype != object:  # targets are checked: the Series path
            return super()._transform_values(values)
        if self._lookup is None:
            self._lookup = category.lookup(self.classes, self.output)
        return torch.from_numpy(category.transform_values(values, self.classes, self._lookup, self.encoding))

    def decode(self, outputs) -> list:
        """Probabilities or logits ``(rows, vocab_size)`` (argmax), or indices ``(rows,)`` -> labels."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().numpy() if torch.is_tensor(outputs) else np.asarray(outputs)
        with kiln_errors(ShapeError):
            return category.decode(values, self.classes, self._what())

    def _spec(self) -> dict:
        shape = (self.vocab_size,) if self.encoding == "onehot" else ()
        return {"shape": shape, "dtype": "float32" if self.encoding == "onehot" else "int64",
                "vocab_size": self.vocab_size, "classes": list(self.classes)}

    def _fitted_state(self):
        return {"classes": list(self.classes)}, {}

    def _load_fitted(self, fitted, tensors):
        self.classes = list(fitted["classes"])
        self._lookup = None
