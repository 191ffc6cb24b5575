"""kiln.config.schema: defaults, derived values and each derived check, on plain dicts."""

import pytest
from pydantic import ValidationError

from kiln.config import (AugmentationConfig, FeatureConfig, KilnConfig, ModelConfig, OptimizerConfig, ScheduleConfig,
                         SplitConfig, TrainingConfig, ZooConfig)
from kiln.config.preprocessing import ImagePreprocessing, NumericPreprocessing


def minimal(**sections):
    config = {"data": {"source": "sklearn:iris"},
              "input_features": [{"name": "x", "type": "numeric"}],
              "output_features": [{"name": "target", "type": "category"}]}
    config.update(sections)
    return config


def test_defaults_are_filled_in():
    cfg = KilnConfig.model_validate(minimal())
    assert (cfg.name, cfg.seed, cfg.output_dir) == ("run", 0, "runs")
    assert cfg.data.format == "auto" and cfg.data.options == {}
    split = cfg.data.split
    assert (split.train, split.validation, split.test, split.stratify, split.k_folds) == (0.8, 0.1, 0.1, None, None)
    t = cfg.training
    assert (t.epochs, t.batch_size, t.precision, t.checkpoint_every_steps) == (10, 32, "float32", 200)
    assert t.optimizer == OptimizerConfig(name="adam", learning_rate=None)
    assert t.schedule is None and t.early_stopping is None
    assert (t.regularization.l1, t.regularization.l2, t.regularization.dropout) == (0.0, 0.0, 0.0)
    assert cfg.model.layers is None and cfg.model.zoo is None
    assert cfg.evaluation.metrics is None and cfg.evaluation.split == "test"
    assert cfg.export.formats == ["safetensors"]


def test_derived_defaults_column_and_seeds():
    cfg = KilnConfig.model_validate(minimal(seed=7, input_features=[{"name": "x", "type": "numeric", "column": "c"}]))
    assert cfg.input_features[0].column == "c"
    assert cfg.output_features[0].column == "target"  # column defaults to the name
    assert cfg.training.seed == 7 and cfg.data.split.seed == 7  # sections default to the top-level seed
    cfg = KilnConfig.model_validate(minimal(seed=7, training={"seed": 1}, data={"source": "s", "split": {"seed": 2}}))
    assert cfg.training.seed == 1 and cfg.data.split.seed == 2


def test_optimizer_name_alone_and_extra_arguments():
    assert TrainingConfig(optimizer="sgd").optimizer.name == "sgd"
    opt = OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True)
    assert opt.model_extra == {"momentum": 0.9, "nesterov": True}
    with pytest.raises(ValidationError, match="has no argument 'momentun'. Did you mean 'momentum'"):
        OptimizerConfig(name="sgd", momentun=0.9)
    with pytest.raises(ValidationError, match="Did you mean 'adam'"):
        OptimizerConfig(name="adma")
    with pytest.raises(ValidationError, match="momentum"):  # the optimizer's own range check
        OptimizerConfig(name="sgd", momentum=1.5)
    with pytest.raises(ValidationError, match="greater than 0"):
        OptimizerConfig(name="adam", learning_rate=0)


def test_every_section_but_the_optimizer_forbids_unknown_keys():
    with pytest.raises(ValidationError) as info:
        KilnConfig.model_validate(minimal(trainig={}, training={"epcohs": 3}, data={"source": "s", "formt": "csv"}))
    assert {e["loc"] for e in info.value.errors()} == {("trainig",), ("training", "epcohs"), ("data", "formt")}
    assert {e["type"] for e in info.value.errors()} == {"extra_forbidden"}


@pytest.mark.parametrize("section, value", [
    ("training", {"epochs": 0}), ("training", {"batch_size": -1}), ("training", {"precision": "float64"}),
    ("training", {"regularization": {"dropout": 1.0}}), ("training", {"early_stopping": {"patience": -1}}),
    ("export", {"formats": ["pickle"]}), ("evaluation", {"split": "dev"}),
])
def test_invalid_values(section, value):
    with pytest.raises(ValidationError):
        KilnConfig.model_validate(minimal(**{section: value}))


