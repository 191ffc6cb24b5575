"""Shared by the torch-free tests (as fixtures: under --import-mode=importlib a test file cannot
import a conftest): one tiny tabular run (numeric, category and text inputs) trained once and
exported to ONNX, and the raw rows it is asked to predict."""

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CONFIG = """\
    name: edge
    seed: 0
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.7, validation: 0.15, test: 0.15}}
    input_features:
      - {{name: size, type: numeric}}
      - {{name: colour, type: category}}
      - {{name: note, type: text, preprocessing: {{max_length: 6}}}}
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
    colour = rng.choice(["red", "green", "blue"], size=n)
    note = rng.choice(["very big one", "small thing", "heavy, heavy!", "odd"], size=n)
    kind = np.where(size + (colour == "red") > 0.5, "big", np.where(size < -0.5, "heavy", "small"))
    return pd.DataFrame({"size": size, "colour": colour, "note": note, "kind": kind})


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """The tiny run, trained once: RUN/config.yaml's sibling config.yaml, RUN/export/model.onnx."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from kiln.config import load_config_text
    from kiln.export.onnx import export_onnx
    from kiln.workflows.run import load_run
    from kiln.workflows.train import train
    folder = tmp_path_factory.mktemp("edge")
    make_rows(120).to_csv(folder / "data.csv", index=False)
    (folder / "config.yaml").write_text(textwrap.dedent(CONFIG.format(out=folder / "runs", csv=folder / "data.csv")))
    path = Path(train(load_config_text((folder / "config.yaml").read_text()), verbose=0).run_dir)
    (path / "export").mkdir(exist_ok=True)
    export_onnx(load_run(path), path / "export" / "model.onnx")
    return path


@pytest.fixture
def raw_rows():
    """30 raw rows to predict, with the awkward cases: a missing number, an unseen category, a
    missing and an unseen text (a fresh frame per test)."""
    rows = make_rows(30, seed=7).drop(columns=["kind"])
    rows.loc[3, "size"] = np.nan          # filled with the training mean
    rows.loc[4, "colour"] = "purple"      # unseen -> <unk>
    rows.loc[5, "note"] = None            # missing text -> ""
    rows.loc[6, "note"] = "NEVER seen words"
    return rows
