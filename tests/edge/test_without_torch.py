"""The torch-free path where torch is not installed: ``kiln predict --backend onnx`` works, and the
commands that need torch say so in one line.

Fast tests run the CLI in a subprocess where a ``sys.meta_path`` finder makes ``import torch`` fail
as if torch were not installed. The slow test builds a real virtual environment with only kiln (no
dependencies) and the ``edge`` extra's requirements from pyproject.toml, and predicts there.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ROOT = Path(__file__).resolve().parents[2]
# Prepended to a subprocess script: from there on importing one of `blocked` (or a submodule) fails
# exactly as it does where that package is not installed.
BLOCKER = textwrap.dedent("""
    import sys

    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name.split('.')[0]!r}}", name=name.split(".")[0])
            return None

    sys.meta_path.insert(0, _NotInstalled())
""")
# kiln's base dependencies that the `edge` extra leaves out: the torch-free path must not need them.
NOT_EDGE = ("torch", "yaml", "pydantic", "tqdm")
NEEDS_TORCH = ("needs PyTorch, which is not installed here: pip install torch "
               "(or use --backend onnx for predict/serve)")


@pytest.fixture
def rows_csv(raw_rows, tmp_path):
    path = tmp_path / "rows.csv"
    raw_rows.to_csv(path, index=False)
    return path


@pytest.fixture
def torch_predictions(run_dir, rows_csv, tmp_path):
    """What the torch backend writes for rows.csv, computed in this (torch) process."""
    from kiln.cli import main
    out = tmp_path / "torch.csv"
    assert main(["predict", str(run_dir), "--data", str(rows_csv), "--output", str(out), "--backend", "torch"]) == 0
    return pd.read_csv(out)


def assert_same_predictions(got: pd.DataFrame, expected: pd.DataFrame):
    assert list(got.columns) == list(expected.columns)
    assert got["row"].tolist() == expected["row"].tolist()
    assert got["kind"].tolist() == expected["kind"].tolist()
    np.testing.assert_allclose(got.iloc[:, 2:].to_numpy(float), expected.iloc[:, 2:].to_numpy(float), atol=1e-5)


def run_without(blocked: tuple, script: str, timeout=120) -> subprocess.CompletedProcess:
    code = BLOCKER.format(blocked=set(blocked)) + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------- fast: torch blocked
def test_import_kiln_without_torch_keeps_the_public_names_lazy():
    done = run_without(NOT_EDGE, """
        import kiln, kiln.cli, kiln.errors
        from kiln.data import read_source
        assert "torch" not in sys.modules
        assert kiln.__version__ == "0.1.0"
        assert {"Sequential", "layers", "Trainer", "load_model"} <= set(dir(kiln))
        try:
            kiln.layers
        except ModuleNotFoundError as err:
            print("layers needs", err.name)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "layers needs torch"


def test_public_names_still_work_with_torch():
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        import kiln as keras
        assert "torch" not in sys.modules, "import kiln imported torch"
        model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,)), keras.layers.Dense(1)])
        from kiln import *
        from kiln import Input, Model, Trainer, load_model, training
        names = {name: globals()[name] for name in keras.__all__}
        assert names["Sequential"] is keras.models.Sequential and Input is keras.layers.Input
        assert Trainer is training.Trainer and load_model is keras.models.load_model
        print(model.count_params())
    """)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(3 * 4 + 4 + 4 + 1)


def test_cli_predict_onnx_without_torch_matches_torch(run_dir, rows_csv, torch_predictions, tmp_path):
    out = tmp_path / "onnx.csv"
    done = run_without(NOT_EDGE, f"""
        from kiln.cli import main
        code = main(["predict", {str(run_dir)!r}, "--data", {str(rows_csv)!r}, "--output", {str(out)!r},
                     "--backend", "onnx"])
        assert not set({NOT_EDGE!r}) & set(sys.modules), "the onnx path imported a non-edge dependency"
        raise SystemExit(code)
    """)
    assert done.returncode == 0, done.stderr
    assert_same_predictions(pd.read_csv(out), torch_predictions)


def test_commands_that_need_torch_say_so_in_one_line(run_dir, rows_csv):
    commands = {"train": ["train", str(run_dir / "config.yaml")],
                "evaluate": ["evaluate", str(run_dir), "--data", str(rows_csv)],
                "predict": ["predict", str(run_dir), "--data", str(rows_csv), "--output", os.devnull],
                "export": ["export", str(run_dir)]}
    done = run_without(("torch",), f"""
        import contextlib, io, json
        from kiln.cli import main
        results = {{}}
        for name, argv in {commands!r}.items():
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(argv)
            results[name] = [code, err.getvalue()]
        print(json.dumps(results))
    """)
    assert done.returncode == 0, done.stderr
    for name, (code, stderr) in json.loads(done.stdout).items():
        assert code == 1, (name, stderr)
        assert stderr == f"error: kiln {name} {NEEDS_TORCH}\n"


def test_info_reads_the_run_folder_without_torch(run_dir):
    done = run_without(NOT_EDGE, f"""
        from kiln.cli import main
        raise SystemExit(main(["info", {str(run_dir)!r}]))
    """)
    assert done.returncode == 0, done.stderr
    assert "  input  size (numeric) <- column 'size'" in done.stdout
    assert "  output kind (category) <- column 'kind'" in done.stdout
    import safetensors.numpy
    count = sum(a.size for a in safetensors.numpy.load_file(run_dir / "model" / "model.safetensors").values())
    assert f"weights: {count:,} values" in done.stdout


def test_missing_base_dependencies_are_named_together(run_dir):
    done = run_without(NOT_EDGE, f"""
        from kiln.cli import main
        raise SystemExit(main(["train", {str(run_dir / "config.yaml")!r}]))
    """)
    assert done.returncode == 1
    assert done.stderr == ("error: kiln train needs PyTorch, pyyaml, pydantic, tqdm, which are not installed here: "
                           "pip install torch pyyaml pydantic tqdm (or use --backend onnx for predict/serve)\n")


def test_docs_install_the_edge_and_serve_extras_exactly():
    """docs/edge.md's pip lines are the `edge` and `serve` extras of pyproject.toml, word for word."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    lines = [line.removeprefix("pip install ") for line in (ROOT / "docs" / "edge.md").read_text().splitlines()
             if line.startswith('pip install "')]
    assert [shlex.split(line) for line in lines] == [extras["edge"], extras["serve"]]


