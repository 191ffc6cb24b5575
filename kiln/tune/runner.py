"""The `kiln tune` workflow: a config with a ``tune:`` section -> a tune folder with the study,
one kiln run folder per trial, ``best.yaml`` and a study report.

Steps: setup (check the space against the config, all problems at once; create or reopen the
tune folder and its study) -> trials (in this process, or ``jobs`` worker processes sharing
the study) -> results (summary.json, best.yaml, the optional refit, report.html).

The tune folder::

    tunes/<name>-<timestamp>/
      tune.yaml      the config, tune section included, with the CLI's budgets written in
      tune.json      study name and storage (a shared URL is not written: pass --storage again)
      study.db       the Optuna study (SQLite), unless --storage names another database
      trials/        trial-0000-<timestamp>/ ...: normal kiln run folders
      best.yaml      the best trial's config: `kiln train best.yaml` reruns it
      refit/         with tune.refit: the best config retrained on train + validation
      summary.json, report.html, logs/

Resuming: ``tune(resume=folder, trials=60)`` continues the study to 60 trials in total.
Trials a killed ``kiln tune`` left running are marked ``interrupted`` (not counted) and their
values are tried again first; completed trials are in the database from the moment each ends.

Raises:
    ConfigError: no tune section, or a space / metric / budget that cannot work (every problem).
    StudyMismatchError: --resume / --storage names a database of another study.
    KilnValueError: the storage cannot be opened, or the folder is being tuned by another process.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln.errors import ConfigError, KilnValueError

__all__ = ["tune", "TuneSummary"]


@dataclass
class TuneSummary:
    """What a study has found so far (``summary.json`` holds the same)."""

    tune_dir: Path
    study_name: str
    metric: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_run_dir: str | None
    states: dict[str, int]
    epochs: int  # training epochs run over all trials (pruned ones stop early)
    seconds: float
    best_config: Path | None = None
    refit_dir: Path | None = None
    report: Path | None = None
    importances: dict[str, float] = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("tune_dir", "best_config", "refit_dir", "report"):
            data[key] = None if data[key] is None else str(data[key])
        return json.dumps(data, indent=2)


def tune(config, *, trials: int | None = None, jobs: int | None = None, timeout: float | None = None,
         output_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
         storage: str | None = None, overrides: list[str] | tuple[str, ...] = (), verbose: int = 1) -> TuneSummary:
    """Tune ``config``'s ``tune.space``; returns the study's summary.

    Args:
        config: a ``KilnConfig``, a YAML path or a config dict, with a ``tune:`` section
            (ignored with ``resume``: the tune folder's ``tune.yaml`` is used).
        trials: the study's total number of trials (default: ``tune.trials``).
        jobs: trials run at once, each in its own process (default: ``tune.jobs``).
        timeout: seconds after which no new trial starts (default: ``tune.timeout``).
        output_dir: the folder the tune folder is created in (default ``tunes``).
        resume: a tune folder to continue.
        storage: a database URL shared by several machines (default: the folder's study.db).
        overrides: ``KEY=VALUE`` config overrides, as ``--set``.
        verbose: 0 silent, 1 a line per trial, 2 also each run's progress.

    Example:
        >>> summary = kiln.tune("recipes/iris.yaml", trials=20, jobs=2)
        >>> summary.best_params, summary.best_value
    """
    from kiln.config import dump_config, load_config, validate_config
    from kiln.config.schema import KilnConfig
    from kiln.tune.space import check_space
    from kiln.tune.study import local_storage_url, open_storage, open_study

    started = time.time()
    if resume is not None:
        tune_dir = Path(resume)
        if not (tune_dir / "tune.yaml").is_file():
            raise KilnValueError(f"--resume {str(tune_dir)!r}: not a tune folder (no tune.yaml). Pass the folder "
                                 "`kiln tune` printed, e.g. tunes/my-model-20261203-101500")
        source = str(tune_dir / "tune.yaml")
        config = load_config(source, overrides)
        stored = json.loads((tune_dir / "tune.json").read_text())
        if storage is None and stored["storage"] != "study.db":
            raise KilnValueError(f"{tune_dir} keeps its study in a shared database whose URL is not stored; "
                                 "pass it again with --storage URL")
    elif isinstance(config, KilnConfig):
        source = "<config>"
        config = validate_config(config.model_dump(mode="json"), source, overrides) if overrides else config
    elif isinstance(config, dict):
        source = "<dict>"
        config = validate_config(config, source, overrides)
    else:
        source = str(config)
        config = load_config(config, overrides)
    if config.tune is None:
        raise ConfigError(f"{source} has no tune: section; add one with the metric and the space to search, e.g.\n"
                          "tune:\n  metric: val_accuracy\n  space:\n"
                          "    training.optimizer.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}")
    settings = {"trials": trials, "jobs": jobs, "timeout": timeout}
    problems = [f"{k} must be a positive number, got {v!r}" for k, v in settings.items()
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0)]
    if problems:
        raise ConfigError("Invalid tune budget: " + "; ".join(problems))
    tune_cfg = config.tune.model_copy(update={k: v for k, v in settings.items() if v is not None})
    config = config.model_copy(update={"tune": tune_cfg})
    check_space(config, tune_cfg, source)

    if resume is None:
        tune_dir = _new_folder(Path(output_dir or "tunes"), config.name)
    url = storage or local_storage_url(tune_dir)
    db = open_storage(url)
    lock = _lock_folder(tune_dir)
    try:
        study = open_study(db, config.name, tune_cfg, create=resume is None)
        (tune_dir / "tune.yaml").write_text(dump_config(config).replace(
            "# kiln train config.yaml", f"# kiln tune --resume {tune_dir}", 1))
        (tune_dir / "tune.json").write_text(json.dumps(
            {"study_name": config.name, "storage": "study.db" if storage is None else "external"}, indent=2))
        if resume is not None:
            _retry_interrupted(study, tune_cfg)
        if verbose:
            print(f"tune folder: {tune_dir}", flush=True)
        if tune_cfg.jobs == 1:
            from kiln.tune.worker import work
            work(tune_dir, url, 0, tune_cfg.trials, tune_cfg.timeout, None, verbose)
        else:
            _run_workers(tune_dir, url, tune_cfg.jobs, tune_cfg.trials, tune_cfg.timeout, verbose)
        summary = _finish(config, tune_dir, study, started, verbose)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    return summary


# ---------------------------------------------------------------------- setup
def _new_folder(base: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder, n = base / f"{name}-{stamp}", 1
    while folder.exists():
        folder, n = base / f"{name}-{stamp}-{n}", n + 1
    (folder / "logs").mkdir(parents=True)
    return folder


def _lock_folder(tune_dir: Path):
    """Hold the folder's lock for the whole study; a second ``kiln tune`` on it is refused."""
    (tune_dir / "logs").mkdir(parents=True, exist_ok=True)
    lock = open(tune_dir / ".lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise KilnValueError(f"{tune_dir} is being tuned by another `kiln tune` process right now; wait for it "
                             "(or stop it) before resuming, or run more trials beside it with --jobs") from None
    return lock


def _retry_interrupted(study, tune_cfg) -> None:
    """Trials left running by a killed process: mark them interrupted and queue their values again."""
    from kiln.tune.study import fail_interrupted
    from optuna.trial import TrialState
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    fail_interrupted(study)
    for t in study.get_trials(deepcopy=False):
        if t.number in before and len(t.params) == len(tune_cfg.space):
            study.enqueue_trial(t.params)


# ---------------------------------------------------------------------- trials
def _run_workers(tune_dir: Path, url: str, jobs: int, total: int, timeout: float | None, verbose: int) -> None:
    """``jobs`` worker processes on the study; each gets an equal share of the CPU threads."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = dict(os.environ, KILN_TUNE_STORAGE=url)
    kiln_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = kiln_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    procs = []
    for index in range(jobs):
        command = [sys.executable, "-m", "kiln.tune.worker", str(tune_dir), "--index", str(index),
                   "--total", str(total), "--threads", str(threads), "--verbose", str(verbose)]
        if timeout is not None:
            command += ["--timeout", repr(timeout)]
        log = open(tune_dir / "logs" / f"worker-{index}.log", "a")
        procs.append((subprocess.Popen(command, env=env, stdout=None if verbose else log, stderr=log), log))
    failed = None
    try:
        while any(p.poll() is None for p, _ in procs):
            for p, _ in procs:
                if p.poll() not in (None, 0) and failed is None:
                    failed = p
                    for other, _ in procs:  # a study that cannot go on stops everywhere
                        if other.poll() is None:
                            other.terminate()
            time.sleep(0.2)
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            log.close()
    errors = sorted((tune_dir / "logs").glob("worker-*.error"))
    if errors:
        from kiln.tune.objective import MetricNotLoggedError
        text = errors[0].read_text()
        for path in errors:
            path.unlink()
        raise MetricNotLoggedError(text) if "is not logged" in text else KilnValueError(text)
    bad = [p.returncode for p, _ in procs if p.returncode not in (0,)]
    if bad and failed is not None:
        raise KilnValueError(f"A tune worker exited with code {failed.returncode}; see {tune_dir / 'logs'}")


# ---------------------------------------------------------------------- results
def _finish(config, tune_dir: Path, study, started: float, verbose: int) -> TuneSummary:
    from kiln.tune.report import write_study_report
    from kiln.tune.study import direction_of
    summary = summarize(config, tune_dir, study, time.time() - started)
    summary.importances = _importances(study)
    if summary.best_trial is not None:
        summary.best_config = _write_best(config, tune_dir, summary)
        if config.tune.refit:
            summary.refit_dir = _refit(tune_dir, summary.best_config, summary)
    summary.report = write_study_report(tune_dir / "report.html", summary, direction_of(config.tune))
    (tune_dir / "summary.json").write_text(summary.to_json())
    if verbose:
        states = ", ".join(f"{n} {s}" for s, n in summary.states.items() if n)
        print(f"trials: {states}", flush=True)
        if summary.best_trial is not None:
            print(f"best: trial {summary.best_trial} {summary.metric} {summary.best_value:.4f} {summary.best_params}",
                  flush=True)
            print(f"best config: {summary.best_config}", flush=True)
        print(f"report: {summary.report}", flush=True)
    return summary


def _importances(study) -> dict[str, float]:
    """Parameter importances by Optuna's default evaluator (PED-ANOVA in Optuna 5); empty with too few trials."""
    import warnings
    import optuna
    from optuna.trial import TrialState
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal" on tiny studies: the table shows it
            warnings.simplefilter("ignore", UserWarning)
            importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # e.g. a parameter that never varied
        return {}
    return {k: float(v) for k, v in importances.items()}


def summarize(config, tune_dir: Path, study, seconds: float) -> TuneSummary:
    """The study's summary, from its trials in the database."""
    from optuna.trial import TrialState

    from kiln.tune.study import direction_of
    rows = []
    states = {"complete": 0, "pruned": 0, "fail": 0, "interrupted": 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if t.state == TrialState.FAIL:
            state = "interrupted" if attrs.get("interrupted") or "error" not in attrs else "fail"
        else:
            state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(t.state, "running")
        states[state] += 1
        seconds_ = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else None
        rows.append({"number": t.number, "state": state, "value": t.value, "params": dict(t.params),
                     "epochs": attrs.get("epochs"), "pruned_at": attrs.get("pruned_at"),
                     "run_dir": attrs.get("run_dir"), "error": attrs.get("error"), "seconds": seconds_,
                     "intermediate": {int(k): float(v) for k, v in t.intermediate_values.items()}})
    complete = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    direction = direction_of(config.tune)
    best = (max if direction == "maximize" else min)(complete, key=lambda r: r["value"]) if complete else None
    return TuneSummary(
        tune_dir=tune_dir, study_name=study.study_name, metric=config.tune.metric, direction=direction,
        best_value=best["value"] if best else None, best_params=best["params"] if best else {},
        best_trial=best["number"] if best else None, best_run_dir=best["run_dir"] if best else None,
        states=states, epochs=sum(r["epochs"] or 0 for r in rows), seconds=seconds, trials=rows)


def _write_best(config, tune_dir: Path, summary: TuneSummary) -> Path:
    """best.yaml: the config (without its tune section) with the best trial's values set."""
    from kiln.config import dump_config
    from kiln.tune.space import apply_params, base_data
    best = apply_params(base_data(config), summary.best_params, source="best.yaml")
    text = dump_config(best).replace(
        "# kiln train config.yaml",
        f"# kiln train best.yaml\n# The best trial ({summary.best_trial}, {summary.metric} {summary.best_value:.6g}) "
        f"of study {summary.study_name!r} in {tune_dir}", 1)
    path = tune_dir / "best.yaml"
    path.write_text(text)
    return path


def _refit(tune_dir: Path, best_config: Path, summary: TuneSummary) -> Path:
    """Retrain best.yaml on train + validation (same test split, same seed) into refit/.

    The validation rows join the training rows, so nothing is left to monitor: early stopping
    is dropped and the run trains for the epochs the best trial ran.
    """
    from kiln.config import load_config
    from kiln.workflows.train import train
    config = load_config(best_config)
    split = config.data.split
    if split.by_column is not None or split.k_folds is not None or split.validation == 0:
        raise ConfigError("tune.refit needs a fractional data.split with a validation fraction > 0 "
                          "(by_column / k_folds splits are not refitted); set refit: false")
    data = config.model_dump(mode="json")
    data["data"]["split"].update(train=split.train + split.validation, validation=0.0)
    data["training"]["early_stopping"] = None
    epochs = next((r["epochs"] for r in summary.trials if r["number"] == summary.best_trial), None)
    data["training"]["epochs"] = epochs or config.training.epochs
    data["name"] = "refit"
    from kiln.config import validate_config
    refit_config = validate_config(data, "refit")
    result = train(refit_config, output_dir=tune_dir, verbose=0)
    target = tune_dir / "refit"
    Path(result.run_dir).rename(target)
    return target
