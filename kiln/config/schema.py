"""The typed schema of a kiln YAML config: one pydantic model per section.

Why pydantic: a config is validated once, at the edge (``kiln.config.load_config``), with
every problem of the file collected in one pass; past that point a workflow reads plain typed
attributes and never checks again. Each field's docstring says what it is for and its units;
every default is written here, with the reason beside the non-obvious ones. Every section
forbids unknown keys (a typo must not be silently ignored), except ``training.optimizer``,
whose extra keys are passed to the optimizer (and checked against its arguments). The open
mappings are typed too: a feature's ``preprocessing`` by its type (``kiln.config.preprocessing``),
``model.layers`` and ``model.zoo.options`` by the layer's or zoo builder's arguments
(``kiln.config.catalog``, a table checked against the real classes, so validating needs no torch).

The sections, top to bottom as in a YAML file::

    name, seed, output_dir
    data: DataConfig                 source, format, options, split: SplitConfig
    input_features, output_features  list[FeatureConfig] (augmentation: AugmentationConfig)
    model: ModelConfig               layers | zoo: ZooConfig | neither (built from the features)
    training: TrainingConfig         optimizer: OptimizerConfig, schedule: ScheduleConfig,
                                     early_stopping: EarlyStoppingConfig,
                                     regularization: RegularizationConfig
    evaluation: EvaluationConfig
    export: ExportConfig
    explain: ExplainConfig
    card: CardConfig
    tune: TuneConfig                 (kiln.config.tune_schema; read by `kiln tune` only)

Derived checks (ratios summing to 1, unique feature names, ...) live in validators beside the
fields they relate; each raises ``_problem(message, *at)`` (or ``_problems`` for several at
once) so the loader can point at the exact key. Derived defaults are resolved during
validation: ``column`` becomes the feature's ``name``, ``training.seed`` / ``data.split.seed``
become the top-level ``seed``, and ``preprocessing`` the feature type's defaults, so the
resolved config (``dump_config``) shows every value a run used.

Example:
    >>> cfg = KilnConfig.model_validate({
    ...     "data": {"source": "sklearn:iris"},
    ...     "input_features": [{"name": "petal_length", "type": "numeric", "column": "petal length (cm)"}],
    ...     "output_features": [{"name": "target", "type": "category"}]})
    >>> cfg.training.optimizer.name, cfg.training.seed, cfg.output_features[0].column
    ('adam', 0, 'target')
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_serializer,
                      model_validator)
from pydantic_core import PydanticCustomError

from kiln.config.catalog import LAYER_ARGUMENTS, ZOO_OPTIONS
from kiln.config.preprocessing import (PREPROCESSING_BY_TYPE, AudioPreprocessing, BinaryPreprocessing,
                                       CategoryPreprocessing, ImagePreprocessing, NumericPreprocessing,
                                       SequencePreprocessing, TextPreprocessing)
from kiln.config.tune_schema import TuneConfig
from kiln.errors import closest_match

__all__ = [
    "KilnConfig",
    "DataConfig",
    "SplitConfig",
    "FeatureConfig",
    "AugmentationConfig",
    "ColorJitterConfig",
    "SpecAugmentConfig",
    "ModelConfig",
    "PrivacyConfig",
    "ZooConfig",
    "TrainingConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "EarlyStoppingConfig",
    "RegularizationConfig",
    "EvaluationConfig",
    "ExportConfig",
    "ExplainConfig",
    "CardConfig",
    "TuneConfig",
    "FEATURE_TYPES",
    "AUGMENTATIONS_BY_TYPE",
]

FeatureType = Literal["numeric", "category", "binary", "text", "image", "audio", "sequence"]
FEATURE_TYPES: tuple[str, ...] = get_args(FeatureType)

# Which augmentation keys apply to which input type; any other type takes none.
AUGMENTATIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "image": ("flip", "rotation", "crop", "color_jitter", "noise", "mixup", "cutmix"),
    "audio": ("noise", "time_shift", "spec_augment"),
    "text": ("token_dropout",),
}


def _problem(message: str, *at: str | int) -> PydanticCustomError:
    """A validation error located ``at`` (keys / list indices) below the field or model validated.

    Why: a validator's error is otherwise reported at the field or model it belongs to; ``at``
    lets ``kiln.config.load`` point at the exact key (``input_features.1.name``) and its line.
    """
    return PydanticCustomError("kiln", message, {"kiln_at": at})


def _problems(found: list[tuple[str, tuple[str | int, ...]]]) -> ValidationError:
    """Several ``(message, at)`` problems as one error, so that all of them are reported, not the first.

    Why a ValidationError: pydantic keeps each of its line errors, with ``at`` below the field
    or model validated, where a ``_problem`` raised by a validator is one error.
    """
    return ValidationError.from_exception_data(
        "KilnConfig", [{"type": PydanticCustomError("kiln", message), "loc": at, "input": None}
                       for message, at in found])


def _restated(error: ValidationError) -> list[dict]:
    """``error``'s line errors as ``from_exception_data`` takes them, to be raised again with others."""
    details = []
    for e in error.errors():
        kind = PydanticCustomError("kiln", e["msg"], e.get("ctx")) if e["type"] == "kiln" else e["type"]
        details.append({"type": kind, "loc": e["loc"], "input": e["input"],
                        **({"ctx": e["ctx"]} if "ctx" in e and e["type"] != "kiln" else {})})
    return details