# ---------------------------------------------------------------------------- slow: a real env
_NETWORK_TROUBLE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name",
                    "Name or service not known", "Network is unreachable", "ConnectTimeoutError",
                    "ReadTimeoutError", "Max retries exceeded", "ProxyError", "Connection refused")


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(sign in output for sign in _NETWORK_TROUBLE):
            pytest.skip(f"pip could not reach the package index: {output[-2000:]}")
        raise AssertionError(f"pip install {' '.join(args)} failed:\n{output[-4000:]}")


@pytest.mark.slow
def test_real_env_without_torch_predicts_like_torch(run_dir, rows_csv, torch_predictions, tmp_path, port,
                                                    wait_until_up):
    started = time.monotonic()
    # A copy of the package sources, so pip's build leaves nothing (build/, egg-info) in the checkout.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("kiln", "kiln_edge"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=120)
    python, kiln = env_dir / "bin" / "python", env_dir / "bin" / "kiln"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    _pip(python, "--no-deps", str(source))
    _pip(python, *extras["edge"])
    installed = time.monotonic() - started

    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    out = tmp_path / "onnx.csv"
    done = subprocess.run([str(kiln), "predict", str(run_dir), "--data", str(rows_csv), "--output", str(out),
                           "--backend", "onnx"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_predictions(pd.read_csv(out), torch_predictions)

    # Without torch (and kiln's other base dependencies), training says what to install, in one line.
    train = subprocess.run([str(kiln), "train", str(run_dir / "config.yaml")], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    assert train.returncode == 1
    assert train.stderr.startswith("error: kiln train needs PyTorch") and train.stderr.count("\n") == 1, train.stderr
    assert "pip install torch" in train.stderr
    version = subprocess.run([str(kiln), "version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0 and "no torch" in version.stdout, version.stderr
    print(f"\nenv without torch: installed in {installed:.0f} s, predicted in "
          f"{time.monotonic() - started - installed:.0f} s")

    if not {"fastapi", "uvicorn"} <= {req.split(">")[0].split("[")[0] for req in extras["serve"]}:
        return
    httpx = pytest.importorskip("httpx")
    _pip(python, *extras["serve"])
    free = port()
    # As a user would start it: the kiln command (it execs `python -m kiln_edge.serve`, all flags forwarded).
    server = subprocess.Popen([str(kiln), "serve", str(run_dir), "--port", str(free), "--backend", "onnx"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{free}"
        wait_until_up(server, url)
        rows = pd.read_csv(rows_csv).head(5)
        answer = httpx.post(f"{url}/predict", json={"records": json.loads(rows.to_json(orient="records"))},
                            timeout=30)
        assert answer.status_code == 200, answer.text
        assert httpx.get(f"{url}/metadata", timeout=5).json()["torch_loaded"] is False
        expected = torch_predictions.head(5)
        predictions = answer.json()["predictions"]
        assert [p["kind"] for p in predictions] == expected["kind"].tolist()
        for column in expected.columns[2:]:
            np.testing.assert_allclose([p[column] for p in predictions], expected[column], atol=1e-5)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    print(f"env without torch: served after {time.monotonic() - started:.0f} s in all")


def test_every_subpackage_is_an_attribute_after_import_kiln():
    """`import kiln; kiln.zoo.resnet18(...)` (the zoo's documented spelling) and the lifecycle packages."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import kiln
        assert kiln.zoo.resnet18(num_classes=3, input_shape=(16, 16, 1), stem="small", width=8) is not None
        for name in ("config", "data", "explain", "export", "reports", "serve", "workflows", "zoo", "training"):
            assert getattr(kiln, name).__name__ == f"kiln.{name}", name
            assert name in dir(kiln), name
    """)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_parsing_the_command_line_loads_no_heavy_package():
    """`kiln --help`, `kiln version` and the serve flags (declared in kiln_edge.serve) stay light:
    no torch, pandas or onnxruntime just to read the command line."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        import kiln.cli
        kiln.cli._parser().parse_args(["serve", "RUN", "--backend", "onnx", "--threads", "2"])
        heavy = {"torch", "pandas", "onnxruntime"} & set(sys.modules)
        assert not heavy, heavy
    """)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