def test_split_fractions_sum_to_one_unless_by_column_or_k_folds():
    with pytest.raises(ValidationError, match=r"must sum to 1, got 0.8 \+ 0.3 \+ 0.1 = 1.2"):
        SplitConfig(train=0.8, validation=0.3, test=0.1)
    assert SplitConfig(train=0.7, validation=0.2, test=0.1).train == 0.7
    assert SplitConfig(train=0.5, validation=0.5, test=0.5, by_column="fold").by_column == "fold"
    assert SplitConfig(train=0.9, validation=0.0, test=0.0, k_folds=5).k_folds == 5
    with pytest.raises(ValidationError):
        SplitConfig(k_folds=1)


def test_features_need_one_input_one_output_and_unique_names():
    with pytest.raises(ValidationError, match="at least 1 item"):
        KilnConfig.model_validate(minimal(input_features=[]))
    with pytest.raises(ValidationError, match="at least 1 item"):
        KilnConfig.model_validate(minimal(output_features=[]))
    twice = [{"name": "x", "type": "numeric"}, {"name": "x", "type": "category"}]
    with pytest.raises(ValidationError, match="'x' is already used by input_features.0") as info:
        KilnConfig.model_validate(minimal(input_features=twice))
    assert info.value.errors()[0]["ctx"]["kiln_at"] == (1, "name")  # the loader points at the second one
    with pytest.raises(ValidationError, match="'x' is already used by input_features.0"):
        KilnConfig.model_validate(minimal(output_features=[{"name": "x", "type": "numeric"}]))
    with pytest.raises(ValidationError, match="cannot contain '.'"):
        FeatureConfig(name="a.b", type="numeric")
    with pytest.raises(ValidationError):
        FeatureConfig(name="a", type="categorical")


def test_augmentation_fits_the_feature_type():
    image = FeatureConfig(name="img", type="image", augmentation={"flip": "horizontal", "rotation": 0.1,
                                                                   "crop": [24, 24], "mixup": 0.2})
    assert image.augmentation.active() == ["flip", "rotation", "crop", "mixup"]
    audio = FeatureConfig(name="wav", type="audio", augmentation={"time_shift": 0.1, "spec_augment": {}})
    assert audio.augmentation.spec_augment.time_masks == 2
    assert FeatureConfig(name="t", type="text", augmentation={"token_dropout": 0.1}).augmentation.token_dropout == 0.1
    with pytest.raises(ValidationError, match="'flip' does not apply to a text feature"):
        FeatureConfig(name="t", type="text", augmentation={"flip": "horizontal"})
    with pytest.raises(ValidationError):
        AugmentationConfig(flip="diagonal")
    with pytest.raises(ValidationError):
        AugmentationConfig(crop=[24])
    with pytest.raises(ValidationError, match="input features only"):
        KilnConfig.model_validate(minimal(output_features=[{"name": "y", "type": "image",
                                                            "augmentation": {"flip": "vertical"}}]))


def test_model_layers_zoo_or_neither():
    model = ModelConfig(layers=["Flatten", {"Dense": None}, {"Dense": {"units": 3}}])
    assert model.layers == [{"Flatten": {}}, {"Dense": {}}, {"Dense": {"units": 3}}]
    assert ModelConfig(zoo={"name": "resnet18"}).zoo.options == {}
    with pytest.raises(ValidationError, match="not both"):
        ModelConfig(layers=[{"Dense": {"units": 1}}], zoo={"name": "mlp"})
    with pytest.raises(ValidationError, match="has 2 keys"):
        ModelConfig(layers=[{"Dense": None, "units": 3}])
    with pytest.raises(ValidationError, match="empty"):
        ModelConfig(layers=[])


