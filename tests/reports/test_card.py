"""MODEL_CARD.md: all nine sections present and non-empty for a tabular, an image and a text run."""

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kiln.reports.card import CARD_FILE, SECTIONS
from kiln.cli import main

CONFIG = """\
name: {name}
output_dir: {out}
data:
  source: {source}
  split: {{train: 0.6, validation: 0.2, test: 0.2}}
input_features:
{inputs}
output_features:
  - {{name: label, type: category}}
training: {{epochs: 2, batch_size: 16, early_stopping: null}}
{extra}"""


def _train(tmp_path, capsys, name, source, inputs, extra="") -> Path:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(name=name, out=tmp_path / "runs", source=source, extra=extra,
                                                  inputs=textwrap.indent(inputs, "  ")))
    assert main(["train", str(cfg), "--quiet"]) == 0
    return Path(capsys.readouterr().out.strip().splitlines()[-1].split("run: ")[-1])


def _sections(card: str) -> dict:
    front, body = re.match(r"---\n(.*?)\n---\n(.*)", card, re.S).groups()
    parts = re.split(r"^## (.+)$", body, flags=re.M)
    return yaml.safe_load(front), {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def _check(run: Path) -> dict:
    front, sections = _sections((run / CARD_FILE).read_text())
    assert list(sections) == list(SECTIONS)
    assert all(sections.values()), [k for k, v in sections.items() if not v]
    assert front["model-index"][0]["results"][0]["metrics"][0]["type"] == "accuracy"
    assert front["license"] == "unknown" or front["license"]
    assert f'<a href="{CARD_FILE}">' in (run / "report.html").read_text()
    return sections


@pytest.mark.slow
def test_a_tabular_run_card_has_slices_intervals_and_the_stated_use(tmp_path, capsys):
    g = np.random.default_rng(0)
    frame = pd.DataFrame({"x": g.standard_normal(200), "region": g.choice(["north", "south"], 200)})
    frame["label"] = np.where(frame["x"] > 0, "up", "down")
    frame.to_csv(tmp_path / "t.csv", index=False)
    extra = ("card: {intended_use: demonstrating model cards, license: apache-2.0, slices: [region]}\n")
    run = _train(tmp_path, capsys, "tab", tmp_path / "t.csv",
                 "- {name: x, type: numeric}\n- {name: region, type: category}", extra)
    sections = _check(run)
    assert "Intended use: demonstrating model cards." in sections["Intended use"]
    assert "| north |" in sections["Quantitative analyses"] and "| south |" in sections["Quantitative analyses"]
    assert re.search(r"accuracy on the test split: [0-9.]+ \(95% CI [0-9.]+–[0-9.]+, 40 rows\)", sections["Metrics"])
    assert "Privacy: not private" in sections["Ethical considerations"]
    assert "permutation importance on the test split" in sections["Quantitative analyses"]
    front, _ = _sections((run / CARD_FILE).read_text())
    assert front["license"] == "apache-2.0"
    written_by_train = (run / CARD_FILE).read_text()
    (run / CARD_FILE).unlink()
    assert main(["card", str(run)]) == 0 and (run / CARD_FILE).exists()  # kiln card writes it again
    assert (run / CARD_FILE).read_text() == written_by_train  # from the same data, split the same way


@pytest.mark.slow
def test_a_text_run_card_says_in_one_line_that_the_use_is_not_stated(tmp_path, capsys):
    texts = ["good film", "bad film", "great plot", "awful plot", "good acting", "bad acting"] * 5
    pd.DataFrame({"review": texts, "label": ["pos", "neg"] * 15}).to_csv(tmp_path / "r.csv", index=False)
    run = _train(tmp_path, capsys, "text", tmp_path / "r.csv",
                 "- {name: review, type: text, preprocessing: {max_length: 4}}")
    sections = _check(run)
    assert sections["Intended use"].count("\n") == 0 and sections["Intended use"].startswith("Not stated")


@pytest.mark.slow
def test_an_image_run_card(tmp_path, capsys):
    from PIL import Image
    g = np.random.default_rng(0)
    for i in range(20):
        label = ("dark", "light")[i % 2]
        (tmp_path / "images" / label).mkdir(parents=True, exist_ok=True)
        pixels = (g.random((8, 8)) * 100 + (150 if label == "light" else 0)).astype("uint8")
        Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    run = _train(tmp_path, capsys, "img", tmp_path / "images",
                 "- {name: image, type: image, preprocessing: {height: 8, width: 8, channels: 1}}")
    sections = _check(run)
    assert "image (image)" in sections["Model details"]