def _unknown(what: str, name: str, valid, where: str = "", list_valid: bool = True) -> str:
    """"Unknown <what> 'x'<where>. Did you mean 'y'? Valid: ..." (the list always, or when no name is close)."""
    hint = closest_match(name, valid)
    message = f"Unknown {what} {name!r}{where}." + (f" Did you mean {hint!r}?" if hint else "")
    return message + (f" Valid: {', '.join(valid) or '(none)'}" if list_valid or not hint else "")


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, field docstrings become descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


# ----- data ----------------------------------------------------------------------------------


class SplitConfig(_Section):
    """How the table's rows are divided into train / validation / test (``kiln.data.split``)."""

    train: float = Field(0.8, gt=0, le=1)
    """Fraction of the rows used to fit the model and its feature preprocessors."""
    validation: float = Field(0.1, ge=0, le=1)
    """Fraction of the rows for validation (val_ metrics, early stopping, best checkpoint); 0: none."""
    test: float = Field(0.1, ge=0, le=1)
    """Fraction of the rows held out for the final evaluation; 0: none."""
    stratify: str | None = None
    """Column whose class proportions every split keeps (usually the label); None: plain random rows."""
    by_column: str | None = None
    """Column that already names each row's split ("train" / "validation" / "test"); the fractions are then unused."""
    seed: int | None = None
    """Seed of the row shuffle; None: the top-level ``seed`` (filled in during validation)."""
    k_folds: int | None = Field(None, ge=2)
    """Number of cross-validation folds over the train + validation rows; None: one split."""

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        if self.by_column is None and self.k_folds is None:
            total = self.train + self.validation + self.test
            if abs(total - 1.0) > 1e-6:  # tolerance: 0.8 + 0.1 + 0.1 is 1.0000000000000002 in floats
                raise _problem(
                    f"train + validation + test must sum to 1, got {self.train:g} + {self.validation:g} + "
                    f"{self.test:g} = {total:g}; change the fractions (or set by_column / k_folds)"
                )
        return self


class DataConfig(_Section):
    """Where the examples come from and how they are split (``kiln.data.sources.read_source``)."""

    source: str = Field(min_length=1)
    """A file or folder path, or a bundled dataset name (sklearn:iris, mnist5k, gensim:polarity, ...)."""
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "npy", "npz", "image_folder", "text_folder",
                    "audio_folder", "bundled"] = "auto"
    """How to read ``source`` (``kiln.data.read_source``'s formats); auto: from the file extension or the folder's contents."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed to the reader as they are (e.g. ``sep: ";"`` for a CSV)."""
    split: SplitConfig = Field(default_factory=SplitConfig)
    """How the rows are divided into train / validation / test."""


# ----- features ------------------------------------------------------------------------------


class ColorJitterConfig(_Section):
    """Random brightness / contrast changes of an image, one factor per image and step."""

    brightness: float = Field(0.0, ge=0, le=1)
    """Maximum relative brightness change: pixels are scaled by a factor drawn from [1 - b, 1 + b]."""
    contrast: float = Field(0.0, ge=0, le=1)
    """Maximum relative contrast change: distance from the mean scaled by a factor from [1 - c, 1 + c]."""


