"""kiln.config.load: file:line problems all in one ConfigError, suggestions, --set overrides, dump."""

import pytest

from kiln.config import KilnConfig, dump_config, load_config, load_config_text, validate_config
from kiln.config.preprocessing import ImagePreprocessing
from kiln.errors import ConfigError

FULL = """\
# kiln train recipes/mnist_cnn.yaml
name: mnist-cnn
seed: 0
output_dir: runs
data:
  source: mnist5k
  format: auto
  options: {}
  split: {train: 0.8, validation: 0.1, test: 0.1, stratify: label, by_column: null, seed: 0, k_folds: null}
input_features:
  - {name: image, type: image, column: image, preprocessing: {height: 28, width: 28, channels: 1}, augmentation: {flip: horizontal, rotation: 0.1, crop: null, color_jitter: null, noise: null, mixup: null, cutmix: null}}
output_features:
  - {name: label, type: category}
model:
  layers:
    - Conv2D: {filters: 32, kernel_size: 3, activation: relu, padding: same}
    - MaxPooling2D: {pool_size: 2}
    - Flatten: {}
    - Dense: {units: 10, activation: softmax}
training:
  epochs: 10
  batch_size: 32
  optimizer: {name: adam, learning_rate: 0.001}
  schedule: null
  early_stopping: {monitor: val_loss, patience: 3, restore_best_weights: true}
  regularization: {l1: 0.0, l2: 0.0, dropout: 0.0}
  precision: float32
  checkpoint_every_steps: 200
  seed: null
evaluation: {metrics: null, split: test}
export: {formats: [safetensors]}
"""

MINIMAL = """\
data:
  source: sklearn:iris
input_features:
  - {name: x, type: numeric}
output_features:
  - {name: target, type: category}
training:
  epochs: 10
  optimizer: adam
"""


def problems(text, overrides=(), source="config.yaml"):
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source, overrides)
    return info.value.problems


def test_full_config_loads_from_a_file(tmp_path):
    path = tmp_path / "mnist_cnn.yaml"
    path.write_text(FULL)
    cfg = load_config(path)
    assert isinstance(cfg, KilnConfig)
    assert cfg.name == "mnist-cnn" and cfg.data.split.stratify == "label"
    assert cfg.input_features[0].preprocessing == ImagePreprocessing(height=28, width=28, channels=1)
    assert cfg.input_features[0].augmentation.flip == "horizontal"
    assert cfg.model.layers[0] == {"Conv2D": {"filters": 32, "kernel_size": 3, "activation": "relu", "padding": "same"}}
    assert cfg.training.early_stopping.patience == 3 and cfg.training.seed == 0
    assert load_config(path, ["training.epochs=2"]).training.epochs == 2


def test_invalid_value_reported_at_its_file_and_line():
    text = MINIMAL.replace("epochs: 10", "epochs: 0")
    assert problems(text) == ["config.yaml:8: training.epochs: Input should be greater than 0 (got 0)"]
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "config.yaml")
    assert str(info.value) == ("Invalid config config.yaml (1 problem):\n"
                               "config.yaml:8: training.epochs: Input should be greater than 0 (got 0)")


def test_all_problems_reported_together_in_file_order():
    text = """\
name: demo
data:
  source: mnist5k
  split: {train: 0.8, validation: 0.3, test: 0.1}
input_features:
  - {name: image, type: imag}
  - {name: image, type: image, augmentation: {flip: sideways}}
output_features:
  - {name: label, type: category}
training:
  epcohs: 10
  batch_size: -1
  optimiser: adam
  precision: flaot32
export: {formats: [onnx, pickle]}
"""
    assert problems(text) == [
        "config.yaml:4: data.split: train + validation + test must sum to 1, got 0.8 + 0.3 + 0.1 = 1.2; "
        "change the fractions (or set by_column / k_folds)",
        "config.yaml:6: input_features.0.type: Input should be 'numeric', 'category', 'binary', 'text', 'image', "
        "'audio' or 'sequence' (got 'imag'). Did you mean 'image'?",
        "config.yaml:7: input_features.1.augmentation.flip: Input should be 'horizontal', 'vertical' or "
        "'horizontal_and_vertical' (got 'sideways')",
        "config.yaml:11: training.epcohs: Unknown key 'epcohs'. Did you mean 'epochs'?",
        "config.yaml:12: training.batch_size: Input should be greater than 0 (got -1)",
        "config.yaml:13: training.optimiser: Unknown key 'optimiser'. Did you mean 'optimizer'?",
        "config.yaml:14: training.precision: Input should be 'float32', 'bfloat16' or 'float16' (got 'flaot32'). "
        "Did you mean 'float32'?",
        "config.yaml:15: export.formats.1: Input should be 'safetensors' or 'onnx' (got 'pickle')",
    ]


