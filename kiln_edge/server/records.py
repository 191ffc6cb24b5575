"""JSON records -> the raw DataFrame a run's input features read, or a 4xx naming the field.

The server takes the same raw values ``kiln predict`` reads from a file, one JSON object per row:
numbers for numeric features, strings or numbers for category/binary features, strings for text,
base64 PNG/JPEG (or nested lists) for images, base64 WAV (or a list of samples) for audio. Media
sent as base64 are written to files in a temporary folder and handed to the feature as paths, so
the server decodes them with exactly the code ``kiln predict`` uses for files.

    rows = records_to_rows(body["records"], run.inputs, folder, max_records)   # raises RequestError
    frame = rows.frame()
"""

from __future__ import annotations

import base64
import binascii
import numbers
from pathlib import Path

import numpy as np

__all__ = ["RequestError", "Rows", "records_to_rows", "json_type", "is_missing_value", "check_image_pixels"]

_MEDIA_SUFFIX = {"image": ".img", "audio": ".wav"}


class RequestError(Exception):
    """A request the server refuses: an HTTP ``status`` and the ``field`` at fault (or None)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict:
        return {"error": self.message, "field": self.field}


def json_type(feature) -> dict:
    """The JSON schema of one raw value of ``feature`` (for /metadata and the OpenAPI document)."""
    kind = feature.type
    if kind == "numeric":
        return {"type": ["number", "null"]}
    if kind in ("category", "binary"):
        return {"type": ["string", "number", "boolean", "null"]}
    if kind == "text":
        return {"type": ["string", "null"]}
    if kind == "sequence":
        return {"type": ["string", "array"], "items": {"type": "number"}}
    if kind == "image":
        return {"type": ["string", "array"], "description": "base64 PNG/JPEG, or nested lists (height, width[, c])"}
    if kind == "audio":
        return {"type": ["string", "array"], "description": "base64 WAV, or a list of samples"}
    return {}


def is_missing_value(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number(value, field: str):
    if is_missing_value(value):
        return np.nan
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RequestError(422, f"`{field}` must be a number (or null for a missing value); received "
                                f"{_show(value)}.", field)
    try:
        number = float(value)
    except OverflowError:  # an integer past float's range (JSON has no limit on digits)
        number = _INF
    if not -_INF < number < _INF:  # `Infinity`/`1e999` parse to inf; no feature takes it
        raise RequestError(422, f"`{field}` must be a finite number; received {_show(value)}.", field)
    return number


def _label(value, field: str, kind: str):
    if is_missing_value(value) or isinstance(value, (str, numbers.Real)):
        return value
    raise RequestError(422, f"`{field}` must be a string or a number (a {kind} value); received {_show(value)}.",
                       field)


def _text(value, field: str):
    if is_missing_value(value) or isinstance(value, str):
        return value
    raise RequestError(422, f"`{field}` must be a string (text); received {_show(value)}.", field)


def _media(value, field: str, kind: str, folder: Path, row: int, max_image_pixels: int | None = None):
    """base64 -> a file in ``folder`` (read back by the feature as ``kiln predict`` reads files);
    nested lists -> a numeric array."""
    if isinstance(value, str):
        try:
            data = base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(422, f"`{field}` is not valid base64 (send the {kind} file's bytes base64-encoded"
                                    f"{' or nested lists of pixels' if kind == 'image' else ' or a list of samples'})"
                                    f".", field) from None
        if kind == "image":
            check_image_pixels(data, field, max_image_pixels)
        path = folder / f"{row}-{field.split('.')[-1]}{_MEDIA_SUFFIX[kind]}"
        path.write_bytes(data)
        return str(path)
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError:
            raise RequestError(422, f"`{field}` holds ragged lists; an {kind} must be a rectangular array.",
                               field) from None
        if not np.issubdtype(array.dtype, np.number) or array.dtype == bool:
            raise RequestError(422, f"`{field}` must hold numbers only; received a {array.dtype} array.", field)
        if kind == "image" and max_image_pixels and array.ndim >= 2 and array.shape[0] * array.shape[1] > max_image_pixels:
            _too_many_pixels(field, array.shape[1], array.shape[0], max_image_pixels)
        if kind == "audio" and array.ndim != 1:
            raise RequestError(422, f"`{field}` must be a 1-D list of samples; received shape {array.shape}.", field)
        return array
    raise RequestError(422, f"`{field}` must be a base64 string or a list; received {_show(value)}.", field)


def check_image_pixels(data: bytes, field: str, max_image_pixels: int | None) -> None:
    """413 when the image in ``data`` has more than ``max_image_pixels`` pixels, read from its
    header (Pillow opens lazily), before anything decodes it.

    Why: a small PNG of one colour can decode to gigabytes (a 20,000 x 20,000 RGB image is 1.2 GB
    before conversion to float). Data Pillow cannot open is left to the feature, which refuses it
    with a 422 naming the field, as before.
    """
    if not max_image_pixels:
        return
    import io
    import warnings
    try:
        from PIL import Image
    except ImportError:  # the feature says how to install Pillow
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own limit (2 x its MAX_IMAGE_PIXELS) refused the header
        width, height = -1, -1
    except Exception:
        return
    if width < 0 or width * height > max_image_pixels:
        _too_many_pixels(field, width, height, max_image_pixels)


def _too_many_pixels(field: str, width: int, height: int, limit: int):
    size = f"{width} x {height} = {width * height} pixels" if width >= 0 else "more pixels than Pillow allows"
    raise RequestError(413, f"`{field}` is an image of {size}; the server takes at most {limit} pixels per image "
                            f"(--max-image-pixels). Resize it before sending.", field)


def _sequence(value, field: str):
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return np.asarray(value, dtype=np.float64)
    raise RequestError(422, f"`{field}` must be a list of numbers or a string of them; received {_show(value)}.",
                       field)


def _show(value) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 60 else text + f" ({type(value).__name__})"


class Rows:
    """A request's checked raw values, column by column (plain lists): cheap to build per request
    and to join per batch, so the server builds one DataFrame per forward pass, not per request.

    ``numeric`` names the columns sent as float64; the others become object columns (arrays and
    mixed labels kept as they came), as one DataFrame built per request would hold them.
    """

    __slots__ = ("columns", "numeric", "count")

    def __init__(self, columns: dict, numeric: frozenset, count: int):
        self.columns, self.numeric, self.count = columns, numeric, count

    def __len__(self) -> int:
        return self.count

    @staticmethod
    def join(parts: list["Rows"]) -> "Rows":
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        columns = {name: [v for part in parts for v in part.columns[name]] for name in first.columns}
        return Rows(columns, first.numeric, sum(part.count for part in parts))

    def part(self, start: int, stop: int) -> "Rows":
        """Rows ``start..stop-1`` (a large request run a batch at a time)."""
        columns = {name: values[start:stop] for name, values in self.columns.items()}
        return Rows(columns, self.numeric, len(range(self.count)[start:stop]))

    def arrays(self) -> dict:
        """``{column: 1-D array}``: float64 for numeric columns, object for the others (the columns of
        ``frame()``, and what ``LoadedRun.predict_columns`` takes)."""
        data = {}
        for name, values in self.columns.items():
            if name in self.numeric:
                data[name] = np.asarray(values, dtype=np.float64)
            else:
                column = np.empty(len(values), dtype=object)
                column[:] = values
                data[name] = column
        return data

    def frame(self):
        """The DataFrame ``kiln predict`` would read: one column per input column."""
        import pandas as pd
        return pd.DataFrame(self.arrays(), index=pd.RangeIndex(self.count))


def needs_folder(features) -> bool:
    """Whether base64 media may arrive (then a temporary folder must hold them)."""
    return any(feature.type in _MEDIA_SUFFIX for feature in features)


def records_to_rows(records, features, folder: Path | None, max_records: int,
                    max_image_pixels: int | None = None) -> Rows:
    """``records`` (a JSON list of objects) -> checked values per input column (``Rows``).

    Args:
        records: the parsed ``records`` value of the request body.
        features: the run's input features (their ``column`` and ``type`` say what to expect).
        folder: where base64 media are written; it must live until the prediction is made (only
            needed when an input is an image or audio).
        max_records: more records than this -> 413.
        max_image_pixels: an image with more pixels (width x height, read from the file's header
            before decoding) -> 413 (default None: no limit).

    Raises:
        RequestError: 422 naming ``records[i].column`` for a missing or mistyped value; 413 for
            too many records.
    """
    if not isinstance(records, list):
        raise RequestError(422, f"`records` must be a list of objects (one per row); received {_show(records)}.",
                           "records")
    if not records:
        raise RequestError(422, "`records` is empty; send at least one row.", "records")
    if len(records) > max_records:
        raise RequestError(413, f"`records` holds {len(records)} rows; the server takes at most {max_records} per "
                                f"request. Split the request.", "records")
    by_column = {}
    for feature in features:  # two features may read one column: check and send it once
        by_column.setdefault(feature.column, feature)
    numeric = frozenset(c for c, f in by_column.items() if f.type == "numeric")
    columns: dict[str, list] = {column: [] for column in by_column}
    checks = [(c, columns[c], f, c in numeric) for c, f in by_column.items()]  # in column order
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestError(422, f"`records[{i}]` must be an object of feature values; received "
                                    f"{_show(record)}.", f"records[{i}]")
        for column, values, feature, is_number in checks:
            value = record.get(column, _ABSENT)
            if is_number:  # the common tabular case: a finite float, checked inline
                if type(value) is float and -_INF < value < _INF:  # NaN and +-inf fail it
                    values.append(value)
                    continue
                if type(value) is int and -_BIG_INT < value < _BIG_INT:
                    values.append(float(value))
                    continue
            field = f"records[{i}].{column}"
            if value is _ABSENT:
                _missing(field, feature)
            kind = feature.type
            if is_number:
                value = _number(value, field)
            elif kind in ("category", "binary"):
                value = _label(value, field, kind)
            elif kind == "text":
                value = _text(value, field)
            elif kind == "sequence":
                value = _sequence(value, field)
            elif kind in ("image", "audio"):
                if folder is None:
                    raise RuntimeError("records_to_rows needs a folder for image/audio inputs")
                value = _media(value, field, kind, folder, i, max_image_pixels)
            values.append(value)
    return Rows(columns, numeric, len(records))


_ABSENT = object()
_INF = float("inf")
_BIG_INT = 2 ** 1023  # float(int) overflows past ~1.8e308


def _missing(field: str, feature):
    raise RequestError(422, f"`{field}` is missing: every record needs a value for the input feature "
                            f"{feature.name!r} ({feature.type}); send null for a missing value.", field)
