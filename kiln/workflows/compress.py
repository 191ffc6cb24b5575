"""The `kiln compress` workflow: a trained run folder -> a new, smaller run folder beside it.

    kiln compress runs/mnist-cnn-20261203-101500 --quantize int8          # -> runs/mnist-cnn-...-int8
    kiln compress RUN --prune 0.5 --structured                            # -> RUN-pruned50s
    kiln compress RUN --quantize int8 --mode qat --epochs 2               # -> RUN-int8-qat

Steps: load the source run -> read and split its data exactly as training did (the test split
scores every variant; the training split fine-tunes) -> build the variants (pruned, then int8
candidates: torch.ao, torchao, ONNX Runtime; with ``--mode qat`` after fine-tuning through
fake int8 rounding, ``kiln.compress.qat``) -> fall back layer by layer to fp32 where a
torch candidate misses the accuracy budget -> measure fp32 and every variant in one process
(``kiln.compress.measurement``) -> pick the fastest int8 candidate within budget -> write the run.

The new run is a normal run folder: ``config.yaml`` (the source's), ``model/`` (architecture
JSON + safetensors, loadable by ``kiln.load_model``; features and roles copied), ``evaluation.json``
(the new model on the test split), ``compression.json`` (recipe, lineage, the measured table),
and for int8 ``export/model.onnx`` (the int8 ONNX graph, for ``--backend onnx``).

How int8 is stored, never pickled: ``model/int8.safetensors`` holds each quantized layer's int8
weights and per-output-channel scales and ``model/quantization.json`` the recipe; the layers'
fp32-layout weights in ``model/model.safetensors`` are the dequantized ``q * scale``, so the
torch backend (evaluate/predict/serve/info) runs the weight-int8 model in float arithmetic,
and ``export/model.onnx`` runs int8 kernels in ONNX Runtime. The source run is only read.

Raises:
    KilnValueError: a bad argument (names the value and the fix), or a run that cannot be
        compressed this way (already int8, several outputs).
    DataError: the run's data cannot be read (pass ``--calibration-data``).
    NoSpeedupError: no int8 candidate beats fp32 on this machine (the table says by how much).
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from kiln.errors import DataError, KilnError, KilnValueError

__all__ = ["compress_run", "CompressResult", "NoSpeedupError"]

_MODEL_FILES = {"config.json", "model.safetensors", "optimizer.safetensors", "int8.safetensors", "quantization.json"}


class NoSpeedupError(KilnError, RuntimeError):
    """No int8 candidate was faster than fp32 here; ``--allow-slower`` writes the best one anyway."""


@dataclass
class CompressResult:
    run_dir: Path
    rows: list
    chosen: str
    report: dict = field(repr=False, default_factory=dict)


# ---------------------------------------------------------------------- checks
def _check_args(quantize, mode, prune, budget, backends, distill_into=None, epochs=0) -> None:
    from kiln.compress.prune import _check_amount
    from kiln.compress.quantize import BACKENDS
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise KilnValueError(f"Received an invalid value for `--backends`, expected a comma-separated subset of "
                             f"{','.join(BACKENDS)}. Received: {','.join(backends)!r}")
    if quantize is None and prune is None and distill_into is None:
        raise KilnValueError("kiln compress needs something to do: --quantize int8, --prune AMOUNT and/or "
                             "--distill-into MODEL.")
    if distill_into is not None and epochs < 1:
        raise KilnValueError(f"--distill-into trains the student: pass --epochs N (N >= 1). Received: epochs={epochs}")
    if quantize not in (None, "int8"):
        raise KilnValueError(f"Received an invalid value for `--quantize`, expected 'int8'. Received: {quantize!r}")
    if mode not in ("dynamic", "static", "qat"):
        raise KilnValueError(f"Received an invalid value for `--mode`, expected dynamic (int8 Dense/Linear weights, "
                             f"activations quantized per batch), static (ONNX Runtime int8 with calibrated "
                             f"activations, Conv included) or qat (dynamic int8 after fake-quant fine-tuning, "
                             f"needs --epochs). Received: {mode!r}")
    if mode == "qat" and (quantize is None or epochs < 1):
        raise KilnValueError(f"--mode qat fine-tunes with int8 rounding before quantizing: pass --quantize int8 and "
                             f"--epochs N (N >= 1). Received: quantize={quantize!r}, epochs={epochs}")
    if prune is not None:
        _check_amount(prune)
    if not 0 < budget < 1:
        raise KilnValueError(f"Received an invalid value for `--budget` (the allowed relative drop of the test "
                             f"metric), expected a number in (0, 1), e.g. 0.01. Received: {budget!r}")


def _check_source(source: Path, quantize, prune) -> dict | None:
    record = source / "compression.json"
    if not record.exists():
        return None
    previous = json.loads(record.read_text())
    if previous.get("quantization"):
        origin = previous.get("source_run", "its source run")
        what = "quantize it again" if quantize else "prune its int8 weights"
        raise KilnValueError(f"{source} is already int8-quantized (from {origin}); it makes no sense to {what}. "
                             f"Compress the source instead: kiln compress {origin} "
                             + (f"--prune {prune} " if prune is not None else "") + "--quantize int8")
    return previous


# ---------------------------------------------------------------------- data
def _splits(source: Path, calibration_data):
    """The source's train/test rows, split as `kiln train` split them (its own read_and_split)."""
    from kiln.config import load_config
    from kiln.workflows.train import read_and_split
    config = load_config(source / "config.yaml")
    path = calibration_data if calibration_data is not None else config.data.source
    try:
        _, splits = read_and_split(config.model_copy(update={"data": config.data.model_copy(update={"source": path})}))
    except (OSError, ValueError) as err:
        raise DataError(f"Cannot read the data to score and calibrate on, {path!s} ({err}). Pass a readable file "
                        f"with the run's columns as --calibration-data FILE.") from err
    return config, splits


