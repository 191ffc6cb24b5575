"""The search space: checked against the config before any trial, every problem at once."""

import math
import textwrap

import pytest
import yaml

from kiln.config import load_config, load_config_text
from kiln.errors import ConfigError
from kiln.tune.space import apply_params, base_data, check_space, grid_combinations, grid_points, logged_metrics, \
    yaml_value

from .conftest import IRIS, iris_config


@pytest.mark.parametrize("value", [1e-05, 0.1, 1e20, -3.5e-300, 2.0, 0.000123456789012345678, 7, True, None, "relu",
                                   'a "quoted" \\ text', math.inf])
def test_yaml_value_reads_back_exactly(value):
    assert yaml.safe_load(yaml_value(value)) == value
    assert type(yaml.safe_load(yaml_value(value))) is type(value)


def test_schema_problems_are_reported_together_with_their_lines(tmp_path):
    path = iris_config(tmp_path, """\
        metric: val_accuracy
        space:
          training.optimizer.learning_rate: {type: float, low: 0.1, high: 0.001}
          training.batch_size: {type: int, low: 0, high: 64, log: true}
          model.layers.0.Dense.activation: {type: categorical, choices: []}
        """)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert "cfg.yaml:22: tune.space.training.optimizer.learning_rate.low: low (0.1) is greater than high (0.001); " \
           "swap them" in problems[0]
    assert "tune.space.training.batch_size.low: log: true needs low > 0" in problems[1]
    assert "tune.space.model.layers.0.Dense.activation.choices: A categorical parameter needs a non-empty " \
           "`choices` list" in problems[2]


def test_an_empty_or_overlapping_space_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"tune.space: Dictionary should have at least 1 item"):
        load_config(iris_config(tmp_path, "space: {}\n"))
    with pytest.raises(ConfigError, match=r"'training.optimizer' and 'training.optimizer.learning_rate' contradict"):
        load_config(iris_config(tmp_path, """\
            space:
              training.optimizer: {type: categorical, choices: [adam, sgd]}
              training.optimizer.learning_rate: {type: float, low: 0.001, high: 0.1}
            """))


def _check(tmp_path, tune_text, extra=""):
    config = load_config(iris_config(tmp_path, tune_text, extra=extra))
    check_space(config, config.tune, "cfg.yaml")


def test_keys_values_combinations_and_metric_are_checked_before_any_trial(tmp_path):
    with pytest.raises(ConfigError) as info:
        _check(tmp_path, """\
            metric: val_accurcy
            space:
              training.learning_rate: {type: float, low: 0.001, high: 0.1, log: true}
              training.batch_size: {type: int, low: 0, high: 64}
              model.layers.0.Dense.units: {type: int, low: 4, high: 16}
            """)
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("cfg.yaml: tune.space.training.learning_rate: training.learning_rate: "
                                  "Unknown key 'learning_rate' in training.")
    assert "did you mean the path 'training.optimizer.learning_rate'?" in problems[0]
    assert problems[1] == ("cfg.yaml: tune.space.training.batch_size: training.batch_size: Input should be greater "
                           "than 0 (got 0) (at value 0)")
    assert problems[2].startswith("cfg.yaml: tune.metric: 'val_accurcy' is never logged by this config. "
                                  "Did you mean 'val_accuracy'? Logged: loss, accuracy, val_loss, val_accuracy")


def test_a_value_that_contradicts_the_config_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"cfg.yaml: tune.space.model.zoo.name: model: Set either `layers` or "
                                          r"`zoo`, not both .*\(at value \"mlp\"\)"):
        _check(tmp_path, """\
            space:
              model.layers.0.Dense.units: {type: int, low: 4, high: 16}
              model.zoo.name: {type: categorical, choices: [mlp]}
            """)


def test_test_metrics_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"'test_accuracy' is measured on the test split; .* 'val_accuracy'"):
        _check(tmp_path, "metric: test_accuracy\nspace: {training.batch_size: {type: int, low: 8, high: 16}}\n")


def test_a_val_metric_needs_a_validation_split():
    text = textwrap.dedent(IRIS).replace("source: sklearn:iris", "source: sklearn:iris\n  split: {train: 0.8, "
                                         "validation: 0.0, test: 0.2}")
    config = load_config_text(text + "tune:\n  metric: val_accuracy\n  space: {training.batch_size: {type: int, "
                              "low: 8, high: 16}}\n")
    with pytest.raises(ConfigError, match=r"data.split.validation is 0, so no val_ metric is logged"):
        check_space(config, config.tune)


def test_logged_metrics_match_what_fit_logs(tmp_path):
    from kiln.workflows.train import train
    config = load_config(iris_config(tmp_path, "space: {training.batch_size: {type: int, low: 8, high: 16}}\n"))
    config = config.model_copy(update={"training": config.training.model_copy(update={"epochs": 1})})
    result = train(config, output_dir=tmp_path / "runs", verbose=0)
    assert logged_metrics(config) == list(result.history)


def test_grid_needs_a_step_for_floats_and_enumerates_ints(tmp_path):
    with pytest.raises(ConfigError, match=r"the grid sampler needs a `step` for a float range"):
        _check(tmp_path, "sampler: grid\nspace: {training.optimizer.learning_rate: {type: float, low: 0.01, "
                         "high: 0.1}}\n")
    config = load_config(iris_config(tmp_path, """\
        sampler: grid
        space:
          training.optimizer.learning_rate: {type: float, low: 0.01, high: 0.03, step: 0.01}
          training.batch_size: {type: int, low: 8, high: 16, step: 4}
        """))
    grid = grid_points(config.tune.space)
    assert grid["training.batch_size"] == [8, 12, 16]
    assert grid["training.optimizer.learning_rate"] == pytest.approx([0.01, 0.02, 0.03])
    assert len(grid_combinations(config.tune.space)) == 9


def test_apply_params_is_the_set_override():
    config = load_config_text(textwrap.dedent(IRIS) + "tune: {space: {training.batch_size: "
                              "{type: int, low: 8, high: 16}}}\n")
    tuned = apply_params(base_data(config), {"training.optimizer.learning_rate": 1e-05,
                                             "model.layers.0.Dense.units": 12})
    assert tuned.training.optimizer.learning_rate == 1e-05
    assert tuned.model.layers[0] == {"Dense": {"units": 12, "activation": "relu"}}
    assert tuned.tune is None
