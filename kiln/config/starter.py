"""Starter configs: a commented YAML per kind of data, for ``kiln init`` to write.

Each starter opens with the command that runs it, comments every key, uses a dataset bundled
with an installed package (so it runs with no download) and validates as it is (the tests
check that). The text is written out here, so that what a user gets is close to what a reader
of this file sees; only the closing evaluation/export sections, the same in every starter, are
written once. The lists of choices and options in the comments (``$formats``, ``$feature_types``,
...) are not written by hand: they are filled in from the schema (``_choices``), so a comment
cannot offer a value that the schema rejects.

Example:
    >>> text = starter_config("tabular", filename="cancer.yaml")
    >>> text.splitlines()[0]
    '# kiln train cancer.yaml'
"""

from __future__ import annotations

from string import Template
from typing import Any, Literal, get_args, get_origin

from kiln.config.catalog import ZOO_OPTIONS
from kiln.config.preprocessing import PREPROCESSING_BY_TYPE
from kiln.config.schema import (AUGMENTATIONS_BY_TYPE, FEATURE_TYPES, AugmentationConfig, DataConfig,
                                EarlyStoppingConfig, EvaluationConfig, ExportConfig, ScheduleConfig, TrainingConfig)
from kiln.errors import unknown_name_error

__all__ = ["starter_config", "STARTER_KINDS"]

# The same in every starter: the final evaluation and the exported files.
_EVALUATION_AND_EXPORT = """\
evaluation:                  # the final evaluation
  metrics: null              # null: per output type (accuracy for a category)
  split: test                # the split evaluated at the end: $evaluation_splits

export:                      # the files written for the trained model
  formats: [safetensors]     # one or more of $export_formats
"""

_IMAGE = """\
name: mnist-cnn              # the run folder is <output_dir>/<name>-<timestamp>
seed: 0                      # seeds the split, the weights, the shuffling and dropout
output_dir: runs             # where run folders are created

data:                        # where the examples come from
  source: mnist5k            # a file or folder path, or a bundled name (sklearn:iris, mnist5k, ...)
  format: auto               # $formats
  options: {}                # passed to the reader (e.g. sep: ";" for a CSV)
  split:                     # how the rows are divided
    train: 0.8               # fractions of the rows; they must sum to 1
    validation: 0.1          # used for val_ metrics and early stopping
    test: 0.1                # held out for the final evaluation
    stratify: label          # keep the class proportions of this column in every split
    by_column: null          # or a column naming each row's split (train/validation/test)
    seed: null               # null: the top-level seed
    k_folds: null            # or a number of cross-validation folds

input_features:              # the model's inputs: name, type, column (default: the name)
  - name: image              # names the model input and its metrics
    type: image              # $feature_types
    column: image            # the table column read (mnist5k: image, label)
    preprocessing: {height: 28, width: 28, channels: 1}   # resize to this; image options: $image_options
    augmentation:            # random changes, in training only; null keys are off; image keys: $image_augmentations
      flip: null             # $flips (digits must not be mirrored)
      rotation: 0.05         # up to 5% of a full turn (18 degrees) either way
      crop: null             # [height, width] of a random crop
      noise: null            # standard deviation of added Gaussian noise

output_features:             # what the model predicts
  - name: label              # the column of the same name is read
    type: category           # one class per row; accuracy is reported

model:                       # the network
  layers:                    # a Keras-style list, one {LayerName: {args}} per entry; output shape after each
    - Conv2D: {filters: 32, kernel_size: 3, activation: relu, padding: same}   # (28, 28, 32)
    - MaxPooling2D: {pool_size: 2}                                             # (14, 14, 32)
    - Conv2D: {filters: 64, kernel_size: 3, activation: relu, padding: same}   # (14, 14, 64)
    - MaxPooling2D: {pool_size: 2}                                             # (7, 7, 64)
    - Flatten: {}                                                              # (3136,)
    - Dense: {units: 10, activation: softmax}                                  # (10,) class probabilities
  # or a zoo model instead of layers:  zoo: {name: resnet18, options: {}}
  #   zoo names: $zoo_names
  # or neither: a model is built from the features

training:                    # how the model is fitted
  epochs: 10                 # passes over the training split (early stopping may end sooner)
  batch_size: 32             # examples per step
  optimizer: {name: adam, learning_rate: 0.001}   # or just: adam
  schedule: null             # or {name: cosine, warmup_steps: 100}; names: $schedules
  early_stopping: {monitor: val_loss, patience: 3, restore_best_weights: true}   # or null; mode: $stopping_modes
  regularization: {l1: 0.0, l2: 0.0, dropout: 0.0}   # penalties on the weights; dropout rate
  precision: float32         # $precisions (the last two: faster on recent GPUs)
  checkpoint_every_steps: 200   # besides a checkpoint at each epoch end; null: epoch ends only
  seed: null                 # null: the top-level seed

""" + _EVALUATION_AND_EXPORT

