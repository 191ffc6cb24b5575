"""KerasTuner's API on kiln: ``kiln.tuners.RandomSearch / BayesianOptimization / Hyperband``.

An alias of ``kiln.tune.keras_tuner`` so a Keras program's ``keras_tuner`` import ports as
``from kiln import tuners as kt``.
"""

from kiln.tune.keras_tuner import BayesianOptimization, HyperParameters, Hyperband, Objective, RandomSearch, Tuner

__all__ = ["RandomSearch", "BayesianOptimization", "Hyperband", "HyperParameters", "Objective", "Tuner"]
