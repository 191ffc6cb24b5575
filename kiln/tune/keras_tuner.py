"""KerasTuner's API on kiln and Optuna: ``RandomSearch``, ``BayesianOptimization``, ``Hyperband``.

A Keras program that tunes with ``keras_tuner`` ports by changing its imports::

    import kiln as keras
    from kiln import tuners as kt

    def build_model(hp):
        model = keras.Sequential([keras.layers.Dense(hp.Int("units", 8, 64, step=8), activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-1, sampling="log")),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    tuner = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=10, directory="tuning")
    tuner.search(x, y, epochs=5, validation_data=(x_val, y_val))
    best = tuner.get_best_models(1)[0]

How each maps onto Optuna: RandomSearch -> RandomSampler; BayesianOptimization -> TPESampler
(Optuna's Bayesian optimisation; KerasTuner's is a Gaussian process); Hyperband -> a random
sampler with Optuna's HyperbandPruner over ``max_epochs`` (each trial reports the objective
after every epoch and stops when pruned). Each trial's model is saved (safetensors + JSON)
under ``directory/project_name/trial_NNNN``; the study is ``study.db`` beside them, so a
second ``search`` continues it unless ``overwrite=True`` (as in KerasTuner).

The objective's value for a trial is its best epoch (by the direction), as KerasTuner does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kiln.errors import KilnTypeError, KilnValueError

__all__ = ["HyperParameters", "Objective", "Tuner", "RandomSearch", "BayesianOptimization", "Hyperband"]

_SAMPLINGS = ("linear", "log", "reverse_log")


class Objective:
    """The value a tuner optimises: a logged name and a direction ("min" or "max")."""

    def __init__(self, name: str, direction: str):
        if direction not in ("min", "max"):
            raise KilnValueError(f"Received an invalid value for `direction` of Objective {name!r}, expected "
                                 f"'min' or 'max'. Received: direction={direction!r}.")
        self.name, self.direction = name, direction

    def __repr__(self) -> str:
        return f"Objective(name={self.name!r}, direction={self.direction!r})"


class HyperParameters:
    """The values of one trial, asked for by name in ``build_model(hp)`` (``hp.Int``, ``hp.Float``, ...).

    During a search each call samples from the trial; after it (``get_best_hyperparameters``)
    the calls return the stored values, so ``tuner.hypermodel.build(best_hp)`` rebuilds the best model.
    """

    def __init__(self, trial=None, values: dict | None = None):
        self._trial = trial
        self.values: dict[str, Any] = dict(values or {})

    def _take(self, name: str, sample) -> Any:
        if not isinstance(name, str) or not name:
            raise KilnTypeError(f"A hyperparameter needs a name (a non-empty string). Received: name={name!r}.")
        if self._trial is None:
            if name not in self.values:
                raise KilnValueError(f"Hyperparameter {name!r} has no value here (known: "
                                     f"{', '.join(self.values) or 'none'}); the model must ask for the same names "
                                     "as during the search")
            return self.values[name]
        value = sample()
        self.values[name] = value
        return value

    def Int(self, name, min_value, max_value, step=None, sampling="linear", default=None) -> int:
        _check_range(name, min_value, max_value, sampling)
        log = sampling != "linear"
        return self._take(name, lambda: self._trial.suggest_int(name, int(min_value), int(max_value),
                                                                step=1 if log else int(step or 1), log=log))

    def Float(self, name, min_value, max_value, step=None, sampling="linear", default=None) -> float:
        _check_range(name, min_value, max_value, sampling)
        log = sampling != "linear"
        return self._take(name, lambda: self._trial.suggest_float(name, float(min_value), float(max_value),
                                                                  step=None if log else step, log=log))

    def Choice(self, name, values, ordered=None, default=None):
        values = list(values)
        if not values:
            raise KilnValueError(f"hp.Choice({name!r}) needs at least one value. Received: values=[].")
        return self._take(name, lambda: self._trial.suggest_categorical(name, values))

    def Boolean(self, name, default=False) -> bool:
        return self._take(name, lambda: self._trial.suggest_categorical(name, [False, True]))

    def Fixed(self, name, value):
        return self._take(name, lambda: value)

    def get(self, name: str):
        if name not in self.values:
            raise KilnValueError(f"Unknown hyperparameter {name!r}; known: {', '.join(self.values) or 'none'}")
        return self.values[name]

    def __repr__(self) -> str:
        return f"HyperParameters({self.values})"


def _check_range(name, low, high, sampling) -> None:
    if sampling not in _SAMPLINGS:
        raise KilnValueError(f"Received an invalid value for `sampling` of {name!r}, expected one of "
                             f"{', '.join(map(repr, _SAMPLINGS))}. Received: sampling={sampling!r}.")
    if low > high:
        raise KilnValueError(f"Hyperparameter {name!r}: min_value ({low}) is greater than max_value ({high}); "
                             "swap them.")
    if sampling != "linear" and low <= 0:
        raise KilnValueError(f"Hyperparameter {name!r}: sampling={sampling!r} needs min_value > 0. "
                             f"Received: min_value={low}.")


class Tuner:
    """Search base: ``hypermodel(hp) -> compiled model``; the subclasses choose the sampler and pruner.

    Args:
        hypermodel: a function ``build_model(hp)`` returning a compiled kiln model.
        objective: a logged name ("val_accuracy"; direction from the name) or an ``Objective``.
        max_trials: trials in total (default 10).
        seed: the sampler's seed (default None: random).
        directory, project_name: where models and the study go (default ``./untitled_project``).
        overwrite: start afresh instead of continuing a study found there (default False).
    """

    def __init__(self, hypermodel, objective="val_loss", max_trials: int = 10, seed: int | None = None,
                 directory: str = ".", project_name: str = "untitled_project", overwrite: bool = False,
                 **kwargs):
        if not callable(hypermodel):
            raise KilnTypeError("`hypermodel` must be a function build_model(hp) returning a compiled model. "
                                f"Received: {type(hypermodel).__name__}.")
        if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
            raise KilnValueError(f"Received an invalid value for `max_trials`, expected a positive integer. "
                                 f"Received: max_trials={max_trials!r}.")
        if kwargs:
            raise KilnTypeError(f"Unknown argument(s) of {type(self).__name__}: {', '.join(kwargs)}.")
        self.hypermodel = _HyperModel(hypermodel)
        self.objective = objective if isinstance(objective, Objective) else Objective(
            objective, _direction(objective))
        self.max_trials, self.seed = max_trials, seed
        self.project_dir = Path(directory) / project_name
        if overwrite and self.project_dir.exists():
            shutil.rmtree(self.project_dir)
        self.project_dir.mkdir(parents=True, exist_ok=True)
        self._models: dict[int, Any] = {}  # models that could not be saved, by trial number
        self._study = None

    # -- what the subclasses choose
    def _sampler(self, optuna):
        raise NotImplementedError

    def _pruner(self, optuna):
        return optuna.pruners.NopPruner()

    def _epochs(self, fit_kwargs: dict) -> dict:
        return fit_kwargs

    # -- the search
    @property
    def study(self):
        if self._study is None:
            from kiln.tune.study import require_optuna
            optuna = require_optuna()
            self._study = optuna.create_study(
                study_name="kiln-tuner", storage=f"sqlite:///{(self.project_dir / 'study.db').resolve()}",
                direction="maximize" if self.objective.direction == "max" else "minimize",
                sampler=self._sampler(optuna), pruner=self._pruner(optuna), load_if_exists=True)
        return self._study

    def search(self, *fit_args, **fit_kwargs) -> None:
        """Run trials until ``max_trials`` are done; each calls ``model.fit(*fit_args, **fit_kwargs)``."""
        from optuna.trial import TrialState

        from kiln.tune.pruning import PruningCallback
        from kiln.tune.study import require_optuna
        optuna = require_optuna()
        study = self.study
        fit_kwargs = self._epochs(dict(fit_kwargs))
        fit_kwargs.setdefault("verbose", 0)
        user_callbacks = list(fit_kwargs.pop("callbacks", None) or [])
        while len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))) < self.max_trials:
            trial = study.ask()
            hp = HyperParameters(trial)
            model = self.hypermodel.build(hp)
            pruning = PruningCallback(trial, self.objective.name)
            history = model.fit(*fit_args, callbacks=user_callbacks + [pruning], **fit_kwargs)
            if pruning.missing is not None:
                study.tell(trial, state=TrialState.FAIL)
                raise KilnValueError(f"The objective {self.objective.name!r} is not logged by fit (logged: "
                                     f"{', '.join(pruning.missing)}); name one of them, and pass validation_data "
                                     "for a val_ objective")
            values = history.history[self.objective.name]
            best = max(values) if self.objective.direction == "max" else min(values)
            self._save(trial.number, model)
            study.tell(trial, state=TrialState.PRUNED if pruning.pruned_at else TrialState.COMPLETE,
                       values=None if pruning.pruned_at else float(best))

    def _save(self, number: int, model) -> None:
        try:
            model.save(self.project_dir / f"trial_{number:04d}")
        except Exception:  # a model kiln cannot serialise (e.g. a custom subclass): kept in memory
            self._models[number] = model

    # -- results, as KerasTuner names them
    def _best_trials(self, num: int):
        from optuna.trial import TrialState
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        done.sort(key=lambda t: t.value, reverse=self.objective.direction == "max")
        return done[:num]

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        return [HyperParameters(values=t.params) for t in self._best_trials(num_trials)]

    def get_best_models(self, num_models: int = 1) -> list:
        import kiln
        models = []
        for t in self._best_trials(num_models):
            models.append(self._models.get(t.number) or kiln.load_model(self.project_dir / f"trial_{t.number:04d}"))
        return models

    def results_summary(self, num_trials: int = 10) -> None:
        print(f"Results summary\nResults in {self.project_dir}\nShowing {num_trials} best trials\n{self.objective}")
        for t in self._best_trials(num_trials):
            print(f"\nTrial {t.number:04d} summary\nHyperparameters:")
            for k, v in t.params.items():
                print(f"{k}: {v}")
            print(f"Score: {t.value}")

    def search_space_summary(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        space = trials[-1].distributions if trials else {}
        print(f"Search space summary\nDefault search space size: {len(space)}")
        for name, dist in space.items():
            print(f"{name} ({type(dist).__name__}): {dist}")


class _HyperModel:
    """``tuner.hypermodel.build(hp)``, as in KerasTuner."""

    def __init__(self, build):
        self._build = build

    def build(self, hp: HyperParameters):
        return self._build(hp)


def _direction(name: str) -> str:
    from kiln.callbacks.early_stopping import resolve_mode
    return resolve_mode(name, "auto")


class RandomSearch(Tuner):
    """Random values for every trial (Optuna's RandomSampler)."""

    def _sampler(self, optuna):
        return optuna.samplers.RandomSampler(seed=self.seed)


class BayesianOptimization(Tuner):
    """Each trial's values chosen from the finished ones (Optuna's TPE, a Bayesian optimiser).

    Args (besides ``Tuner``'s): num_initial_points: random trials before the model guides
    (default None: TPE's 10).
    """

    def __init__(self, hypermodel, objective="val_loss", max_trials: int = 10, num_initial_points=None, **kwargs):
        self.num_initial_points = num_initial_points
        super().__init__(hypermodel, objective, max_trials, **kwargs)

    def _sampler(self, optuna):
        startup = 10 if self.num_initial_points is None else self.num_initial_points
        return optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=startup)


class Hyperband(Tuner):
    """Random values, with unpromising trials stopped early by Hyperband (Li et al. 2018).

    Args (besides ``Tuner``'s): max_epochs: the epochs of a trial that is never stopped
    (default 100, as KerasTuner; ``search``'s ``epochs`` is set to it); factor: the reduction
    factor between brackets' rungs (default 3).
    """

    def __init__(self, hypermodel, objective="val_loss", max_epochs: int = 100, factor: int = 3,
                 max_trials: int = 20, **kwargs):
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
            raise KilnValueError(f"Received an invalid value for `max_epochs`, expected a positive integer. "
                                 f"Received: max_epochs={max_epochs!r}.")
        self.max_epochs, self.factor = max_epochs, factor
        super().__init__(hypermodel, objective, max_trials, **kwargs)

    def _sampler(self, optuna):
        return optuna.samplers.RandomSampler(seed=self.seed)

    def _pruner(self, optuna):
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.max_epochs,
                                              reduction_factor=self.factor)

    def _epochs(self, fit_kwargs: dict) -> dict:
        fit_kwargs["epochs"] = self.max_epochs
        return fit_kwargs
