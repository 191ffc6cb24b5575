"""The report's Compression section: shown only for a compressed run, with what compress measured."""

import pytest

from kiln.errors import KilnTypeError
from kiln.reports import ReportContext, render_report

RECORD = {"source_run": "/runs/iris-1", "source_model_sha256": "ab12", "chosen": "int8-onnx", "metric": "accuracy",
          "budget": 0.01, "test_rows": 30, "recipe": {"quantize": "int8", "mode": "dynamic", "prune": None},
          "quantization": {"scheme": "int8 symmetric", "layers": ["dense"], "fp32_layers": {"conv": "no kernels"}},
          "rejected": {"torchao": "slower"},
          "table": [{"variant": "fp32", "accuracy": 0.9, "latency_b1_ms": 0.5},
                    {"variant": "int8-onnx", "accuracy": 0.9, "latency_b1_ms": 0.25}],
          "machine": {"processor": "x86_64", "threads": 1}}


def test_the_section_shows_lineage_table_chosen_and_fp32_layers():
    page = render_report(ReportContext("t", "iris-1-int8", "classification", compression=RECORD))
    section = page[page.index('<section id="compression">'):]
    section = section[:section.index("</section>")]
    for text in ("/runs/iris-1", "ab12", "int8-onnx (chosen)", "<td>fp32</td>", "0.2500", "conv", "no kernels",
                 "torchao", "slower", "int8 symmetric"):
        assert text in section, text
    assert '<a href="#compression">Compression</a>' in page


def test_no_compression_no_section():
    page = render_report(ReportContext("t", "iris-1", "classification"))
    assert "compression" not in page.lower()


def test_compression_must_be_a_dict():
    with pytest.raises(KilnTypeError, match="`compression` must be a dict .*Received: str"):
        ReportContext("t", "r", "classification", compression="compression.json")
