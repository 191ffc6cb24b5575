"""The trial loop one process runs: take a trial while the budget lasts, train it, record it.

``kiln tune --jobs N`` starts N of these as separate processes (``python -m kiln.tune.worker``)
on one study; ``--jobs 1`` runs the loop in the ``kiln tune`` process itself. Processes, not
threads: each trial trains with its own share of the CPU threads and no shared interpreter.

Why a lock around starting a trial: the budget (``--trials``, the total) is checked and the
trial created as one step, so N workers never start more than the budget between them. The
lock is a file in the tune folder; workers on other machines sharing one ``--storage`` may
overshoot by at most one trial each.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from pathlib import Path

__all__ = ["work", "main"]


class _TrialFailed(Exception):
    """Raised inside Optuna's loop for a trial that failed (already recorded): the study goes on."""


def work(tune_dir: Path, storage_url: str, index: int, total: int, timeout: float | None,
         threads: int | None = None, verbose: int = 1) -> None:
    """Run trials of the tune folder's study until ``total`` are done or ``timeout`` seconds have passed
    since this worker was ready to start its first trial (running trials finish).

    Raises:
        MetricNotLoggedError: the tuned metric is not logged (the study cannot go on).
    """
    import torch

    from kiln.config import load_config
    from kiln.tune.objective import run_trial
    from kiln.tune.space import base_data, grid_size
    from kiln.tune.study import counted_trials, make_pruner, make_sampler, open_storage, open_study, \
        require_optuna, running_trials

    optuna = require_optuna()
    if threads:
        torch.set_num_threads(threads)
    tune_dir = Path(tune_dir)
    config = load_config(tune_dir / "tune.yaml")
    tune = config.tune
    storage = open_storage(storage_url)
    study = open_study(storage, config.name, tune, create=False)
    # Workers must not draw the same points, nor a resumed study the points its first run drew:
    # the seed moves with the worker index and with the trials already in the study.
    done = len(study.get_trials(deepcopy=False))
    seed = (tune.seed if tune.seed is not None else config.seed) + index + 7919 * done
    study = optuna.load_study(study_name=config.name, storage=storage, sampler=make_sampler(tune, seed),
                              pruner=make_pruner(tune, config.training.epochs))
    if tune.sampler == "grid":
        total = min(total, grid_size(tune.space))
    data = base_data(config)
    lock_path = tune_dir / ".trial.lock"
    deadline = None if timeout is None else time.time() + timeout
    while deadline is None or time.time() < deadline:
        lock = open(lock_path, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        held = [True]

        def release():
            if held[0]:
                fcntl.flock(lock, fcntl.LOCK_UN)
                lock.close()
                held[0] = False

        if counted_trials(study) + running_trials(study) >= total:
            release()
            break

        def objective(trial):
            release()  # the trial exists now: other workers may start theirs
            outcome = run_trial(trial, data, tune, tune_dir, verbose=max(verbose - 1, 0))
            if verbose:
                shown = f"{outcome.value:.4f}" if outcome.value is not None else (outcome.error or "")
                print(f"trial {trial.number}: {outcome.state} {tune.metric} {shown} "
                      f"{ {k: v for k, v in trial.params.items()} }", flush=True)
            if outcome.state == "pruned":
                raise optuna.TrialPruned()
            if outcome.state == "fail":
                raise _TrialFailed(outcome.error)
            return outcome.value

        try:
            study.optimize(objective, n_trials=1, catch=(_TrialFailed,))
        finally:
            release()
        if study._stop_flag:  # the grid sampler stopped: every point is done
            break


def main(argv=None) -> int:
    """Entry of ``python -m kiln.tune.worker TUNE_DIR``; the storage URL comes in ``KILN_TUNE_STORAGE``
    (not on the command line, where a database password would show in ``ps``)."""
    from kiln.errors import KilnError
    from kiln.tune.objective import MetricNotLoggedError

    parser = argparse.ArgumentParser(prog="python -m kiln.tune.worker")
    parser.add_argument("tune_dir")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)
    from kiln.utils.process import die_with_parent
    die_with_parent()  # a killed `kiln tune` leaves no orphan trial beside a resumed study
    try:
        work(Path(args.tune_dir), os.environ["KILN_TUNE_STORAGE"], args.index, args.total, args.timeout,
             args.threads, args.verbose)
    except MetricNotLoggedError as error:
        (Path(args.tune_dir) / "logs" / f"worker-{args.index}.error").write_text(str(error))
        print(f"error: {error}", file=sys.stderr)
        return 3
    except KilnError as error:
        (Path(args.tune_dir) / "logs" / f"worker-{args.index}.error").write_text(str(error))
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