def _scorer(feature, kind: str, y):
    """``outputs -> {metric: value}`` on the encoded test targets, and whether higher is better."""
    y = np.asarray(y)
    if feature.type == "category":
        return (lambda out: {"accuracy": float(np.mean(out.argmax(1) == y.reshape(-1)))}), "accuracy", True
    if feature.type == "binary":
        threshold = 0.0 if kind == "logits" else 0.5
        return (lambda out: {"accuracy": float(np.mean((out.reshape(-1) > threshold) == (y.reshape(-1) > 0.5)))},
                "accuracy", True)
    return (lambda out: {"mae": float(np.mean(np.abs(out.reshape(len(y), -1) - y.reshape(len(y), -1))))}), "mae", False


def _within(value, reference, higher_is_better: bool, budget: float) -> bool:
    if higher_is_better:
        return value >= reference * (1 - budget) - 1e-12
    return value <= reference * (1 + budget) + 1e-12


# ---------------------------------------------------------------------- variants
def _torch_predict(model):
    def predict(batch):
        with torch.no_grad():
            out = model(batch)
        out = next(iter(out.values())) if isinstance(out, dict) else out
        return out.float().numpy()
    return predict


def _onnx_predict(path: Path, threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # the same threads torch uses, for a fair table
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def predict(batch):
        return session.run(None, {n: batch[n].numpy() for n in names})[0]
    return predict


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _out_first(layer) -> torch.Tensor:
    """A layer's weight as (out, fan_in): kiln Dense keeps (in, units); convs and nn.Linear lead with out."""
    from kiln.layers.dense import Dense
    if isinstance(layer, Dense):
        return layer.kernel.detach().t()
    w = layer.kernel.detach() if hasattr(layer, "kernel") else layer.weight.detach()
    return w.reshape(w.shape[0], -1)


def _int8_tensors(model, layer_names) -> dict:
    """``{"<layer>.q": int8 (out, fan_in), "<layer>.scale": (out,)}`` for each quantized layer."""
    from kiln.compress.quantize import int8_weights
    tensors = {}
    for name in layer_names:
        q, scale = int8_weights(_out_first(model.get_submodule(name)))
        tensors[f"{name}.q"], tensors[f"{name}.scale"] = q, scale
    return tensors


def _dequantized(model, tensors: dict, layer_names):
    """A copy of ``model`` whose quantized layers hold ``q * scale``: the int8 weights as floats."""
    from kiln.layers.dense import Dense
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name in layer_names:
            layer = model.get_submodule(name)
            w = tensors[f"{name}.q"].float() * tensors[f"{name}.scale"][:, None]  # (out, fan_in)
            target = layer.kernel if hasattr(layer, "kernel") else layer.weight
            target.copy_(w.t() if isinstance(layer, Dense) else w.reshape(target.shape))
    return model


def _safetensors_size(tensors: dict) -> int:
    from kiln.saving.weights_io import state_to_safetensors_bytes
    return len(state_to_safetensors_bytes(tensors))


def _examples(run, x_test) -> dict:
    return {f.name: torch.as_tensor(x_test[f.name][:4]) for f in run.inputs}


def _torch_candidate(base, backend, score, reference, higher, metric, budget, x_test, log, per_channel=False):
    """Quantize with ``backend``; keep Dense layers fp32 from the output backwards until the
    test metric is within budget. Returns (QuantizeResult, value) or (None, reason).
    ``per_channel`` (torch backend): the per-output-channel grid QAT trained on."""
    from kiln.compress.measurement import Variant, predict_all
    from kiln.compress.quantize import quantize
    keep: list[str] = []
    extra = {"per_channel": True} if per_channel and backend == "torch" else {}
    result = quantize(base, "int8", backend=backend, **extra)
    if not result.quantized_layers:
        return None, "no layer it can quantize (dynamic int8 covers Dense/Linear)"
    order = list(reversed(result.quantized_layers))
    while True:
        value = score(predict_all(Variant(backend, _torch_predict(result.model)), x_test))[metric]
        if _within(value, reference, higher, budget):
            return result, value
        if not order:
            return None, f"{metric} {value:.4g} misses the budget even with every layer fp32"
        keep.append(order.pop(0))
        log(f"  {backend}: {metric} {value:.4g} outside the budget; keeping {keep[-1]} fp32")
        result = quantize(base, "int8", backend=backend, keep_fp32=keep, **extra)
        if not result.quantized_layers:
            return None, f"{metric} stays outside the {budget:.1%} budget unless every layer is fp32"


# ---------------------------------------------------------------------- the workflow
def compress_run(source, *, quantize: str | None = None, mode: str = "dynamic", prune: float | None = None,
                 structured: bool = False, epochs: int = 0, budget: float = 0.01, allow_slower: bool = False,
                 backends=("torch", "torchao", "onnx"), calibration_data=None, output_dir=None, rounds: int = 7,
                 threads: int | None = None, calibration_rows: int = 512, distill_into: str | None = None,
                 temperature: float = 4.0, alpha: float = 0.9, verbose: bool = True) -> CompressResult:
    """Compress the run at ``source`` into a new run folder beside it; see the module docstring.

    ``threads`` (default None: torch's current setting) is used by torch and ONNX Runtime alike
    while measuring; on a loaded machine 1 gives steadier numbers than oversubscribed cores.
    ``mode="static"`` calibrates ONNX Runtime's activation ranges on ``calibration_rows``
    training rows (default 512), encoded by the run's own features. ``distill_into`` (a zoo
    name or a YAML file with a ``model:`` section) trains that student on the run's features
    against the run's model (``kiln.compress.kd_loss``, ``temperature``, ``alpha``) for
    ``epochs``; pruning and int8 then apply to the student.
    """
    from kiln.compress.measurement import Variant, format_table, measure
    from kiln.workflows.run import load_run
    log = print if verbose else (lambda *a, **k: None)
    _check_args(quantize, mode, prune, budget, tuple(backends), distill_into, epochs)
    source = Path(source)
    previous = _check_source(source, quantize, prune)
    run = load_run(source)
    if len(run.outputs) != 1:
        raise KilnValueError(f"{source} has {len(run.outputs)} output features; kiln compress handles one output "
                             f"in this version.")
    config, splits = _splits(source, calibration_data)
    test = splits["test"] if len(splits["test"]) else splits["validation"]
    x_test, y_test = run.encode_inputs(test), run.encode_targets(test)
    feature = run.outputs[0]
    score, metric, higher = _scorer(feature, run.output_kinds.get(feature.name, "logits"), y_test)
    base = run.model.eval()
    previous_threads = torch.get_num_threads()
    threads = int(threads) if threads else previous_threads
    fp32_size = (source / "model" / "model.safetensors").stat().st_size
    variants = [Variant("fp32", _torch_predict(base), "torch", fp32_size, _params(base))]
    report: dict = {"source_run": str(source.resolve()), "recipe": {"quantize": quantize, "mode": mode, "prune": prune,
                    "structured": structured, "epochs": epochs, "budget": budget}}
    if previous:
        report["source_compression"] = previous.get("recipe")

    suffix = []
    student_kinds = None
    if distill_into is not None:  # -- a student trained against the run's model
        base, student_kinds = _distill_student(run, distill_into, splits["train"], config, epochs, temperature, alpha)
        from kiln.saving.weights_io import state_to_safetensors_bytes
        variants.append(Variant("distilled", _torch_predict(base), "torch",
                                len(state_to_safetensors_bytes(base.state_dict())), _params(base)))
        report["distillation"] = {"student": distill_into, "temperature": temperature, "alpha": alpha,
                                  "epochs": epochs, "output_kinds": student_kinds}
        suffix.append("distilled")

    # -- prune (optional), fine-tuned on the training split
    if prune is not None:
        from kiln.compress.prune import prune as prune_model
        from kiln.saving.weights_io import state_to_safetensors_bytes
        x_train, y_train = run.encode_inputs(splits["train"]), run.encode_targets(splits["train"])
        batch = config.training.batch_size
        pruned = prune_model(base, prune, structured=structured, x=None if structured else x_train,
                             y=y_train, epochs=0 if structured else epochs, batch_size=batch)
        if structured and epochs:
            pruned.model.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=0)
        base = pruned.model.eval()
        report["pruning"] = {"sparsity": pruned.sparsity, "kept_units": {k: len(v) for k, v in pruned.kept.items()},
                             "skipped": pruned.skipped}
        for name, why in pruned.skipped.items():
            log(f"  pruning left {name} whole: {why}")
        variants.append(Variant("pruned", _torch_predict(base), "torch",
                                len(state_to_safetensors_bytes(base.state_dict())), _params(base)))
        suffix.append(f"pruned{round(prune * 100)}{'s' if structured else ''}")

    # -- QAT (optional): fine-tune through int8 rounding; the kernels end on the int8 grid
    if quantize and mode == "qat":
        from kiln.compress.qat import finish_qat, prepare_qat, qat_fine_tune
        from kiln.saving.weights_io import state_to_safetensors_bytes
        from kiln.workflows.train import LOSS_FOR_TYPE
        x_train, y_train = run.encode_inputs(splits["train"]), run.encode_targets(splits["train"])
        rate = getattr(config.training.optimizer, "learning_rate", None)
        rate = 0.1 * rate if isinstance(rate, (int, float)) else 1e-4  # a nudge, not a retraining
        logits = run.output_kinds.get(feature.name, "logits") == "logits"
        prepared = prepare_qat(base)
        log(f"QAT: fine-tuning {len(prepared.layers)} Dense layers with fake int8 for {epochs} epochs "
            f"(learning rate {rate:g})...")
        qat_fine_tune(prepared, x_train, y_train, loss=LOSS_FOR_TYPE[feature.type](logits), epochs=epochs,
                      batch_size=config.training.batch_size, learning_rate=rate)
        base = finish_qat(prepared)
        report["qat"] = {"layers": prepared.layers, "epochs": epochs, "learning_rate": rate,
                         "weights": "symmetric int8 per output channel (max|w|/127)",
                         "inputs": "dynamic uint8 per batch, range 0..127 (fbgemm reduce_range)"}
        variants.append(Variant("qat", _torch_predict(base), "torch",
                                len(state_to_safetensors_bytes(base.state_dict())), _params(base)))

    # -- int8 candidates
    tmp = Path(tempfile.mkdtemp(prefix="kiln-compress-"))
    candidates: dict = {}
    rejected: dict = {}
    try:
        torch.set_num_threads(threads)
        if quantize:
            suffix.append({"dynamic": "int8", "static": "int8-static", "qat": "int8-qat"}[mode])
            float_name = variants[-1].name  # int8 is judged against the float model it quantizes
            reference = score(_predict_all(variants[-1], x_test))[metric]
            torch_backends = [b for b in backends if b in ("torch", "torchao")]
            if mode == "static":
                for backend in torch_backends:
                    rejected[backend] = "static int8 is built for the onnx backend only so far"
                torch_backends = []
                if "onnx" not in backends:
                    raise KilnValueError("--mode static quantizes through ONNX Runtime: include onnx in --backends.")
            for backend in torch_backends:
                try:
                    result, value = _torch_candidate(base, backend, score, reference, higher, metric, budget,
                                                     x_test, log, per_channel=mode == "qat")
                except KilnError as err:
                    rejected[backend] = str(err)
                    continue
                if result is None:
                    rejected[backend] = value
                    continue
                tensors = _int8_tensors(base, result.quantized_layers)
                keep = {k: v for k, v in base.state_dict().items()
                        if not any(k.startswith(f"{n}.") for n in result.quantized_layers)}
                candidates[f"int8-{backend}"] = result
                variants.append(Variant(f"int8-{backend}", _torch_predict(result.model), backend,
                                        _safetensors_size({**tensors, **keep}), _params(base)))
            if "onnx" in backends:
                try:
                    calibration = None
                    if mode == "static":
                        calibration = _calibration(run, splits["train"], calibration_rows, config.training.batch_size)
                    onnx_int8 = _onnx_candidate(base, _examples(run, x_test), tmp, calibration)
                    variants.append(Variant("fp32-onnx", _onnx_predict(tmp / "fp32.onnx", threads), "onnx",
                                            (tmp / "fp32.onnx").stat().st_size, _params(base)))
                    variants.append(Variant("int8-onnx", _onnx_predict(onnx_int8, threads), "onnx",
                                            onnx_int8.stat().st_size, _params(base)))
                    candidates["int8-onnx"] = onnx_int8
                except (KilnError, ImportError, RuntimeError) as err:
                    rejected["onnx"] = f"export or quantization failed: {err}"

        log(f"measuring {len(variants)} variants ({rounds} alternating rounds) on {len(test)} test rows...")
        rows = measure(variants, x_test, score, rounds=rounds)
        table = format_table(rows)
        log(table)
        chosen = variants[-1].name if not quantize else None
        if quantize:
            by_name = {r["variant"]: r for r in rows}
            within = [n for n in candidates if _within(by_name[n][metric], by_name[float_name][metric], higher, budget)]
            for name in candidates:
                if name not in within:
                    rejected[name] = f"{metric} {by_name[name][metric]:.4g} outside the {budget:.1%} budget"
            if not within:
                raise KilnValueError(f"No int8 candidate keeps {metric} within {budget:.1%} of fp32 "
                                     f"({rejected}). Raise --budget, or prune without --quantize.\n{table}")
            speed = {n: (by_name[n]["speedup_b1"] * by_name[n]["speedup_b32"]) ** 0.5 for n in within}
            chosen = max(speed, key=speed.get)
            faster = by_name[chosen]["latency_b32_ms"] < by_name["fp32"]["latency_b32_ms"] or \
                by_name[chosen]["latency_b1_ms"] < by_name["fp32"]["latency_b1_ms"]
            if not faster and not allow_slower:
                raise NoSpeedupError(f"No int8 candidate beats fp32 latency on this machine (best: {chosen}, "
                                     f"{speed[chosen]:.2f}x of fp32's speed). Measured:\n{table}\nPass "
                                     f"--allow-slower to write it anyway (it is still smaller).")
        run_dir = _write_run(source, run, base, suffix, output_dir, chosen, candidates, rows, report, rejected,
                             test, metric, budget, threads, mode, student_kinds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        torch.set_num_threads(previous_threads)
    record = json.loads((run_dir / "compression.json").read_text())
    log(f"chosen: {chosen}")
    for name, why in record["rejected"].items():
        log(f"  not chosen: {name}: {why}")
    for name, why in ((record.get("quantization") or {}).get("fp32_layers") or {}).items():
        log(f"  kept fp32: {name} ({why})")
    log(f"run: {run_dir}")
    return CompressResult(run_dir, rows, chosen, record)


def _distill_student(run, spec: str, train, config, epochs: int, temperature: float, alpha: float):
    """Build the student from ``spec`` on the run's features, distill it, compile it for evaluate."""
    import yaml
    from pydantic import ValidationError

    from kiln.compress.distill import distill
    from kiln.config.schema import ModelConfig
    from kiln.workflows.model_builder import build_model
    from kiln.workflows.train import LOSS_FOR_TYPE, METRICS_FOR_TYPE
    feature = run.outputs[0]
    if feature.type not in ("category", "numeric"):
        raise KilnValueError(f"--distill-into: distilling a {feature.type} output is not built yet (category and "
                             f"numeric outputs are).")
    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise KilnValueError(f"--distill-into {spec}: no such file. Pass a zoo name (e.g. mlp) or a YAML file "
                                 f"with a `model:` section.")
        data = yaml.safe_load(path.read_text()) or {}
        data = data.get("model", data) if isinstance(data, dict) else data
    else:
        data = {"zoo": {"name": spec}}
    try:
        model_config = ModelConfig.model_validate(data)
    except ValidationError as err:
        raise KilnValueError(f"--distill-into {spec}: not a model config ({err.errors()[0]['msg']}). Pass a zoo "
                             f"name (e.g. mlp) or a YAML file with a `model:` section.") from err
    student, kinds = build_model(model_config, run.inputs, run.outputs, name="student")
    x, y = run.encode_inputs(train), run.encode_targets(train)
    task = "regression" if feature.type == "numeric" else "classification"
    rate = getattr(config.training.optimizer, "learning_rate", None)  # the run's own, when it names one
    distill(run.model.eval(), student, x, y, temperature=temperature, alpha=alpha, epochs=epochs,
            batch_size=config.training.batch_size, task=task,
            learning_rate=rate if isinstance(rate, (int, float)) else 1e-3,
            teacher_outputs=run.output_kinds.get(feature.name, "logits"), student_outputs=kinds[feature.name])
    logits = kinds[feature.name] == "logits"
    student.compile(optimizer="adam", loss=LOSS_FOR_TYPE[feature.type](logits),
                    metrics=METRICS_FOR_TYPE[feature.type](logits))
    return student.eval(), kinds


def _predict_all(variant, x):
    from kiln.compress.measurement import predict_all
    return predict_all(variant, x)


def _calibration(run, train, rows: int, batch_size: int) -> list[dict]:
    """Up to ``rows`` training rows (a seeded sample), encoded by the run's features, in batches."""
    if not isinstance(rows, int) or rows < 1:
        raise KilnValueError(f"Received an invalid value for `--calibration-rows`, expected a positive integer. "
                             f"Received: {rows!r}")
    sample = train.sample(n=min(rows, len(train)), random_state=0)
    encoded = run.encode_inputs(sample)
    return [{name: np.asarray(values[start:start + batch_size]) for name, values in encoded.items()}
            for start in range(0, len(sample), batch_size)]


def _onnx_candidate(base, examples: dict, tmp: Path, calibration: list | None = None) -> Path:
    import contextlib
    import io
    import logging

    from kiln.compress.quantize import quantize_onnx, quantize_onnx_static
    from kiln.export.onnx import export_model_onnx
    root = logging.getLogger()
    level = root.level
    # The exporter prints its progress and ONNX Runtime's quantizer logs a pre-processing hint;
    # the table is what the user came for.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            fp32 = export_model_onnx(base, examples, tmp / "fp32.onnx")
            if calibration is not None:
                return quantize_onnx_static(fp32, tmp / "int8.onnx", calibration)
            return quantize_onnx(fp32, tmp / "int8.onnx")
        finally:
            root.setLevel(level)


def _new_dir(source: Path, suffix: list, output_dir) -> Path:
    base = Path(output_dir) if output_dir else source.parent
    name = f"{source.name}-{'-'.join(suffix)}"
    run_dir, n = base / name, 1
    while run_dir.exists():
        run_dir, n = base / f"{name}-{n}", n + 1
    run_dir.mkdir(parents=True)
    return run_dir


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_run(source, run, base, suffix, output_dir, chosen, candidates, rows, report, rejected, test, metric,
               budget, threads, mode="dynamic", student_kinds=None) -> Path:
    from kiln.saving.weights_io import atomic_write_bytes, state_to_safetensors_bytes
    from kiln.workflows.run import load_run
    run_dir = _new_dir(source, suffix, output_dir)
    model_dir = run_dir / "model"
    model = base
    quantization = None
    if chosen and chosen.startswith("int8"):
        from kiln.compress.quantize import as_linear
        torch_result = next((r for n, r in candidates.items() if n != "int8-onnx"), None)
        if mode == "static":  # ONNX Runtime's static graph quantizes every Dense and Conv
            from kiln.compress.prune import prunable_layers
            layers, fp32_layers = [n for n, _ in prunable_layers(base)], {}
        elif torch_result is not None:
            layers, fp32_layers = torch_result.quantized_layers, torch_result.fp32_layers
        else:  # only the ONNX candidate: store every Dense the torch backends would have quantized
            _, layers, fp32_layers = as_linear(base)
        tensors = _int8_tensors(base, layers)
        model = _dequantized(base, tensors, layers)
        activations = {"static": "calibrated (static, ONNX Runtime QDQ)", "dynamic": "dynamic per batch",
                       "qat": "dynamic per batch, after fake-quant fine-tuning (QAT)"}[mode]
        quantization = {"scheme": f"int8 symmetric, per output channel, weights; activations {activations}",
                        "mode": mode,
                        "backend": chosen.removeprefix("int8-"), "layers": layers, "fp32_layers": fp32_layers,
                        "files": {"int8": "model/int8.safetensors", "onnx": "export/model.onnx"
                                  if "int8-onnx" in candidates else None}}
    model.save(model_dir, include_optimizer=False)
    for item in (source / "model").iterdir():  # fitted features and roles, unchanged
        if item.name not in _MODEL_FILES:
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, model_dir / item.name)
    shutil.copyfile(source / "config.yaml", run_dir / "config.yaml")
    if student_kinds is not None:  # the student may give logits where the teacher gave probabilities
        roles = json.loads((model_dir / "roles.json").read_text())
        roles["outputs"] = student_kinds
        (model_dir / "roles.json").write_text(json.dumps(roles, indent=2))
    if quantization:
        atomic_write_bytes(model_dir / "int8.safetensors", state_to_safetensors_bytes(tensors))
        (model_dir / "quantization.json").write_text(json.dumps(quantization, indent=2))
        if "int8-onnx" in candidates:
            (run_dir / "export").mkdir()
            shutil.copyfile(candidates["int8-onnx"], run_dir / "export" / "model.onnx")
    reloaded = load_run(run_dir)  # the saved run, read back the way evaluate/predict/serve read it
    evaluation = {"test": reloaded.evaluate_frame(test)}
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    report.update({
        "created": datetime.now().isoformat(timespec="seconds"),
        "source_model_sha256": _sha256(source / "model" / "model.safetensors"),
        "chosen": chosen, "quantization": quantization, "rejected": rejected, "budget": budget,
        "metric": metric, "test_rows": len(test), "table": rows,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": threads},
    })
    (run_dir / "compression.json").write_text(json.dumps(report, indent=2))
    _write_report(run_dir, reloaded, evaluation, report)
    return run_dir


def _write_report(run_dir: Path, run, evaluation: dict, record: dict) -> None:
    """report.html for the compressed run: its test metrics, the Compression section and its model
    (it was not trained here: the learning curves are the source run's)."""
    from kiln.reports import ReportContext, write_report
    lines: list[str] = []
    run.model.summary(print_fn=lines.append)
    feature = run.outputs[0]
    context = ReportContext(
        title=f"kiln run {run_dir.name}", run_name=run_dir.name,
        task="regression" if feature.type == "numeric" else "classification",
        final_metrics=evaluation, model_summary="\n".join(lines),
        config_yaml=(run_dir / "config.yaml").read_text(), compression=record,
        notes=[f"Compressed from {record['source_run']} by kiln compress; its report has the learning curves."])
    write_report(run_dir / "report.html", context)
