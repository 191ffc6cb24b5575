"""A `compress:` section in the YAML: validated with the rest, and `kiln train` compresses after training."""

import json
import textwrap
from pathlib import Path

import pytest

from kiln.config import dump_config, load_config_text
from kiln.errors import ConfigError

BASE = """\
    name: iris
    data: {source: iris.csv}
    input_features: [{name: a, type: numeric}]
    output_features: [{name: y, type: category}]
"""


def _config(extra: str = ""):
    return load_config_text(textwrap.dedent(BASE) + textwrap.dedent(extra), "cfg.yaml")


def test_no_compress_section_dumps_as_before():
    assert "compress" not in dump_config(_config())


def test_compress_section_round_trips_through_the_resolved_yaml():
    config = _config("compress: {quantize: int8, mode: qat, epochs: 2, backends: [torch]}\n")
    assert config.compress.mode == "qat" and config.compress.backends == ["torch"] and config.compress.budget == 0.01
    assert load_config_text(dump_config(config)).compress == config.compress


@pytest.mark.parametrize("section, message", [
    ("compress: {}", r"compress needs something to do: quantize: int8, prune: AMOUNT"),
    ("compress: {quantize: int8, mode: qat}", r"compress\.mode.*set quantize: int8 and epochs: N"),
    ("compress: {distill_into: mlp}", r"compress\.epochs.*distill_into trains the student"),
    ("compress: {prune: 1.5}", r"compress\.prune"),
    ("compress: {quantize: int4}", r"compress\.quantize"),
    ("compress: {quantise: int8}", r"quantise.*quantize"),
])
def test_bad_compress_sections_are_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        _config(section + "\n")


@pytest.mark.slow  # trains a small run, then prunes it
def test_kiln_train_compresses_after_training(tmp_path, capsys):
    from sklearn.datasets import load_iris

    from kiln.cli import main
    frame = load_iris(as_frame=True).frame
    frame.columns = ["a", "b", "c", "d", "y"]
    frame.to_csv(tmp_path / "iris.csv", index=False)
    (tmp_path / "cfg.yaml").write_text(textwrap.dedent(f"""\
        name: iris
        output_dir: {tmp_path / 'runs'}
        data: {{source: {tmp_path / 'iris.csv'}}}
        input_features: [{{name: a, type: numeric}}, {{name: c, type: numeric}}]
        output_features: [{{name: y, type: category}}]
        model: {{layers: [{{Dense: {{units: 8, activation: relu}}}}]}}
        training: {{epochs: 2}}
        compress: {{prune: 0.5, structured: true, rounds: 1}}
        """))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    run = Path(lines[-1].removeprefix("run: "))  # the trained run stays the last line
    compressed = Path(lines[-2].removeprefix("compressed: "))
    assert compressed == Path(f"{run}-pruned50s")
    record = json.loads((compressed / "compression.json").read_text())
    assert record["source_run"] == str(run.resolve()) and record["pruning"]["kept_units"] == {"dense": 4}
    assert (compressed / "report.html").exists() and (compressed / "evaluation.json").exists()