_TABULAR = """\
name: breast-cancer          # the run folder is <output_dir>/<name>-<timestamp>
seed: 0                      # seeds the split, the weights, the shuffling and dropout
output_dir: runs             # where run folders are created

data:                        # where the examples come from
  source: sklearn:breast_cancer   # a file path (CSV, Parquet, JSONL, ...) or a bundled name
  format: auto               # $formats
  options: {}                # passed to the reader (e.g. sep: ";" for a CSV)
  split:                     # how the rows are divided
    train: 0.7               # fractions of the rows; they must sum to 1
    validation: 0.15         # used for val_ metrics and early stopping
    test: 0.15               # held out for the final evaluation
    stratify: target         # keep the class proportions of this column in every split
    by_column: null          # or a column naming each row's split (train/validation/test)
    seed: null               # null: the top-level seed
    k_folds: null            # or a number of cross-validation folds

input_features:              # one entry per column used; name is the feature, column the table's
  - {name: mean_radius, type: numeric, column: mean radius}   # standardised; numeric options: $numeric_options
  - {name: mean_texture, type: numeric, column: mean texture}
  - {name: mean_perimeter, type: numeric, column: mean perimeter}
  - {name: mean_area, type: numeric, column: mean area}
  - {name: mean_smoothness, type: numeric, column: mean smoothness}
  - {name: mean_compactness, type: numeric, column: mean compactness}
  - {name: mean_concavity, type: numeric, column: mean concavity}
  - {name: mean_concave_points, type: numeric, column: mean concave points}
  - {name: mean_symmetry, type: numeric, column: mean symmetry}
  - {name: mean_fractal_dimension, type: numeric, column: mean fractal dimension}
  # 20 more columns ("radius error", ..., "worst fractal dimension") can be added the same way

output_features:             # what the model predicts
  - name: target             # the column of the same name is read
    type: category           # malignant / benign; accuracy is reported

model: {}                    # empty: a multilayer perceptron is built from the features
  # or layers: [{Dense: {units: 32, activation: relu}}, ...], or zoo: {name: mlp, options: {}}

training:                    # how the model is fitted
  epochs: 50                 # passes over the training split (early stopping may end sooner)
  batch_size: 32             # examples per step
  optimizer: {name: adam, learning_rate: 0.001}   # or just: adam
  schedule: null             # or {name: cosine, warmup_steps: 100}; names: $schedules
  early_stopping: {monitor: val_loss, patience: 5, restore_best_weights: true}   # or null
  regularization: {l1: 0.0, l2: 0.0001, dropout: 0.1}   # small: 400 training rows overfit easily
  precision: float32         # $precisions
  checkpoint_every_steps: 200   # besides a checkpoint at each epoch end; null: epoch ends only
  seed: null                 # null: the top-level seed

""" + _EVALUATION_AND_EXPORT

