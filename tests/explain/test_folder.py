"""explain_run on a text model: token attributions through the embedding, rendered as highlighted tokens."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest

import kiln
from kiln import layers as L
from kiln.data.features import build_feature
from kiln.explain.folder import add_to_report, explain_run


def _text_run():
    frame = pd.DataFrame({"review": ["good film", "bad film", "good good plot", "bad plot"] * 3,
                          "mood": ["pos", "neg", "pos", "neg"] * 3})
    text = build_feature("review", "text", max_length=4).fit(frame["review"])
    mood = build_feature("mood", "category", output=True).fit(frame["mood"])
    ids = kiln.Input(shape=(4,), dtype="int64", name="review")
    model = kiln.Model(ids, L.Dense(2)(L.GlobalAveragePooling1D()(L.Embedding(text.spec()["vocab_size"], 4)(ids))))
    model.compile(loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    run = SimpleNamespace(model=model, inputs=[text], outputs=[mood], output_kinds={"mood": "logits"},
                          encode_inputs=lambda f: {"review": text.transform(f["review"])},
                          encode_targets=lambda f: mood.transform(f["mood"]))
    return run, frame


@pytest.mark.slow  # the first evaluate in a process imports the optimizers (seconds on a busy CPU)
def test_text_rows_get_highlighted_tokens_and_a_complete_ig(tmp_path):
    run, frame = _text_run()
    explanations = explain_run(run, frame, tmp_path, method="ig", max_pictures=2)
    assert json.loads((tmp_path / "explanations.json").read_text())["method"] == "ig"
    assert explanations["checks"]["completeness"]["passed"]
    assert len(explanations["tokens_html"]) == 2 and ">good</span>" in explanations["tokens_html"][0]
    assert explanations["global_importance"]["metric"] == "accuracy"  # the rows carry the labels


def test_add_to_report_swaps_the_section_in_place(tmp_path):
    report = tmp_path / "report.html"
    report.write_text('<nav><a href="#model">Model</a></nav><section id="model">m</section><footer>f</footer>')
    assert add_to_report(report, {"mean_abs_attribution": {"a": 1.0}, "method": "ig", "rows": 1}, tmp_path)
    assert add_to_report(report, {"mean_abs_attribution": {"b": 2.0}, "method": "ig", "rows": 1}, tmp_path)
    text = report.read_text()
    assert text.count('<section id="explanations">') == 1 and "<td>b</td>" in text and "<td>a</td>" not in text
    assert text.index('id="explanations"') < text.index('id="model"') and 'href="#explanations"' in text
    assert not add_to_report(tmp_path / "missing.html", {}, tmp_path)