class SpecAugmentConfig(_Section):
    """SpecAugment (Park et al. 2019): zero random time and frequency bands of a spectrogram."""

    time_masks: int = Field(2, ge=0)
    """Number of time bands masked per example (2, as in the paper's LibriSpeech double policy)."""
    time_width: int = Field(20, ge=1)
    """Largest width of a time band, in frames (20 frames = 0.2 s at a 10 ms hop: short enough for 1 s clips)."""
    freq_masks: int = Field(2, ge=0)
    """Number of frequency bands masked per example."""
    freq_width: int = Field(8, ge=1)
    """Largest width of a frequency band, in mel bins (8 of the usual 64-80)."""


class AugmentationConfig(_Section):
    """Random changes applied to an input feature during training only (never at evaluation).

    Keys per input type (``AUGMENTATIONS_BY_TYPE``): image: flip, rotation, crop, color_jitter,
    noise, mixup, cutmix; audio: noise, time_shift, spec_augment; text: token_dropout. Every key
    defaults to None (off); a key of another type is an error.
    """

    flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None = None
    """Image: random mirroring, as Keras's RandomFlip mode."""
    rotation: float | None = Field(None, ge=0, le=1)
    """Image: largest rotation as a fraction of a full turn, either way (Keras RandomRotation factor; 0.1 = +-36 degrees)."""
    crop: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
    """Image: [height, width] of a random crop, in pixels (at evaluation the center crop)."""
    color_jitter: ColorJitterConfig | None = None
    """Image: random brightness / contrast."""
    noise: float | None = Field(None, ge=0)
    """Image or audio: standard deviation of added Gaussian noise, in units of the encoded input."""
    mixup: float | None = Field(None, gt=0)
    """Image: mixup's Beta(alpha, alpha) parameter (Zhang et al. 2018; 0.2 is common); labels are mixed too."""
    cutmix: float | None = Field(None, gt=0)
    """Image: CutMix's Beta(alpha, alpha) parameter (Yun et al. 2019; 1.0 is common)."""
    time_shift: float | None = Field(None, ge=0, le=1)
    """Audio: largest circular shift of the waveform, as a fraction of its length, either way."""
    spec_augment: SpecAugmentConfig | None = None
    """Audio: time and frequency masking of the spectrogram."""
    token_dropout: float | None = Field(None, ge=0, lt=1)
    """Text: probability that each token is replaced by the unknown token."""

    def active(self) -> list[str]:
        """The keys that are switched on (not None), in field order."""
        return [key for key in type(self).model_fields if getattr(self, key) is not None]


Preprocessing = (NumericPreprocessing | CategoryPreprocessing | BinaryPreprocessing | TextPreprocessing
                 | ImagePreprocessing | AudioPreprocessing | SequencePreprocessing)


def _preprocessing_problems(error: ValidationError, options: type[BaseModel], feature_type: str) -> ValidationError:
    """A preprocessing model's errors restated for the config: unknown options with a suggestion,
    and the several errors of a union-typed option (e.g. fill_missing: a choice or a number) as one."""
    valid = list(options.model_fields)
    by_option: dict[str, list[dict]] = {}
    for e in error.errors():
        if not e["loc"]:  # not a mapping at all
            return _problems([(f"Expected a mapping of {feature_type} preprocessing options ({', '.join(valid)}), "
                               f"got {e['input']!r}", ())])
        by_option.setdefault(str(e["loc"][0]), []).append(e)
    details = []
    for option, errors in by_option.items():
        first = errors[0]
        if first["type"] == "extra_forbidden":
            message = _unknown("preprocessing option", option, valid, f" for a {feature_type} feature")
        elif len(errors) == 1:
            details.append({key: first[key] for key in ("type", "loc", "input", "ctx") if key in first})
            continue
        else:  # a union: what each of its members expected
            message = " or ".join(e["msg"][:1].lower() + e["msg"][1:] for e in errors)
            message = message[:1].upper() + message[1:] + f" (got {first['input']!r})"
            choices = [c for e in errors for c in str((e.get("ctx") or {}).get("expected", "")).replace(
                " or ", ", ").replace("'", "").split(", ") if c]
            hint = closest_match(first["input"], choices) if isinstance(first["input"], str) else None
            message += f". Did you mean {hint!r}?" if hint else ""
        details.append({"type": PydanticCustomError("kiln", message), "loc": (option,), "input": first["input"]})
    return ValidationError.from_exception_data("KilnConfig", details)


