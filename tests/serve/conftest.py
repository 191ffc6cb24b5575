"""Shared by the server tests (as fixtures: test files cannot import a conftest under
--import-mode=importlib): a tiny tabular run exported to ONNX, `kiln predict` as the reference, a
real uvicorn server on a free port, and the check that answers equal the reference."""

import json
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

CONFIG = """\
    # kiln train cfg.yaml
    name: tiny
    seed: 0
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.7, validation: 0.15, test: 0.15}}
    input_features:
      - {{name: size, type: numeric}}
      - {{name: weight, type: numeric}}
      - {{name: colour, type: category}}
    output_features:
      - {{name: kind, type: category}}
    training:
      epochs: 2
      batch_size: 16
      optimizer: {{name: adam, learning_rate: 0.01}}
      early_stopping: null
"""


def make_rows(n, seed=0):
    """Rows of the tiny run's table (``kind`` is the target)."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size=n).round(3)
    weight = rng.normal(size=n).round(3)
    colour = rng.choice(["red", "green", "blue"], size=n)
    kind = np.where(size + (colour == "red") > 0.5, "big", np.where(weight > 0, "heavy", "small"))
    return pd.DataFrame({"size": size, "weight": weight, "colour": colour, "kind": kind})


def kiln_predict(run_dir, data_file, out_file) -> pd.DataFrame:
    """`kiln predict RUN --data FILE` (the torch backend, the reference every answer is held to)."""
    from kiln.cli import main
    assert main(["predict", str(run_dir), "--data", str(data_file), "--output", str(out_file)]) == 0
    return pd.read_csv(out_file).drop(columns=["row"])


def assert_same(predictions, expected, label, atol=1e-5):
    """JSON predictions equal a `kiln predict` frame: labels equal, probabilities within ``atol``."""
    assert len(predictions) == len(expected)
    for got, (_, want) in zip(predictions, expected.iterrows()):
        assert set(got) == set(want.index)
        assert got[label] == want[label]
        for column in want.index.drop(label):
            assert got[column] == pytest.approx(float(want[column]), abs=atol), column


class Server:
    """A real uvicorn server for ``app`` on 127.0.0.1 and ``port``, in a background thread."""

    def __init__(self, app, port: int, wait_until_up):
        import uvicorn
        self.port, self.wait_until_up = port, wait_until_up
        self.url = f"http://127.0.0.1:{self.port}"
        from kiln_edge.server.connections import uvicorn_config  # the connection limits `kiln serve` runs with
        self.server = uvicorn.Server(uvicorn_config(app, app.state.settings, "127.0.0.1", self.port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        self.wait_until_up(None, self.url, seconds=20)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def tabular_run(tmp_path_factory) -> Path:
    """The tiny run, trained once, with export/model.onnx for the onnx backend."""
    from kiln.config import load_config_text
    from kiln.export.onnx import export_onnx
    from kiln.workflows.run import load_run
    from kiln.workflows.train import train
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    folder = tmp_path_factory.mktemp("serve")
    make_rows(120).to_csv(folder / "data.csv", index=False)
    config = load_config_text(textwrap.dedent(CONFIG.format(out=folder / "runs", csv=folder / "data.csv")))
    path = Path(train(config, verbose=0).run_dir)
    (path / "export").mkdir(exist_ok=True)
    export_onnx(load_run(path), path / "export" / "model.onnx")
    return path


@pytest.fixture(scope="session")
def reference(tabular_run, tmp_path_factory):
    """48 raw rows (as JSON records) and what `kiln predict` writes for them."""
    folder = tmp_path_factory.mktemp("reference")
    rows = make_rows(48, seed=2).drop(columns=["kind"])
    rows.to_csv(folder / "rows.csv", index=False)
    return json.loads(rows.to_json(orient="records")), kiln_predict(tabular_run, folder / "rows.csv",
                                                                    folder / "p.csv")


@pytest.fixture(scope="session")
def serve(port, wait_until_up):
    """``with serve(app) as server:`` a real uvicorn server (``server.url``) for the block."""
    return lambda app: Server(app, port(), wait_until_up)


@pytest.fixture(scope="session")
def same():
    """``same(predictions, expected_frame, label, atol=1e-5)``: JSON answers equal `kiln predict`'s."""
    return assert_same


@pytest.fixture(scope="session")
def predict_reference():
    """``predict_reference(run_dir, data_file, out_file)``: `kiln predict`'s frame (the reference)."""
    return kiln_predict