def messages(error: ValidationError) -> dict[tuple, str]:
    """Each problem's message by its key path, as kiln.config.load locates it (``kiln_at`` appended)."""
    return {e["loc"] + tuple((e.get("ctx") or {}).get("kiln_at", ())): e["msg"] for e in error.errors()}


def test_preprocessing_is_typed_by_the_feature_type():
    image = FeatureConfig(name="img", type="image", preprocessing={"height": 28, "width": 28})
    assert isinstance(image.preprocessing, ImagePreprocessing) and image.preprocessing.height == 28
    assert image.preprocessing.resize == "bilinear"  # the feature's default, written out
    assert FeatureConfig(name="x", type="numeric").preprocessing == NumericPreprocessing()
    with pytest.raises(ValidationError) as info:
        FeatureConfig(name="x", type="numeric", preprocessing={"normalisation": "minmax", "height": 3})
    assert messages(info.value) == {
        ("preprocessing", "normalisation"): "Unknown preprocessing option 'normalisation' for a numeric feature. "
                                            "Did you mean 'normalization'? Valid: normalization, fill_missing",
        ("preprocessing", "height"): "Unknown preprocessing option 'height' for a numeric feature. "
                                     "Valid: normalization, fill_missing"}


def test_a_preprocessing_value_is_checked_and_a_union_gives_one_problem():
    with pytest.raises(ValidationError) as info:
        FeatureConfig(name="x", type="numeric", preprocessing={"fill_missing": "meen"})
    assert messages(info.value) == {("preprocessing", "fill_missing"): (
        "Input should be 'mean', 'median' or 'zero' or input should be a valid number (got 'meen'). "
        "Did you mean 'mean'?")}
    assert FeatureConfig(name="x", type="numeric", preprocessing={"fill_missing": 0}).preprocessing.fill_missing == 0
    with pytest.raises(ValidationError) as info:
        FeatureConfig(name="t", type="text", preprocessing={"max_length": 2.5, "tokenizer": "wordpiece"})
    assert {loc[-1]: e for loc, e in messages(info.value).items()} == {
        "max_length": "Input should be a valid integer", "tokenizer": "Input should be 'word', 'char' or 'bpe'"}
    with pytest.raises(ValidationError) as info:
        FeatureConfig(name="x", type="binary", preprocessing=["yes"])
    assert messages(info.value) == {("preprocessing",): "Expected a mapping of binary preprocessing options "
                                                        "(positive), got ['yes']"}
    with pytest.raises(ValidationError) as info:  # a wrong type is reported once, at `type`
        FeatureConfig(name="x", type="numerc", preprocessing={"height": 3})
    assert list(messages(info.value)) == [("type",)]


def test_layer_names_and_arguments_are_checked_with_suggestions():
    with pytest.raises(ValidationError) as info:
        ModelConfig(layers=[{"Conv2d": {"filters": 3}}, {"Dense": {"unitz": 4, "activation": "relu"}}, "Flaten"])
    found = messages(info.value)
    assert found[("layers", 0, "Conv2d")] == "Unknown layer 'Conv2d'. Did you mean 'Conv2D'?"
    assert found[("layers", 1, "Dense", "unitz")].startswith(
        "Unknown argument 'unitz' for Dense. Did you mean 'units'? Valid: units, activation, use_bias,")
    assert found[("layers", 2, "Flaten")] == "Unknown layer 'Flaten'. Did you mean 'Flatten'?"
    assert len(found) == 3
    # Arguments of the Layer base (what every layer passes on with **kwargs) are accepted.
    assert ModelConfig(layers=[{"Dense": {"units": 2, "name": "out", "input_shape": [4]}}])