class FeatureConfig(_Section):
    """One input or output of the model: a table column and how it is encoded (``kiln.data.features``)."""

    name: str = Field(min_length=1)
    """The feature's name: unique in the config; names the model's inputs / outputs and metrics."""
    type: FeatureType
    """How the column is encoded: numeric, category, binary, text, image, audio or sequence."""
    column: str | None = None
    """The table column read; None: the same as ``name`` (filled in during validation)."""
    preprocessing: Preprocessing | None = None
    """Options of the feature's preprocessor, by type (``kiln.config.preprocessing``; e.g. image: height,
    width, channels); None: the type's defaults (filled in during validation)."""
    augmentation: AugmentationConfig | None = None
    """Random training-time changes (input image, audio and text features only); None: none."""

    @field_validator("preprocessing", mode="before")
    @classmethod
    def _preprocessing_of_the_type(cls, value: Any, info) -> Any:
        feature_type = info.data.get("type")
        if feature_type not in PREPROCESSING_BY_TYPE or isinstance(value, PREPROCESSING_BY_TYPE[feature_type]):
            return value  # a wrong type is reported at `type`; a typed value is already checked
        options = PREPROCESSING_BY_TYPE[feature_type]
        try:
            return options.model_validate({} if value is None else value)
        except ValidationError as error:
            raise _preprocessing_problems(error, options, feature_type) from None

    @field_validator("name")
    @classmethod
    def _name_has_no_dot(cls, name: str) -> str:
        if "." in name:
            # A feature name keys torch ModuleDicts, where "." is not allowed.
            raise _problem(f"A feature name cannot contain '.', got {name!r}; name it e.g. "
                           f"{name.replace('.', '_')!r} and set column: {name!r}")
        return name

    @model_validator(mode="after")
    def _resolve_and_check(self) -> FeatureConfig:
        if self.column is None:
            self.column = self.name
        if self.preprocessing is None:
            self.preprocessing = PREPROCESSING_BY_TYPE[self.type]()
        if self.augmentation is not None:
            allowed = AUGMENTATIONS_BY_TYPE.get(self.type, ())
            for key in self.augmentation.active():
                if key not in allowed:
                    fits = ", ".join(allowed) if allowed else "none"
                    raise _problem(f"Augmentation {key!r} does not apply to a {self.type} feature "
                                   f"(a {self.type} feature takes: {fits})", "augmentation", key)
        return self


# ----- model ---------------------------------------------------------------------------------


class ZooConfig(_Section):
    """A ready-made architecture from ``kiln.zoo``, sized to the features."""

    name: str = Field(min_length=1)
    """The architecture's name (e.g. mlp, resnet18, vit, bert, wavenet)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the zoo builder (e.g. depth, width); checked against its signature."""

    @model_validator(mode="after")
    def _known_name_and_options(self) -> ZooConfig:
        if self.name not in ZOO_OPTIONS:
            raise _problem(_unknown("zoo model", self.name, list(ZOO_OPTIONS), list_valid=False), "name")
        valid = ZOO_OPTIONS[self.name]
        found = [(_unknown("option", key, valid, f" for the zoo model {self.name!r}"), ("options", key))
                 for key in self.options if key not in valid]
        if found:
            raise _problems(found)
        return self


