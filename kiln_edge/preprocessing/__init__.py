"""The NumPy preprocessing both backends run: one implementation of every fitted transform and decode.

kiln's feature classes (``kiln.data.features``) keep ``fit`` and their state and call these
functions, turning the arrays into tensors with ``torch.from_numpy``; kiln_edge's features
(``kiln_edge.features``) call them on the state read back from ``features.json``. So a column
gives the same bytes, and bad data the same message, on both. Nothing here imports torch.

    common          row_list, is_missing: how errors name rows, what counts as missing
    numeric         parse numbers, fill, normalise; decode back to the column's units
    category        labels -> indices / one-hot; scores -> labels
    binary          two values -> 0.0 / 1.0; probabilities -> labels
    tokenizers      the one tokenizer family (text features and the zoo): special ids, word/char
                    vocabularies, BPE
    text            texts -> padded token id rows; ids or scores -> texts
    sequence        number sequences (lists or "1, 2 3" strings) -> padded float32 rows
    features_file   the features.json + features.safetensors reader

Errors are kiln_edge's (``EdgeDataError`` for bad data, ``EdgeError`` for bad model outputs),
worded as kiln words them; kiln re-raises them as its own ``DataError`` / ``ShapeError``.
"""
