"""Read a data source into the table: a pandas DataFrame with one row per example.

A source is an in-memory frame or dict, a file (CSV, TSV, Parquet, JSONL, NPY, NPZ), a
folder of media files with one sub-folder per class, or the name of a dataset shipped inside
an installed package (see ``kiln.data.bundled``). Column names follow
docs/design/lifecycle.md ("The table"). Media are never decoded here: image and audio
folders give file paths, and the features decode them lazily per split.

Every problem the user can fix is a ``kiln.errors.DataError`` that names the file, column or
row, and says what to do.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kiln.data.optional import require
from kiln.errors import DataError, KilnTypeError, closest_match
from kiln_edge.preprocessing.common import FILE_ROW, LINE

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_source", "FILE_FORMATS", "FOLDER_FORMATS", "MEDIA_EXTENSIONS"]

# Extension -> format for format="auto". TSV is CSV with a tab separator.
FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".npy": "npy",
    ".npz": "npz",
}
# Folder format -> (column holding each example, file extensions it takes).
MEDIA_EXTENSIONS = {
    "image_folder": ("image", (".png", ".jpg", ".jpeg", ".bmp", ".gif")),
    "text_folder": ("text", (".txt",)),
    "audio_folder": ("audio", (".wav",)),
}
FOLDER_FORMATS = tuple(MEDIA_EXTENSIONS)
# The options each format accepts through ``**options``; anything else is a typo.
_OPTIONS = {"csv": {"sep"}, "tsv": {"sep"}}
_FORMATS = ("auto", *dict.fromkeys(FILE_FORMATS.values()), *FOLDER_FORMATS, "bundled")
# Show a progress bar at once from this many files; below it, only after a second's work.
_PROGRESS_FILES = 1000
def read_source(source: str | os.PathLike | pd.DataFrame | dict, *, format: str = "auto", **options) -> pd.DataFrame:
    """Read a data source into a DataFrame with one row per example.

    Args:
        source: a ``pandas.DataFrame`` (copied); a dict of equal-length arrays or lists (an
            array of rank > 1 becomes one array per row); a file path (``.csv``, ``.tsv``,
            ``.parquet``, ``.jsonl``, ``.npy``, ``.npz``); a folder ``root/<class>/<file>`` of
            images (.png .jpg .jpeg .bmp .gif), texts (.txt) or audio (.wav); or a bundled
            dataset name such as ``"sklearn:iris"`` or ``"mnist5k"``.
        format: ``"auto"`` (default: from the extension, the files in a folder, or the name),
            or one of ``"csv"``, ``"tsv"``, ``"parquet"``, ``"jsonl"``, ``"npy"``, ``"npz"``,
            ``"image_folder"``, ``"text_folder"``, ``"audio_folder"``, ``"bundled"``.
        **options: ``sep`` for CSV/TSV (default ``","`` / ``"\\t"``). Without ``sep``, a CSV that ``,``
            reads as one column whose header holds ``;``, a tab or ``|`` is read with that separator.

    Returns:
        A DataFrame. Its index numbers the rows as the file does, so that errors name them: a
        CSV/TSV's index is named "file row" (the header is file row 1, the first example 2), a
        JSON Lines file's "line"; other sources get a fresh ``RangeIndex`` from 0. Folders give ``image``/``audio`` (absolute
        path) or ``text`` (the file's text) plus ``label`` (the class folder's name), sorted by
        (class, file name). NPY: a 2-D array gives columns ``f0..f{d-1}``, a 1-D array one
        column ``x`` of scalars, a higher rank one column ``x`` holding one array per row.
        NPZ: one column per key.

    Raises:
        DataError: the file or folder is missing, empty, unreadable or of an unknown kind; a
            JSONL line is not a JSON object; a ``.npy``/``.npz`` needs pickle; a bundled name
            is unknown.

    Example:
        >>> frame = read_source("data/train.csv", sep=";")
        >>> frame = read_source("sklearn:iris")   # 150 rows, 4 features + "target"
    """
    if format not in _FORMATS:
        hint = closest_match(format, _FORMATS)
        raise DataError(f"Unknown data format {format!r}." + (f" Did you mean {hint!r}?" if hint else "")
                        + f" Valid formats: {', '.join(_FORMATS)}.")
    pd = require("pandas")
    if isinstance(source, pd.DataFrame):
        _check_options("DataFrame", options)
        return _non_empty(source.copy().reset_index(drop=True), "the in-memory DataFrame")
    if isinstance(source, dict):
        _check_options("dict", options)
        return _from_dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise KilnTypeError(f"Received an invalid data source of type {type(source).__name__}: expected a file "
                            "or folder path, a bundled dataset name, a pandas.DataFrame or a dict of arrays.")

    text = os.fspath(source)
    if format == "bundled" or (format == "auto" and _looks_bundled(text)):
        _check_options("bundled", options)
        from kiln.data.bundled import load_bundled
        return load_bundled(text)

    path = Path(text)
    if not path.exists():
        raise _missing_error(path)
    if path.is_dir():
        if format != "auto" and format not in FOLDER_FORMATS:
            raise DataError(f"{path} is a folder, but format={format!r} reads a file. Pass the file's path, "
                            f"or format='auto' or one of {', '.join(FOLDER_FORMATS)} for a folder of files.")
        _check_options("folder", options)
        return _read_folder(path, None if format == "auto" else format)

    kind = format if format != "auto" else FILE_FORMATS.get(path.suffix.lower())
    if kind is None or kind in FOLDER_FORMATS:
        if kind is not None:
            raise DataError(f"{path} is a file, but format={kind!r} reads a folder root/<class>/<files>. "
                            "Pass the folder's path.")
        raise DataError(f"Cannot read {path}: unknown extension {path.suffix or '(none)'!r}. Supported files: "
                        f"{', '.join(FILE_FORMATS)}; or a folder with one sub-folder of images, .txt or .wav "
                        "files per class. Convert the file, or pass format=... if it is one of these.")
    _check_options(kind, options)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes). Point the source at the file that holds the data.")
    reader = {"csv": _read_csv, "tsv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl,
              "npy": _read_npy, "npz": _read_npz}[kind]
    if kind == "tsv":
        options.setdefault("sep", "\t")
    return _non_empty(reader(path, **options), str(path))


# --- in memory ---------------------------------------------------------------------------

def _from_dict(data: dict) -> pd.DataFrame:
    pd = require("pandas")
    if not data:
        raise DataError("The data source is an empty dict. Give one entry per column: {'x': array, 'y': labels}.")
    columns, lengths = {}, {}
    for key, value in data.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            if value.ndim == 0:
                raise DataError(f"Column {key!r} of the dict is a scalar, not one value per row. "
                                "Give an array or list.")
            column = _as_column(value)
        elif isinstance(value, (list, tuple, pd.Series)):
            column = pd.Series(list(value)) if not isinstance(value, pd.Series) else value.reset_index(drop=True)
        else:
            raise DataError(f"Column {key!r} of the dict is a {type(value).__name__}; expected an array or list "
                            "with one value per row.")
        columns[str(key)], lengths[str(key)] = column, len(column)
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{k!r}: {n}" for k, n in lengths.items())
        raise DataError(f"The dict's columns have different lengths ({sizes}). Every column needs one value per row.")
    return _non_empty(pd.DataFrame(columns), "the dict")


# --- files -------------------------------------------------------------------------------

def _read_csv(path: Path, sep: str | None = None) -> pd.DataFrame:
    pd = require("pandas")
    try:
        frame = pd.read_csv(path, sep=sep or ",")
        if sep is None and frame.shape[1] == 1:  # one column: often a ';'- or tab-separated file read with ','
            other = _sniff_separator(path, str(frame.columns[0]))
            if other is not None:
                sep, frame = other, pd.read_csv(path, sep=other)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path} holds no columns (only blank lines?). Put a header row and data in it.") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"Cannot read {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                        "Save it as UTF-8, or convert it to Parquet.") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as CSV (separator {sep or ','!r}): {str(exc).strip()}. Check the "
                        "quoting and that every row has the header's number of fields, or pass the right sep=.") from exc
    # Rows keep the number a spreadsheet shows (the header is file row 1): errors name them.
    frame.index = pd.RangeIndex(2, 2 + len(frame), name=FILE_ROW)
    return frame


def _sniff_separator(path: Path, header: str) -> str | None:
    """The separator of a file that ',' read as one column: ';', tab or '|' when the header holds one
    and csv.Sniffer agrees on the first lines, else None (a genuine one-column file stays as it is).

    Without this, ``a;b;c`` became one column named "a;b;c", and the config's ``column: a`` was
    reported as a missing column instead of a wrong separator.
    """
    if not any(c in header for c in ";\t|"):
        return None
    with open(path, encoding="utf-8-sig", errors="replace") as file:
        sample = "".join(file.readline() for _ in range(50))
    try:
        found = csv.Sniffer().sniff(sample, delimiters=";\t|").delimiter
    except csv.Error:  # no consistent separator in the sample
        return None
    return found if found in header else None


def _read_parquet(path: Path) -> pd.DataFrame:
    pd = require("pandas")
    require("pyarrow")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError for a broken file
        raise DataError(f"Cannot read {path} as Parquet: {exc}. Check that the file is a complete Parquet file "
                        "(written with DataFrame.to_parquet).") from exc


def _read_jsonl(path: Path) -> pd.DataFrame:
    pd = require("pandas")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"Cannot read {path}: JSON Lines must be UTF-8 ({exc.reason} at byte {exc.start}). "
                        "Save it as UTF-8.") from exc
    records, numbers = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # a blank line (often the last one) carries no example
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {number} is not valid JSON ({exc.msg}, column {exc.colno}): "
                            f"{_clip(line)!r}. Each line must hold one JSON object, "
                            'e.g. {"text": "...", "label": "pos"}.') from exc
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number} is a JSON {type(record).__name__}, not an object: "
                            f"{_clip(line)!r}. Each line must hold one JSON object, "
                            'e.g. {"text": "...", "label": "pos"}.')
        records.append(record)
        numbers.append(number)
    if not records:
        raise DataError(f"{path} has only blank lines. Put one JSON object per line in it.")
    return pd.DataFrame.from_records(records, index=pd.Index(numbers, name=LINE))  # errors name the file's lines


def _read_npy(path: Path) -> pd.DataFrame:
    pd = require("pandas")
    try:
        # Never unpickle: a pickled array can run arbitrary code when it is loaded.
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _pickle_error(path) from exc
        raise DataError(f"Cannot read {path} as a NumPy .npy file: {exc}. Write it with numpy.save.") from exc
    except OSError as exc:
        raise DataError(f"Cannot read {path} as a NumPy .npy file: {exc}. Write it with numpy.save.") from exc
    if array.ndim == 0:
        raise DataError(f"{path} holds a single scalar, not one row per example. Save an array of shape (rows, ...).")
    if array.ndim == 1:
        return pd.DataFrame({"x": array})
    if array.ndim == 2:
        return pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])
    return pd.DataFrame({"x": _as_column(array)})


def _read_npz(path: Path) -> pd.DataFrame:
    pd = require("pandas")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"Cannot read {path} as a NumPy .npz file: {exc}. Write it with numpy.savez.") from exc
    columns = {}
    with archive:
        if not archive.files:
            raise DataError(f"{path} holds no arrays. Save at least one with numpy.savez(path, x=..., y=...).")
        for key in archive.files:
            try:
                array = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise _pickle_error(path, key) from exc
                raise DataError(f"Cannot read array {key!r} of {path}: {exc}.") from exc
            if array.ndim == 0:
                raise DataError(f"Array {key!r} of {path} is a single scalar, not one value per row. "
                                "Save an array of shape (rows, ...).")
            columns[key] = _as_column(array)
    lengths = {key: len(column) for key, column in columns.items()}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{k!r}: {n}" for k, n in lengths.items())
        raise DataError(f"The arrays in {path} have different numbers of rows ({sizes}). "
                        "Every array needs the same first dimension: one entry per example.")
    return pd.DataFrame(columns)


def _as_column(array: np.ndarray) -> pd.Series:
    """One value per row: (N,) -> N scalars; (N, ...) -> N rows of one (...) array each (the
    table holds media as arrays)."""
    pd = require("pandas")
    return pd.Series(list(array), dtype=object) if array.ndim > 1 else pd.Series(array)


def _pickle_error(path: Path, key: str | None = None) -> DataError:
    what = f"Array {key!r} of {path}" if key else str(path)
    return DataError(f"{what} holds Python objects (dtype=object), which only pickle can load, and kiln never "
                     "unpickles data files: loading a pickle can run arbitrary code. Save numbers or strings "
                     "instead (e.g. numpy.save(path, array.astype('float32')) or array.astype(str)), or write "
                     "a CSV/Parquet file.")


# --- folders -----------------------------------------------------------------------------

def _read_folder(root: Path, format: str | None) -> pd.DataFrame:
    pd = require("pandas")
    entries = [e for e in root.iterdir() if not e.name.startswith(".")]
    if not entries:
        raise DataError(f"The folder {root} is empty. Put one sub-folder per class in it, "
                        "e.g. root/cat/001.png, root/dog/002.png.")
    class_dirs = sorted((e for e in entries if e.is_dir()), key=lambda e: e.name)
    loose = sorted(e.name for e in entries if e.is_file() and _kind(e, format) is not None)
    if not class_dirs:
        raise DataError(f"The folder {root} has no class sub-folders (found {len(entries)} files such as "
                        f"{_listing(sorted(e.name for e in entries))}). Move each example into a sub-folder "
                        "named after its class: root/<class>/<file>.")
    if loose:
        raise DataError(f"The folder {root} has files outside any class sub-folder: {_listing(loose)}. "
                        "Move each into the sub-folder named after its class, or delete it.")

    # (class, name within the class folder, path), found class by class; only a long listing shows a bar.
    found: list[tuple[str, str, Path]] = []
    by_kind: dict[str, list[str]] = {}
    ignored: set[str] = set()
    from tqdm import tqdm  # here, not at the top: `kiln predict --backend onnx` reads CSVs without it
    with tqdm(desc=f"Listing {root.name}", unit=" files", file=sys.stderr, delay=1.0, disable=None) as bar:
        for class_dir in class_dirs:
            for dirpath, dirnames, filenames in os.walk(class_dir):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in filenames:
                    if name.startswith("."):
                        continue
                    file = Path(dirpath, name)
                    kind = _kind(file, format)
                    if kind is None:
                        ignored.add(file.suffix.lower() or name)
                        continue
                    rel = file.relative_to(class_dir).as_posix()
                    by_kind.setdefault(kind, []).append(f"{class_dir.name}/{rel}")
                    found.append((class_dir.name, rel, file))
                    bar.update()
    if not found:
        wanted = MEDIA_EXTENSIONS[format][1] if format else sum((v[1] for v in MEDIA_EXTENSIONS.values()), ())
        extra = f" (found only {', '.join(sorted(ignored))} files)" if ignored else ""
        raise DataError(f"The folder {root} has class sub-folders but no example files in them{extra}. "
                        f"Put files with one of {', '.join(wanted)} in root/<class>/.")
    if len(by_kind) > 1:
        kinds = "; ".join(f"{kind.split('_')[0]} files: {_listing(sorted(names))}"
                          for kind, names in sorted(by_kind.items()))
        raise DataError(f"The folder {root} mixes kinds of files ({kinds}). Keep one kind per dataset folder, "
                        "or pass format='image_folder'/'text_folder'/'audio_folder' to read only that kind.")

    kind = next(iter(by_kind))
    column = MEDIA_EXTENSIONS[kind][0]
    found.sort(key=lambda item: (item[0], item[1]))  # (class, file name): the same order on every machine
    labels = [label for label, _, _ in found]
    if kind == "text_folder":
        values = [_read_text(file) for _, _, file in _progress(found, f"Reading {root.name}")]
    else:
        # An absolute path, so the table still works when the working directory changes.
        values = [os.path.abspath(file) for _, _, file in found]
    return pd.DataFrame({column: values, "label": labels})


def _kind(file: Path, format: str | None) -> str | None:
    """The folder format a file belongs to, or None when it is not an example file."""
    suffix = file.suffix.lower()
    for kind, (_, extensions) in MEDIA_EXTENSIONS.items():
        if suffix in extensions and (format is None or format == kind):
            return kind
    return None


def _read_text(file: Path) -> str:
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older corpora; latin-1 decodes any byte


def _progress(items: list, desc: str):
    # disable=None: no bar when stderr is not a terminal (CI logs). Large folders show it at once.
    from tqdm import tqdm
    delay = 0.0 if len(items) > _PROGRESS_FILES else 1.0
    return tqdm(items, desc=desc, unit=" files", file=sys.stderr, delay=delay, disable=None)


# --- errors and helpers ------------------------------------------------------------------

def _looks_bundled(text: str) -> bool:
    from kiln.data.bundled import BUNDLED

    if text in BUNDLED:
        return True
    prefix, colon, rest = text.partition(":")
    # "sklearn:iris"-like, but not a Windows drive ("C:\\data") nor a file that exists.
    return bool(colon) and len(prefix) > 1 and "/" not in text and "\\" not in text and not Path(text).exists()


def _missing_error(path: Path) -> DataError:
    from kiln.data.bundled import BUNDLED

    msg = f"The data source {path} does not exist."
    parent = path.parent
    if parent.is_dir():
        names = [p.name for p in parent.iterdir() if not p.name.startswith(".")]
        close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
        if close:
            msg += f" Did you mean {str(parent / close[0])!r}?"
        else:
            msg += f" The folder {parent} holds: {_listing(sorted(names)) if names else 'nothing'}."
    else:
        msg += f" Its folder {parent} does not exist either."
    if not path.suffix and len(path.parts) == 1:
        close = difflib.get_close_matches(str(path), list(BUNDLED), n=1, cutoff=0.6)
        if close:
            msg += f" Or did you mean the bundled dataset {close[0]!r}?"
    return DataError(msg + " Check the path (relative paths start at the working directory).")


def _check_options(kind: str, options: dict) -> None:
    unknown = sorted(set(options) - _OPTIONS.get(kind, set()))
    if unknown:
        valid = ", ".join(sorted(_OPTIONS.get(kind, ()))) or "none"
        raise KilnTypeError(f"read_source got unexpected option(s) {', '.join(map(repr, unknown))} for a {kind} "
                            f"source. Options it accepts: {valid}.")


def _non_empty(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if len(frame) == 0:
        raise DataError(f"{what} has no rows (columns: {', '.join(map(str, frame.columns)) or 'none'}). "
                        "Add examples, or point the source at the data.")
    return frame


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _clip(line: str, limit: int = 80) -> str:
    return line if len(line) <= limit else line[:limit] + "..."