_TEXT = """\
name: polarity               # the run folder is <output_dir>/<name>-<timestamp>
seed: 0                      # seeds the split, the weights, the shuffling and dropout
output_dir: runs             # where run folders are created

data:                        # where the examples come from
  source: gensim:polarity    # a folder of <class>/*.txt files, a CSV/JSONL file, or a bundled name
  format: auto               # $formats
  options: {}                # passed to the reader (e.g. sep: ";" for a CSV)
  split:                     # how the rows are divided
    train: 0.8               # fractions of the rows; they must sum to 1
    validation: 0.1          # used for val_ metrics and early stopping
    test: 0.1                # held out for the final evaluation
    stratify: label          # keep the class proportions of this column in every split
    by_column: null          # or a column naming each row's split (train/validation/test)
    seed: null               # null: the top-level seed
    k_folds: null            # or a number of cross-validation folds

input_features:              # the model's inputs: name, type, column (default: the name)
  - name: text               # names the model input
    type: text               # tokenized with a vocabulary fitted on the train split
    column: text             # the table column read (gensim:polarity: text, label)
    preprocessing: {}        # {}: the defaults; text options: $text_options
    augmentation:            # random changes, in training only; text keys: $text_augmentations
      token_dropout: 0.1     # each token is replaced by the unknown token with this probability

output_features:             # what the model predicts
  - name: label              # the column of the same name is read
    type: category           # pos / neg; accuracy is reported

model: {}                    # empty: a model is built from the features (embedding + pooling + dense)
  # or layers: [{Embedding: {...}}, ...], or zoo: {name: bert, options: {}}

training:                    # how the model is fitted
  epochs: 10                 # passes over the training split (early stopping may end sooner)
  batch_size: 32             # examples per step
  optimizer: {name: adam, learning_rate: 0.001}   # or just: adam
  schedule: null             # or {name: cosine, warmup_steps: 100}; names: $schedules
  early_stopping: {monitor: val_loss, patience: 3, restore_best_weights: true}   # or null
  regularization: {l1: 0.0, l2: 0.0, dropout: 0.2}   # dropout: text models overfit small corpora
  precision: float32         # $precisions
  checkpoint_every_steps: 200   # besides a checkpoint at each epoch end; null: epoch ends only
  seed: null                 # null: the top-level seed

""" + _EVALUATION_AND_EXPORT

_STARTERS = {"image": _IMAGE, "tabular": _TABULAR, "text": _TEXT}


def _literal(model, field: str) -> tuple:
    """The values a Literal field of a schema model accepts (None left out): its choices."""
    annotation: Any = model.model_fields[field].annotation
    while get_origin(annotation) is not Literal:  # Literal[...] | None, list[Literal[...]]
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    return get_args(annotation)


def _choices() -> dict[str, str]:
    """Every list of choices or options the starters' comments mention, read from the schema.

    Lists of values are written ``a|b|c``, lists of keys ``a, b, c``.
    """
    return {
        "formats": "|".join(_literal(DataConfig, "format")),
        "feature_types": "|".join(FEATURE_TYPES),
        "flips": "|".join(_literal(AugmentationConfig, "flip")),
        "image_augmentations": ", ".join(AUGMENTATIONS_BY_TYPE["image"]),
        "text_augmentations": ", ".join(AUGMENTATIONS_BY_TYPE["text"]),
        "image_options": ", ".join(PREPROCESSING_BY_TYPE["image"].model_fields),
        "numeric_options": ", ".join(PREPROCESSING_BY_TYPE["numeric"].model_fields),
        "text_options": ", ".join(PREPROCESSING_BY_TYPE["text"].model_fields),
        "zoo_names": ", ".join(ZOO_OPTIONS),
        "schedules": "|".join(_literal(ScheduleConfig, "name")),
        "stopping_modes": "|".join(_literal(EarlyStoppingConfig, "mode")),
        "precisions": "|".join(_literal(TrainingConfig, "precision")),
        "evaluation_splits": "|".join(_literal(EvaluationConfig, "split")),
        "export_formats": "|".join(_literal(ExportConfig, "formats")),
    }
STARTER_KINDS: tuple[str, ...] = tuple(_STARTERS)


def starter_config(kind: str = "image", filename: str = "config.yaml") -> str:
    """A commented starter config for ``kind`` of data, ready to run once saved as ``filename``.

    Args:
        kind: "image" (mnist5k, a small CNN), "tabular" (sklearn:breast_cancer, an automatic
            MLP) or "text" (gensim:polarity, an automatic text model). Default: "image".
        filename: the file name written in the first line's command. Default: "config.yaml".

    Returns:
        The YAML text; its first line is ``# kiln train <filename>``.

    Raises:
        KilnValueError: an unknown ``kind`` (the nearest one is suggested).
    """
    if kind not in _STARTERS:
        raise unknown_name_error("starter kind", kind, _STARTERS)
    return f"# kiln train {filename}\n" + Template(_STARTERS[kind]).substitute(_choices())