def test_derived_checks_point_at_the_exact_key():
    text = (MINIMAL.replace("optimizer: adam", "optimizer: {name: sgd, momentun: 0.9}")
            .replace("{name: target, type: category}", "{name: x, type: category}"))
    assert problems(text) == [
        "config.yaml:6: output_features.0.name: Feature name 'x' is already used by input_features.0; "
        "feature names must be unique (two features may read the same column)",
        "config.yaml:9: training.optimizer.momentun: SGD has no argument 'momentun'. Did you mean 'momentum'? "
        "Valid arguments: clipnorm, clipvalue, global_clipnorm, momentum, nesterov, weight_decay",
    ]
    assert problems(MINIMAL.replace("optimizer: adam", "optimizer: adma")) == [
        "config.yaml:9: training.optimizer.name: Unknown optimizer: 'adma'. Did you mean 'adam'? "
        "Valid names: adagrad, adam, adamw, rmsprop, sgd."]


def test_unknown_key_without_a_near_match_lists_the_valid_keys():
    [problem] = problems(MINIMAL + "zzz: 1\n")
    assert problem.startswith("config.yaml:10: zzz: Unknown key 'zzz'. Valid keys here: name, seed, output_dir, data,")


def test_missing_sections_and_wrong_types():
    assert problems("name: x\ntraining: 5\n") == [
        "config.yaml:2: training: Expected a mapping of keys to values (key: value lines), got the value 5",
        "config.yaml: data: Required key is missing",
        "config.yaml: input_features: Required key is missing",
        "config.yaml: output_features: Required key is missing",
    ]
    assert problems(MINIMAL.replace("source: sklearn:iris", "format: csv")) == [
        "config.yaml:1: data.source: Required key is missing"]


def test_duplicate_keys_are_reported():
    text = MINIMAL + "  epochs: 20\n"
    assert problems(text) == ["config.yaml:10: training.epochs: Duplicate key (first at line 8); "
                              "YAML would keep only this one, remove one of them"]


def test_broken_yaml_gives_line_and_column():
    [problem] = problems("data:\n  source: x\n  format: [csv\ninput_features: []\n")
    assert problem.startswith("config.yaml:4:15: YAML syntax error: ")
    [problem] = problems("data:\n\tsource: x\n")
    assert problem == ("config.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token; "
                       "YAML indents with spaces, not tabs")


