"""The ``kiln`` command line: a table of small typed functions, one per command.

Exit codes: 0 success, 2 a usage or config error (nothing ran), 1 a failure while running.

    kiln train CONFIG [--output DIR] [--resume RUN] [--set KEY=VALUE ...] [--nproc N [--nnodes M
               --node-rank R --rdzv-endpoint HOST:PORT] [--max-restarts K]]
    kiln validate CONFIG [--set KEY=VALUE ...]
    kiln tune CONFIG [--trials N] [--jobs N] [--timeout S] [--output DIR] [--storage URL] [--resume TUNE]
    kiln init [PATH] [--kind image|tabular|text]
    kiln evaluate RUN --data FILE [--backend torch|onnx]
    kiln predict RUN --data FILE --output preds.csv [--backend torch|onnx]
    kiln info RUN
    kiln report RUN
    kiln export RUN --format onnx|safetensors
    kiln compress RUN [--quantize int8] [--prune AMOUNT [--structured]] [--distill-into MODEL] [--epochs N]
    kiln card RUN
    kiln explain RUN --data FILE [--method ig|saliency|smoothgrad|occlusion|shap] [--target CLASS]
    kiln version
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

__all__ = ["main"]


def cmd_train(args) -> int:
    """Train from a YAML config; writes a run folder (model, metrics, report)."""
    from kiln.config import load_config
    from kiln.workflows.train import train
    if not (args.resume or args.config):
        raise _UsageError("kiln train needs a CONFIG file (or --resume RUN).")
    config = load_config(Path(args.resume) / "config.yaml" if args.resume else args.config, args.set)
    if args.nproc is not None or args.nnodes != 1:
        _exec_torchrun(args)  # the config is valid: become torchrun, which runs this command per rank
    rank = _join_torchrun()
    try:
        result = train(config, output_dir=args.output, resume=args.resume,
                       verbose=0 if args.quiet or rank else 1)
    except Exception as err:
        if rank is not None:  # say which process failed; torchrun then stops the others
            err.args = (f"rank {rank}: {err.args[0] if err.args else err}", *err.args[1:])
        raise
    if not rank:
        if config.compress is not None:  # the config's compress: section -> a second run folder beside this one
            from kiln.workflows.compress import compress_run
            compressed = compress_run(result.run_dir, **config.compress.model_dump(), verbose=not args.quiet)
            print(f"compressed: {compressed.run_dir}")
        print(f"run: {result.run_dir}")
    return 0


def _exec_torchrun(args) -> None:
    """``kiln train ... --nproc N``: replace this process with torchrun (kiln/distribution/launch.py)."""
    from kiln.distribution.launch import check_port_free, exec_torchrun, torchrun_command
    from kiln.errors import KilnValueError
    train_args = [args.config] if args.config else []
    for flag, value in (("--output", args.output), ("--resume", args.resume)):
        if value is not None:
            train_args += [flag, value]
    for item in args.set:
        train_args += ["--set", item]
    train_args += ["--quiet"] if args.quiet else []
    try:
        command = torchrun_command(train_args, nproc=1 if args.nproc is None else args.nproc, nnodes=args.nnodes,
                                   node_rank=args.node_rank, rdzv_endpoint=args.rdzv_endpoint,
                                   max_restarts=args.max_restarts)
        if args.rdzv_endpoint is not None and args.node_rank == 0:
            check_port_free(args.rdzv_endpoint)
    except KilnValueError as err:
        raise _UsageError(str(err)) from None
    exec_torchrun(command)


def _join_torchrun() -> int | None:
    """Under torchrun (a worker of ``--nproc``): join the process group and return this rank."""
    import os
    from kiln.distribution.launch import worker_rank
    if worker_rank(os.environ) is None:
        return None
    from kiln.utils.process import die_with_parent
    die_with_parent()  # torchrun puts workers in sessions of their own: a killed launcher must not orphan them
    import kiln.distribution as distribution
    distribution.set_distribution(distribution.DataParallel())
    return distribution.distribution().rank


def cmd_tune(args) -> int:
    """Tune a config's hyperparameters (its tune: section); writes a tune folder (trials, best.yaml, report)."""
    from kiln.tune.runner import tune
    if not (args.resume or args.config):
        raise _UsageError("kiln tune needs a CONFIG file with a tune: section (or --resume TUNE_FOLDER).")
    summary = tune(args.config, trials=args.trials, jobs=args.jobs, timeout=args.timeout, output_dir=args.output,
                   resume=args.resume, storage=args.storage, overrides=args.set, verbose=0 if args.quiet else 1)
    print(f"tune: {summary.tune_dir}")
    return 0


