"""`kiln tune` end to end on iris: trials as run folders, pruning, failures, grid coverage,
best.yaml, resume after SIGKILL, parallel workers, bad storage and foreign databases."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kiln
from kiln.config import load_config
from kiln.errors import ConfigError, KilnValueError
from kiln.tune.space import grid_combinations
from kiln.tune.study import StudyMismatchError, make_pruner, make_sampler, open_storage, open_study

from .conftest import iris_config

ROOT = Path(__file__).resolve().parents[2]

GRID = """\
    metric: val_accuracy
    sampler: grid
    pruner: none
    trials: 10
    space:
      training.optimizer.learning_rate: {type: categorical, choices: [0.05, 0.01]}
      model.layers.0.Dense.units: {type: int, low: 4, high: 8, step: 4}
    """


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid")
    summary = kiln.tune(iris_config(tmp, GRID), output_dir=tmp / "tunes", verbose=0)
    return summary


@pytest.mark.slow
def test_grid_covers_the_space_exactly_and_every_trial_is_a_run_folder(grid_study):
    s = grid_study
    config = load_config(iris_config(s.tune_dir, GRID, name="again.yaml"))
    expected = grid_combinations(config.tune.space)
    assert sorted(map(json.dumps, (t["params"] for t in s.trials))) == sorted(map(json.dumps, expected))
    assert s.states["complete"] == 4 and len(s.trials) == 4  # --trials 10 is capped by the grid's 4 points
    for t in s.trials:
        run = Path(t["run_dir"])
        assert run.parent == s.tune_dir / "trials"
        assert {"config.yaml", "metrics.jsonl", "evaluation.json", "report.html", "model"} <= {p.name for p in
                                                                                               run.iterdir()}
        assert json.loads((run / "evaluation.json").read_text())["validation"]["accuracy"] == t["value"]
        assert load_config(run / "config.yaml").model.layers[0]["Dense"]["units"] == t["params"][
            "model.layers.0.Dense.units"]
    assert s.epochs == 4 * 3
    assert json.loads((s.tune_dir / "summary.json").read_text())["best_value"] == s.best_value
    assert (s.tune_dir / "study.db").is_file()


@pytest.mark.slow
def test_best_yaml_reproduces_the_best_trial(grid_study, tmp_path):
    from kiln.workflows.train import train
    best = load_config(grid_study.tune_dir / "best.yaml")
    assert best.tune is None and best.name == "iris"
    assert best.training.optimizer.learning_rate == grid_study.best_params["training.optimizer.learning_rate"]
    result = train(best, output_dir=tmp_path, verbose=0)
    assert result.test_metrics["validation"]["accuracy"] == grid_study.best_value


@pytest.mark.slow
def test_study_report_renders_in_a_browser(grid_study, tmp_path):
    import shutil
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if binary is None:
        pytest.skip("chromium not found on PATH; install it with `bash .ci/install_system.sh`")
    report = grid_study.tune_dir / "report.html"
    text = report.read_text()
    assert "href=\"http" not in text and "src=" not in text and "<script" not in text  # self-contained
    shot = tmp_path / "shot.png"
    run = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--dump-dom",
                          "--window-size=1200,2400", report.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert shot.is_file(), run.stderr[-2000:]
    for label in ("optimisation history", "parallel coordinates", "parameter importances"):
        assert f'aria-label="{label}"' in dom
    assert dom.count("<tr") == 1 + 4 + 1 + 2  # trials table: head + 4 trials; importances: head + 2
    assert 'class="best"' in dom
    from PIL import Image
    import numpy as np
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # plots and text, not a blank page
    # `kiln report` on the tune folder names the study's report.
    from kiln.cli import main
    assert main(["report", str(grid_study.tune_dir)]) == 0


@pytest.mark.slow
def test_a_pruned_trial_stops_early_and_is_recorded_as_pruned(tmp_path):
    # Trial order from the grid sampler's seed: 0.05 first (a good run), then 1e-6 (no progress),
    # which successive halving stops after its first epoch.
    summary = kiln.tune(iris_config(tmp_path, """\
        metric: val_accuracy
        sampler: grid
        pruner: asha
        seed: 1
        space:
          training.optimizer.learning_rate: {type: categorical, choices: [0.05, 1.0e-6]}
        """), output_dir=tmp_path / "tunes", verbose=0)
    by_lr = {t["params"]["training.optimizer.learning_rate"]: t for t in summary.trials}
    assert [t["params"]["training.optimizer.learning_rate"] for t in summary.trials] == [0.05, 1e-6]
    assert by_lr[0.05]["state"] == "complete" and by_lr[0.05]["epochs"] == 3
    pruned = by_lr[1e-6]
    assert pruned["state"] == "pruned" and pruned["pruned_at"] == 1 and pruned["epochs"] == 1
    run = Path(pruned["run_dir"])
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # one epoch trained, then stopped
    assert (run / "report.html").is_file() and (run / "model").is_dir()  # still a whole run folder


def test_samplers_and_pruners_by_name(tmp_path):
    import optuna
    config = load_config(iris_config(tmp_path, "space: {training.batch_size: {type: int, low: 8, high: 16}}\n"))
    kinds = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
             "grid": optuna.samplers.GridSampler, "cmaes": optuna.samplers.CmaEsSampler,
             "qmc": optuna.samplers.QMCSampler}
    for name, cls in kinds.items():
        assert type(make_sampler(config.tune.model_copy(update={"sampler": name}), 0)) is cls
    pruners = {"asha": optuna.pruners.SuccessiveHalvingPruner, "hyperband": optuna.pruners.HyperbandPruner,
               "median": optuna.pruners.MedianPruner, "none": optuna.pruners.NopPruner}
    for name, cls in pruners.items():
        assert type(make_pruner(config.tune.model_copy(update={"pruner": name}), 3)) is cls


@pytest.mark.slow
def test_a_failed_trial_is_recorded_and_the_study_goes_on_and_the_best_is_refitted(tmp_path):
    summary = kiln.tune(iris_config(tmp_path, """\
        metric: val_accuracy
        sampler: grid
        pruner: none
        seed: 0
        refit: true
        space:
          model.layers.0.Dense.activation: {type: categorical, choices: [not_an_activation, relu]}
        """), output_dir=tmp_path / "tunes", verbose=0)
    states = {t["params"]["model.layers.0.Dense.activation"]: t for t in summary.trials}
    assert states["not_an_activation"]["state"] == "fail"
    assert "not_an_activation" in states["not_an_activation"]["error"]
    assert states["relu"]["state"] == "complete"
    assert summary.best_trial == states["relu"]["number"] and (summary.tune_dir / "best.yaml").is_file()
    # refit: best.yaml on train + validation (0.8 + 0.1 of iris's 150 rows), the same 15 test rows.
    refit = summary.refit_dir
    assert refit == summary.tune_dir / "refit"
    config = load_config(refit / "config.yaml")
    assert (config.data.split.train, config.data.split.validation) == (pytest.approx(0.9), 0.0)
    assert config.model.layers[0]["Dense"]["activation"] == "relu"
    assert set(json.loads((refit / "evaluation.json").read_text())) == {"train", "test"}
    from kiln.data import read_source, split_frame
    frame = read_source("sklearn:iris")
    before = split_frame(frame, train=0.8, validation=0.1, test=0.1, seed=0)["test"]
    after = split_frame(frame, train=0.9, validation=0.0, test=0.1, seed=0)["test"]
    assert before.equals(after)  # refitting never sees the test rows the trials were not tuned on


def test_a_metric_that_is_never_logged_stops_before_any_trial(tmp_path):
    with pytest.raises(ConfigError, match=r"'val_f1' is never logged by this config"):
        kiln.tune(iris_config(tmp_path, "metric: val_f1\nspace: {training.batch_size: {type: int, low: 8, "
                                        "high: 16}}\n"), output_dir=tmp_path / "tunes", verbose=0)
    assert not (tmp_path / "tunes").exists()


def test_a_config_without_tune_section_is_refused(tmp_path):
    path = iris_config(tmp_path, "space: {training.batch_size: {type: int, low: 8, high: 16}}\n")
    path.write_text(path.read_text().split("tune:")[0])
    with pytest.raises(ConfigError, match=r"has no tune: section; add one"):
        kiln.tune(path, verbose=0)


def test_storage_that_cannot_be_opened_is_named(tmp_path):
    with pytest.raises(KilnValueError, match=r"Could not open the study storage 'sqlite:////no/such/folder/x.db'"):
        open_storage("sqlite:////no/such/folder/x.db")
    with pytest.raises(KilnValueError, match=r"Could not open the study storage 'postgresql://me:\*\*\*@localhost"):
        open_storage("postgresql://me:secret@localhost:1/nothing")


def test_a_database_of_another_study_is_refused(tmp_path):
    import optuna
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="someone-else", storage=url)
    config = load_config(iris_config(tmp_path, "space: {training.batch_size: {type: int, low: 8, high: 16}}\n"))
    storage = open_storage(url)
    with pytest.raises(StudyMismatchError, match=r"The database holds 'someone-else', not study 'iris'"):
        open_study(storage, "iris", config.tune, create=False)
    open_study(storage, "iris", config.tune, create=True)
    other = config.tune.model_copy(update={"metric": "val_accuracy"})
    with pytest.raises(StudyMismatchError, match=r"study 'iris' was tuned with another metric, direction"):
        open_study(storage, "iris", other, create=False)


def _counts(db: Path) -> dict:
    import optuna
    study = optuna.load_study(study_name="iris", storage=f"sqlite:///{db}")
    return {t.number: (t.state.name, t.value, dict(t.params)) for t in study.get_trials(deepcopy=False)}


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    cfg = iris_config(tmp_path, """\
        metric: val_accuracy
        sampler: random
        pruner: none
        space:
          training.optimizer.learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
        """)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "tune", str(cfg), "--trials", "5", "--output",
                             str(tmp_path / "tunes"), "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 900  # generous: on a loaded 2-core machine one iris trial has taken 50 s
    db, ready = None, False
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "tunes").glob("iris-*/study.db"))
        if found:
            db = found[0]
            try:
                done = [s for s, _, _ in _counts(db).values() if s == "COMPLETE"]
                running = [s for s, _, _ in _counts(db).values() if s == "RUNNING"]
            except Exception:  # the study is being created
                done, running = [], []
            if len(done) >= 1 and running:
                ready = True
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    assert ready, f"kiln tune never had a completed and a running trial at once: {err.decode()[-2000:]}"
    before = _counts(db)
    # Usually one trial was mid-run; rarely it finished between the poll and the kill.
    killed = [n for n, (s, _, _) in before.items() if s == "RUNNING"]
    assert len(killed) <= 1, before
    from kiln.cli import main
    assert main(["tune", "--resume", str(db.parent), "--trials", "5", "--quiet"]) == 0
    after = _counts(db)
    for number, (state, value, params) in before.items():  # what was complete is untouched
        if state == "COMPLETE":
            assert after[number] == (state, value, params)
    complete = [n for n, (s, _, _) in after.items() if s == "COMPLETE"]
    assert len(complete) == 5  # the total: nothing lost, nothing run twice beyond the budget
    for number in killed:
        assert after[number][0] == "FAIL"  # the interrupted trial, not counted ...
        retried = [n for n in complete if after[n][2] == before[number][2]]
        assert len(retried) == 1  # ... and its values run again once
    assert len({json.dumps(after[n][2]) for n in complete}) == 5  # the resumed sampler draws new values
    summary = json.loads((db.parent / "summary.json").read_text())
    assert summary["states"]["interrupted"] == len(killed) and summary["states"]["complete"] == 5


@pytest.mark.slow
def test_parallel_jobs_run_in_separate_processes_within_the_budget(tmp_path):
    summary = kiln.tune(iris_config(tmp_path, """\
        metric: val_loss
        sampler: random
        pruner: none
        space:
          training.optimizer.learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
        """), trials=4, jobs=2, output_dir=tmp_path / "tunes", verbose=0)
    assert len(summary.trials) == 4 and summary.states["complete"] == 4
    import optuna
    study = optuna.load_study(study_name="iris", storage=f"sqlite:///{summary.tune_dir / 'study.db'}")
    pids = {t.user_attrs["pid"] for t in study.trials}
    # Both workers started (each has its log); which ran how many trials depends on the machine's load.
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert sorted(p.name for p in (summary.tune_dir / "logs").glob("worker-*.log")) == ["worker-0.log", "worker-1.log"]
    assert summary.direction == "minimize"