def test_zoo_names_and_options_are_checked_with_suggestions():
    assert ModelConfig(zoo={"name": "mlp", "options": {"hidden": [8], "dropout": 0.1}}).zoo.options["hidden"] == [8]
    with pytest.raises(ValidationError) as info:
        ZooConfig(name="resnet81")
    assert messages(info.value) == {("name",): "Unknown zoo model 'resnet81'. Did you mean 'resnet18'?"}
    with pytest.raises(ValidationError) as info:
        ZooConfig(name="vit", options={"patch": 4, "depht": 2})
    valid = "Valid: num_classes, input_shape, patch_size, depth, heads, width, mlp_ratio, pooling, dropout"
    assert messages(info.value) == {
        ("options", "patch"): f"Unknown option 'patch' for the zoo model 'vit'. Did you mean 'patch_size'? {valid}",
        ("options", "depht"): f"Unknown option 'depht' for the zoo model 'vit'. Did you mean 'depth'? {valid}"}
    # wavenet's options include its WaveNetConfig fields, passed through **fields.
    assert ZooConfig(name="wavenet", options={"log_mel_frontend": True}).options == {"log_mel_frontend": True}


def test_layers_and_zoo_together_is_reported_with_the_problems_inside_them():
    with pytest.raises(ValidationError) as info:
        ModelConfig(layers=[{"Dense": {"unitz": 1}}], zoo={"name": "mlp", "options": {"hiden": 3}})
    assert set(messages(info.value)) == {("layers", 0, "Dense", "unitz"), ("zoo", "options", "hiden"), ()}


def test_schedule_arguments_apply_to_the_schedule():
    assert ScheduleConfig(name="cosine", warmup_steps=100, alpha=0.1).alpha == 0.1
    with pytest.raises(ValidationError, match="'power' does not apply to the cosine schedule"):
        ScheduleConfig(name="cosine", power=2.0)
    with pytest.raises(ValidationError):
        ScheduleConfig(name="linear")


def test_cross_section_checks():
    no_validation = {"source": "s", "split": {"train": 0.9, "validation": 0.0, "test": 0.1}}
    with pytest.raises(ValidationError, match="monitors 'val_loss' but data.split.validation is 0"):
        KilnConfig.model_validate(minimal(data=no_validation, training={"early_stopping": {}}))
    cfg = KilnConfig.model_validate(minimal(data=no_validation, training={"early_stopping": {"monitor": "loss"}}))
    assert cfg.training.early_stopping.monitor == "loss"
    no_test = {"source": "s", "split": {"train": 0.9, "validation": 0.1, "test": 0.0}}
    with pytest.raises(ValidationError, match="evaluation.split is 'test' but data.split.test is 0"):
        KilnConfig.model_validate(minimal(data=no_test))
    assert KilnConfig.model_validate(minimal(data=no_test, evaluation={"split": "validation"}))


def test_export_formats_unique_and_run_name_fits_a_folder():
    with pytest.raises(ValidationError, match="listed twice"):
        KilnConfig.model_validate(minimal(export={"formats": ["onnx", "onnx"]}))
    with pytest.raises(ValidationError, match="names the run folder"):
        KilnConfig.model_validate(minimal(name="../etc"))


def test_every_data_format_the_config_allows_is_one_read_source_reads():
    """A config that validates must not fail later with 'format not recognised'."""
    import typing

    from kiln.config.schema import DataConfig
    from kiln.data import sources
    allowed = set(typing.get_args(DataConfig.model_fields["format"].annotation))
    assert allowed == set(sources._FORMATS)


def test_early_stopping_settings_reach_the_callback(tmp_path):
    from kiln.workflows.train import _callbacks
    config = KilnConfig(**minimal(training={"early_stopping": {"monitor": "val_accuracy", "patience": 2,
                                                               "min_delta": 0.05, "mode": "max"}}))
    stopper = next(c for c in _callbacks(config, tmp_path) if type(c).__name__ == "EarlyStopping")
    assert (stopper.monitor, stopper.patience, stopper.min_delta, stopper.mode) == ("val_accuracy", 2, 0.05, "max")