def test_empty_file_top_level_list_missing_file_and_folder(tmp_path):
    assert problems("# only a comment\n") == [
        "config.yaml: The config is empty; it needs at least data, input_features and output_features "
        "(`kiln init` writes a starter)"]
    assert problems("- a\n- b\n") == [
        "config.yaml:1: The config must be a mapping of sections (name:, data:, training:, ...), got a list"]
    with pytest.raises(ConfigError, match="Config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_overrides_set_values_parsed_as_yaml():
    cfg = load_config_text(FULL, "c.yaml", [
        "training.epochs=5",
        "data.split.train=0.7", "data.split.validation=0.2",
        "input_features.0.preprocessing.height=32",  # a list index
        "training.early_stopping.restore_best_weights=false",
        "export.formats=[safetensors, onnx]",
        "data.options.sep=;",
        "training.schedule.name=cosine",  # creates the section that was null
        "model.layers.3.Dense.units=12",
        "training.precision=bfloat16",
    ])
    assert cfg.training.epochs == 5 and isinstance(cfg.training.epochs, int)
    assert (cfg.data.split.train, cfg.data.split.validation) == (0.7, 0.2)
    assert cfg.input_features[0].preprocessing.height == 32
    assert cfg.training.early_stopping.restore_best_weights is False
    assert cfg.export.formats == ["safetensors", "onnx"]
    assert cfg.data.options == {"sep": ";"}
    assert cfg.training.schedule.name == "cosine" and cfg.training.schedule.warmup_steps == 0
    assert cfg.model.layers[3] == {"Dense": {"units": 12, "activation": "softmax"}}
    assert cfg.training.precision == "bfloat16"
    # `optimizer: adam` becomes {name: adam} when an override sets one of its keys
    cfg = load_config_text(MINIMAL, "c.yaml", ["training.optimizer.learning_rate=0.01", "training.schedule=null"])
    assert cfg.training.optimizer.name == "adam" and cfg.training.optimizer.learning_rate == 0.01


def test_override_problems_are_reported_with_the_file_problems():
    text = MINIMAL.replace("epochs: 10", "epochs: -3")
    assert problems(text, ["training.epcohs=5", "input_features.4.name=z", "training.batch_size=0", "seed.x=1",
                           "epochs"]) == [
        "config.yaml:8: training.epochs: Input should be greater than 0 (got -3)",
        "--set training.epcohs=5: training.epcohs: Unknown key 'epcohs' in training. Did you mean 'epochs'?",
        "--set input_features.4.name=z: input_features.4.name: input_features has 1 item(s); item 4 does not exist "
        "(items are numbered from 0)",
        "--set seed.x=1: seed.x: seed is a single value; it has no key 'x'",
        "--set epochs: Expected KEY=VALUE, e.g. training.epochs=5",
        "--set training.batch_size=0: training.batch_size: Input should be greater than 0 (got 0)",
    ]
    assert problems(MINIMAL, ["trainng.epochs=3"]) == [
        "--set trainng.epochs=3: trainng.epochs: Unknown key 'trainng' in the config. Did you mean 'training'?"]


def test_dump_round_trips_with_every_default():
    cfg = load_config_text(FULL, "c.yaml", ["training.optimizer.beta_1=0.8", "training.schedule.name=cosine"])
    text = dump_config(cfg)
    assert text.startswith("# kiln train ")
    assert "restore_best_weights: true" in text and "min_delta: 0.0" in text  # defaults written out
    assert "column: label" in text and "seed: 0" in text  # derived defaults resolved
    again = load_config_text(text, "resolved.yaml")
    assert again == cfg and again.training.optimizer.model_extra == {"beta_1": 0.8}
    assert dump_config(again) == text
    minimal = load_config_text(MINIMAL, "m.yaml")
    assert load_config_text(dump_config(minimal), "m.yaml") == minimal


def test_validate_config_for_a_dict_names_paths_without_lines():
    data = {"data": {"source": "s"}, "input_features": [{"name": "x", "type": "numeric"}],
            "output_features": [{"name": "y", "type": "binary"}], "evaluation": {"split": "tset"}}
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    assert info.value.problems == [
        "<dict>: evaluation.split: Input should be 'train', 'validation' or 'test' (got 'tset'). Did you mean 'test'?"]
    assert "split" in data["evaluation"]  # the caller's dict is not changed
    data["evaluation"]["split"] = "test"
    assert validate_config(data, overrides=["training.epochs=3"]).training.epochs == 3


TYPOS = """\
data:
  source: sklearn:iris
input_features:
  - name: x
    type: numeric
    preprocessing: {normalisation: minmax}
output_features:
  - {name: target, type: category}
model:
  layers:
    - Dense: {unitz: 8, activation: relu}
  zoo: {name: mlp, options: {hiden: [8]}}
training: {epochs: 0}
"""
TYPO_PROBLEMS = [
    "typos.yaml:6: input_features.0.preprocessing.normalisation: Unknown preprocessing option 'normalisation' for "
    "a numeric feature. Did you mean 'normalization'? Valid: normalization, fill_missing",
    "typos.yaml:9: model: Set either `layers` or `zoo`, not both (omit both for a model built from the features)",
    "typos.yaml:11: model.layers.0.Dense.unitz: Unknown argument 'unitz' for Dense. Did you mean 'units'? Valid: "
    "units, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, "
    "activity_regularizer, kernel_constraint, bias_constraint, name, input_shape, input_dim, batch_size, dtype, "
    "trainable",
    "typos.yaml:12: model.zoo.options.hiden: Unknown option 'hiden' for the zoo model 'mlp'. Did you mean 'hidden'? "
    "Valid: input_dim, num_classes, units, hidden, dropout, activation",
    "typos.yaml:13: training.epochs: Input should be greater than 0 (got 0)",
]


def test_typos_in_preprocessing_layer_arguments_and_zoo_options_all_in_one_error():
    assert problems(TYPOS, source="typos.yaml") == TYPO_PROBLEMS


@pytest.mark.slow  # a fresh interpreter that imports torch (for the optimizer check): seconds on a busy machine
def test_kiln_validate_reports_them_all_in_one_run(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "typos.yaml").write_text(TYPOS)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "kiln", "validate", "typos.yaml"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.splitlines()[1:] == TYPO_PROBLEMS