class ModelConfig(_Section):
    """The network: a Keras-style list of layers, a zoo model, or (neither) one built from the features."""

    layers: list[dict[str, dict[str, Any]]] | None = None
    """One ``{LayerName: {args}}`` per entry, in order (``- Flatten`` alone means no args); None: not this way."""
    zoo: ZooConfig | None = None
    """A zoo architecture; None: not this way."""

    @field_validator("layers", mode="before")
    @classmethod
    def _one_layer_per_entry(cls, layers: Any) -> Any:
        if not isinstance(layers, list):
            return layers  # pydantic reports the type
        entries = []
        for index, entry in enumerate(layers):
            if isinstance(entry, str):  # `- Flatten`
                entry = {entry: {}}
            if isinstance(entry, dict):
                if len(entry) != 1:
                    keys = ", ".join(map(str, entry)) or "none"
                    raise _problem(f"Each layer entry is one `LayerName: {{args}}` mapping, this one has "
                                   f"{len(entry)} keys ({keys}); indent the arguments under the layer name", index)
                (name, args), = entry.items()
                entry = {name: {} if args is None else args}  # `- Flatten:` parses as {Flatten: None}
            entries.append(entry)
        return entries

    @field_validator("layers")
    @classmethod
    def _known_layers_and_arguments(cls, layers: list[dict[str, dict[str, Any]]] | None) -> Any:
        found = []
        for index, entry in enumerate(layers or []):
            (name, args), = entry.items()
            if name not in LAYER_ARGUMENTS:
                found.append((_unknown("layer", name, list(LAYER_ARGUMENTS), list_valid=False), (index, name)))
                continue
            valid = LAYER_ARGUMENTS[name]
            found += [(_unknown("argument", key, valid, f" for {name}"), (index, name, key))
                      for key in args if key not in valid]
        if found:
            raise _problems(found)
        return layers

    @model_validator(mode="wrap")
    @classmethod
    def _at_most_one_way(cls, data: Any, handler) -> ModelConfig:
        # wrap, not after: "not both" is reported beside the problems inside layers and zoo, not
        # only once they are fixed.
        both = isinstance(data, dict) and data.get("layers") is not None and data.get("zoo") is not None
        message = "Set either `layers` or `zoo`, not both (omit both for a model built from the features)"
        try:
            model = handler(data)
        except ValidationError as error:
            if not both:
                raise
            raise ValidationError.from_exception_data("KilnConfig", _restated(error) + [
                {"type": PydanticCustomError("kiln", message), "loc": (), "input": None}]) from None
        if both:
            raise _problem(message)
        if model.layers is not None and not model.layers:
            raise _problem("`layers` is empty; list at least one layer, or omit `layers` for an automatic model",
                           "layers")
        return model


# ----- training ------------------------------------------------------------------------------


class OptimizerConfig(BaseModel):
    """The optimizer by ``kiln.optimizers`` name; other keys are its arguments (beta_1, momentum, ...).

    In YAML, ``optimizer: adam`` is short for ``optimizer: {name: adam}``.
    """

    # The one section with extra keys: they are the optimizer's own arguments, checked against
    # its signature below, so a typo is still caught.
    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    name: str = "adam"
    """The optimizer: adam, adamw, sgd, rmsprop or adagrad (adam: a safe default for most models)."""
    learning_rate: float | None = Field(None, gt=0)
    """Step size; None: the optimizer's own default (Keras's: 0.001 for adam, 0.01 for sgd)."""

    @model_validator(mode="after")
    def _optimizer_accepts(self) -> OptimizerConfig:
        # From a table of the optimizers' arguments and ranges (tested against kiln.optimizers):
        # building the optimizer would import torch, and `kiln validate` must not wait for it.
        from kiln.config.optimizer_arguments import check_optimizer

        found = [(message, (key,) if key else ()) for message, key in
                 check_optimizer(self.name, dict(self.model_extra or {}))]
        if len(found) == 1:
            raise _problem(found[0][0], *found[0][1])
        if found:
            raise _problems(found)
        return self


# Which optional schedule arguments apply to which schedule.
_SCHEDULE_ARGUMENTS = {
    "constant": (),
    "cosine": ("decay_steps", "alpha"),
    "exponential": ("decay_steps", "decay_rate"),
    "inverse_time": ("decay_steps", "decay_rate"),
    "polynomial": ("decay_steps", "alpha", "power"),
}


class ScheduleConfig(_Section):
    """How the learning rate changes with the step (``kiln.optimizers.schedules``), after a linear warmup."""

    name: Literal["constant", "cosine", "exponential", "inverse_time", "polynomial"]
    """The decay: constant (warmup only), cosine, exponential, inverse_time or polynomial."""
    warmup_steps: int = Field(0, ge=0)
    """Steps of linear warmup from 0 to the optimizer's learning rate; 0: none."""
    decay_steps: PositiveInt | None = None
    """Steps over which the rate decays; None: the whole run (epochs x steps per epoch, known once the data is read)."""
    alpha: float = Field(0.0, ge=0, le=1)
    """cosine, polynomial: the final learning rate as a fraction of the initial one (0.0: Keras's CosineDecay default)."""
    decay_rate: float = Field(0.1, gt=0)
    """exponential, inverse_time: the factor reached after decay_steps (0.1: ten times smaller over the run)."""
    power: float = Field(1.0, gt=0)
    """polynomial: the polynomial's power (1.0: linear decay, Keras's default)."""

    @model_validator(mode="after")
    def _arguments_apply(self) -> ScheduleConfig:
        applies = _SCHEDULE_ARGUMENTS[self.name]
        for key in ("decay_steps", "alpha", "decay_rate", "power"):
            # Compared with the default, not with `model_fields_set`: a resolved (dumped) config
            # writes every key, and must load again.
            if key not in applies and getattr(self, key) != type(self).model_fields[key].default:
                raise _problem(f"{key!r} does not apply to the {self.name} schedule (it takes: "
                               f"{', '.join(('warmup_steps',) + applies)})", key)
        return self


