"""BinaryFeature: a two-valued column (bool, 0/1, "yes"/"no", "pos"/"neg", ...) as 0.0 / 1.0.

``fit`` learns the two values from the training split and which one is positive: the one
given as ``positive``, or else the second in sorted order — which is the positive one for
every common pair: False/True, 0/1, "false"/"true", "no"/"yes", "neg"/"pos",
"negative"/"positive", "n"/"y", "off"/"on". The values are kept exactly (no case folding),
so ``decode`` returns labels as the column spelled them.

Missing values: an error in an output feature; 0.0 (the negative value) in an input feature.
"""

from __future__ import annotations

import pandas as pd
import torch

from kiln.data.features.base import Feature, kiln_errors, sort_key, to_python
from kiln.errors import DataError, KilnValueError, ShapeError
from kiln_edge.preprocessing import binary

__all__ = ["BinaryFeature"]


class BinaryFeature(Feature):
    """A two-valued column as a ``(rows, 1)`` float32 tensor of 0.0 (negative) and 1.0 (positive).

    Args:
        name: feature name (and column, unless ``column`` is given).
        column: the table column (default: ``name``).
        output: True for a binary classification target (train with sigmoid + binary cross-entropy).
        positive: the value that means 1 (default None: the second value in sorted order).

    Example::

        f = BinaryFeature("spam").fit(pd.Series(["no", "yes", "no"]))
        f.classes                            # ["no", "yes"]
        f.decode(torch.tensor([[0.9], [0.2]]))  # ["yes", "no"]
    """

    type = "binary"

    def __init__(self, name: str, column: str | None = None, *, output: bool = False, positive=None):
        super().__init__(name, column, output=output)
        if positive is not None and not isinstance(positive, (str, bool, int, float)):
            raise KilnValueError(f"Received an invalid value for `positive`, expected the column's positive value "
                                 f"(a string, number or bool) or None. Received: positive={positive!r}")
        self.positive = positive
        self.classes: list = []  # [negative, positive]

    def get_config(self) -> dict:
        return {"positive": self.positive}

    def _match_positive(self, values: list):
        """The column value the user meant by ``positive`` (exactly, or by its text: "True" ~ True)."""
        for value in values:
            if value == self.positive and isinstance(value, bool) == isinstance(self.positive, bool):
                return value
        for value in values:
            if str(value).lower() == str(self.positive).lower():
                return value
        return None

    def _fit(self, series: pd.Series) -> None:
        with kiln_errors():
            missing = binary.missing(series, self._where(), self.output)
        values = sorted((to_python(v) for v in pd.unique(series[~missing].to_numpy())), key=sort_key)
        if len(values) > 2:
            shown = ", ".join(repr(v) for v in values[:6]) + (" ..." if len(values) > 6 else "")
            raise DataError(f"{self._where()}: the training split has {len(values)} distinct values ({shown}); a "
                            f"binary feature needs exactly two. Use a category feature for more classes.")
        if not values:
            raise DataError(f"{self._where()}: every training value is missing.")
        if self.positive is None:
            if len(values) < 2:
                raise DataError(f"{self._where()}: the training split holds only {values[0]!r}; a binary feature "
                                f"needs both values. Set `positive` (and make sure training has both classes).")
            self.classes = values
            return
        positive = self._match_positive(values)
        if positive is None and len(values) == 2:
            raise DataError(f"{self._where()}: `positive`={self.positive!r} is not one of the column's values "
                            f"{values[0]!r}, {values[1]!r}. Set `positive` to one of them.")
        if positive is None:  # one value seen, and `positive` names the other
            self.classes = [values[0], self.positive]
        elif len(values) == 1:
            raise DataError(f"{self._where()}: the training split holds only the positive value {positive!r}; a "
                            f"binary feature needs a negative value too.")
        else:
            self.classes = [v for v in values if v is not positive] + [positive]

    def _transform(self, series: pd.Series) -> torch.Tensor:
        with kiln_errors():
            return torch.from_numpy(binary.transform(series, self._where(), self.classes, self.output))  # (rows, 1)

    def decode(self, outputs) -> list:
        """Probabilities ``(rows, 1)`` or ``(rows,)`` -> the positive label where >= 0.5, else the negative."""
        self._check_fitted("decode")
        values = outputs.detach().cpu().double().numpy() if torch.is_tensor(outputs) else outputs
        with kiln_errors(ShapeError):
            return binary.decode(values, self.classes, self._what())

    def _spec(self) -> dict:
        return {"shape": (1,), "dtype": "float32", "classes": list(self.classes)}

    def _fitted_state(self):
        return {"classes": list(self.classes)}, {}

    def _load_fitted(self, fitted, tensors):
        self.classes = list(fitted["classes"])
