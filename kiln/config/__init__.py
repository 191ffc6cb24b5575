"""kiln's YAML configuration: the typed schema, the loader that reports every problem, starters.

Example:
    >>> from kiln.config import load_config, dump_config
    >>> cfg = load_config("recipes/mnist_cnn.yaml", overrides=["training.epochs=2"])
    >>> cfg.training.epochs
    2
"""

from kiln.config.load import dump_config, load_config, load_config_text, validate_config
from kiln.config.schema import (AUGMENTATIONS_BY_TYPE, FEATURE_TYPES, AugmentationConfig, ColorJitterConfig,
                                CompressConfig, DataConfig, EarlyStoppingConfig, EvaluationConfig, ExportConfig, FeatureConfig,
                                KilnConfig, ModelConfig, OptimizerConfig, RegularizationConfig, ScheduleConfig,
                                SpecAugmentConfig, SplitConfig, TrainingConfig, ZooConfig)
from kiln.config.starter import STARTER_KINDS, starter_config

__all__ = [
    "load_config", "load_config_text", "validate_config", "dump_config", "starter_config", "STARTER_KINDS",
    "KilnConfig", "DataConfig", "SplitConfig", "FeatureConfig", "AugmentationConfig", "ColorJitterConfig",
    "SpecAugmentConfig", "ModelConfig", "ZooConfig", "TrainingConfig", "OptimizerConfig", "ScheduleConfig",
    "EarlyStoppingConfig", "RegularizationConfig", "EvaluationConfig", "ExportConfig", "CompressConfig",
    "FEATURE_TYPES", "AUGMENTATIONS_BY_TYPE",
]
