"""Tiny tabular configs for the tune tests: iris, a one-layer Dense, 3 epochs."""

import textwrap
from pathlib import Path

import pytest

IRIS = """\
    name: iris
    seed: 0
    data:
      source: sklearn:iris
    input_features:
      - {name: sl, type: numeric, column: "sepal length (cm)"}
      - {name: sw, type: numeric, column: "sepal width (cm)"}
      - {name: pl, type: numeric, column: "petal length (cm)"}
      - {name: pw, type: numeric, column: "petal width (cm)"}
    output_features:
      - {name: target, type: category}
    model:
      layers:
        - Dense: {units: 8, activation: relu}
    training:
      epochs: 3
      batch_size: 16
      checkpoint_every_steps: null
    """


def iris_config(tmp_path: Path, tune: str, name: str = "cfg.yaml", extra: str = "") -> Path:
    """Write the iris config with ``tune`` (the tune: section's body, YAML) and return its path."""
    body = textwrap.dedent(IRIS) + textwrap.dedent(extra) + "tune:\n" + textwrap.indent(textwrap.dedent(tune), "  ")
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.fixture
def iris_tune(tmp_path):
    return lambda tune, **kw: iris_config(tmp_path, tune, **kw)