def cmd_validate(args) -> int:
    """Check a config file and report every problem in it."""
    from kiln.config import load_config
    config = load_config(args.config, args.set)
    print(f"{args.config}: valid ({len(config.input_features)} input and {len(config.output_features)} output "
          f"feature(s), {config.training.epochs} epochs)")
    return 0


def cmd_init(args) -> int:
    """Write a commented starter config."""
    from kiln.config.starter import starter_config
    path = Path(args.path)
    if path.exists() and not args.force:
        raise _UsageError(f"{path} exists; pass --force to overwrite it.")
    path.write_text(starter_config(args.kind))
    print(f"wrote {path}; run it with: kiln train {path}")
    return 0


def _load_run(args):
    """The run folder as a ``kiln_edge.run.LoadedRun`` on the backend ``--backend`` names."""
    if args.backend == "onnx":
        from kiln_edge import OnnxRun  # NumPy features + onnxruntime (RUN/export/model.onnx)
        return OnnxRun(args.run)  # its errors are KilnErrors: main() prints them, exit status 1
    from kiln.workflows.run import load_run
    return load_run(args.run)


def cmd_evaluate(args) -> int:
    """Evaluate a run's model on a data file that has the output columns (JSON on stdout).

    MAE, RMSE and R² of a numeric output are in the data's units (as in evaluation.json); the loss
    is on the standardised target, which a note on stderr says (stdout stays plain JSON).
    """
    from kiln.data import read_source
    run = _load_run(args)
    others = [f.name for f in run.outputs if f.type != "numeric"]
    if args.backend == "onnx" and others:
        raise _UsageError(f"kiln evaluate --backend onnx gives the metrics of numeric outputs only (an ONNX graph has "
                          f"no loss, and class metrics come from the model's own); evaluate {', '.join(others)} "
                          f"with the torch backend: drop --backend onnx.")
    metrics = run.evaluate_frame(read_source(args.data, format=args.format))  # EdgeError is a KilnError
    print(json.dumps(metrics, indent=2))
    standardised = run.standardised(metrics)
    if standardised:
        print(f"note: {', '.join(standardised)} on the standardised target; the other metrics in the data's units.",
              file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    """Predict labels/values for the rows of a data file; writes a CSV."""
    from kiln.data import read_source
    from kiln.errors import closest_match
    run = _load_run(args)
    frame = read_source(args.data, format=args.format)
    if args.id_column is not None and args.id_column not in frame.columns:
        hint = closest_match(args.id_column, map(str, frame.columns))
        raise _RunError(f"--id-column {args.id_column!r}: {args.data} has no such column"
                        + (f"; did you mean {hint!r}?" if hint else ".") + f" Columns: {list(frame.columns)}.")
    predictions = run.predict_frame(frame)  # EdgeError is a KilnError
    if args.id_column is not None:
        predictions.insert(0, args.id_column, frame[args.id_column].to_numpy())
    # The CSV's `row` counts from 0 as it always has (error messages name file rows instead).
    predictions.reset_index(drop=True).to_csv(args.output, index_label="row")
    print(f"wrote {len(predictions)} predictions to {args.output}")
    filled = run.filled_counts(frame)
    if filled:  # filled as in training, but never silently
        print("filled as in training: " + "; ".join(
            ", ".join(([f"{c['missing']} missing"] if c["missing"] else [])
                      + ([f"{c['unseen']} unseen (-> <unk>)"] if c["unseen"] else [])) + f" in {name!r}"
            for name, c in filled.items()), file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    """Describe a run: features, model, final metrics.

    Read from the run folder's JSON files and the safetensors header, never torch: ``kiln info``
    answers at once (and works where only kiln_edge's dependencies are installed).
    """
    from kiln_edge.features import load_features
    from kiln_edge.run import read_roles
    run_dir = Path(args.run)
    model_dir = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
    if not (model_dir / "roles.json").exists():
        raise _RunError(f"{run_dir} is not a kiln run folder (no model/roles.json). Pass the folder `kiln train` "
                        f"printed, e.g. runs/my-model-20261129-101500.")
    inputs, outputs, _ = read_roles(model_dir, load_features(model_dir))  # EdgeError is a KilnError
    print(f"run: {run_dir}")
    for role, features in (("input ", inputs), ("output", outputs)):
        for feature in features:
            print(f"  {role} {feature.name} ({feature.type}) <- column {feature.column!r}")
    print(_model_description(model_dir))
    evaluation = (run_dir if model_dir != run_dir else run_dir.parent) / "evaluation.json"
    if evaluation.exists():
        print(evaluation.read_text())
    return 0


def _model_description(model_dir: Path) -> str:
    """The saved model's class, layers and weight count, from config.json and the safetensors header."""
    import json
    import struct
    config = json.loads((model_dir / "config.json").read_text())
    inner = config.get("config") or {}
    lines = [f"model: {inner.get('name', '?')} ({config.get('class_name', '?')})"]
    for layer in inner.get("layers") or []:
        if isinstance(layer, dict):
            lines.append(f"  {layer.get('config', {}).get('name', '?')} ({layer.get('class_name', '?')})")
    with open(model_dir / "model.safetensors", "rb") as file:  # 8-byte header length, then the JSON header
        header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
    count = 0
    for name, entry in header.items():
        if name != "__metadata__":
            size = 1
            for n in entry["shape"]:
                size *= n
            count += size
    lines.append(f"weights: {count:,} values in {len(header) - ('__metadata__' in header)} tensors "
                 f"(parameters and buffers; `model.summary()` in Python gives the full table)")
    return "\n".join(lines)


def cmd_report(args) -> int:
    """Print the path of a run's report.html."""
    report = Path(args.run) / "report.html"
    if not report.exists():
        raise _RunError(f"{args.run} has no report.html (was the run interrupted? resume it with "
                        f"`kiln train --resume {args.run}`).")
    print(report.resolve())
    return 0


def cmd_export(args) -> int:
    """Export a run's model: ONNX (checked against torch with onnxruntime) or safetensors."""
    from kiln.workflows.run import load_run
    _refuse_fp32_over_int8(args)
    run = load_run(args.run)
    out_dir = Path(args.run) / "export"
    out_dir.mkdir(exist_ok=True)
    if args.format == "safetensors":
        target = out_dir / "model.safetensors"
        shutil.copyfile(Path(args.run) / "model" / "model.safetensors", target)
    else:
        from kiln.export.onnx import export_onnx
        target = export_onnx(run, out_dir / "model.onnx")
    print(f"exported {target}")
    return 0


def _refuse_fp32_over_int8(args) -> None:
    """An int8 run's ONNX file is its int8 graph; exporting the model again would silently write
    an fp32 graph (of the dequantized weights) in its place."""
    record = Path(args.run) / "compression.json"
    if args.format != "onnx" or args.force_fp32 or not record.exists():
        return
    if not (json.loads(record.read_text()).get("quantization")):
        return
    graph = Path(args.run) / "export" / "model.onnx"
    have = (f"{graph} already holds its int8 graph (use it as is: kiln predict {args.run} --backend onnx)"
            if graph.exists() else "its int8 graph is written by kiln compress with the onnx backend")
    raise _RunError(f"{args.run} is int8-quantized; `kiln export --format onnx` would write an fp32 graph of its "
                    f"dequantized weights instead: {have}. Pass --force-fp32 to export the fp32 graph anyway.")


def cmd_compress(args) -> int:
    """Shrink a run's model (int8, pruning, distillation) into a new run folder beside it, with a measured table."""
    from kiln.workflows.compress import compress_run
    compress_run(args.run, quantize=args.quantize, mode=args.mode, prune=args.prune, structured=args.structured,
                 epochs=args.epochs, budget=args.budget, allow_slower=args.allow_slower,
                 backends=tuple(args.backends.split(",")), calibration_data=args.calibration_data,
                 output_dir=args.output, rounds=args.rounds, threads=args.threads,
                 calibration_rows=args.calibration_rows, distill_into=args.distill_into,
                 temperature=args.temperature, alpha=args.alpha, verbose=True)
    return 0


def cmd_explain(args) -> int:
    """Explain a run's predictions for the rows of a data file: explanations.json, pictures, report section."""
    import time

    from kiln.data import read_source
    from kiln.explain.folder import EXPLANATIONS_FILE, add_to_report, explain_run
    from kiln.workflows.run import load_run
    run = load_run(args.run)
    frame = read_source(args.data, format=args.format)
    out_dir = Path(args.output) if args.output else Path(args.run)
    started = time.perf_counter()
    explanations = explain_run(run, frame, out_dir, method=args.method, target=args.target, output=args.output_feature,
                               features=args.feature or None, checks=not args.no_checks, n_steps=args.steps)
    seconds = time.perf_counter() - started
    if add_to_report(Path(args.run) / "report.html", explanations, out_dir):
        print(f"added an Explanations section to {Path(args.run) / 'report.html'}")
    top = ", ".join(f"{n} {v:.4g}" for n, v in list(explanations["mean_abs_attribution"].items())[:5])
    print(f"explained {len(frame)} row(s) with {args.method} in {seconds:.1f} s; mean |attribution|: {top}")
    for name, check in explanations["checks"].items():
        passed = "passed" if check["passed"] else "FAILED"
        print(f"  check {name}: {passed}" + "".join(f" ({n})" for n in check.get("notes", [])))
    print(f"wrote {out_dir / EXPLANATIONS_FILE}")
    return 0


def cmd_card(args) -> int:
    """Write a run's MODEL_CARD.md again (model details, intended use, metrics with 95% intervals, data, ...)."""
    from kiln.config import load_config
    from kiln.reports.card import write_card
    from kiln.workflows.run import load_run
    from kiln.workflows.train import read_and_split
    frame, splits = read_and_split(load_config(Path(args.run) / "config.yaml"))  # the data as training split it
    print(f"wrote {write_card(load_run(args.run), args.run, frame, splits)}")
    return 0


def cmd_serve(args) -> int:
    """Serve a run over HTTP: POST /predict, /health, /metadata, /metrics (needs kiln[serve])."""
    try:
        import uvicorn  # noqa: F401 - only: is it installed?
    except ImportError as err:
        raise _UsageError("kiln serve needs FastAPI and uvicorn: pip install 'kiln[serve]'.") from err
    from kiln_edge.serve import settings_from_args  # torch-free: both backends take these settings
    try:
        settings = settings_from_args(args)
    except ValueError as err:
        raise _UsageError(str(err)) from err
    from kiln_edge.serve import port_problem
    problem = port_problem(args.host, args.port)
    if problem:  # before the model loads, not after (uvicorn's exit 3)
        raise _RunError(problem)
    if args.backend == "onnx":
        # This process may hold torch already (kiln's CLI imports it): become the torch-free server
        # (`python -m kiln_edge.serve`, every flag forwarded) instead, so torch is never loaded where
        # the model runs and signals reach the server itself.
        import os

        from kiln_edge.serve import command_line
        command = command_line(args.run, args.host, args.port, settings, args.api_key_file)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)
    from kiln.serve.app import create_app, load_backend
    app = create_app(load_backend(args.run), settings)
    print(f"serving {args.run} on http://{args.host}:{args.port} (torch; docs: /docs)", flush=True)
    from kiln_edge.server.connections import serve_until_stopped  # header/body/idle timeouts (docs/serving.md)
    if not serve_until_stopped(app, settings, args.host, args.port):
        raise _RunError(f"the server could not listen on {args.host}:{args.port} (see the line above).")
    return 0


def cmd_version(args) -> int:
    """Print kiln's and torch's versions (a torch-free install says so: docs/edge.md)."""
    import importlib.metadata

    import kiln
    try:
        torch = f"torch {importlib.metadata.version('torch')}"
    except importlib.metadata.PackageNotFoundError:
        torch = "no torch: predict/serve with --backend onnx only"
    print(f"kiln {kiln.__version__} ({torch})")
    return 0


class _UsageError(Exception):
    pass


class _RunError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln", description="kiln: the deep-learning lifecycle from one YAML file")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, fn):
        return sub.add_parser(name, help=fn.__doc__.splitlines()[0], description=fn.__doc__)

    p = add("train", cmd_train)
    p.add_argument("config", nargs="?")
    p.add_argument("--output", help="folder for run folders (default: the config's output_dir)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--nproc", type=int, metavar="N", help="train data-parallel on N processes per machine "
                   "(torchrun underneath: gloo on CPU, nccl on GPU)")
    p.add_argument("--nnodes", type=int, default=1, help="machines in the job (default 1)")
    p.add_argument("--node-rank", type=int, default=0, help="this machine's index, 0..nnodes-1 (default 0)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="where the machines meet (several machines)")
    p.add_argument("--max-restarts", type=int, default=0, help="restarts after a process fails (default 0)")
    p = add("tune", cmd_tune)
    p.add_argument("config", nargs="?")
    p.add_argument("--trials", type=int, help="total trials of the study (default: tune.trials)")
    p.add_argument("--jobs", type=int, help="trials at once, each in its own process (default: tune.jobs)")
    p.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    p.add_argument("--output", help="folder for tune folders (default: tunes)")
    p.add_argument("--storage", metavar="URL", help="a database shared by several machines (default: study.db)")
    p.add_argument("--resume", metavar="TUNE", help="continue a tune folder's study; --trials is the total")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--quiet", action="store_true")
    p = add("validate", cmd_validate)
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p = add("init", cmd_init)
    p.add_argument("path", nargs="?", default="kiln.yaml")
    p.add_argument("--kind", choices=["image", "tabular", "text"], default="tabular")
    p.add_argument("--force", action="store_true")
    for name, fn in (("evaluate", cmd_evaluate), ("predict", cmd_predict)):
        p = add(name, fn)
        p.add_argument("run")
        p.add_argument("--data", required=True)
        p.add_argument("--format", default="auto")
        if name == "predict":
            p.add_argument("--output", default="predictions.csv")
            p.add_argument("--id-column", default=None, metavar="COLUMN",
                           help="copy this column of the data (an ID) into the predictions, first")
        p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                       help="onnx: NumPy features + onnxruntime on RUN/export/model.onnx (kiln export first)"
                            + ("; it has no loss: metrics of numeric outputs only" if name == "evaluate" else ""))
    for name, fn in (("info", cmd_info), ("report", cmd_report)):
        add(name, fn).add_argument("run")
    p = add("export", cmd_export)
    p.add_argument("run")
    p.add_argument("--format", choices=["onnx", "safetensors"], default="onnx")
    p.add_argument("--force-fp32", action="store_true", help="export an int8 run's dequantized fp32 graph over "
                   "its int8 export/model.onnx")
    p = add("compress", cmd_compress)
    p.add_argument("run")
    p.add_argument("--quantize", choices=["int8"], help="int8: the fastest int8 backend within --budget")
    p.add_argument("--mode", default="dynamic", help="dynamic (int8 weights, activations per batch) or static "
                   "(ONNX Runtime, activation ranges calibrated on training rows; Conv too) or qat (fine-tune --epochs N "
                   "through fake int8 rounding, then dynamic int8)")
    p.add_argument("--calibration-rows", type=int, default=512, help="training rows for --mode static (512)")
    p.add_argument("--prune", type=float, metavar="AMOUNT", help="fraction in [0, 1) of weights (or, with "
                   "--structured, of each hidden layer's units/filters) to remove")
    p.add_argument("--structured", action="store_true", help="remove whole units/filters: a smaller model")
    p.add_argument("--distill-into", metavar="MODEL", help="train a student (a zoo name, e.g. mlp, or a YAML file "
                   "with a model: section) against RUN's model; needs --epochs")
    p.add_argument("--temperature", type=float, default=4.0, help="distillation temperature (4.0)")
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the teacher term in the KD loss (0.9)")
    p.add_argument("--epochs", type=int, default=0, help="fine-tuning epochs for pruning, training epochs for "
                   "--distill-into (default 0)")
    p.add_argument("--budget", type=float, default=0.01, help="allowed relative drop of the test metric (0.01)")
    p.add_argument("--allow-slower", action="store_true", help="write the int8 run even if it is not faster")
    p.add_argument("--backends", default="torch,torchao,onnx", help="int8 candidates to measure")
    p.add_argument("--calibration-data", metavar="FILE", help="rows to score on, if the run's data moved")
    p.add_argument("--output", help="folder for the new run (default: beside RUN)")
    p.add_argument("--rounds", type=int, default=7, help="alternating timing rounds (default 7)")
    p.add_argument("--threads", type=int, help="CPU threads for torch and onnxruntime while measuring")
    p = add("explain", cmd_explain)
    p.add_argument("run")
    p.add_argument("--data", required=True, help="rows to explain (the run's input columns)")
    p.add_argument("--format", default="auto")
    p.add_argument("--method", choices=["ig", "saliency", "smoothgrad", "occlusion", "shap"], default="ig")
    p.add_argument("--target", help="the class to explain (default: each row's predicted class)")
    p.add_argument("--output-feature", help="the output feature, for a run with several")
    p.add_argument("--feature", action="append", default=[], help="report only this input feature (repeatable)")
    p.add_argument("--steps", type=int, default=32, help="IG steps to start from (raised until completeness holds)")
    p.add_argument("--no-checks", action="store_true", help="skip the completeness and randomisation checks")
    p.add_argument("--output", help="folder for explanations.json and pictures (default: the run folder)")
    add("card", cmd_card).add_argument("run")
    p = add("serve", cmd_serve)
    p.add_argument("run")
    from kiln_edge.serve import add_server_flags  # torch-free; the onnx server reads the same flags
    add_server_flags(p)
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="onnx: a torch-free server (python -m kiln_edge.serve) on RUN/export/model.onnx")
    add("version", cmd_version)
    return parser


