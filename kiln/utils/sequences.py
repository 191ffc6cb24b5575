"""``pad_sequences``: lists of variable-length sequences -> one padded array, as in ``keras.utils``.

Keras's defaults are kept on purpose, surprising as they are: ``padding="pre"`` and
``truncating="pre"`` pad and cut at the *start*, so the last tokens of a text survive.
"""

from __future__ import annotations

import numbers

import numpy as np

from kiln.errors import KilnValueError

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0) -> np.ndarray:
    """Pad (and cut) ``sequences`` to one length; returns an array ``(len(sequences), maxlen, ...)``.

    Args:
        sequences: a list of sequences (lists or arrays); each element may itself be an array
            of a fixed shape (the trailing sample shape, taken from the first non-empty one).
        maxlen: the output length (default None: the longest sequence's length).
        dtype: dtype of the output (default "int32"; use ``object`` for strings).
        padding: "pre" (default) or "post": pad before or after each sequence.
        truncating: "pre" (default) or "post": drop values from the start or the end of
            sequences longer than ``maxlen``.
        value: the padding value (default 0.0, cast to ``dtype``).

    Raises:
        KilnValueError: ``sequences`` is not a list of sequences, an invalid ``padding``,
            ``truncating`` or ``maxlen``, a string ``value`` with a numeric ``dtype``, or
            samples of different shapes.

    Example::

        pad_sequences([[1], [2, 3], [4, 5, 6]])            # [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
        pad_sequences([[1], [2, 3], [4, 5, 6]], maxlen=2)  # [[0, 1], [2, 3], [5, 6]]
    """
    if not hasattr(sequences, "__len__") or isinstance(sequences, (str, bytes)):
        raise KilnValueError(f"`sequences` must be a list of sequences, e.g. [[1, 2], [3]]. "
                             f"Received: {type(sequences).__name__}")
    for name, choice in (("padding", padding), ("truncating", truncating)):
        if choice not in ("pre", "post"):
            raise KilnValueError(f"Received an invalid value for `{name}`, expected 'pre' or 'post'. "
                                 f"Received: {name}={choice!r}")
    if maxlen is not None and (not isinstance(maxlen, numbers.Integral) or isinstance(maxlen, bool) or maxlen < 0):
        raise KilnValueError(f"Received an invalid value for `maxlen`, expected a non-negative integer or None. "
                             f"Received: maxlen={maxlen!r}")

    lengths = []
    sample_shape = ()
    found_sample = False
    # The sample shape comes from the first non-empty sequence; the others are checked against it.
    for idx, seq in enumerate(sequences):
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
            raise KilnValueError(f"`sequences` must be a list of sequences (lists or arrays); the element at "
                                 f"position {idx} is not one: {seq!r} ({type(seq).__name__}). Wrap single values "
                                 f"in a list, e.g. [[1], [2, 3]].")
        lengths.append(len(seq))
        if not found_sample and len(seq):
            sample_shape = np.asarray(seq).shape[1:]
            found_sample = True

    if maxlen is None:
        maxlen = max(lengths) if lengths else 0  # Keras's np.max fails on no sequences; an empty array here

    is_str_dtype = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_str_dtype:
        raise KilnValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value).__name__}. "
                             f"Use dtype=object to pad variable-length strings.")

    out = np.full((len(sequences), maxlen) + sample_shape, value, dtype=dtype)
    if maxlen == 0:
        return out
    for idx, seq in enumerate(sequences):
        if not len(seq):
            continue  # stays all padding
        kept = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        kept = np.asarray(kept, dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise KilnValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {idx} is different "
                                 f"from the expected shape {sample_shape} (taken from the first non-empty "
                                 f"sequence).")
        if padding == "post":
            out[idx, :len(kept)] = kept
        else:
            out[idx, -len(kept):] = kept
    return out