class EarlyStoppingConfig(_Section):
    """Stop when a monitored value stops improving (``kiln.callbacks.EarlyStopping``)."""

    monitor: str = "val_loss"
    """The logged value watched, e.g. val_loss or val_accuracy (val_ needs a validation split)."""
    patience: int = Field(3, ge=0)
    """Epochs without improvement before stopping (3, not Keras's 0: one noisy epoch should not end a run)."""
    min_delta: float = Field(0.0, ge=0)
    """Smallest change that counts as an improvement, in the monitored value's units."""
    mode: Literal["auto", "min", "max"] = "auto"
    """Which way is better; auto: from the name (losses go down, accuracies up)."""
    restore_best_weights: bool = True
    """Keep the best epoch's weights at the end (True, not Keras's False: the saved model should be the best one)."""


class RegularizationConfig(_Section):
    """Penalties and dropout applied to the whole model to reduce overfitting."""

    l1: float = Field(0.0, ge=0)
    """L1 penalty factor on every kernel weight (added to the loss); 0: off."""
    l2: float = Field(0.0, ge=0)
    """L2 penalty factor on every kernel weight (added to the loss); 0: off."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout rate between the layers of a model built from the features or a zoo model; 0: off."""


class PrivacyConfig(_Section):
    """Differentially private training (DP-SGD through Opacus; ``kiln.privacy.DP``)."""

    epsilon: float = Field(gt=0, strict=True)
    """The privacy budget spent over the planned epochs (1-10 is usual; smaller: more private, noisier)."""
    delta: float = Field(1e-5, gt=0, lt=1, strict=True)
    """Probability the guarantee fails; must be below 1/n for n training rows (checked when the data is read)."""
    max_grad_norm: float = Field(1.0, gt=0, strict=True)
    """Each example's gradient is clipped to this L2 norm before noise is added."""
    fix_layers: bool = Field(False, strict=True)
    """Replace layers DP cannot train (BatchNorm) by per-sample ones instead of refusing the model."""
    accountant: Literal["prv", "rdp"] = "prv"
    """How the spent budget is tracked: Opacus's PRV accountant (its default, tighter) or RDP."""