COMMANDS = {"train": cmd_train, "tune": cmd_tune, "validate": cmd_validate, "init": cmd_init, "evaluate": cmd_evaluate,
            "predict": cmd_predict, "info": cmd_info, "report": cmd_report, "export": cmd_export,
            "compress": cmd_compress, "explain": cmd_explain, "card": cmd_card, "serve": cmd_serve,
            "version": cmd_version}


def main(argv=None) -> int:
    from kiln.errors import ConfigError, KilnError
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if exit_.code in (0, None) else 2
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, _UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (KilnError, _RunError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug in kiln: say where, without a wall of frames
        # ...unless a torch-free install (docs/edge.md) lacks a base dependency the command needs:
        # then name every missing one at once, and the torch-free alternative.
        import importlib.util
        base = {"torch": "torch", "yaml": "pyyaml", "pydantic": "pydantic", "tqdm": "tqdm",
                "safetensors": "safetensors", "numpy": "numpy"}
        failed = (getattr(err, "name", None) or "").split(".")[0] if isinstance(err, ModuleNotFoundError) else ""
        if failed in base:
            def installed(module):
                try:
                    return importlib.util.find_spec(module) is not None
                except (ImportError, ValueError):  # a module that refuses to be found is not installed
                    return False
            missing = [pip for module, pip in base.items() if module == failed or not installed(module)]
            names = ", ".join("PyTorch" if pip == "torch" else pip for pip in missing)
            print(f"error: kiln {args.command} needs {names}, which {'is' if len(missing) == 1 else 'are'} not "
                  f"installed here: pip install {' '.join(missing)} (or use --backend onnx for predict/serve)",
                  file=sys.stderr)
            return 1
        import traceback
        frame = traceback.extract_tb(err.__traceback__)[-1]
        print(f"error: unexpected {type(err).__name__}: {err} (at {frame.filename}:{frame.lineno}). "
              f"Please report it with the command you ran.", file=sys.stderr)
        return 1
