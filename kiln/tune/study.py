"""The Optuna study behind a tune folder: its storage, sampler, pruner, and its bookkeeping.

The study lives in ``<tune folder>/study.db`` (SQLite) unless ``--storage URL`` names a shared
database (PostgreSQL, MySQL, another SQLite file) that several machines use at once. Each
study carries its fingerprint (metric, direction, space) in its user attributes, so opening a
database that holds another study, or the same name tuned over another space, is an error
before any trial runs.

Optuna is imported here, lazily: ``import kiln`` and ``import kiln.tune`` do not need it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kiln.errors import ConfigError, KilnValueError

__all__ = ["require_optuna", "open_storage", "open_study", "make_sampler", "make_pruner", "direction_of",
           "counted_trials", "running_trials", "fail_interrupted", "StudyMismatchError"]


class StudyMismatchError(KilnValueError):
    """The database holds another study, or this study with another space or metric."""


def require_optuna():
    """The ``optuna`` module, or a kiln error saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise KilnValueError("kiln tune needs Optuna, which is not installed here: pip install 'kiln[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def local_storage_url(tune_dir: Path) -> str:
    return f"sqlite:///{(Path(tune_dir) / 'study.db').resolve()}"


def open_storage(url: str):
    """An Optuna RDB storage for ``url``; a ``KilnValueError`` naming the URL if it cannot be opened."""
    optuna = require_optuna()
    engine = {}
    if url.startswith("sqlite"):
        # Parallel workers write to one SQLite file: wait for the lock instead of failing at once.
        engine = {"connect_args": {"timeout": 120}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as error:  # sqlalchemy's many errors: bad scheme, no driver, no server, no file
        shown = _hide_password(url)
        raise KilnValueError(f"Could not open the study storage {shown!r}: {type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''}. Check the URL "
                             "(e.g. postgresql://user:pass@host/db, sqlite:///path/study.db), that the "
                             "server is up and that its driver is installed") from None


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@")[0]:
        user = rest.split("@")[0].split(":")[0]
        return f"{scheme}{sep}{user}:***@{rest.split('@', 1)[1]}"
    return url


def direction_of(tune) -> str:
    """"maximize" or "minimize": ``tune.direction``, or read from the metric's name."""
    if tune.direction != "auto":
        return tune.direction
    from kiln.callbacks.early_stopping import resolve_mode
    return "maximize" if resolve_mode(tune.metric, "auto") == "max" else "minimize"


def fingerprint(tune) -> dict:
    """What must match for a study to be continued: the metric, its direction and the space."""
    return {"metric": tune.metric, "direction": direction_of(tune),
            "space": {k: v.model_dump(mode="json") for k, v in tune.space.items()}}


def open_study(storage, name: str, tune, *, create: bool):
    """Create the study ``name`` in ``storage`` (``create=True``) or load it, checking it is ours.

    Raises:
        StudyMismatchError: creating where the database already holds other studies under other
            names is allowed, but loading a name the database does not hold, or a study whose
            metric or space differ, is not; the message names what is there and the fix.
    """
    optuna = require_optuna()
    names = [s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)]
    wanted = fingerprint(tune)
    if name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        stored = study.user_attrs.get("kiln")
        if stored != wanted:
            differs = [k for k in wanted if (stored or {}).get(k) != wanted[k]] or ["kiln fingerprint"]
            raise StudyMismatchError(
                f"The database's study {name!r} was tuned with another {', '.join(differs)} "
                f"(stored: {json.dumps({k: (stored or {}).get(k) for k in differs})}); continue it with its own "
                "config, or start a new study (another --output folder, or another name: in the config)")
        return study
    if not create:
        held = ", ".join(repr(n) for n in names) or "no study"
        raise StudyMismatchError(f"The database holds {held}, not study {name!r}; pass the tune folder or "
                                 "--storage of that study, or start a new one without --resume")
    study = optuna.create_study(study_name=name, storage=storage, direction=wanted["direction"])
    study.set_user_attr("kiln", wanted)
    return study


def make_sampler(tune, seed: int):
    """The Optuna sampler named by ``tune.sampler``, seeded with ``seed``."""
    optuna = require_optuna()
    from kiln.tune.space import grid_points
    if tune.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if tune.sampler == "grid":
        return optuna.samplers.GridSampler(grid_points(tune.space), seed=seed)
    if tune.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401  (optuna's CmaEsSampler needs it)
        except ImportError:
            raise KilnValueError("tune.sampler: cmaes needs the cmaes package: pip install 'kiln[tune]'") from None
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    import warnings
    with warnings.catch_warnings():  # "experimental since 3.0": kiln pins the behaviour by its tests
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(tune, epochs: int):
    """The Optuna pruner named by ``tune.pruner``; a resource is one epoch."""
    optuna = require_optuna()
    if tune.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def counted_trials(study) -> int:
    """Trials that use up the budget: complete, pruned, and failed with an error (not interrupted)."""
    from optuna.trial import TrialState
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(1 for t in done if t.state != TrialState.FAIL or "error" in t.user_attrs)


def running_trials(study) -> int:
    from optuna.trial import TrialState
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def fail_interrupted(study) -> int:
    """Mark trials left RUNNING by a killed ``kiln tune`` as failed (``interrupted``); returns how many.

    Only called when no process holds the tune folder's lock, so nothing is still running them.
    """
    from optuna.trial import TrialState
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
    return len(stale)