class TrainingConfig(_Section):
    """How the model is fitted (``kiln.training.Trainer``)."""

    epochs: PositiveInt = 10
    """Passes over the training split (at most: early stopping may end sooner)."""
    batch_size: PositiveInt = 32
    """Examples per step (Keras's default)."""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """The optimizer: a name (``adam``) or ``{name, learning_rate, ...its arguments}``."""
    schedule: ScheduleConfig | None = None
    """How the learning rate changes over the run; None: constant."""
    early_stopping: EarlyStoppingConfig | None = None
    """Stop when the monitored value stops improving; None: run every epoch (Keras's default)."""
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    """L1 / L2 penalties and dropout (all off by default)."""
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    """Compute dtype: float32, or bfloat16 / float16 mixed precision (faster on recent GPUs)."""
    checkpoint_every_steps: PositiveInt | None = 200
    """Steps between checkpoints, besides the one at each epoch end (200: a crash loses little,
    the writes stay cheap); None: at epoch ends only."""
    seed: int | None = None
    """Seed of weight initialisation, shuffling and dropout; None: the top-level ``seed`` (filled in during validation)."""
    privacy: PrivacyConfig | None = None
    """Differentially private training, e.g. ``{epsilon: 3, delta: 1e-5, max_grad_norm: 1.0}``; None: off."""

    @field_validator("optimizer", mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value  # `optimizer: adam`


# ----- evaluation and export -----------------------------------------------------------------


class EvaluationConfig(_Section):
    """What the final evaluation measures, and on which split."""

    metrics: list[str] | None = None
    """Metric names (as in ``compile(metrics=...)``); None: per output type (accuracy for category, mae for numeric, ...)."""
    split: Literal["train", "validation", "test"] = "test"
    """The split evaluated at the end of the run."""


class ExportConfig(_Section):
    """The files written for the trained model besides the run folder's model."""

    formats: list[Literal["safetensors", "onnx"]] = Field(default_factory=lambda: ["safetensors"])
    """Export formats: safetensors (weights + JSON config) and / or onnx."""

    @field_validator("formats")
    @classmethod
    def _no_repeats(cls, formats: list[str]) -> list[str]:
        for index, fmt in enumerate(formats):
            if fmt in formats[:index]:
                raise _problem(f"Format {fmt!r} is listed twice", index)
        return formats


class ExplainConfig(_Section):
    """What `kiln train` explains after evaluation (kiln/explain; `kiln explain RUN` does more)."""

    enabled: bool = True
    """Write explanations.json (global permutation importance on the evaluated split) and its report section."""
    n_repeats: int = Field(default=5, ge=1)
    """Shuffles per feature for permutation importance."""
    method: Literal["ig", "saliency", "smoothgrad", "occlusion", "shap"] | None = None
    """Also attribute each evaluated row with this method (checks included); None: importance only."""


class CardConfig(_Section):
    """What the model card (MODEL_CARD.md, kiln/reports/card.py) says that kiln cannot know from the run."""

    intended_use: str | None = None
    """What the model is for, and for whom; None: the card says it is unknown."""
    out_of_scope: str | None = None
    """Uses the model is not meant for."""
    license: str | None = None
    """The model's license (an SPDX id such as apache-2.0); None: "unknown" in the front matter."""
    slices: list[str] = Field(default_factory=list)
    """Columns whose values get their own metrics (disaggregated evaluation), e.g. [sex, region]."""
    caveats: str | None = None
    """Known limitations and recommendations, added to the ones kiln finds."""


class CompressConfig(_Section):
    """Compress the trained run into a second run folder beside it, as ``kiln compress RUN`` does
    with the same options (``kiln.workflows.compress.compress_run``)."""

    quantize: Literal["int8"] | None = None
    """int8: the fastest int8 backend within ``budget``; None: no quantization."""
    mode: Literal["dynamic", "static", "qat"] = "dynamic"
    """dynamic (activations quantized per batch), static (ONNX Runtime, calibrated; Conv too) or
    qat (fine-tune ``epochs`` through fake int8 rounding first)."""
    prune: float | None = Field(None, ge=0, lt=1)
    """Fraction of weights (of units/filters with ``structured``) to remove; None: no pruning."""
    structured: bool = False
    """Remove whole units/filters (a smaller model) instead of single weights."""
    distill_into: str | None = None
    """A student (zoo name or YAML file with a ``model:`` section) trained against the run's model."""
    epochs: int = Field(0, ge=0)
    """Fine-tuning epochs (pruning, qat) or student training epochs (distill_into)."""
    temperature: float = Field(4.0, gt=0)
    """Distillation temperature."""
    alpha: float = Field(0.9, ge=0, le=1)
    """Weight of the teacher term in the distillation loss."""
    budget: float = Field(0.01, gt=0, lt=1)
    """Allowed relative drop of the test metric."""
    allow_slower: bool = False
    """Write the int8 run even when no int8 candidate is faster than fp32 here."""
    backends: list[Literal["torch", "torchao", "onnx"]] = Field(default_factory=lambda: ["torch", "torchao", "onnx"],
                                                                min_length=1)
    """int8 candidates to measure."""
    calibration_rows: PositiveInt = 512
    """Training rows that calibrate ``mode: static``."""
    rounds: PositiveInt = 7
    """Alternating timing rounds per variant."""
    threads: PositiveInt | None = None
    """Threads for torch and ONNX Runtime while measuring; None: torch's current setting."""

    @model_validator(mode="after")
    def _something_to_do(self) -> CompressConfig:
        if self.quantize is None and self.prune is None and self.distill_into is None:
            raise _problem("compress needs something to do: quantize: int8, prune: AMOUNT and/or distill_into: MODEL "
                           "(or remove the compress section)")
        if self.mode == "qat" and (self.quantize is None or self.epochs < 1):
            raise _problem("mode: qat fine-tunes with int8 rounding before quantizing: set quantize: int8 and "
                           "epochs: N (N >= 1)", "mode")
        if self.distill_into is not None and self.epochs < 1:
            raise _problem("distill_into trains the student: set epochs: N (N >= 1)", "epochs")
        return self


# ----- the whole config ----------------------------------------------------------------------


class KilnConfig(_Section):
    """A whole kiln run: data, features, model, training, evaluation and export (``kiln train``)."""

    name: str = "run"
    """The run's name; the run folder is ``<output_dir>/<name>-<timestamp>`` (letters, digits, . _ -)."""
    seed: int = 0
    """The seed of everything random (split, initialisation, shuffling); sections may override it."""
    output_dir: str = "runs"
    """Folder where run folders are created, relative to the working directory."""
    data: DataConfig
    """Where the examples come from and how they are split."""
    input_features: list[FeatureConfig] = Field(min_length=1)
    """The model's inputs, one entry per feature."""
    output_features: list[FeatureConfig] = Field(min_length=1)
    """The model's outputs (targets), one entry per feature."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The network; empty: built automatically from the features."""
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    """How the model is fitted."""
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    """The final evaluation."""
    export: ExportConfig = Field(default_factory=ExportConfig)
    """The exported model files."""
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    """The explanations written after evaluation."""
    card: CardConfig = Field(default_factory=CardConfig)
    """The model card's intended use, license and slices."""
    tune: TuneConfig | None = None
    """What ``kiln tune`` searches (``kiln.config.tune_schema``); None: not tuned. ``kiln train`` ignores it."""
    compress: CompressConfig | None = None
    """Compress the trained run into a second run folder (``kiln compress``'s options); None: don't."""

    @model_serializer(mode="wrap")
    def _no_empty_optional_sections(self, handler) -> dict:
        # A config without a compress or tune section dumps as it did before those sections
        # existed, so runs' config.yaml files stay byte for byte what they were.
        data = handler(self)
        if isinstance(data, dict):
            for key in ("compress", "tune"):
                if getattr(self, key) is None:
                    data.pop(key, None)
        return data

    @field_validator("name")
    @classmethod
    def _name_fits_a_folder(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise _problem(f"A run name may contain letters, digits, '.', '_' and '-' (not first) only, "
                           f"since it names the run folder; got {name!r}")
        return name

    @field_validator("input_features")
    @classmethod
    def _unique_inputs(cls, features: list[FeatureConfig]) -> list[FeatureConfig]:
        _check_unique(features, "input_features", [])
        return features

    @field_validator("output_features")
    @classmethod
    def _unique_outputs_without_augmentation(cls, features: list[FeatureConfig], info) -> list[FeatureConfig]:
        _check_unique(features, "output_features", info.data.get("input_features") or [])
        for index, feature in enumerate(features):
            if feature.augmentation is not None:
                raise _problem("Augmentation applies to input features only; move it to the input feature",
                               index, "augmentation")
        return features

    @model_validator(mode="after")
    def _resolve_and_cross_check(self) -> KilnConfig:
        if self.training.seed is None:
            self.training.seed = self.seed
        if self.data.split.seed is None:
            self.data.split.seed = self.seed
        split = self.data.split
        fixed = split.by_column is None  # with by_column the fractions say nothing
        stopping = self.training.early_stopping
        if (fixed and split.k_folds is None and split.validation == 0 and stopping is not None
                and stopping.monitor.startswith("val_")):
            raise _problem(f"early_stopping monitors {stopping.monitor!r} but data.split.validation is 0; "
                           "give the validation split a fraction, or monitor a training value such as 'loss'",
                           "training", "early_stopping", "monitor")
        fraction = {"train": split.train, "validation": split.validation, "test": split.test}
        if fixed and fraction[self.evaluation.split] == 0:
            raise _problem(f"evaluation.split is {self.evaluation.split!r} but data.split."
                           f"{self.evaluation.split} is 0; give that split a fraction, or evaluate another split",
                           "evaluation", "split")
        return self


def _check_unique(features: list[FeatureConfig], where: str, inputs: list[FeatureConfig]) -> None:
    """Raise for the first feature of ``where`` whose name is already used (by ``inputs`` or an earlier one)."""
    seen = {feature.name: f"input_features.{i}" for i, feature in enumerate(inputs)}
    for index, feature in enumerate(features):
        if feature.name in seen:
            raise _problem(f"Feature name {feature.name!r} is already used by {seen[feature.name]}; "
                           "feature names must be unique (two features may read the same column)", index, "name")
        seen[feature.name] = f"{where}.{index}"
