"""`kiln compress RUN ...`: a compressed run is a run (predict/evaluate/ONNX), the source is never
modified, and bad requests are refused with the value and the fix."""

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln.cli import main
from tests.conftest import write_iris_csv

IRIS = """\
    name: iris
    seed: 0
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.6, validation: 0.2, test: 0.2, stratify: species}}
    input_features:
      - {{name: sepal_length, type: numeric}}
      - {{name: sepal_width, type: numeric}}
      - {{name: petal_length, type: numeric}}
      - {{name: petal_width, type: numeric}}
    output_features:
      - {{name: species, type: category}}
    model:
      layers:
        - Dense: {{units: 32, activation: relu}}
        - Dense: {{units: 16, activation: relu}}
    training:
      epochs: 12
      batch_size: 16
      optimizer: {{name: adam, learning_rate: 0.01}}
      early_stopping: null
"""


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    from kiln.config import load_config
    from kiln.workflows.train import train
    tmp = tmp_path_factory.mktemp("compress")
    write_iris_csv(tmp)
    (tmp / "cfg.yaml").write_text(textwrap.dedent(IRIS.format(out=tmp / "runs", csv=tmp / "iris.csv")))
    result = train(load_config(tmp / "cfg.yaml"), verbose=0)
    return result.run_dir, tmp / "iris.csv"


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def compress(args, capsys) -> tuple[int, str, str]:
    code = main(["compress", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow  # trains a small run, exports ONNX and times five variants
def test_int8_run_is_a_run_and_the_source_is_untouched(iris_run, tmp_path, capsys):
    source, csv = iris_run
    before = digest(source)
    code, out, err = compress([source, "--quantize", "int8", "--rounds", "1", "--allow-slower", "--threads", "1"],
                              capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    assert target.parent == source.parent and target.name == f"{source.name}-int8"
    assert digest(source) == before
    for name in ("config.yaml", "evaluation.json", "compression.json", "model/config.json", "model/model.safetensors",
                 "model/int8.safetensors", "model/quantization.json", "model/features.json", "export/model.onnx"):
        assert (target / name).exists(), name
    record = json.loads((target / "compression.json").read_text())
    assert record["source_run"] == str(source.resolve())
    assert record["source_model_sha256"] == before["model/model.safetensors"]
    assert [r["variant"] for r in record["table"]][:1] == ["fp32"] and record["chosen"].startswith("int8-")
    assert {"accuracy", "file_mb", "params", "latency_b1_ms", "latency_b32_ms", "throughput_rows_s"} <= set(record["table"][0])
    assert "variant" in out and "latency_b32_ms" in out  # the table is printed too

    from safetensors import safe_open
    with safe_open(str(target / "model" / "int8.safetensors"), "pt") as f:  # int8, not pickled
        assert f.get_tensor("dense.q").dtype.is_floating_point is False and f.get_tensor("dense.q").element_size() == 1

    predictions = {}
    for backend in ("torch", "onnx"):
        for run in (source, target):
            out_csv = tmp_path / f"{run.name}-{backend}.csv"
            if backend == "onnx" and run == source:
                continue
            assert main(["predict", str(run), "--data", str(csv), "--output", str(out_csv), "--backend", backend]) == 0
            predictions[(run.name, backend)] = pd.read_csv(out_csv)["species"]
    reference = predictions[(source.name, "torch")]
    for key, labels in predictions.items():
        assert np.mean(labels == reference) >= 0.99, key
    evaluation = json.loads((target / "evaluation.json").read_text())
    assert evaluation["test"]["accuracy"] >= 0.85


@pytest.mark.slow  # exports and calibrates an ONNX graph
def test_static_int8_calibrates_on_training_rows_and_predicts_through_onnx(iris_run, tmp_path, capsys):
    source, csv = iris_run
    code, out, err = compress([source, "--quantize", "int8", "--mode", "static", "--calibration-rows", "64",
                               "--backends", "onnx", "--rounds", "1", "--allow-slower"], capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    assert target.name == f"{source.name}-int8-static"
    quantization = json.loads((target / "model" / "quantization.json").read_text())
    assert quantization["mode"] == "static" and quantization["layers"] == ["dense", "dense_1", "species"]
    import onnx
    ops = {node.op_type for node in onnx.load(str(target / "export" / "model.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops  # activations quantized with fixed ranges
    for run, backend in ((source, "torch"), (target, "onnx")):
        assert main(["predict", str(run), "--data", str(csv), "--output", str(tmp_path / f"{backend}.csv"),
                     "--backend", backend]) == 0
    fp32, int8 = (pd.read_csv(tmp_path / f"{b}.csv")["species"] for b in ("torch", "onnx"))
    assert np.mean(fp32 == int8) >= 0.99


@pytest.mark.slow
def test_structured_pruning_writes_a_smaller_run(iris_run, capsys):
    source, csv = iris_run
    code, out, err = compress([source, "--prune", "0.5", "--structured", "--epochs", "2"], capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    assert target.name == f"{source.name}-pruned50s"
    record = json.loads((target / "compression.json").read_text())
    assert record["pruning"]["kept_units"] == {"dense": 16, "dense_1": 8}
    fp32, pruned = record["table"][0], record["table"][1]
    assert pruned["params"] < fp32["params"] and pruned["file_mb"] < fp32["file_mb"]
    import kiln
    assert kiln.load_model(target / "model").count_params() == pruned["params"]


def test_no_speedup_exits_1_with_the_measured_table(iris_run, capsys, monkeypatch):
    import kiln.compress.measurement as measure_module
    source, _ = iris_run
    real = measure_module.measure

    def slower(variants, x, score, **kw):  # timing is the machine's; pretend every int8 is slower
        rows = real(variants, x, score, rounds=1)
        for row in rows[1:]:
            row["latency_b1_ms"], row["latency_b32_ms"] = rows[0]["latency_b1_ms"] * 2, rows[0]["latency_b32_ms"] * 2
            row["speedup_b1"] = row["speedup_b32"] = 0.5
        return rows
    monkeypatch.setattr(measure_module, "measure", slower)
    before = sorted(p.name for p in source.parent.iterdir())
    code, _, err = compress([source, "--quantize", "int8", "--backends", "torch"], capsys)
    assert code == 1
    assert "No int8 candidate beats fp32 latency" in err and "latency_b32_ms" in err and "--allow-slower" in err
    assert sorted(p.name for p in source.parent.iterdir()) == before  # nothing written


@pytest.mark.parametrize("args, message", [
    (["--prune", "1.5"], r"Received: amount=1.5. Use e.g. 0.5"),
    (["--quantize", "int8", "--mode", "qat"], r"--mode qat .*pass --quantize int8 and --epochs N .*epochs=0"),
    (["--quantize", "int8", "--mode", "fp4"], r"expected dynamic .*static .*or qat .*Received: 'fp4'"),
    (["--quantize", "int8", "--mode", "static", "--calibration-rows", "0"], "expected a positive integer. Received: 0"),
    (["--quantize", "int8", "--backends", "torch,tensorrt"], "subset of torch,torchao,onnx. Received: 'torch,tensorrt'"),
    ([], "needs something to do: --quantize int8, --prune AMOUNT and/or --distill-into MODEL"),
    (["--quantize", "int8", "--calibration-data", "/nonexistent/rows.csv"],
     r"/nonexistent/rows.csv.*--calibration-data FILE"),
])
def test_bad_requests_name_the_value_and_the_fix(iris_run, capsys, args, message):
    import re
    code, _, err = compress([iris_run[0], *args], capsys)
    assert code == 1 and re.search(message, err), err


def test_compressing_an_int8_run_again_is_refused(iris_run, tmp_path, capsys):
    import shutil
    source, _ = iris_run
    fake = tmp_path / "iris-int8"
    shutil.copytree(source, fake)
    (fake / "compression.json").write_text(json.dumps({"source_run": str(source), "quantization": {"layers": []}}))
    code, _, err = compress([fake, "--quantize", "int8"], capsys)
    assert code == 1
    assert f"already int8-quantized (from {source})" in err and f"kiln compress {source} --quantize int8" in err


def test_unstructured_pruning_with_fine_tuning_keeps_exact_sparsity(iris_run, capsys):
    import kiln
    source, _ = iris_run
    code, out, err = compress([source, "--prune", "0.6", "--epochs", "2", "--rounds", "1"], capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    model = kiln.load_model(target / "model")
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    zeros, total = sum(int((k == 0).sum()) for k in kernels), sum(k.numel() for k in kernels)
    assert zeros == round(0.6 * total)  # fine-tuning did not revive pruned weights
    assert json.loads((target / "compression.json").read_text())["pruning"]["sparsity"]["dense"] > 0


def test_import_kiln_does_not_load_compression_or_its_backends():
    import subprocess
    import sys
    code = ("import sys, kiln; kiln.Sequential; "
            "print(any(m.startswith(('kiln.compress', 'torchao', 'onnxruntime')) for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_distill_into_a_smaller_student_writes_a_run(iris_run, tmp_path, capsys):
    source, csv = iris_run
    student = tmp_path / "student.yaml"
    student.write_text("model:\n  layers:\n    - Dense: {units: 4, activation: relu}\n")
    code, out, err = compress([source, "--distill-into", student, "--epochs", "30", "--rounds", "1",
                               "--output", tmp_path], capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    assert target == tmp_path / f"{source.name}-distilled"
    record = json.loads((target / "compression.json").read_text())
    fp32, distilled = record["table"]
    assert distilled["params"] == 4 * 4 + 4 + 4 * 3 + 3 and distilled["params"] < fp32["params"]
    assert distilled["accuracy"] >= 0.8 and record["distillation"]["temperature"] == 4.0
    assert main(["predict", str(target), "--data", str(csv), "--output", str(tmp_path / "p.csv")]) == 0


@pytest.mark.parametrize("args, message", [
    (["--distill-into", "mlp"], r"--distill-into trains the student: pass --epochs N"),
    (["--distill-into", "missing.yaml", "--epochs", "1"], r"missing.yaml: no such file. Pass a zoo name"),
])
def test_bad_distillation_requests(iris_run, capsys, args, message):
    import re
    code, _, err = compress([iris_run[0], *args], capsys)
    assert code == 1 and re.search(message, err), err


@pytest.mark.slow  # fine-tunes, exports ONNX and times the variants
def test_qat_run_is_stored_on_its_int8_grid_and_predicts(iris_run, tmp_path, capsys):
    from safetensors.torch import load_file
    source, csv = iris_run
    code, out, err = compress([source, "--quantize", "int8", "--mode", "qat", "--epochs", "2", "--backends", "torch",
                               "--rounds", "1", "--allow-slower", "--threads", "1"], capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    assert target.name == f"{source.name}-int8-qat"
    record = json.loads((target / "compression.json").read_text())
    assert record["qat"]["layers"] == ["dense", "dense_1", "species"] and record["quantization"]["mode"] == "qat"
    assert [r["variant"] for r in record["table"]] == ["fp32", "qat", "int8-torch"]
    # QAT leaves the kernels on the stored grid: the saved fp32 weights are exactly q * scale.
    weights, int8 = load_file(target / "model" / "model.safetensors"), load_file(target / "model" / "int8.safetensors")
    for name in record["quantization"]["layers"]:
        assert torch_equal(weights[f"{name}.kernel"].t(), int8[f"{name}.q"].float() * int8[f"{name}.scale"][:, None])
    assert main(["predict", str(target), "--data", str(csv), "--output", str(tmp_path / "qat.csv")]) == 0
    assert main(["predict", str(source), "--data", str(csv), "--output", str(tmp_path / "fp32.csv")]) == 0
    fp32, qat = (pd.read_csv(tmp_path / f"{n}.csv")["species"] for n in ("fp32", "qat"))
    assert np.mean(fp32 == qat) >= 0.95


def torch_equal(a, b) -> bool:
    import torch
    return torch.equal(a, b)


def test_int8_run_has_a_compression_report_and_refuses_an_fp32_export(iris_run, capsys):
    source, _ = iris_run
    code, out, err = compress([source, "--quantize", "int8", "--backends", "torch,onnx", "--rounds", "1",
                               "--allow-slower", "--threads", "1", "--output", source.parent / "report-check"], capsys)
    assert code == 0, err
    target = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    record = json.loads((target / "compression.json").read_text())
    assert main(["report", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str((target / "report.html").resolve())
    page = (target / "report.html").read_text()
    assert '<section id="compression">' in page and f"{record['chosen']} (chosen)" in page
    assert str(source.resolve()) in page and record["source_model_sha256"] in page
    assert all(f"<td>{row['variant']}" in page for row in record["table"])

    before = (target / "export" / "model.onnx").read_bytes()
    assert main(["export", str(target), "--format", "onnx"]) == 1
    err = capsys.readouterr().err
    assert f"{target} is int8-quantized" in err and "already holds its int8 graph" in err and "--force-fp32" in err
    assert (target / "export" / "model.onnx").read_bytes() == before  # the int8 graph is kept
    assert main(["export", str(target), "--format", "safetensors"]) == 0  # the weights file is not affected
    assert main(["export", str(target), "--format", "onnx", "--force-fp32"]) == 0
    assert (target / "export" / "model.onnx").read_bytes() != before
